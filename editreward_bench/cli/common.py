"""What every ``erb`` command shares: the console, one-line errors, common options, lookups."""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

DEFAULT_DATASET = "EditScore/EditReward-Bench"


def _console(stderr: bool = False) -> Any:
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    # Rich assumes 80 columns off a terminal; tables of intervals need more to stay legible in logs.
    width = None if stream.isatty() else 140
    return Console(stderr=stderr, highlight=False, width=width)


def _fail(message: str, code: int = 2) -> NoReturn:
    _console(stderr=True).print(f"[bold red]error:[/] {_escape(message)}", soft_wrap=True)
    raise typer.Exit(code)


def _warn(message: str) -> None:
    _console(stderr=True).print(f"[yellow]warning:[/] {_escape(message)}", soft_wrap=True)


def print_run_notes(summary: Any) -> None:
    """A run's warnings (to stderr) and notes (to stdout), printed before its table."""
    for message in summary.warnings:
        _warn(message)
    for note in summary.notes:
        _console().print(note, markup=False, highlight=False, soft_wrap=True)


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


def _quiet_libraries() -> None:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from ..benchmark import quiet_datasets

    quiet_datasets()
    if "transformers" in sys.modules or importlib.util.find_spec("transformers") is not None:
        # Set through the environment so transformers need not be imported here.
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")


def _load_bench(
    source: str, revision: str | None, split: str | None, max_pixels: int | None = None
) -> Any:
    from ..benchmark import DEFAULT_MAX_IMAGE_PIXELS, BenchmarkError, load_benchmark

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
        "--dataset",
        "-d",
        show_default=False,
        # Not the hub id itself: one 26-character word would be cut off in 80 columns.
        help="Hub id, local save_to_disk folder, parquet file/folder, or 'mini'. "
        "Default: EditScore's EditReward-Bench on the hub.",
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


OverwriteOpt = Annotated[
    bool,
    typer.Option(
        "--overwrite",
        help="Replace erb's own earlier output there (only the files erb wrote; nothing else).",
    ),
]

# The judge options every judging command takes (evaluate, model-eval, best-of-n, serve-reward).
ModelOpt = Annotated[
    str | None, typer.Option(help="Override the card's model (hub id or local folder).")
]
AdapterOpt = Annotated[
    str | None,
    typer.Option(
        help="Override the card's LoRA adapter (hub id or folder; 'none' for no adapter)."
    ),
]
BackendOpt = Annotated[
    str | None, typer.Option(help="Override the card's backend: transformers | openai.")
]
BaseUrlOpt = Annotated[
    list[str] | None,
    typer.Option("--base-url", help="OpenAI-compatible endpoint(s); repeat for replicas."),
]
ApiKeyEnvOpt = Annotated[str | None, typer.Option(help="Environment variable holding the API key.")]
BatchSizeOpt = Annotated[
    int | None, typer.Option(min=1, help="Local backend: candidates per generate() batch.")
]
MaxRetriesOpt = Annotated[
    int | None,
    typer.Option(
        min=0, help="Retries of an unparseable answer, each with a new seed (card default: 2)."
    ),
]
TimeoutOpt = Annotated[
    float | None,
    typer.Option(min=0.1, help="OpenAI backend: seconds before a request is abandoned."),
]
DtypeOpt = Annotated[
    str | None, typer.Option(help="Local backend: auto | bfloat16 | float16 | float32.")
]
DeviceMapOpt = Annotated[str | None, typer.Option(help="Local backend: e.g. auto, cpu, cuda:0.")]
MinPixelsOpt = Annotated[int | None, typer.Option(min=1, help="Local backend: image resize floor.")]
MaxPixelsOpt = Annotated[int | None, typer.Option(min=1, help="Local backend: image resize cap.")]


def _parse_options(given: list[str] | None) -> dict[str, Any]:
    """``--option key=value`` pairs; values are TOML literals, else plain text."""
    from ..judges.options import parse_override_value

    out: dict[str, Any] = {}
    for item in given or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            _fail(f"--option takes key=value (e.g. --option temperature=0.5), got {item!r}")
        out[key.strip()] = parse_override_value(value.strip())
    return out


def _judge_entry(name: str) -> Any:
    """A judge by card name, card path or plugin name; an unknown one ends the command."""
    from ..judges import CardError, UnknownJudgeError, resolve_card

    try:
        return resolve_card(name)
    except (UnknownJudgeError, CardError) as exc:
        _fail(str(exc.args[0]))


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


# When a failing run gives up (every judging command: evaluate, model-eval).
StopAfterOpt = Annotated[
    int,
    typer.Option(
        min=0,
        help="Stop if the first N judged passes all fail (0: never).",
        rich_help_panel="Failures",
    ),
]
StopShareOpt = Annotated[
    float,
    typer.Option(
        min=0.0,
        max=1.0,
        rich_help_panel="Failures",
        help="Stop once more than this share of the passes judged (at least --stop-min) "
        "failed for one persistent reason (HTTP 4xx, unparseable answers, bad images).",
    ),
]
StopMinOpt = Annotated[
    int,
    typer.Option(
        min=0,
        help="Passes judged before --stop-share applies (0: never).",
        rich_help_panel="Failures",
    ),
]


def judge_run_options(
    *,
    k: int | None,
    seed: int,
    concurrency: int,
    store: Path | None,
    fresh: bool,
    retry_failed: bool,
    model: str | None,
    adapter: str | None,
    backend: str | None,
    base_url: list[str] | None,
    api_key_env: str | None,
    batch_size: int | None,
    max_retries: int | None,
    bootstrap: int,
    option: list[str] | None,
    stop_after: int = 20,
    stop_min: int = 50,
    stop_share: float = 0.5,
    timeout: float | None = None,
    dtype: str | None = None,
    device_map: str | None = None,
    min_pixels: int | None = None,
    max_pixels: int | None = None,
    flags: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
) -> Any:
    """The :class:`~editreward_bench.runner.RunOptions` of a judging command's flags.

    Backend settings, later ones winning: the dedicated flags (``timeout``...,
    or ``flags`` already gathered), then ``--option``, then ``extra`` (a managed engine's).
    """
    from ..failures import StopRule
    from ..runner import RunOptions

    return RunOptions(
        k=k, seed=seed, concurrency=concurrency, store=store, fresh=fresh,
        retry_failed=retry_failed, model=model, adapter=adapter, backend=backend,
        base_urls=list(base_url or []), api_key_env=api_key_env, batch_size=batch_size,
        max_retries=max_retries, n_bootstrap=bootstrap,
        backend_options={
            **_backend_options(timeout, dtype, device_map, min_pixels, max_pixels),
            **(flags or {}),
            **_parse_options(option),
            **(extra or {}),
        },
        stop=StopRule(all_failed_after=stop_after, min_passes=stop_min, persistent_share=stop_share),
    )  # fmt: skip


def exit_interrupted(message: str, before_exit: Callable[[], None] | None = None) -> NoReturn:
    """Ctrl-C during judging: say so, then leave at once (status 130).

    Every finished pass is committed, so in-flight model calls are not waited for;
    ``os._exit`` skips every ``finally``, so anything that must still run is ``before_exit``.
    """
    _console(stderr=True).print(f"[yellow]{_escape(message)}[/]", soft_wrap=True)
    if before_exit is not None:
        before_exit()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(130)
