"""``erb data``: the bundled and synthetic benchmarks, and what a dataset holds."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .benchmarks import BenchmarkOpt, data_info_benchmark
from .common import (
    DEFAULT_DATASET,
    OverwriteOpt,
    RevisionOpt,
    SplitOpt,
    _console,
    _fail,
    _load_bench,
    _quiet_libraries,
)

data_app = typer.Typer(
    help="Bundled and synthetic benchmarks; dataset information.", no_args_is_help=True
)


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
    from ..outputs import MINI, OutputError, check_output_file, prepare_output_dir
    from ..resources import checkout_data_dir
    from ..synth import make_mini

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

    from ..benchmark import load_benchmark
    from ..judges.baselines import image_diff_scores
    from ..outputs import atomic_write

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
    from ..outputs import SYNTHETIC, OutputError, prepare_output_dir
    from ..synth import make_synthetic

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
    benchmark: BenchmarkOpt = "editreward-bench",
    keys: Annotated[
        bool,
        typer.Option(
            "--keys",
            help="Other benchmarks: list every candidate's key and aliases (JSONL), the names "
            "a predictions file may use.",
        ),
    ] = False,
) -> None:
    """Rows per subtask x dimension, candidates, image sizes and the fingerprint
    (--benchmark NAME: that benchmark's parts, labels and candidates)."""
    import json

    if benchmark != "editreward-bench":
        data_info_benchmark(benchmark, source, revision, split, json_out, keys)
        return

    from rich.table import Table

    from ..taxonomy import DIMENSION_ABBREV, DIMENSIONS, SUBTASKS

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
