"""The ``erb`` command line.

Everything heavy is imported inside the command that needs it, so ``erb --help``
and ``erb leaderboard`` start fast.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from .report_cli import register as register_report_commands
from .reward_cli import register as register_reward_commands

app = typer.Typer(
    help="EditReward-Bench toolkit: evaluate reward models for instruction-guided image editing.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
data_app = typer.Typer(
    help="Bundled and synthetic benchmarks; dataset information.", no_args_is_help=True
)
app.add_typer(data_app, name="data")

DEFAULT_DATASET = "EditScore/EditReward-Bench"


def _console(stderr: bool = False) -> Any:
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    # Rich assumes 80 columns off a terminal; tables of intervals need more to stay legible in logs.
    width = None if stream.isatty() else 140
    return Console(stderr=stderr, highlight=False, width=width)


def _fail(message: str, code: int = 2) -> None:
    _console(stderr=True).print(f"[bold red]error:[/] {_escape(message)}", soft_wrap=True)
    raise typer.Exit(code)


def _warn(message: str) -> None:
    _console(stderr=True).print(f"[yellow]warning:[/] {_escape(message)}", soft_wrap=True)


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


def _quiet_libraries() -> None:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from .benchmark import quiet_datasets

    quiet_datasets()
    if "transformers" in sys.modules or importlib.util.find_spec("transformers") is not None:
        # Set through the environment so transformers need not be imported here.
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")


def _load_bench(
    source: str, revision: str | None, split: str | None, max_pixels: int | None = None
) -> Any:
    from .benchmark import DEFAULT_MAX_IMAGE_PIXELS, BenchmarkError, load_benchmark

    _quiet_libraries()
    try:
        return load_benchmark(
            source, revision, split=split, max_image_pixels=max_pixels or DEFAULT_MAX_IMAGE_PIXELS
        )
    except BenchmarkError as exc:
        _fail(str(exc))


DatasetOpt = Annotated[
    str,
    typer.Option(
        "--dataset", "-d", help="Hub id, local save_to_disk folder, parquet file/folder, or 'mini'."
    ),
]
RevisionOpt = Annotated[
    str | None, typer.Option(help="Hub revision (commit, tag or branch) to pin.")
]
SplitOpt = Annotated[str | None, typer.Option(help="Split to use when the dataset has several.")]
OptionOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--option",
        "-o",
        metavar="KEY=VALUE",
        help="Any judge setting, e.g. -o temperature=0.5 -o layout=text-first (`erb settings`).",
    ),
]


# --------------------------------------------------------------------------- data


OverwriteOpt = Annotated[
    bool,
    typer.Option(
        help="Replace erb's own earlier output there (only the files erb wrote; nothing else)."
    ),
]


@data_app.command("make-mini")
def data_make_mini(
    out: Annotated[
        Path | None,
        typer.Option(
            help="Where to write it (default: data/mini in a source checkout, else ./erb-mini)."
        ),
    ] = None,
    predictions: Annotated[
        Path | None,
        typer.Option(
            help="Where to write the example predictions (default: beside the benchmark)."
        ),
    ] = None,
    overwrite: OverwriteOpt = False,
) -> None:
    """Regenerate the bundled benchmark and its example predictions (byte-identical)."""
    from .outputs import MINI, OutputError, check_output_file, prepare_output_dir
    from .resources import checkout_data_dir
    from .synth import make_mini

    checkout = checkout_data_dir()
    # Never into an installed package: from a wheel, the default is ./erb-mini.
    target = out or (checkout / "mini" if checkout is not None else Path("erb-mini"))
    pred_path = predictions or target.parent / "mini_predictions.jsonl"
    try:
        prepare_output_dir(target, MINI, overwrite=overwrite)
        check_output_file(
            pred_path, overwrite=overwrite, option="--predictions", example="mini_predictions.jsonl"
        )
    except OutputError as exc:
        _fail(str(exc))
    _quiet_libraries()
    try:
        make_mini(target, overwrite=overwrite)
        _write_example_predictions(target, pred_path)
    except OutputError as exc:
        _fail(str(exc))
    except OSError as exc:
        _fail(f"cannot write {exc.filename or target}: {exc.strerror or exc}")
    _console().print(f"wrote {target} and {pred_path}")
    if out is None and checkout is None:
        _console().print(
            f"not a source checkout: the installed copy is left as it is; "
            f"use this one with --dataset {target.resolve()}"
        )


def _write_example_predictions(bench_dir: Path, out: Path) -> None:
    """The example predictions file: the image-diff baseline's scores on ``mini``."""
    import json

    from .benchmark import load_benchmark
    from .judges.baselines import image_diff_scores
    from .outputs import atomic_write

    bench = load_benchmark(bench_dir)
    lines = []
    for key, candidate in bench.candidates.items():
        scores = image_diff_scores(*candidate.load_images())
        lines.append(json.dumps({"key": key, **{name: round(v, 6) for name, v in scores.items()}}))
    atomic_write(out, ("\n".join(lines) + "\n").encode("utf-8"), mode=0o644)


@data_app.command("synth")
def data_synth(
    out: Annotated[Path, typer.Option(help="Output folder (save_to_disk layout).")],
    rows: Annotated[int, typer.Option(min=1, help="Number of rows.")] = 3072,
    image_size: Annotated[int, typer.Option(min=16, max=8192, help="Image side in pixels.")] = 1024,
    seed: Annotated[int, typer.Option(help="Generator seed.")] = 0,
    overwrite: OverwriteOpt = False,
) -> None:
    """Write a synthetic benchmark of any size in the EditReward-Bench schema."""
    from .outputs import SYNTHETIC, OutputError, prepare_output_dir
    from .synth import make_synthetic

    try:
        prepare_output_dir(out, SYNTHETIC, overwrite=overwrite)
    except OutputError as exc:
        _fail(str(exc))
    _quiet_libraries()
    try:
        make_synthetic(out, rows, image_size, seed, overwrite=overwrite)
    except OutputError as exc:
        _fail(str(exc))
    except OSError as exc:
        _fail(f"cannot write {exc.filename or out}: {exc.strerror or exc}")
    _console().print(f"wrote {rows} rows at {image_size}px to {out}")


@data_app.command("info")
def data_info(
    source: Annotated[
        str, typer.Argument(help="Hub id, local folder, parquet, or 'mini'.")
    ] = DEFAULT_DATASET,
    revision: RevisionOpt = None,
    split: SplitOpt = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Rows per subtask x dimension, candidates, image sizes and the fingerprint."""
    import json

    from rich.table import Table

    from .taxonomy import DIMENSION_ABBREV, DIMENSIONS, SUBTASKS

    bench = _load_bench(source, revision, split)
    cells = bench.cells()
    info = {
        **bench.describe(),
        "cells": {s: {d: cells.get((s, d), 0) for d in DIMENSIONS} for s in SUBTASKS},
        "image_sizes": bench.image_stats,
    }
    if json_out:
        print(json.dumps(info, indent=2))
        return
    kind = " (synthetic)" if bench.synthetic else ""
    table = Table(
        title=f"{bench.source}{kind}: {len(bench)} rows, {len(bench.candidates)} candidates"
    )
    table.add_column("subtask")
    for d in DIMENSIONS:
        table.add_column(DIMENSION_ABBREV[d], justify="right")
    for s in SUBTASKS:
        table.add_row(s, *(str(cells.get((s, d), 0)) for d in DIMENSIONS))
    console = _console()
    console.print(table)
    stats = bench.image_stats
    console.print(
        f"image sizes: {stats['min_size']} .. {stats['max_size']} ({stats['distinct_sizes']} distinct)"
    )
    console.print(f"fingerprint: {bench.fingerprint}")
    if bench.synthetic:
        console.print(
            "synthetic: yes. Made by erb in the EditReward-Bench schema; a judge's numbers on it "
            "test the toolkit, not the judge."
        )


# --------------------------------------------------------------------------- evaluate


def _print_paper_table(metrics: dict[str, Any], reference: dict[str, Any] | None = None) -> None:
    from rich.table import Table

    from .benchmark import is_synthetic
    from .taxonomy import BLOCKS, DIMENSION_ABBREV, DIMENSIONS, OVERALL_BLOCK

    judge = metrics["judge"].get("name", "?")
    synthetic = is_synthetic(metrics["dataset"])
    label = " [SYNTHETIC data, not EditReward-Bench]" if synthetic else ""
    table = Table(
        title=_escape(f"{judge} (k={metrics['k']}) on {metrics['dataset']['source']}{label}: ")
        + "pairwise accuracy, 95% CI"
    )
    table.add_column("block")
    for d in DIMENSIONS:
        table.add_column(DIMENSION_ABBREV[d], justify="right")

    def cell(block: str, d: str) -> str:
        acc = (
            metrics["accuracy"][OVERALL_BLOCK]
            if block == OVERALL_BLOCK
            else metrics["accuracy"]["groups"][block]
        )
        ci = (
            metrics["ci95"][OVERALL_BLOCK]
            if block == OVERALL_BLOCK
            else metrics["ci95"]["groups"][block]
        )
        value, interval = acc[d], ci[d]
        if value is None:
            return "-"
        text = f"{value:.3f}"
        if interval:
            text += f" [{interval[0]:.3f}, {interval[1]:.3f}]"
        return text

    for block in BLOCKS:
        table.add_row(block, *(cell(block, d) for d in DIMENSIONS))
        if reference and block in reference:
            ref_cells = []
            for d in DIMENSIONS:
                value = reference[block].get(d)
                ci = (
                    metrics["ci95"][OVERALL_BLOCK]
                    if block == OVERALL_BLOCK
                    else metrics["ci95"]["groups"][block]
                )[d]
                if value is None:
                    ref_cells.append("-")
                    continue
                inside = ci is not None and ci[0] <= value <= ci[1]
                ref_cells.append(f"{value:.3f} ({'inside' if inside else 'outside'} CI)")
            table.add_row(f"  paper ({block})", *ref_cells, style="dim")
    console = _console()
    console.print(table)
    ties = ", ".join(
        f"{DIMENSION_ABBREV[d]} {v:.1%}" for d, v in metrics["tie_rate"].items() if v is not None
    )
    console.print(
        f"tie rate: {ties}; failed candidates: {metrics['failures']}; partial: {metrics.get('partial', 0)} "
        f"of {metrics.get('candidates', '?')}"
    )


def _default_run_dir(name: str) -> Path:
    return Path("reports") / "runs" / name


@app.command()
def evaluate(
    predictions: Annotated[
        Path | None,
        typer.Option(
            help="Score a judge's outputs (JSONL, one line per candidate) without running it."
        ),
    ] = None,
    judge: Annotated[
        str | None, typer.Option("--judge", "-j", help="Judge card name or path to a card file.")
    ] = None,
    k: Annotated[
        int | None,
        typer.Option("--k", "-k", min=1, help="Passes per candidate (Avg@k). Default: the card's."),
    ] = None,
    dataset: DatasetOpt = DEFAULT_DATASET,
    revision: RevisionOpt = None,
    split: SplitOpt = None,
    limit: Annotated[int | None, typer.Option(min=1, help="Only the first N rows.")] = None,
    out: Annotated[
        Path | None, typer.Option(help="Run folder (default reports/runs/NAME).")
    ] = None,
    name: Annotated[
        str | None,
        typer.Option(help="Run name (default: judge name, or the predictions file's stem)."),
    ] = None,
    overwrite: Annotated[
        bool,
        typer.Option(
            help="Replace a run folder holding a different run (only the files erb wrote there)."
        ),
    ] = False,
    seed: Annotated[
        int, typer.Option(help="Base seed: pass i uses seed + i (the paper: 42).")
    ] = 42,
    concurrency: Annotated[int, typer.Option(min=1, help="Judge requests in flight at once.")] = 8,
    store: Annotated[
        Path | None, typer.Option(help="Pass store (default $ERB_STORE or the user cache).")
    ] = None,
    fresh: Annotated[
        bool, typer.Option(help="Ignore stored passes and judge everything again.")
    ] = False,
    model: Annotated[
        str | None, typer.Option(help="Override the card's model (hub id or local folder).")
    ] = None,
    adapter: Annotated[
        str | None,
        typer.Option(
            help="Override the card's LoRA adapter (hub id or folder; 'none' for no adapter)."
        ),
    ] = None,
    backend: Annotated[
        str | None, typer.Option(help="Override the card's backend: transformers | openai.")
    ] = None,
    base_url: Annotated[
        list[str] | None,
        typer.Option("--base-url", help="OpenAI-compatible endpoint(s); repeat for replicas."),
    ] = None,
    api_key_env: Annotated[
        str | None, typer.Option(help="Environment variable holding the API key.")
    ] = None,
    batch_size: Annotated[
        int | None, typer.Option(min=1, help="Local backend: candidates per generate() batch.")
    ] = None,
    max_retries: Annotated[
        int | None,
        typer.Option(
            min=0, help="Retries of an unparseable answer, each with a new seed (card default: 2)."
        ),
    ] = None,
    retry_failed: Annotated[
        bool, typer.Option(help="Judge again the passes stored as failed.")
    ] = False,
    timeout: Annotated[
        float | None,
        typer.Option(min=0.1, help="OpenAI backend: seconds before a request is abandoned."),
    ] = None,
    dtype: Annotated[
        str | None, typer.Option(help="Local backend: auto | bfloat16 | float16 | float32.")
    ] = None,
    device_map: Annotated[
        str | None, typer.Option(help="Local backend: e.g. auto, cpu, cuda:0.")
    ] = None,
    min_pixels: Annotated[
        int | None, typer.Option(min=1, help="Local backend: image resize floor.")
    ] = None,
    max_pixels: Annotated[
        int | None, typer.Option(min=1, help="Local backend: image resize cap.")
    ] = None,
    max_image_pixels: Annotated[
        int | None, typer.Option(min=1, help="Refuse images larger than this many pixels.")
    ] = None,
    bootstrap: Annotated[
        int, typer.Option(min=0, help="Bootstrap resamples for the 95% intervals.")
    ] = 1000,
    option: OptionOpt = None,
    stop_after: Annotated[
        int,
        typer.Option(
            min=0,
            help="Stop if the first N judged passes all fail (0: never).",
            rich_help_panel="Failures",
        ),
    ] = 20,
    stop_share: Annotated[
        float,
        typer.Option(
            min=0.0,
            max=1.0,
            rich_help_panel="Failures",
            help="Stop once more than this share of the passes judged (at least --stop-min) "
            "failed for one persistent reason (HTTP 4xx, unparseable answers, bad images).",
        ),
    ] = 0.5,
    stop_min: Annotated[
        int,
        typer.Option(
            min=0,
            help="Passes judged before --stop-share applies (0: never).",
            rich_help_panel="Failures",
        ),
    ] = 50,
) -> None:
    """Evaluate a judge on EditReward-Bench (run it with --judge, or score --predictions)."""
    if (predictions is None) == (judge is None):
        _fail("give exactly one of --predictions FILE or --judge NAME")
    # Fail on an unknown judge or an output that cannot be saved before loading any data.
    entry = _judge_entry(judge) if judge is not None else None
    run_dir, known_k = _check_run_folder(
        out, name, predictions, entry, k, overwrite, model, adapter, base_url
    )
    bench = _load_bench(dataset, revision, split, max_image_pixels)
    try:
        bench = bench.subset(limit)
    except ValueError as exc:
        _fail(str(exc))
    if predictions is not None:
        summary = _evaluate_predictions(bench, predictions, run_dir, name, bootstrap, overwrite)
    else:
        assert judge is not None
        from .failures import StopRule
        from .runner import RunOptions

        options = RunOptions(
            k=k, seed=seed, concurrency=concurrency, store=store, fresh=fresh, model=model, adapter=adapter,
            backend=backend, base_urls=list(base_url or []), api_key_env=api_key_env, batch_size=batch_size,
            max_retries=max_retries, n_bootstrap=bootstrap, retry_failed=retry_failed,
            backend_options={
                **_backend_options(timeout, dtype, device_map, min_pixels, max_pixels),
                **_parse_options(option),
            },
            stop=StopRule(all_failed_after=stop_after, min_passes=stop_min, persistent_share=stop_share),
        )  # fmt: skip
        if run_dir is not None:  # the settings known before loading the judge
            expected = {"kind": "judge", "dataset": bench.fingerprint, "seed": seed}
            _check_run_folder_holds(run_dir, {**expected, "k": known_k}, overwrite)
        summary = _evaluate_judge(bench, judge, options, out, name, overwrite)
    for message in summary.warnings:
        _warn(message)
    for note in summary.notes:
        _console().print(note, markup=False, highlight=False, soft_wrap=True)
    _print_paper_table(summary.metrics, summary.reference)
    _console().print(f"run folder: {summary.path}")


def _backend_options(
    timeout: float | None,
    dtype: str | None,
    device_map: str | None,
    min_pixels: int | None,
    max_pixels: int | None,
) -> dict[str, Any]:
    given = {
        "timeout": timeout,
        "dtype": dtype,
        "device_map": device_map,
        "min_pixels": min_pixels,
        "max_pixels": max_pixels,
    }
    return {k: v for k, v in given.items() if v is not None}


def _parse_options(given: list[str] | None) -> dict[str, Any]:
    """``--option key=value`` pairs; values are TOML literals, else plain text."""
    from .judges.options import parse_override_value

    out: dict[str, Any] = {}
    for item in given or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            _fail(f"--option takes key=value (e.g. --option temperature=0.5), got {item!r}")
        out[key.strip()] = parse_override_value(value.strip())
    return out


def _judge_entry(name: str) -> Any:
    """A judge by card name, card path or plugin name; an unknown one ends the command."""
    from .judges import CardError, UnknownJudgeError, resolve_card

    try:
        return resolve_card(name)
    except (UnknownJudgeError, CardError) as exc:
        _fail(str(exc.args[0]))


def _check_run_folder(
    out: Path | None,
    name: str | None,
    predictions: Path | None,
    entry: Any,
    k: int | None,
    overwrite: bool,
    model: str | None = None,
    adapter: str | None = None,
    base_urls: list[str] | None = None,
) -> tuple[Path | None, int | None]:
    """The run folder evaluate writes, checked before any work: a plain name, writable,
    empty or erb's own run folder. Returns (the folder, k) where known before loading
    the judge (a plugin's default k is not: the runner then checks the folder itself)."""
    from .outputs import OutputError, check_name, check_run_dir

    known_k = 1 if predictions is not None else (k or getattr(entry.card, "default_k", None))
    try:
        if name is not None:
            check_name(name, "--name")
        if out is None and predictions is not None:
            out = _default_run_dir(check_name(name or predictions.stem, "run name"))
        elif out is None and name is not None:
            out = _default_run_dir(name)
        elif out is None and known_k is not None:
            from .judges import replaced_identity
            from .runner import default_run_name

            shown = entry.name
            if entry.card is not None:
                replaced = replaced_identity(model, adapter, base_urls)
                shown = dataclasses.replace(entry.card, replaced=replaced).display_name
            run_name = default_run_name(shown, known_k)
            out = _default_run_dir(check_name(run_name, "judge name"))
        if out is not None:
            check_run_dir(out, None, overwrite=overwrite)
    except OutputError as exc:
        _fail(str(exc))
    return out, known_k


def _check_run_folder_holds(run_dir: Path, expected: dict[str, Any], overwrite: bool) -> None:
    """Refuse a run folder that holds a different run (unless --overwrite)."""
    from .outputs import OutputError, check_run_dir

    try:
        check_run_dir(
            run_dir, {k: v for k, v in expected.items() if v is not None}, overwrite=overwrite
        )
    except OutputError as exc:
        _fail(str(exc))


def _evaluate_predictions(
    bench: Any,
    path: Path,
    run_dir: Path | None,
    name: str | None,
    n_bootstrap: int,
    overwrite: bool,
) -> Any:
    from .outputs import OutputError
    from .predictions import PredictionsError, read_predictions
    from .results import RunSummary, build_manifest, compute_metrics, now_iso, write_run

    started = now_iso()
    try:
        preds = read_predictions(path)
    except PredictionsError as exc:
        _fail(str(exc))
    run_name = name or path.stem
    assert run_dir is not None
    expected = {"kind": "predictions", "predictions": preds.sha256, "dataset": bench.fingerprint}
    _check_run_folder_holds(run_dir, expected, overwrite)
    judge_info = {
        "name": run_name,
        "kind": "predictions",
        "source": str(path),
        "sha256": preds.sha256,
    }
    warnings = []
    unknown = sorted(set(preds.scores) - set(bench.candidates))
    if unknown:
        shown = ", ".join(repr(k) for k in unknown[:5]) + (" ..." if len(unknown) > 5 else "")
        warnings.append(
            f"{len(unknown)} key(s) in {path} are not in the dataset and were ignored: {shown}"
        )
    records = []
    for key in bench.candidates:
        entry = preds.scores.get(key)
        base = {"key": key, "pass": 0, "seed": None, "extra": preds.extras.get(key)}
        if entry is None:
            records.append({**base, "status": "failed", "error": "missing from predictions"})
            continue
        records.append({**base, "status": "ok", **entry})
    missing = sum(r["status"] == "failed" for r in records)
    if missing == len(records):
        _fail(
            f"none of the {len(records)} candidates of the dataset has a prediction in {path} "
            "(are the keys from another dataset?)"
        )
    if missing:
        warnings.append(
            f"{missing} of {len(bench.candidates)} candidate(s) have no prediction; they count as failures"
        )
    metrics, outcomes, metric_warnings = compute_metrics(
        bench, records, judge=judge_info, k=1, n_bootstrap=n_bootstrap
    )
    manifest = build_manifest(bench, started=started, judge=judge_info)
    try:
        write_run(run_dir, metrics=metrics, records=records, outcomes=outcomes, manifest=manifest)
    except OutputError as exc:
        _fail(str(exc))
    except OSError as exc:
        _fail(f"cannot write {run_dir}: {exc.strerror or exc}")
    return RunSummary(run_dir, metrics, warnings + metric_warnings, None)


def _evaluate_judge(
    bench: Any, judge: str, options: Any, out: Path | None, name: str | None, overwrite: bool
) -> Any:
    from .runner import RunError, RunInterrupted, run_evaluation

    try:
        return run_evaluation(bench, judge, options, out=out, name=name, overwrite=overwrite)
    except RunError as exc:
        _fail(str(exc))
    except RunInterrupted as exc:
        _console(stderr=True).print(f"[yellow]{_escape(str(exc))}[/]", soft_wrap=True)
        sys.stdout.flush()
        sys.stderr.flush()
        # Every finished pass is committed; do not wait for in-flight model calls.
        os._exit(130)


# --------------------------------------------------------------------------- judges


@app.command("judges")
def judges_cmd(
    json_out: Annotated[bool, typer.Option("--json", help="Print a JSON list.")] = False,
) -> None:
    """List every judge: built-in cards and plugins."""
    import json

    from rich.table import Table

    from .judges import discover

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


@app.command("settings")
def settings_cmd(
    judge: Annotated[
        str | None, typer.Option("--judge", "-j", help="Show this judge's values too.")
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Every judge setting: what it does, its default, and whether it changes answers (the store key)."""
    import json

    from rich.table import Table

    from .judges.options import all_settings, describe_settings, parse_config

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


@app.command("prompts")
def prompts_cmd(
    judge: Annotated[str, typer.Option("--judge", "-j", help="Judge card name or path.")],
    instruction: Annotated[str, typer.Option(help="The editing instruction to substitute.")],
    json_out: Annotated[bool, typer.Option("--json", help='Print {"sc": ..., "pq": ...}.')] = False,
) -> None:
    """Print the exact SC and PQ prompt texts a judge receives."""
    import json

    from .judges.editscore import load_prompts
    from .judges.options import parse_config

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


@app.command("score")
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

    from .judges.base import open_image
    from .runner import RunError, RunOptions, open_judge

    options = RunOptions(
        model=model,
        adapter=adapter,
        backend=backend,
        base_urls=list(base_url or []),
        api_key_env=api_key_env,
        backend_options=_parse_options(option),
    )
    try:
        open_image(source), open_image(edited)
    except Exception as exc:
        _fail(f"cannot read the images: {exc}")
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


@app.command("serve-command")
def serve_command(
    judge: Annotated[str, typer.Argument(help="Judge card name or path.")],
    tp: Annotated[
        int | None, typer.Option("--tp", min=1, help="Tensor-parallel size (GPUs per replica).")
    ] = None,
    port: Annotated[int, typer.Option(help="Port the server listens on.")] = 8000,
) -> None:
    """Print the `vllm serve` command that serves a judge for `--base-url`."""
    from .backends.serving import vllm_serve_command
    from .judges.options import parse_config

    entry = _judge_entry(judge)
    if entry.card is None or entry.card.protocol != "editscore" or not entry.card.model:
        _fail(f"judge {judge!r} is not a model judge that vLLM can serve")
    assert entry.card is not None
    print(vllm_serve_command(parse_config(entry.card), tp=tp, port=port))


register_report_commands(app)
register_reward_commands(app)


def main() -> None:
    """Console entry point."""
    try:
        app()
    except KeyboardInterrupt:
        _console(stderr=True).print("interrupted")
        sys.exit(130)


if __name__ == "__main__":
    main()
