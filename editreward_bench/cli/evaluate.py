"""``erb evaluate``: a judge or a predictions file on a benchmark, and the paper-style table."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from ..failures import StopRule
from .benchmarks import BenchmarkOpt, evaluate_benchmark, is_pairwise
from .common import (
    DEFAULT_DATASET,
    AdapterOpt,
    ApiKeyEnvOpt,
    BackendOpt,
    BaseUrlOpt,
    BatchSizeOpt,
    DatasetOpt,
    DeviceMapOpt,
    DtypeOpt,
    MaxPixelsOpt,
    MaxRetriesOpt,
    MinPixelsOpt,
    ModelOpt,
    OptionOpt,
    RevisionOpt,
    SplitOpt,
    StopAfterOpt,
    StopMinOpt,
    StopShareOpt,
    TimeoutOpt,
    _backend_options,
    _console,
    _escape,
    _fail,
    _judge_entry,
    _load_bench,
    _parse_options,
    exit_interrupted,
    judge_run_options,
    print_run_notes,
)


def _print_paper_table(metrics: dict[str, Any], reference: dict[str, Any] | None = None) -> None:
    from rich.table import Table

    from ..benchmark import is_synthetic
    from ..taxonomy import BLOCKS, DIMENSION_ABBREV, DIMENSIONS, OVERALL_BLOCK

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


def evaluate(
    benchmark: BenchmarkOpt = "editreward-bench",
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
            "--overwrite",
            help="Replace a run folder holding a different run (only the files erb wrote there).",
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
        bool, typer.Option("--fresh", help="Ignore stored passes and judge everything again.")
    ] = False,
    model: ModelOpt = None,
    adapter: AdapterOpt = None,
    backend: BackendOpt = None,
    base_url: BaseUrlOpt = None,
    api_key_env: ApiKeyEnvOpt = None,
    batch_size: BatchSizeOpt = None,
    max_retries: MaxRetriesOpt = None,
    retry_failed: Annotated[
        bool, typer.Option("--retry-failed", help="Judge again the passes stored as failed.")
    ] = False,
    timeout: TimeoutOpt = None,
    dtype: DtypeOpt = None,
    device_map: DeviceMapOpt = None,
    min_pixels: MinPixelsOpt = None,
    max_pixels: MaxPixelsOpt = None,
    max_image_pixels: Annotated[
        int | None, typer.Option(min=1, help="Refuse images larger than this many pixels.")
    ] = None,
    bootstrap: Annotated[
        int, typer.Option(min=0, help="Bootstrap resamples for the 95% intervals.")
    ] = 1000,
    option: OptionOpt = None,
    stop_after: StopAfterOpt = 20,
    stop_share: StopShareOpt = 0.5,
    stop_min: StopMinOpt = 50,
    serve: Annotated[
        str | None,
        typer.Option(
            "--serve",
            help="Start vllm or sglang with the card's recipe for this run, then stop it "
            "(merged weights, merged once; log in the run folder).",
            rich_help_panel="Serving",
        ),
    ] = None,
    tp: Annotated[
        int | None,
        typer.Option(
            "--tp", min=1, help="--serve: tensor-parallel size.", rich_help_panel="Serving"
        ),
    ] = None,
    dp: Annotated[
        int | None,
        typer.Option(
            "--dp",
            min=1,
            help="--serve: data-parallel size (default: fill the visible GPUs).",
            rich_help_panel="Serving",
        ),
    ] = None,
    server: Annotated[
        str | None,
        typer.Option(
            help="The server behind --base-url: vllm, sglang or openai (SGLang names a LoRA "
            "module <base>:<adapter>).",
            rich_help_panel="Serving",
        ),
    ] = None,
    lora: Annotated[
        bool,
        typer.Option(
            "--lora",
            help="The server holds the adapter as a LoRA module, not merged (with --serve: "
            "start it so).",
            rich_help_panel="Serving",
        ),
    ] = False,
    tower_lora: Annotated[
        bool,
        typer.Option(
            "--tower-lora",
            help="--serve --lora: vLLM's LoRA on the vision tower too.",
            rich_help_panel="Serving",
        ),
    ] = False,
    serve_timeout: Annotated[
        float,
        typer.Option(
            min=1,
            help="--serve: seconds the engine may take to serve the judge.",
            rich_help_panel="Serving",
        ),
    ] = 1800.0,
    orders: Annotated[
        str | None,
        typer.Option(
            help="Pairwise judges: random (one seeded order per row, the default), forward "
            "(the dataset's order) or both (accuracy per order and the flip rate).",
        ),
    ] = None,
) -> None:
    """Evaluate a judge on EditReward-Bench (run it with --judge, or score --predictions);
    --benchmark picks another benchmark (`erb benchmarks`)."""
    if benchmark != "editreward-bench" or is_pairwise(judge) or orders is not None:
        evaluate_benchmark(
            benchmark=benchmark, predictions=predictions, judge=judge, orders=orders,
            dataset=dataset, revision=revision, split=split, limit=limit, out=out, name=name,
            overwrite=overwrite, seed=seed, concurrency=concurrency, store=store, fresh=fresh,
            retry_failed=retry_failed, k=k, model=model, adapter_name=adapter, backend=backend,
            base_url=base_url, api_key_env=api_key_env, batch_size=batch_size,
            max_retries=max_retries, option=option, max_image_pixels=max_image_pixels,
            backend_options=_backend_options(timeout, dtype, device_map, min_pixels, max_pixels),
            bootstrap=bootstrap,
            stop=StopRule(all_failed_after=stop_after, min_passes=stop_min, persistent_share=stop_share),
        )  # fmt: skip
        return
    if (predictions is None) == (judge is None):
        _fail("give exactly one of --predictions FILE or --judge NAME")
    if serve is not None:
        _check_serve_flags(serve, base_url, backend, server)
        backend, server = "openai", serve
    # Fail on an unknown judge or an output that cannot be saved before loading any data.
    entry = _judge_entry(judge) if judge is not None else None
    run_dir, known_k = _check_run_folder(
        out, name, predictions, entry, k, overwrite, model, adapter, base_url
    )
    serving: dict[str, Any] = {}
    if server is not None:
        serving["server"] = server
    if lora:
        serving["lora"] = True
    plan = None
    if serve is not None:  # an engine not on PATH, or a refused recipe, ends here
        from ..runner import RunOptions
        from .serve import plan_serve

        assert judge is not None
        plan = plan_serve(
            serve, judge,
            RunOptions(model=model, adapter=adapter, backend=backend,
                       backend_options={**_parse_options(option), **serving}),
            tp=tp, dp=dp, tower_lora=tower_lora, timeout=serve_timeout,
        )  # fmt: skip
    bench = _load_bench(dataset, revision, split, max_image_pixels)
    try:
        bench = bench.subset(limit)
    except ValueError as exc:
        _fail(str(exc))
    if predictions is not None:
        summary = _evaluate_predictions(bench, predictions, run_dir, name, bootstrap, overwrite)
    else:
        assert judge is not None
        options = judge_run_options(
            k=k, seed=seed, concurrency=concurrency, store=store, fresh=fresh,
            retry_failed=retry_failed, model=model, adapter=adapter, backend=backend,
            base_url=base_url, api_key_env=api_key_env, batch_size=batch_size,
            max_retries=max_retries, bootstrap=bootstrap, option=option, stop_after=stop_after,
            stop_min=stop_min, stop_share=stop_share, timeout=timeout, dtype=dtype,
            device_map=device_map, min_pixels=min_pixels, max_pixels=max_pixels, extra=serving,
        )  # fmt: skip
        if run_dir is not None:  # the settings known before loading the judge
            expected = {"kind": "judge", "dataset": bench.fingerprint, "seed": seed}
            _check_run_folder_holds(run_dir, {**expected, "k": known_k}, overwrite)
        if plan is not None:
            assert run_dir is not None
            summary = _evaluate_served(bench, judge, options, run_dir, name, overwrite, plan)
        else:
            summary = _evaluate_judge(bench, judge, options, out, name, overwrite)
    print_run_notes(summary)
    _print_paper_table(summary.metrics, summary.reference)
    _console().print(f"run folder: {summary.path}")


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
    from ..outputs import OutputError, check_name, check_run_dir

    known_k = 1 if predictions is not None else (k or getattr(entry.card, "default_k", None))
    try:
        if name is not None:
            check_name(name, "--name")
        if out is None and predictions is not None:
            out = _default_run_dir(check_name(name or predictions.stem, "run name"))
        elif out is None and name is not None:
            out = _default_run_dir(name)
        elif out is None and known_k is not None:
            from ..judges import replaced_identity
            from ..runner import default_run_name

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
    from ..outputs import OutputError, check_run_dir

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
    from ..outputs import OutputError
    from ..predictions import PredictionsError, score_predictions

    assert run_dir is not None
    try:
        return score_predictions(
            bench, path, run_dir, name=name, n_bootstrap=n_bootstrap, overwrite=overwrite
        )
    except (PredictionsError, OutputError) as exc:
        _fail(str(exc))
    except OSError as exc:
        _fail(f"cannot write {run_dir}: {exc.strerror or exc}")


def _evaluate_judge(
    bench: Any,
    judge: str,
    options: Any,
    out: Path | None,
    name: str | None,
    overwrite: bool,
    before_exit: Callable[[], None] | None = None,
) -> Any:
    from ..runner import RunError, RunInterrupted, run_evaluation

    try:
        return run_evaluation(bench, judge, options, out=out, name=name, overwrite=overwrite)
    except RunError as exc:
        _fail(str(exc))
    except RunInterrupted as exc:
        exit_interrupted(str(exc), before_exit)


def _check_serve_flags(
    serve: str, base_url: list[str] | None, backend: str | None, server: str | None
) -> None:
    if base_url:
        _fail("--serve starts its own server: drop --base-url (or drop --serve to use yours)")
    if backend not in (None, "openai"):
        _fail(f"--serve runs the judge on the server it starts, not on --backend {backend}")
    if server not in (None, serve):
        _fail(f"--serve {serve} starts {serve}: drop --server {server}")


def _evaluate_served(
    bench: Any,
    judge: str,
    options: Any,
    run_dir: Path,
    name: str | None,
    overwrite: bool,
    plan: Any,
) -> Any:
    """Start the engine, run the judge on it, stop it; its log ends up in the run folder."""
    from ..backends.serving import describe
    from ..engines import keep_log, live_log
    from .serve import running_engine

    live = live_log(run_dir)
    try:
        with running_engine(plan, live) as engine:
            options.served_urls = [engine.base_url]
            options.engine = describe(engine.recipe)

            def before_exit() -> None:  # Ctrl-C: os._exit skips every finally
                engine.stop()
                keep_log(run_dir, live)

            return _evaluate_judge(bench, judge, options, run_dir, name, overwrite, before_exit)
    finally:
        keep_log(run_dir, live)
