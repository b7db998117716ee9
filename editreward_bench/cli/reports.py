"""``erb leaderboard``, ``erb report`` and ``erb verify``: the report commands.

:func:`register` adds them to the ``erb`` typer app. Everything heavy (pyarrow,
numpy, jinja2, PIL, datasets) is imported inside the commands, so ``erb --help``
stays fast.
"""

from __future__ import annotations

import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer

from .common import _fail


class TableFormat(str, Enum):
    html = "html"
    md = "md"
    csv = "csv"
    latex = "latex"


DEFAULT_LEADERBOARD = Path("reports") / "leaderboard.html"
REPORT_PAGE = "report.html"
_EXTENSIONS = {
    TableFormat.html: "html",
    TableFormat.md: "md",
    TableFormat.csv: "csv",
    TableFormat.latex: "tex",
}


def _note(message: str) -> None:
    typer.echo(message, err=True)


def _size(path: Path) -> str:
    size = path.stat().st_size
    return f"{size / 1024:.0f} KiB" if size < 1024 * 1024 else f"{size / 1024 / 1024:.1f} MiB"


def _check_target(path: Path, example: str) -> None:
    """Before any work: ``--out`` must be a file path erb can write (a page it regenerates)."""
    from ..outputs import OutputError, check_output_file

    try:
        check_output_file(path, overwrite=None, example=example)
    except OutputError as exc:
        _fail(str(exc))


def _write_page(path: Path, text: str) -> None:
    """Write whole or not at all (temp file + rename), so a browser never sees half a page."""
    from ..outputs import atomic_write

    try:
        atomic_write(path, text.encode("utf-8"), mode=0o644)
    except OSError as exc:
        _fail(f"cannot write {path}: {exc.strerror or exc}")


def leaderboard(
    runs: Annotated[
        list[Path] | None,
        typer.Argument(
            help="Run folders (or folders holding run folders). Default: every run under reports/runs/.",
            show_default=False,
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            help="Where to write it. Default: reports/leaderboard.html for html; stdout for the others."
        ),
    ] = None,
    fmt: Annotated[
        TableFormat,
        typer.Option("--format", help="html: the full page; md, csv, latex: the main table only."),
    ] = TableFormat.html,
    allow_mixed: Annotated[
        bool,
        typer.Option(
            "--allow-mixed", help="Show runs on different datasets (fingerprints) together."
        ),
    ] = False,
    all_runs: Annotated[
        bool,
        typer.Option("--all-runs", help="Keep every run, not only the latest per judge and k."),
    ] = False,
    samples: Annotated[
        int, typer.Option(min=0, help="Sample browser: at most this many rows per judge.")
    ] = 50,
    by_benchmark: Annotated[
        bool,
        typer.Option(
            "--by-benchmark",
            help="One column group per benchmark (automatic when runs on other benchmarks "
            "than EditReward-Bench are given).",
        ),
    ] = False,
) -> None:
    """Build the leaderboard: one self-contained HTML page (or the main table as md/csv/latex)."""
    target = out if out is not None or fmt != TableFormat.html else DEFAULT_LEADERBOARD
    if target is not None:
        _check_target(target, f"leaderboard.{_EXTENSIONS[fmt]}")
    from ..published import read_published
    from ..report.benchmarks import uses_other_benchmarks
    from ..report.runs import (
        MixedDatasetsError,
        RunFolderError,
        check_same_dataset,
        find_run_folders,
        latest_per_judge,
        load_runs,
    )

    try:
        folders = find_run_folders(list(runs or []))
    except RunFolderError as exc:
        _fail(str(exc))
    from .editing import split_model_runs, write_model_board

    folders, model_folders = split_model_runs(folders)
    if model_folders:  # editing models are ranked on their own board, never beside judges
        write_model_board(model_folders, target, fmt.value)
        if not folders:
            return
    try:
        loaded = load_runs(folders)
        if by_benchmark or uses_other_benchmarks(loaded):
            _benchmark_leaderboard(loaded, target, fmt, all_runs)
            return
        check_same_dataset(loaded, allow_mixed=allow_mixed)
    except (RunFolderError, MixedDatasetsError) as exc:
        _fail(str(exc))
    notes = []
    if not all_runs:
        loaded, dropped = latest_per_judge(loaded)
        for old, kept in dropped:
            notes.append(
                f"{old.label}: kept the latest run {kept.path} ({kept.metrics.get('created')}), "
                f"not {old.path} ({old.metrics.get('created')}); --all-runs keeps both"
            )
    for line in notes:
        _note(f"note: {line}")

    if fmt != TableFormat.html:
        from ..benchmark import quiet_datasets
        from ..report.tables import measured_rows, render_table
        from ..report.verify import BenchmarkCache, verify_run

        quiet_datasets()
        cache = BenchmarkCache()
        verdicts = {
            run.path: verify_run(run, cache.for_run(run)[0], intervals=False).status
            for run in loaded
        }
        text = render_table(measured_rows(loaded, verdicts), fmt.value)
        if target is None:
            sys.stdout.write(text)
        else:
            _write_page(target, text)
            typer.echo(f"wrote {target}")
        return

    from ..benchmark import quiet_datasets
    from ..report.html import render_leaderboard

    quiet_datasets()
    page = render_leaderboard(loaded, reference=read_published(), notes=notes, sample_limit=samples)
    assert target is not None
    _write_page(target, page)
    typer.echo(f"wrote {target} ({len(loaded)} run(s), {_size(target)})")


def _benchmark_leaderboard(
    runs: list[Any], target: Path | None, fmt: TableFormat, all_runs: bool
) -> None:
    """The cross-benchmark page: a column group per benchmark and dataset."""
    from ..report.benchmarks import render

    if fmt == TableFormat.latex:
        _fail("the cross-benchmark leaderboard is html, md or csv")
    text, notes = render(runs, fmt.value, all_runs=all_runs)
    for line in notes:
        _note(f"note: {line}")
    if target is None:
        sys.stdout.write(text)
        return
    _write_page(target, text)
    typer.echo(f"wrote {target} ({len(runs)} run(s), one column group per benchmark)")


def _refuse_other_benchmark(run: Any, command: str) -> None:
    from ..report.benchmarks import EDITREWARD, run_benchmark

    name = run_benchmark(run)
    if name != EDITREWARD:
        _fail(
            f"{run.path} is a run on {name}: `erb {command}` covers EditReward-Bench runs; its "
            "metrics.json holds the authors' and erb's numbers, and `erb leaderboard` shows it"
        )


def report(
    run: Annotated[Path, typer.Argument(help="The run folder.")],
    out: Annotated[
        Path | None, typer.Option(help="Where to write it. Default: RUN/report.html.")
    ] = None,
    samples: Annotated[
        int, typer.Option(min=0, help="Sample browser: at most this many rows.")
    ] = 50,
) -> None:
    """One run's page: tables, subtask heatmap, Avg@k, samples, provenance, verification."""
    from .editing import model_report, split_model_runs

    if split_model_runs([run])[1]:
        model_report(run, out or run / REPORT_PAGE, samples, default_place=out is None)
        return
    from ..published import read_published
    from ..report.html import render_report
    from ..report.runs import RunFolderError, load_run

    try:
        loaded = load_run(run)
    except RunFolderError as exc:
        _fail(str(exc))
    _refuse_other_benchmark(loaded, "report")
    target = out or run / REPORT_PAGE
    _check_target(target, REPORT_PAGE)
    paper_judge = loaded.judge.get("paper_judge")
    reference = [r for r in read_published() if paper_judge and r.judge == paper_judge]
    from ..benchmark import quiet_datasets

    quiet_datasets()
    page = render_report(loaded, reference=reference, sample_limit=samples)
    if out is None:  # the page joins the run folder's erb files: the next run there replaces it
        from ..outputs import add_to_marker

        add_to_marker(run, REPORT_PAGE)
    _write_page(target, page)
    typer.echo(f"wrote {target} ({_size(target)})")


def verify(
    run: Annotated[Path, typer.Argument(help="The run folder to check.")],
    dataset: Annotated[
        str | None,
        typer.Option(
            "--dataset",
            "-d",
            help="The benchmark to check against (hub id, local copy or 'mini'). Default: the one the run recorded.",
        ),
    ] = None,
    revision: Annotated[str | None, typer.Option(help="Hub revision of --dataset.")] = None,
) -> None:
    """Recompute a run's metrics from its records and check them (exit 0 match, 1 mismatch, 2 cannot check)."""
    from .editing import model_verify, split_model_runs

    if split_model_runs([run])[1]:
        raise typer.Exit(model_verify(run))
    from ..report.runs import RunFolderError, load_run
    from ..report.verify import BenchmarkCache, verify_run

    try:
        loaded = load_run(run)
    except RunFolderError as exc:
        _fail(str(exc))
    _refuse_other_benchmark(loaded, "verify")
    from ..benchmark import quiet_datasets

    quiet_datasets()
    bench, note = BenchmarkCache().for_run(loaded, dataset, revision)
    typer.echo(f"verifying {run} ({loaded.label}) against {note}")
    result = verify_run(loaded, bench, intervals=True, dataset_note=note)
    for line in result.checked:
        typer.echo(f"  ok        {line}")
    for line in result.notes:
        typer.echo(f"  note      {line}")
    for line in result.mismatches:
        typer.echo(f"  MISMATCH  {line}")
    if result.status == "verified":
        typer.echo(
            "verified: metrics.json and outcomes.parquet follow exactly from records.parquet"
        )
    elif result.status == "mismatch":
        typer.echo(f"NOT verified: {len(result.mismatches)} mismatch(es)", err=True)
    else:
        typer.echo(f"cannot verify: {result.error}", err=True)
    raise typer.Exit(result.exit_code)


def register(app: typer.Typer) -> None:
    """Add ``leaderboard``, ``report`` and ``verify`` to the ``erb`` app."""
    app.command("leaderboard")(leaderboard)
    app.command("report")(report)
    app.command("verify")(verify)
