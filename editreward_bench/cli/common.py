"""What every ``erb`` command shares: the console, one-line errors, common options, lookups."""

from __future__ import annotations

import importlib.util
import os
import sys
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
