"""``erb model-eval`` and ``erb best-of-n``: editing models on GEdit-Bench and ImgEdit-Bench;
``erb data synth-editing``: toy editing models' outputs for the bundled synthetic versions."""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer

from .common import (
    AdapterOpt,
    ApiKeyEnvOpt,
    BackendOpt,
    BaseUrlOpt,
    BatchSizeOpt,
    DeviceMapOpt,
    DtypeOpt,
    MaxPixelsOpt,
    MaxRetriesOpt,
    MinPixelsOpt,
    ModelOpt,
    OptionOpt,
    OverwriteOpt,
    StopAfterOpt,
    StopMinOpt,
    StopShareOpt,
    TimeoutOpt,
    _console,
    _escape,
    _fail,
    _judge_entry,
    _quiet_libraries,
    exit_interrupted,
    judge_run_options,
    print_run_notes,
)


class Bench(str, Enum):
    gedit = "gedit"
    imgedit = "imgedit"


BenchOpt = Annotated[
    Bench,
    typer.Option("--benchmark", "-b", help="gedit (GEdit-Bench) or imgedit (ImgEdit-Bench basic)."),
]
OutputsOpt = Annotated[
    Path,
    typer.Option(
        help="The model's outputs: Step1X-Edit's fullset/ layout, a flat folder of KEY.png, or a JSONL of paths."
    ),
]
EditDatasetOpt = Annotated[
    str | None,
    typer.Option(
        "--dataset", "-d", show_default=False,
        help="GEdit: hub id (default stepfun-ai/GEdit-Bench), saved copy or gedit-mini. "
        "ImgEdit: the folder with basic_edit.json and prompts.json, or imgedit-mini.",
    ),
]  # fmt: skip
LanguageOpt = Annotated[
    str, typer.Option(help="GEdit-Bench language, as the data spells it: en or cn.")
]
ImagesOpt = Annotated[
    Path | None, typer.Option(help="ImgEdit: where the original images are (default: --dataset).")
]


def _check_out(out: Path | None, overwrite: bool) -> None:
    from ..outputs import OutputError, check_run_dir

    try:
        if out is not None:
            check_run_dir(out, None, overwrite=overwrite)
    except OutputError as exc:
        _fail(str(exc))


def _fmt(value: Any, digits: int = 3) -> str:
    return "–" if value is None else f"{float(value):.{digits}f}"


def _ci(interval: Any) -> str:
    return "" if not interval else f" [{interval[0]:.3f}, {interval[1]:.3f}]"


def print_model_metrics(metrics: dict[str, Any]) -> None:
    """The per-group table, the authors' headline with its interval, and what it hides."""
    from rich.table import Table

    gedit = metrics["benchmark"] == "gedit"
    fields = ("semantics", "quality", "overall") if gedit else ("overall",)
    synthetic = " [SYNTHETIC data]" if metrics["dataset"].get("synthetic") else ""
    table = Table(title=_escape(f"{metrics['model']} on {metrics['title']}, judged by "
                                f"{metrics['judge'].get('name')} (k={metrics['k']}){synthetic}"))  # fmt: skip
    table.add_column("group" if gedit else "edit type")
    for f in fields:
        table.add_column(
            {"semantics": "SC", "quality": "PQ", "overall": "O" if gedit else "score"}[f],
            justify="right",
        )
    table.add_column("scored / items", justify="right")
    table.add_column("failed", justify="right")
    table.add_column("missing", justify="right")
    for group, values in metrics["groups"].items():
        table.add_row(group, *(_fmt(values[f], 3 if gedit else 2) for f in fields),
                      f"{values['scored']} / {values['items']}", str(values["failed"]),
                      str(values["missing"]))  # fmt: skip
    ci = metrics["ci95"]
    table.add_row("[bold]headline[/] (authors')", *(_fmt(metrics["headline"][f]) + _ci(ci["headline"][f]) for f in fields),
                  f"{metrics['counts']['scored']} / {metrics['counts']['items']}",
                  str(metrics["counts"]["failed"]), str(metrics["counts"]["missing"]), style="bold")  # fmt: skip
    if gedit:
        table.add_row(
            "headline, intersection",
            *(
                _fmt(metrics["headline_intersection"][f]) + _ci(ci["headline_intersection"][f])
                for f in fields
            ),
            "",
            "",
            "",
        )
    table.add_row(
        "pooled (item-weighted)",
        *(_fmt(metrics["pooled"][f]) + _ci(ci["pooled"][f]) for f in fields),
        "",
        "",
        "",
        style="dim",
    )
    table.add_row(
        "failures as 0",
        *(_fmt(metrics["failures_as_zero"]["macro"][f]) for f in fields),
        "",
        "",
        "",
        style="dim",
    )
    console = _console()
    console.print(table)
    identity = metrics["judge_identity"]
    answered = identity.get("models_answered")
    filt = identity.get("content_filter") or {}
    console.print(
        _escape(
            f"judge: card {identity.get('card')}, protocol {identity.get('protocol')}, provider "
            f"{identity.get('provider') or 'local'}, asked for {identity.get('model_requested')}"
            + (f", answered by {', '.join(f'{m} ({n})' for m, n in answered.items())}" if answered else "")
            + f"; content filter refused {filt.get('refused_requests', 0)} request(s)"
        ),
        soft_wrap=True,
    )  # fmt: skip
    reasons = metrics["counts"].get("failed_reasons") or {}
    if reasons:
        console.print(
            _escape("failures: " + "; ".join(f"{n} x {why}" for why, n in reasons.items())),
            soft_wrap=True,
        )


def model_eval(
    benchmark: BenchOpt,
    outputs: OutputsOpt,
    judge: Annotated[
        str,
        typer.Option(
            "--judge",
            "-j",
            help="Judge card (viescore-gpt-4.1, imgedit-gpt-4.1, an EditScore card...).",
        ),
    ],
    dataset: EditDatasetOpt = None,
    revision: Annotated[str | None, typer.Option(help="GEdit: hub revision to pin.")] = None,
    split: Annotated[str | None, typer.Option(help="GEdit: split (default train).")] = None,
    language: LanguageOpt = "en",
    images: ImagesOpt = None,
    model_name: Annotated[
        str | None, typer.Option(help="The editing model's name (default: the outputs folder's).")
    ] = None,
    k: Annotated[
        int | None,
        typer.Option("--k", "-k", min=1, help="Judge passes per output (default: the card's)."),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            help="Run folder (default: a folder under reports/runs named after the model, benchmark and judge)."
        ),
    ] = None,
    name: Annotated[str | None, typer.Option(help="Run name (folder under reports/runs).")] = None,
    overwrite: OverwriteOpt = False,
    seed: Annotated[
        int, typer.Option(help="Base seed of pass i (seed + i), where the card sends one.")
    ] = 42,
    concurrency: Annotated[int, typer.Option(min=1, help="Outputs judged at once.")] = 8,
    store: Annotated[
        Path | None, typer.Option(help="Pass store (default $ERB_STORE or the user cache).")
    ] = None,
    fresh: Annotated[bool, typer.Option("--fresh", help="Ignore stored passes.")] = False,
    retry_failed: Annotated[
        bool, typer.Option("--retry-failed", help="Judge again passes stored as failed.")
    ] = False,
    model: ModelOpt = None,
    adapter: AdapterOpt = None,
    backend: BackendOpt = None,
    base_url: BaseUrlOpt = None,
    api_key_env: ApiKeyEnvOpt = None,
    batch_size: BatchSizeOpt = None,
    max_retries: MaxRetriesOpt = None,
    timeout: TimeoutOpt = None,
    dtype: DtypeOpt = None,
    device_map: DeviceMapOpt = None,
    min_pixels: MinPixelsOpt = None,
    max_pixels: MaxPixelsOpt = None,
    bootstrap: Annotated[
        int, typer.Option(min=0, help="Bootstrap resamples for the 95% intervals.")
    ] = 1000,
    option: OptionOpt = None,
    stop_after: StopAfterOpt = 20,
    stop_share: StopShareOpt = 0.5,
    stop_min: StopMinOpt = 50,
) -> None:
    """Score an editing model's outputs on GEdit-Bench or ImgEdit-Bench, as their authors do."""
    _judge_entry(judge)
    _check_out(out, overwrite)
    if name is not None:
        from ..outputs import OutputError, check_name

        try:
            check_name(name, "--name")
        except OutputError as exc:
            _fail(str(exc))
    _quiet_libraries()
    from ..editing.model_eval import ModelEvalRequest, run_model_eval

    options = judge_run_options(
        k=k, seed=seed, concurrency=concurrency, store=store, fresh=fresh,
        retry_failed=retry_failed, model=model, adapter=adapter, backend=backend,
        base_url=base_url, api_key_env=api_key_env, batch_size=batch_size,
        max_retries=max_retries, bootstrap=bootstrap, option=option, stop_after=stop_after,
        stop_min=stop_min, stop_share=stop_share, timeout=timeout, dtype=dtype,
        device_map=device_map, min_pixels=min_pixels, max_pixels=max_pixels,
    )  # fmt: skip
    request = ModelEvalRequest(benchmark.value, outputs, judge, dataset=dataset, revision=revision, split=split,
                               language=language, images=images, model_name=model_name, out=out,
                               name=name, overwrite=overwrite)  # fmt: skip
    summary = _run(request, options, run_model_eval)
    print_run_notes(summary)
    print_model_metrics(summary.metrics)
    _console().print(f"run folder: {summary.path}")


def _run(request: Any, options: Any, run: Callable[[Any, Any], Any]) -> Any:
    """Run a model-eval or best-of-n request: a refused run is one line, Ctrl-C the shared exit."""
    from ..runner import RunError, RunInterrupted

    try:
        return run(request, options)
    except RunError as exc:
        _fail(str(exc))
    except RunInterrupted as exc:
        exit_interrupted(str(exc))


def print_curves(metrics: dict[str, Any]) -> None:
    """The evaluator's headline at each N: the selector's picks, the oracle's and random ones."""
    from rich.table import Table

    gedit = metrics["benchmark"] == "gedit"
    fields = ("semantics", "quality", "overall") if gedit else ("overall",)
    table = Table(
        title=_escape(
            f"Best-of-N: {metrics['model']} on {metrics['title']}; selector "
            f"{metrics['selector'].get('name')} (k={metrics['selector_k']}), evaluator "
            f"{metrics['evaluator'].get('name')} (k={metrics['evaluator_k']})"
            + (" [SYNTHETIC data]" if metrics["dataset"].get("synthetic") else "")
        )
    )
    table.add_column("N", justify="right")
    table.add_column("field")
    for curve in ("selector", "oracle", "random"):
        table.add_column(curve, justify="right")
    for n in metrics["n"]:
        for f in fields:
            cells = []
            for curve in ("selector", "oracle", "random"):
                point = metrics["curves"][curve][str(n)]
                cells.append(_fmt(point["headline"][f]) + _ci(point["ci95"]["headline"][f]))
            table.add_row(str(n) if f == fields[0] else "", f, *cells)
    _console().print(table)
    _console().print(
        _escape("picked images: " + ", ".join(metrics.get("pick_folders", []))), soft_wrap=True
    )


def best_of_n(
    benchmark: BenchOpt,
    outputs: OutputsOpt,
    selector: Annotated[
        str, typer.Option(help="Judge that picks the best sample (e.g. editscore-7b).")
    ],
    evaluator: Annotated[
        str, typer.Option(help="Judge that scores the picks (e.g. viescore-gpt-4.1).")
    ],
    n: Annotated[
        int | None,
        typer.Option("--n", min=1, help="Most samples per item (default: all available)."),
    ] = None,
    selector_k: Annotated[
        int | None, typer.Option(min=1, help="Selector passes per sample (default: its card's).")
    ] = None,
    evaluator_k: Annotated[
        int | None, typer.Option(min=1, help="Evaluator passes (default: its card's).")
    ] = None,
    dataset: EditDatasetOpt = None,
    revision: Annotated[str | None, typer.Option(help="GEdit: hub revision to pin.")] = None,
    split: Annotated[str | None, typer.Option(help="GEdit: split (default train).")] = None,
    language: LanguageOpt = "en",
    images: ImagesOpt = None,
    model_name: Annotated[str | None, typer.Option(help="The editing model's name.")] = None,
    out: Annotated[
        Path | None, typer.Option(help="Run folder (default under reports/runs).")
    ] = None,
    name: Annotated[str | None, typer.Option(help="Run name (folder under reports/runs).")] = None,
    overwrite: OverwriteOpt = False,
    seed: Annotated[int, typer.Option(help="Base seed of pass i (seed + i).")] = 42,
    concurrency: Annotated[int, typer.Option(min=1, help="Samples judged at once.")] = 8,
    store: Annotated[
        Path | None, typer.Option(help="Pass store (default $ERB_STORE or the user cache).")
    ] = None,
    fresh: Annotated[bool, typer.Option("--fresh", help="Ignore stored passes.")] = False,
    retry_failed: Annotated[
        bool, typer.Option("--retry-failed", help="Judge again passes stored as failed.")
    ] = False,
    base_url: BaseUrlOpt = None,
    api_key_env: ApiKeyEnvOpt = None,
    timeout: TimeoutOpt = None,
    bootstrap: Annotated[
        int, typer.Option(min=0, help="Bootstrap resamples for the 95% intervals.")
    ] = 1000,
    option: OptionOpt = None,
) -> None:
    """Best-of-N: a selector judge picks each item's best sample, an evaluator scores the picks."""
    _judge_entry(selector)
    _judge_entry(evaluator)
    _check_out(out, overwrite)
    _quiet_libraries()
    from ..editing.best_of_n import BestOfNRequest, run_best_of_n

    options = judge_run_options(
        k=None, seed=seed, concurrency=concurrency, store=store, fresh=fresh,
        retry_failed=retry_failed, model=None, adapter=None, backend=None, base_url=base_url,
        api_key_env=api_key_env, batch_size=None, max_retries=None, bootstrap=bootstrap,
        option=option, timeout=timeout,
    )  # fmt: skip
    request = BestOfNRequest(benchmark.value, outputs, selector, evaluator, dataset=dataset, revision=revision,
                             split=split, language=language, images=images, model_name=model_name, n=n,
                             selector_k=selector_k, evaluator_k=evaluator_k, out=out, name=name,
                             overwrite=overwrite)  # fmt: skip
    summary = _run(request, options, run_best_of_n)
    print_run_notes(summary)
    print_curves(summary.metrics)
    _console().print(f"run folder: {summary.path}")


def synth_editing(
    out: Annotated[
        Path, typer.Option(help="Folder to write (new or empty, or erb's own with --overwrite).")
    ],
    samples: Annotated[
        int, typer.Option(min=1, help="Samples per item (Best-of-N picks among them).")
    ] = 4,
    overwrite: OverwriteOpt = False,
) -> None:
    """Toy editing models' outputs for gedit-mini and imgedit-mini, and imgedit-mini's files."""
    from ..editing.synth import write_demo
    from ..outputs import OutputError

    try:
        written = write_demo(out, samples=samples, overwrite=overwrite)
    except OutputError as exc:
        _fail(str(exc))
    for line in written:
        typer.echo(line)


def split_model_runs(folders: list[Path]) -> tuple[list[Path], list[Path]]:
    """(judge runs, editing-model runs) of the given run folders."""
    from ..editing.runs import read_kind

    model = [f for f in folders if read_kind(f) is not None]
    return [f for f in folders if read_kind(f) is None], model


def write_model_board(folders: list[Path], judges_target: Path | None, fmt: str) -> None:
    """The editing models' board, beside the judges' page: ``<page>-models.html``."""
    if fmt != "html":
        typer.echo(
            f"note: {len(folders)} editing-model run(s) are left out of this table; "
            "their own board is written by `erb leaderboard` (html)",
            err=True,
        )
        return
    from ..editing.report import load_model_run, render_model_board
    from .reports import DEFAULT_LEADERBOARD, _check_target, _write_page

    base = judges_target or DEFAULT_LEADERBOARD
    target = base.with_name(f"{base.stem}-models.html")
    _check_target(target, "leaderboard-models.html")
    try:
        runs = [load_model_run(f) for f in folders]
    except (OSError, ValueError) as exc:
        _fail(f"cannot read an editing-model run: {exc}")
    _write_page(target, render_model_board(runs))
    typer.echo(f"wrote {target} ({len(runs)} editing-model run(s))")


def model_report(run: Path, target: Path, samples: int, *, default_place: bool) -> None:
    from ..editing.report import load_model_run, render_model_report
    from .reports import REPORT_PAGE, _check_target, _write_page

    _check_target(target, REPORT_PAGE)
    try:
        loaded = load_model_run(run)
    except (OSError, ValueError) as exc:
        _fail(f"cannot read the run {run}: {exc}")
    page = render_model_report(loaded, samples=samples)
    if default_place:
        from ..outputs import add_to_marker

        add_to_marker(run, REPORT_PAGE)
    _write_page(target, page)
    typer.echo(f"wrote {target}")


def model_verify(run: Path) -> int:
    """``erb verify`` of an editing-model run: recompute it from its records; the exit status."""
    from ..editing.report import load_model_run, verify_model_run

    try:
        loaded = load_model_run(run)
    except (OSError, ValueError) as exc:
        _fail(f"cannot read the run {run}: {exc}")
    typer.echo(
        f"verifying {run} ({loaded.kind}: {loaded.metrics.get('model')} on {loaded.metrics.get('title')})"
    )
    result = verify_model_run(loaded)
    for line in result.checked:
        typer.echo(f"  ok        {line}")
    for line in result.notes:
        typer.echo(f"  note      {line}")
    for line in result.mismatches:
        typer.echo(f"  MISMATCH  {line}")
    if result.status == "verified":
        typer.echo("verified: metrics.json follows exactly from records.parquet")
    elif result.status == "mismatch":
        typer.echo(f"NOT verified: {len(result.mismatches)} mismatch(es)", err=True)
    else:
        typer.echo(f"cannot verify: {result.error}", err=True)
    return result.exit_code


def register(app: typer.Typer, data_app: typer.Typer) -> None:
    app.command("model-eval")(model_eval)
    app.command("best-of-n")(best_of_n)
    data_app.command("synth-editing")(synth_editing)
