"""``erb judges``, ``settings``, ``prompts`` and ``score``: judges themselves."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from .common import OptionOpt, _console, _fail, _judge_entry, _parse_options, _warn


def judges_cmd(
    json_out: Annotated[bool, typer.Option("--json", help="Print a JSON list.")] = False,
) -> None:
    """List every judge: built-in cards and plugins."""
    import json

    from rich.table import Table

    from ..judges import discover

    registry = discover()
    for problem in registry.problems:
        _warn(problem)
    rows = [registry.entries[name].listing() for name in registry.names()]
    if json_out:
        print(json.dumps(rows, indent=2))
        return
    table = Table(title="judges")
    for column in ("name", "backend", "model", "adapter", "default_k", "source"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(
            *(
                str(row.get(c) or "-")
                for c in ("name", "backend", "model", "adapter", "default_k", "source")
            )
        )
    _console().print(table)


def settings_cmd(
    judge: Annotated[
        str | None, typer.Option("--judge", "-j", help="Show this judge's values too.")
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Every judge setting: what it does, its default, and whether it changes answers (the store key)."""
    import json

    from rich.table import Table

    from ..judges.options import all_settings, describe_settings, parse_config

    rows = describe_settings()
    if judge is not None:
        card = _judge_entry(judge).card
        if card is None:
            _fail(f"judge {judge!r} is a plugin factory; its settings are its own")
        assert card is not None
        try:
            config = parse_config(card)
        except Exception as exc:
            _fail(str(exc))
        values = all_settings(config)
        owned = {"sampling", "common", card.backend}
        rows = [{**r, "value": values.get(r["name"])} for r in rows if r["section"] in owned]
    if json_out:
        print(json.dumps(rows, indent=2, default=str))
        return
    table = Table(title="judge settings" + (f" of {judge}" if judge else ""))
    columns = [
        "name",
        "section",
        "type",
        "value" if judge else "default",
        "affects_answers",
        "help",
    ]
    for column in columns:
        table.add_column(column.replace("_", " "), overflow="fold")
    for row in rows:
        table.add_row(*("-" if row.get(c) is None else str(row.get(c)) for c in columns))
    _console().print(table)
    _console().print(
        "Give any of them to `erb evaluate` or `erb score` as --option NAME=VALUE, or in a card's "
        "[sampling] / [options] table."
    )


def prompts_cmd(
    judge: Annotated[str, typer.Option("--judge", "-j", help="Judge card name or path.")],
    instruction: Annotated[str, typer.Option(help="The editing instruction to substitute.")],
    json_out: Annotated[bool, typer.Option("--json", help='Print {"sc": ..., "pq": ...}.')] = False,
) -> None:
    """Print the exact SC and PQ prompt texts a judge receives."""
    import json

    from ..judges.editscore import load_prompts
    from ..judges.options import parse_config

    card = _judge_entry(judge).card
    if card is None or card.protocol != "editscore":
        _fail(
            f"judge {judge!r} does not use prompts (protocol {card.protocol if card else 'plugin'!r})"
        )
    assert card is not None
    prompts = load_prompts(parse_config(card).common.score_range)
    texts = {"sc": prompts.sc(instruction), "pq": prompts.pq()}
    if json_out:
        sys.stdout.write(json.dumps(texts, ensure_ascii=False) + "\n")
        return
    console = _console()
    console.rule("SC prompt")
    console.print(texts["sc"], markup=False, highlight=False)
    console.rule("PQ prompt")
    console.print(texts["pq"], markup=False, highlight=False)


def score_cmd(
    source: Annotated[Path, typer.Argument(help="The source image.", exists=True, dir_okay=False)],
    edited: Annotated[Path, typer.Argument(help="The edited image.", exists=True, dir_okay=False)],
    judge: Annotated[str, typer.Option("--judge", "-j", help="Judge card name or path.")],
    instruction: Annotated[str, typer.Option(help="The editing instruction.")],
    k: Annotated[int, typer.Option("--k", "-k", min=1, help="Passes (Avg@k).")] = 1,
    seed: Annotated[int, typer.Option(help="Base seed: pass i uses seed + i.")] = 42,
    model: Annotated[str | None, typer.Option(help="Override the card's model.")] = None,
    adapter: Annotated[
        str | None, typer.Option(help="Override the card's adapter ('none' for none).")
    ] = None,
    backend: Annotated[str | None, typer.Option(help="Override the card's backend.")] = None,
    base_url: Annotated[
        list[str] | None, typer.Option("--base-url", help="OpenAI-compatible endpoint(s).")
    ] = None,
    api_key_env: Annotated[
        str | None, typer.Option(help="Environment variable holding the API key.")
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    option: OptionOpt = None,
) -> None:
    """Score one edit: the judge as a reward function."""
    import json

    from ..judges.base import open_image
    from ..runner import RunError, RunOptions, open_judge

    options = RunOptions(
        model=model,
        adapter=adapter,
        backend=backend,
        base_urls=list(base_url or []),
        api_key_env=api_key_env,
        backend_options=_parse_options(option),
    )
    for path in (source, edited):
        try:
            open_image(path)
        except Exception as exc:  # PIL's own message names a BytesIO, not the file
            reason = "not an image PIL can read" if "identify" in str(exc) else str(exc)
            _fail(f"cannot read the image {path}: {reason}")
    try:
        judge_obj = open_judge(judge, options)
        judge_obj.preflight()
    except RunError as exc:
        _fail(str(exc))
    except Exception as exc:
        _fail(str(exc))
    try:
        result = judge_obj.score(instruction, source, edited, k=k, seed=seed)
    finally:
        judge_obj.close()
    if json_out:
        print(json.dumps(result, indent=2, default=str))
    else:
        console = _console()
        for name in ("prompt_following", "consistency", "perceptual_quality", "overall"):
            value = result[name]
            console.print(f"{name:>20}: {'failed' if value is None else f'{value:.3f}'}")
        console.print(f"{'passes ok':>20}: {result['passes_ok']} of {k}")
        for rec in result["passes"]:
            if rec["status"] != "ok":
                console.print(f"pass {rec['pass']} failed: {rec['error']}", markup=False)
    if result["passes_ok"] == 0:
        raise typer.Exit(1)
