"""``erb benchmarks``, and ``erb evaluate`` / ``erb data info`` on benchmarks other than
EditReward-Bench (``--benchmark NAME``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from .common import (
    DEFAULT_DATASET,
    _console,
    _escape,
    _fail,
    _parse_options,
    _quiet_libraries,
    _warn,
    exit_interrupted,
    judge_run_options,
    print_run_notes,
)

BenchmarkOpt = Annotated[
    str,
    typer.Option(
        "--benchmark",
        "-b",
        help="Which benchmark: editreward-bench (default), tiger-editreward, genai-bench-edit, "
        "mmrb2-edit, or a plugin's (`erb benchmarks`).",
    ),
]


def _adapter(name: str) -> Any:
    from ..benchmarks import UnknownBenchmarkError, discover

    registry = discover()
    for problem in registry.problems:
        _warn(problem)
    try:
        return registry.get(name)
    except UnknownBenchmarkError as exc:
        _fail(str(exc.args[0]))


def benchmarks_cmd(
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List the benchmarks erb evaluates: source, licence, size, labels and both metrics."""
    import json

    from rich.table import Table

    from ..benchmarks import discover

    registry = discover()
    rows = [entry.describe() for entry in registry.entries.values()]
    if json_out:
        print(json.dumps(rows, indent=2))
        return
    table = Table(title="Benchmarks (erb evaluate --benchmark NAME)", show_lines=True)
    for column in ("name", "source", "licence", "size", "label form", "authors' metric",
                   "erb's strict metric"):  # fmt: skip
        table.add_column(column, overflow="fold")
    for row in rows:
        splits = f" (splits: {', '.join(row['splits'])})" if len(row["splits"]) > 1 else ""
        table.add_row(row["name"], row["source"] + splits, row["licence"], row["size"],
                      row["label_form"], row["authors_metric"], row["strict_metric"])  # fmt: skip
    console = _console()
    console.print(table)
    for row in rows:
        if row.get("licence_note"):
            console.print(f"[yellow]{_escape(row['name'])}: {_escape(row['licence_note'])}[/]")
    for problem in registry.problems:
        _warn(problem)


def load(adapter: Any, dataset: str, revision: str | None, split: str | None,
         max_pixels: int | None = None) -> Any:  # fmt: skip
    """The adapter's benchmark (``--dataset`` left at its default: the benchmark's own hub
    dataset), its licence note printed."""
    from ..benchmark import DEFAULT_MAX_IMAGE_PIXELS, BenchmarkError

    _quiet_libraries()
    source = adapter.hub_id if dataset == DEFAULT_DATASET else dataset
    try:
        bench = adapter.load(source, revision, split=split,
                             max_image_pixels=max_pixels or DEFAULT_MAX_IMAGE_PIXELS)  # fmt: skip
    except BenchmarkError as exc:
        _fail(str(exc))
    if adapter.licence_note:
        _warn(f"{adapter.title}: {adapter.licence_note}")
    return bench


def _limit(bench: Any, limit: int | None) -> Any:
    """The first ``limit`` rows, extended to whole groups (a TIGER group is never cut)."""
    if limit is None or limit >= len(bench.comparisons):
        return bench
    import dataclasses

    from ..benchmarks.base import fingerprint_of

    keep_groups: list[str] = []
    for c in bench.comparisons[:limit]:
        if c.group not in keep_groups:
            keep_groups.append(c.group)
    wanted = set(keep_groups)
    comparisons = [c for c in bench.comparisons if c.group in wanted]
    comparisons = [dataclasses.replace(c, index=i) for i, c in enumerate(comparisons)]
    keys = {k for c in comparisons for k in c.keys}
    details = dict(bench.details)
    if "groups" in details:
        position = {(c.row): c.index for c in comparisons}
        details["groups"] = [
            dataclasses.replace(
                g, comparisons=tuple(position[bench.comparisons[i].row] for i in g.comparisons)
            )
            for g in details["groups"]
            if f"{g.kind}/{g.group}" in wanted
        ]
    return dataclasses.replace(
        bench,
        comparisons=comparisons,
        candidates={k: v for k, v in bench.candidates.items() if k in keys},
        aliases={a: k for a, k in bench.aliases.items() if k in keys},
        fingerprint=fingerprint_of(bench.benchmark, bench.split, comparisons),
        details=details,
    )


def print_result(metrics: dict[str, Any], run_dir: Path) -> None:
    from rich.table import Table

    console = _console()
    bench = metrics["benchmark"]
    dataset = metrics["dataset"]
    split = f", split {dataset['split']}" if dataset.get("split") else ""
    synthetic = " [SYNTHETIC data]" if dataset.get("synthetic") else ""
    orders = f", orders {metrics['orders']}" if metrics.get("orders") else ""
    title = (
        f"{metrics['judge'].get('name', '?')} ({metrics['judge_kind']}, k={metrics['k']}"
        f"{orders}) on {bench['title']} ({dataset['source']}{split}){synthetic}"
    )
    table = Table(title=_escape(title))
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_column("95% CI", justify="right")

    def fmt(v: Any) -> str:
        return "-" if v is None else f"{v:.4f}" if isinstance(v, float) else str(v)

    def ci(v: Any) -> str:
        return f"[{v[0]:.3f}, {v[1]:.3f}]" if v else ""

    headline = metrics["authors_headline"]
    table.add_row(f"authors: {headline['name']}", fmt(headline["value"]), "")
    strict = metrics["strict"]
    table.add_row("erb strict: pairwise accuracy", fmt(strict["accuracy"]), ci(strict["ci95"]))
    table.add_row("erb strict: preference rows only", fmt(strict["preference_accuracy"]), "")
    for stratum, part in strict["by_stratum"].items():
        table.add_row(f"  strict, {stratum}", fmt(part["accuracy"]), ci(part["ci95"]))
    bias = metrics.get("position_bias")
    if bias:
        for order in ("forward", "reverse"):
            part = bias[f"accuracy_{order}"]
            if part["rows"]:
                table.add_row(f"accuracy, order {order}", fmt(part["accuracy"]), ci(part["ci95"]))
        both = bias["both_order_accuracy"]
        if both["rows"]:
            table.add_row("both-order accuracy", fmt(both["accuracy"]), ci(both["ci95"]))
        flip = bias["flip_rate"]
        if flip["rows"]:
            table.add_row("position-bias flip rate", fmt(flip["rate"]), ci(flip["ci95"]))
    console.print(table)
    console.print("authors' numbers (" + _escape(metrics["authors_code"]) + "):", highlight=False)
    console.print(_escape(_compact(metrics["authors"])), soft_wrap=True, highlight=False)
    for note in metrics.get("authors_notes", []):
        console.print(f"  note: {_escape(note)}", soft_wrap=True, highlight=False)
    if bench.get("licence_note"):
        console.print(f"[yellow]licence: {_escape(bench['licence_note'])}[/]", soft_wrap=True)
    console.print(f"run folder: {run_dir}")


def _compact(value: Any) -> str:
    import json

    return json.dumps(value, indent=1, default=str)


def evaluate_benchmark(
    *,
    stop: Any = None,
    benchmark: str,
    predictions: Path | None,
    judge: str | None,
    orders: str | None,
    dataset: str,
    revision: str | None,
    split: str | None,
    limit: int | None,
    out: Path | None,
    name: str | None,
    overwrite: bool,
    seed: int,
    concurrency: int,
    store: Path | None,
    fresh: bool,
    retry_failed: bool,
    k: int | None,
    model: str | None,
    adapter_name: str | None,
    backend: str | None,
    base_url: list[str] | None,
    api_key_env: str | None,
    batch_size: int | None,
    max_retries: int | None,
    backend_options: dict[str, Any],
    option: list[str] | None,
    max_image_pixels: int | None,
    bootstrap: int,
) -> None:
    """``erb evaluate --benchmark NAME`` (not editreward-bench), or a pairwise judge."""
    from ..benchmarks import DEFAULT_BENCHMARK
    from ..outputs import OutputError, check_name

    if (predictions is None) == (judge is None):
        _fail("give exactly one of --predictions FILE or --judge NAME")
    adapter = _adapter(benchmark)
    pairwise_card = _pairwise_card(judge) if judge is not None else None
    if benchmark == DEFAULT_BENCHMARK:
        _fail(
            "pairwise judges run on the preference benchmarks (tiger-editreward, "
            "genai-bench-edit, mmrb2-edit); EditReward-Bench's protocol is pointwise"
        )
    if orders is not None and pairwise_card is None:
        _fail("--orders applies to pairwise judges only")
    try:
        if name is not None:
            check_name(name, "--name")
    except OutputError as exc:
        _fail(str(exc))
    bench = _limit(load(adapter, dataset, revision, split, max_image_pixels), limit)
    from ..benchmarks.run import (
        BenchmarkRunError,
        PairwiseOptions,
        run_pairwise,
        run_pointwise,
        score_predictions,
    )
    from ..predictions import PredictionsError

    try:
        if predictions is not None:
            run_dir = out or Path("reports") / "runs" / (
                name
                or f"{predictions.stem}-{bench.benchmark}"
                + (f"-{bench.split}" if bench.benchmark == "genai-bench-edit" else "")
            )
            summary = score_predictions(adapter, bench, predictions, run_dir, name=name,
                                        n_bootstrap=bootstrap, overwrite=overwrite)  # fmt: skip
        elif pairwise_card is not None:
            from ..judges import CardError, JudgeLoadError
            from ..pairwise import load_pairwise_judge

            if k not in (None, 1):
                _fail("pairwise judges ask once per row and order (-k applies to pointwise ones)")
            overrides = {
                "base_urls": base_url or None, "api_key_env": api_key_env,
                "batch_size": batch_size, "max_retries": max_retries,
                **backend_options, **_parse_options(option),
            }  # fmt: skip
            try:
                pj = load_pairwise_judge(
                    pairwise_card, model=model, backend=backend,
                    optional={"concurrency": concurrency},
                    **{key: v for key, v in overrides.items() if v is not None},
                )  # fmt: skip
            except (CardError, JudgeLoadError) as exc:
                _fail(str(exc.args[0] if exc.args else exc))
            options = PairwiseOptions(
                orders=orders or "random", seed=seed, concurrency=concurrency, store=store,
                fresh=fresh, retry_failed=retry_failed, n_bootstrap=bootstrap,
                **({"stop": stop} if stop is not None else {}),
            )  # fmt: skip
            summary = run_pairwise(adapter, bench, pj, options, out=out, name=name,
                                   overwrite=overwrite)  # fmt: skip
        else:
            assert judge is not None
            run_options = judge_run_options(
                k=k, seed=seed, concurrency=concurrency, store=store, fresh=fresh,
                retry_failed=retry_failed, model=model, adapter=adapter_name, backend=backend,
                base_url=base_url, api_key_env=api_key_env, batch_size=batch_size,
                max_retries=max_retries, bootstrap=bootstrap, option=option,
                flags=backend_options,
            )  # fmt: skip
            if stop is not None:
                run_options.stop = stop
            summary = run_pointwise(adapter, bench, judge, run_options, out=out, name=name,
                                    overwrite=overwrite)  # fmt: skip
    except (BenchmarkRunError, PredictionsError, OutputError) as exc:
        _fail(str(exc))
    except OSError as exc:
        _fail(f"cannot write the run folder: {exc.strerror or exc}")
    except KeyboardInterrupt:
        exit_interrupted(
            "interrupted: every finished judgment is in the store; rerun the same command to "
            "continue"
        )
    print_run_notes(summary)
    print_result(summary.metrics, summary.path)


def _pairwise_card(judge: str) -> Any:
    from ..judges import CardError
    from ..pairwise import find_card

    try:
        return find_card(judge)
    except CardError as exc:
        _fail(str(exc.args[0]))


def is_pairwise(judge: str | None) -> bool:
    """Whether ``--judge`` names a pairwise judge (a built-in pairwise card or a card file
    with ``kind = "pairwise"``)."""
    return judge is not None and _pairwise_card(judge) is not None


def data_info_benchmark(
    benchmark: str,
    source: str,
    revision: str | None,
    split: str | None,
    json_out: bool,
    keys: bool,
) -> None:
    """``erb data info --benchmark NAME``: rows per part, labels, candidates, the licence."""
    import json
    from collections import Counter

    from rich.table import Table

    adapter = _adapter(benchmark)
    bench = load(adapter, source, revision, split)
    if keys:
        for key, places in bench.locations.items():
            print(json.dumps({"key": key, "aliases": places}))
        return
    counts: dict[str, Counter[str]] = {}
    for c in bench.comparisons:
        counts.setdefault(c.stratum, Counter())[c.label] += 1
    info = {
        **bench.describe(),
        "benchmark_title": adapter.title,
        "licence": adapter.licence,
        "licence_note": adapter.licence_note,
        "labels": {s: dict(c) for s, c in counts.items()},
        "details": {k: v for k, v in bench.details.items() if k != "groups"},
        "groups": len({c.group for c in bench.comparisons}),
        "candidate_keys": adapter.candidate_keys,
    }
    if json_out:
        print(json.dumps(info, indent=2, default=str))
        return
    kind = " (synthetic)" if bench.synthetic else ""
    split_text = f", split {bench.split}" if bench.split else ""
    table = Table(
        title=_escape(
            f"{adapter.title}: {bench.source}{kind}{split_text}: {len(bench)} comparisons, "
            f"{info['groups']} groups, {len(bench.candidates)} candidates"
        )
    )
    table.add_column("part")
    for label in ("first", "second", "tie"):
        table.add_column(f"people: {label}", justify="right")
    for stratum, counter in counts.items():
        table.add_row(stratum, *(str(counter.get(x, 0)) for x in ("first", "second", "tie")))
    console = _console()
    console.print(table)
    console.print(f"fingerprint: {bench.fingerprint}")
    console.print(
        f"candidate keys: content keys, or aliases {_escape(adapter.candidate_keys)} "
        "(--keys lists them)",
        soft_wrap=True,
    )
    if bench.synthetic:
        console.print(
            f"synthetic: yes. Made by erb in the {adapter.title} schema; a judge's numbers on "
            "it test the toolkit, not the judge."
        )
    if adapter.licence_note:
        console.print(f"[yellow]licence: {_escape(adapter.licence_note)}[/]", soft_wrap=True)


__all__ = [
    "BenchmarkOpt",
    "benchmarks_cmd",
    "data_info_benchmark",
    "evaluate_benchmark",
    "is_pairwise",
    "load",
    "print_result",
]
