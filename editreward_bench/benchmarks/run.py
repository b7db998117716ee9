"""Runs on the preference benchmarks: a pointwise judge, a predictions file, or a pairwise
judge, written to a run folder with the authors' numbers and erb's strict ones side by side.

Pointwise judges go through the pass store exactly as on EditReward-Bench: a candidate's
passes are keyed by its fingerprint (its content), so an edit shared by two rows, or by two
benchmarks, is judged once. A candidate is ranked by its Avg@k ``overall`` score.

Pairwise judges see each row in one order or both (``orders``):

- ``random``: one order per row, drawn from the run's seed and the row (reproducible);
- ``forward``: the dataset's order (candidate_1 / left / A shown first), the authors' setup
  for TIGER and GenAI-Bench;
- ``both``: both orders, which MMRB2's authors count, and which gives accuracy per order,
  both-order accuracy and the position-bias flip rate.

Each (ordered pair, seed) is asked once and kept in the pass store too, so a rerun resumes.

The run folder (``metrics.json``, ``records.parquet``, ``outcomes.parquet``,
``manifest.json``) has the layout of every erb run; ``metrics.json`` adds ``benchmark``,
``authors`` (the authors' code's own output, under its names), ``strict`` and, for pairwise
judges, ``position_bias``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from ..failures import FailureWatch, StopRule, reason, top_reasons
from ..results import (
    MANIFEST,
    METRICS,
    OUTCOMES,
    RECORDS,
    SCHEMA_VERSION,
    RunSummary,
    build_manifest,
    now_iso,
    package_versions,
    write_json,
    write_records,
)
from .base import BenchmarkAdapter, PreferenceBenchmark
from .strict import Judgment, judge_pairwise, judge_pointwise, order_statistics, strict_metrics

ORDERS = ("random", "forward", "both")


class BenchmarkRunError(RuntimeError):
    """The run cannot start or finish; the message says why and what to do."""


# --------------------------------------------------------------------------- metrics


def run_metrics(
    adapter: BenchmarkAdapter,
    bench: PreferenceBenchmark,
    *,
    judge: Mapping[str, Any],
    kind: str,
    scores: Mapping[str, float | None] | None = None,
    verdicts: Mapping[tuple[int, str], str | None] | None = None,
    k: int = 1,
    orders: str | None = None,
    seed: int | None = None,
    n_bootstrap: int = 1000,
) -> tuple[dict[str, Any], list[Judgment]]:
    """metrics.json for a run from per-candidate ``scores`` (pointwise) or ``verdicts``
    (pairwise, keyed by (comparison index, order shown)). Returns (metrics, judgments)."""
    if verdicts is not None:
        authors = adapter.authors_pairwise(bench, verdicts)
        judgments = judge_pairwise(bench.comparisons, verdicts)
    else:
        assert scores is not None
        authors = adapter.authors_pointwise(bench, scores)
        judgments = judge_pointwise(bench.comparisons, scores)
    strict = strict_metrics(judgments, n_bootstrap)
    dataset = bench.describe()
    metrics: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "benchmark": {
            key: adapter.describe()[key]
            for key in ("name", "title", "source", "licence", "licence_note", "paper")
        },
        "judge": dict(judge),
        "judge_kind": kind,
        "k": k,
        "orders": orders,
        "seed": seed,
        "dataset": {
            key: dataset[key]
            for key in (
                "benchmark",
                "source",
                "revision",
                "split",
                "fingerprint",
                "rows",
                "synthetic",
            )
        },
        # The two numbers a leaderboard cell shows.
        "accuracy": {"authors": authors.headline[1], "strict": strict["accuracy"]},
        "authors": authors.metrics,
        "authors_headline": {"name": authors.headline[0], "value": authors.headline[1]},
        "authors_derived": authors.derived,
        "authors_code": adapter.authors_metric,
        "authors_notes": authors.notes,
        "strict": strict,
        "strict_definition": adapter.strict_metric,
        "candidates": len(bench.candidates),
        "created": now_iso(),
        "versions": package_versions(),
    }
    if scores is not None:
        metrics["failures"] = sum(1 for key in bench.candidates if scores.get(key) is None)
    if verdicts is not None:
        metrics["failures"] = sum(1 for v in verdicts.values() if v is None)
        metrics["position_bias"] = order_statistics(judgments, n_bootstrap)
    return metrics, judgments


def outcomes_table(judgments: Sequence[Judgment], scores: Mapping[str, float | None] | None) -> Any:
    import pyarrow as pa

    def score(key: str) -> float | None:
        return None if scores is None else scores.get(key)

    return pa.table(
        {
            "index": pa.array([j.comparison.index for j in judgments], pa.int64()),
            "row": pa.array([j.comparison.row for j in judgments], pa.int64()),
            "row_id": [j.comparison.row_id for j in judgments],
            "group": [j.comparison.group for j in judgments],
            "stratum": [j.comparison.stratum for j in judgments],
            "order": [j.order for j in judgments],
            "key0": [j.comparison.keys[0] for j in judgments],
            "key1": [j.comparison.keys[1] for j in judgments],
            "label": [j.comparison.label for j in judgments],
            "raw_label": [j.comparison.raw_label for j in judgments],
            "score0": pa.array([score(j.comparison.keys[0]) for j in judgments], pa.float64()),
            "score1": pa.array([score(j.comparison.keys[1]) for j in judgments], pa.float64()),
            "verdict": [j.verdict for j in judgments],
            "outcome": [j.outcome for j in judgments],
        }
    )


def _write_parquet(path: Path, table: Any) -> None:
    import io

    import pyarrow.parquet as pq

    from ..outputs import atomic_write

    buf = io.BytesIO()
    pq.write_table(table, buf)
    atomic_write(path, buf.getvalue())


def _write_folder(
    run_dir: Path,
    *,
    metrics: Mapping[str, Any],
    records: Iterable[Mapping[str, Any]] | Any,
    outcomes: Any,
    manifest: Mapping[str, Any],
    pointwise_records: bool,
) -> None:
    from ..results import start_run_folder

    start_run_folder(run_dir)
    if pointwise_records:
        write_records(run_dir / RECORDS, records)
    else:
        _write_parquet(run_dir / RECORDS, records)
    _write_parquet(run_dir / OUTCOMES, outcomes)
    write_json(run_dir / MANIFEST, manifest)
    write_json(run_dir / METRICS, metrics)  # last: it marks a complete run folder


def _manifest(
    bench: PreferenceBenchmark, started: str, judge: Mapping[str, Any], extra: dict[str, Any]
) -> dict[str, Any]:
    return build_manifest(cast(Any, bench), started=started, judge=judge, extra=extra)


def default_run_name(
    judge_name: str, bench: PreferenceBenchmark, k: int, orders: str | None
) -> str:
    """``JUDGE-BENCHMARK[-SPLIT][-kK][-ORDERS]``: runs on two benchmarks or splits never share
    a folder."""
    import re

    base = re.sub(r"[^A-Za-z0-9._+=-]+", "-", judge_name).strip("-.") or "judge"
    name = f"{base}-{bench.benchmark}"
    if bench.split and bench.benchmark == "genai-bench-edit":
        name += f"-{bench.split}"
    if k != 1:
        name += f"-k{k}"
    if orders is not None:
        name += f"-{orders}"
    return name


def _check_folder(run_dir: Path, expected: Mapping[str, Any], overwrite: bool) -> None:
    from ..outputs import OutputError, check_run_dir

    try:
        check_run_dir(run_dir, expected, overwrite=overwrite)
    except OutputError as exc:
        raise BenchmarkRunError(str(exc)) from exc


def _summary(
    run_dir: Path, metrics: dict[str, Any], warnings: list[str], notes: list[str] | None = None
) -> RunSummary:
    return RunSummary(run_dir, metrics, warnings, None, notes or [])


# --------------------------------------------------------------------------- predictions


def score_predictions(
    adapter: BenchmarkAdapter,
    bench: PreferenceBenchmark,
    path: Path,
    run_dir: Path,
    *,
    name: str | None = None,
    n_bootstrap: int = 1000,
    overwrite: bool = False,
) -> RunSummary:
    """Score a predictions file (JSONL: ``key`` and ``overall`` per candidate; the key may be
    the content key or the alias) on ``bench``, and write the run folder."""
    from ..predictions import PredictionsError, read_predictions

    started = now_iso()
    preds = read_predictions(path, required=("overall",))
    _check_folder(
        run_dir,
        {"kind": "predictions", "predictions": preds.sha256, "dataset": bench.fingerprint},
        overwrite,
    )
    judge_info = {
        "name": name or path.stem,
        "kind": "predictions",
        "source": str(path),
        "sha256": preds.sha256,
    }
    scores: dict[str, float | None] = dict.fromkeys(bench.candidates)
    unknown: list[str] = []
    given_twice: list[str] = []
    named: dict[str, str] = {}
    for given, entry in preds.scores.items():
        key = bench.resolve(given)
        if key is None:
            unknown.append(given)
            continue
        if key in named:
            given_twice.append(f"{given!r} and {named[key]!r}")
            continue
        named[key] = given
        scores[key] = entry["overall"]
    if given_twice:
        raise PredictionsError(
            f"{path}: these lines name the same candidate (a key and its alias): "
            + "; ".join(given_twice[:5])
        )
    warnings = []
    if unknown:
        shown = ", ".join(repr(k) for k in unknown[:5]) + (" ..." if len(unknown) > 5 else "")
        warnings.append(
            f"{len(unknown)} key(s) in {path} are not in the dataset and were ignored: {shown}"
        )
    missing = sum(v is None for v in scores.values())
    if missing == len(scores):
        raise PredictionsError(
            f"none of the {len(scores)} candidates of the dataset has a prediction in {path} "
            f"(keys are content keys or aliases: `erb data info --benchmark {bench.benchmark} "
            "--keys`)"
        )
    if missing:
        warnings.append(
            f"{missing} of {len(scores)} candidate(s) have no prediction; they count as failures"
        )
    metrics, judgments = run_metrics(
        adapter, bench, judge=judge_info, kind="pointwise", scores=scores, n_bootstrap=n_bootstrap
    )
    records = [
        {"key": key, "pass": 0, "seed": None, "status": "ok" if v is not None else "failed",
         "error": None if v is not None else "missing from predictions", "overall": v,
         "extra": {"given_as": named[key]} if key in named and named[key] != key else None}
        for key, v in scores.items()
    ]  # fmt: skip
    manifest = _manifest(bench, started, judge_info, {})
    _write_folder(run_dir, metrics=metrics, records=records,
                  outcomes=outcomes_table(judgments, scores), manifest=manifest,
                  pointwise_records=True)  # fmt: skip
    return _summary(run_dir, metrics, warnings)


# --------------------------------------------------------------------------- pointwise judges


def run_pointwise(
    adapter: BenchmarkAdapter,
    bench: PreferenceBenchmark,
    judge_name: str,
    options: Any,
    *,
    out: Path | None = None,
    name: str | None = None,
    overwrite: bool = False,
) -> RunSummary:
    """Judge every candidate's missing passes through the store, then write the run folder.

    ``options`` is a :class:`editreward_bench.runner.RunOptions`.
    """
    from ..metrics import PassScores, avg_at_k
    from ..runner import RunError, judge_tasks, open_judge, plan_tasks, stopped_message
    from ..store import PassStore, StoreError, candidate_fingerprint, default_store_path

    started = now_iso()
    try:
        judge = open_judge(judge_name, options)
    except RunError as exc:
        raise BenchmarkRunError(str(exc)) from exc
    try:
        card = getattr(judge, "card", None)
        k = options.k or (card.default_k if card is not None else 1)
        try:
            judge.preflight()
        except Exception as exc:
            raise BenchmarkRunError(str(exc)) from exc
        judge_fp = judge.fingerprint()
        run_dir = out or Path("reports") / "runs" / (
            name or default_run_name(judge.name, bench, k, None)
        )
        _check_folder(
            run_dir,
            {"kind": "judge", "judge": judge_fp, "dataset": bench.fingerprint, "k": k,
             "seed": options.seed},
            overwrite,
        )  # fmt: skip
        store_path = options.store or default_store_path()
        try:
            store = PassStore(store_path)
        except StoreError as exc:
            raise BenchmarkRunError(str(exc)) from exc
        t0 = time.monotonic()
        with store:
            store.register_judge(judge_fp, judge.describe_for_fingerprint())
            cand_fps = {key: candidate_fingerprint(c) for key, c in bench.candidates.items()}
            have = (
                set()
                if options.fresh
                else store.have(
                    judge_fp,
                    cand_fps.values(),
                    options.seed,
                    include_failed=not options.retry_failed,
                )
            )
            tasks = plan_tasks(cast(Any, bench), k, options.seed, have, cand_fps)
            # The runner's own loop: claims shared with other runs, the stop rules.
            progress = judge_tasks(judge, judge_fp, tasks, store, cand_fps, options)
            judged, transient = progress.judged, progress.transient
            if progress.stopped is not None:
                raise BenchmarkRunError(
                    stopped_message(progress.stopped, progress.watch.reasons, str(store_path))
                )
            stored = store.get(judge_fp, list(cand_fps.values()), options.seed)
        records = [
            rec
            for key in bench.candidates
            for p in range(k)
            if (rec := transient.get((key, p)) or stored.get((cand_fps[key], p))) is not None
        ]
        if not any(r.get("status") == "ok" for r in records):
            failed = Counter(reason(r.get("error")) for r in records)
            raise BenchmarkRunError(
                f"no pass succeeded ({len(records)} failed); a table of zeros is no result. "
                "Top reasons: " + "; ".join(top_reasons(failed))
            )
        avg, _ = avg_at_k([PassScores.of(r) for r in records], k)
        scores = {
            key: (None if avg.get(key) is None else avg[key].get(adapter.score_field))  # type: ignore[union-attr]
            for key in bench.candidates
        }
        judge_info = {**judge.describe(), "fingerprint": judge_fp, "name": judge.name}
        metrics, judgments = run_metrics(
            adapter, bench, judge=judge_info, kind="pointwise", scores=scores, k=k,
            seed=options.seed, n_bootstrap=options.n_bootstrap,
        )  # fmt: skip
        total = len(bench.candidates) * k
        usage = {
            "k": k, "seed": options.seed, "store": str(store_path), "passes_total": total,
            "passes_judged_now": judged, "passes_reused": total - judged,
            "judging_seconds": round(time.monotonic() - t0, 3),
        }  # fmt: skip
        metrics["usage"] = usage
        manifest = _manifest(bench, started, judge_info, usage)
        _write_folder(run_dir, metrics=metrics, records=records,
                      outcomes=outcomes_table(judgments, scores), manifest=manifest,
                      pointwise_records=True)  # fmt: skip
    finally:
        judge.close()
    warnings = []
    if metrics["failures"]:
        warnings.append(
            f"{metrics['failures']} of {len(bench.candidates)} candidate(s) failed every pass; "
            "erb's strict view counts their rows wrong (records.parquet has each reason)"
        )
    note = (
        f"{usage['passes_reused']} of {total} passes reused from the store {store_path}; "
        f"{judged} judged now"
    )
    return _summary(run_dir, metrics, warnings, [note])


# --------------------------------------------------------------------------- pairwise judges


def row_order(seed: int, bench: PreferenceBenchmark, index: int) -> str:
    """The order a row is shown in under ``orders=random``: a coin drawn from the seed, the
    benchmark and the row (the same every run)."""
    c = bench.comparisons[index]
    digest = hashlib.sha256(f"{seed}\x1f{bench.benchmark}\x1f{c.row_id}\x1f{c.index}".encode())
    return "forward" if digest.digest()[0] % 2 == 0 else "reverse"


def plan_orders(bench: PreferenceBenchmark, orders: str, seed: int) -> list[tuple[int, str]]:
    """(comparison index, order) for every judgment the run needs."""
    if orders not in ORDERS:
        raise BenchmarkRunError(f"--orders must be one of {list(ORDERS)}, got {orders!r}")
    plan = []
    for c in bench.comparisons:
        if orders == "both":
            plan += [(c.index, "forward"), (c.index, "reverse")]
        elif orders == "forward":
            plan.append((c.index, "forward"))
        else:
            plan.append((c.index, row_order(seed, bench, c.index)))
    return plan


def pair_fingerprint(first_fp: str, second_fp: str) -> str:
    """The store's candidate part for an ordered pair of candidates."""
    return hashlib.sha256(f"pairwise/v1\x1f{first_fp}\x1f{second_fp}".encode()).hexdigest()


@dataclass
class PairwiseOptions:
    """Settings of a pairwise run (the judge's own settings are the judge's)."""

    orders: str = "random"
    seed: int = 42
    concurrency: int = 8
    store: Path | None = None
    fresh: bool = False
    retry_failed: bool = False
    n_bootstrap: int = 1000
    extra: dict[str, Any] = field(default_factory=dict)
    #: When a failing run gives up (the same rules as a pointwise run's).
    stop: StopRule = field(default_factory=StopRule)


class _PairStop(Exception):
    """Raised from a verdict callback to end a failing pairwise run early."""


async def compare_all(
    judge: Any,
    tasks: Sequence[Any],
    *,
    concurrency: int,
    on_result: Callable[[Any], None],
) -> None:
    """Ask every task, at most ``concurrency`` batches at once; a judge bug fails its batch."""
    from ..pairwise import Verdict

    size = max(1, int(getattr(judge, "batch_size", 1)))
    batches = [list(tasks[i : i + size]) for i in range(0, len(tasks), size)]
    queue = iter(batches)

    async def worker() -> None:
        for batch in queue:
            try:
                results = await judge.acompare(batch)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                results = [
                    Verdict(t.key, t.seed, "failed", error=f"judge raised {type(exc).__name__}: "
                            f"{exc}", transient=True)
                    for t in batch
                ]  # fmt: skip
            by_key = {r.key: r for r in results if isinstance(r, Verdict)}
            for t in batch:
                on_result(by_key.get(t.key) or Verdict(
                    t.key, t.seed, "failed", error="judge returned no verdict", transient=True))  # fmt: skip

    try:
        await asyncio.gather(*(worker() for _ in range(max(1, concurrency))))
    finally:
        await judge.aclose()


def run_pairwise(
    adapter: BenchmarkAdapter,
    bench: PreferenceBenchmark,
    judge: Any,
    options: PairwiseOptions,
    *,
    out: Path | None = None,
    name: str | None = None,
    overwrite: bool = False,
) -> RunSummary:
    """Ask a pairwise judge every (row, order) the plan needs, through the store; write the
    run folder with the authors' numbers, erb's strict ones and the position bias."""
    import pyarrow as pa

    from ..pairwise import PairwiseTask
    from ..runner import stopped_message
    from ..store import PassStore, StoreError, candidate_fingerprint, default_store_path

    started = now_iso()
    try:
        try:
            judge.preflight()
        except Exception as exc:
            raise BenchmarkRunError(str(exc)) from exc
        judge_fp = judge.fingerprint()
        run_dir = out or Path("reports") / "runs" / (
            name or default_run_name(judge.name, bench, 1, options.orders)
        )
        run_fp = (
            "sha256:"
            + hashlib.sha256(f"{judge_fp}\x1forders={options.orders}".encode()).hexdigest()
        )
        _check_folder(
            run_dir,
            {"kind": "judge", "judge": run_fp, "dataset": bench.fingerprint, "k": 1,
             "seed": options.seed},
            overwrite,
        )  # fmt: skip
        plan = plan_orders(bench, options.orders, options.seed)
        cand_fps = {key: candidate_fingerprint(c) for key, c in bench.candidates.items()}

        def ordered(index: int, order: str) -> tuple[str, str]:
            a, b = bench.comparisons[index].keys
            return (a, b) if order == "forward" else (b, a)

        pair_fp: dict[tuple[str, str], str] = {}
        for index, order in plan:
            first, second = ordered(index, order)
            pair_fp.setdefault((first, second), pair_fingerprint(cand_fps[first], cand_fps[second]))
        store_path = options.store or default_store_path()
        try:
            store = PassStore(store_path)
        except StoreError as exc:
            raise BenchmarkRunError(str(exc)) from exc
        transient: dict[str, dict[str, Any]] = {}
        asked = 0
        t0 = time.monotonic()
        with store:
            store.register_judge(judge_fp, judge.describe_for_fingerprint())
            have = (
                set()
                if options.fresh
                else store.have(
                    judge_fp,
                    pair_fp.values(),
                    options.seed,
                    include_failed=not options.retry_failed,
                )
            )
            tasks = [
                PairwiseTask(f"{first}>{second}", bench.candidates[first].instruction,
                             bench.candidates[first], bench.candidates[second], options.seed)
                for (first, second), fp in pair_fp.items()
                if (fp, 0) not in have
            ]  # fmt: skip
            fp_of_task = {f"{a}>{b}": fp for (a, b), fp in pair_fp.items()}

            watch = FailureWatch(options.stop)

            def on_result(verdict: Any) -> None:
                nonlocal asked
                asked += 1
                record = verdict.to_record()
                if verdict.transient:
                    transient[verdict.key] = record
                else:
                    store.put(judge_fp, fp_of_task[verdict.key], record)
                why = watch.see(str(record.get("status")), record.get("error"))
                if why is not None:
                    raise _PairStop(why)

            if tasks:
                try:
                    asyncio.run(compare_all(judge, tasks, concurrency=options.concurrency,
                                            on_result=on_result))  # fmt: skip
                except _PairStop as why:
                    raise BenchmarkRunError(
                        stopped_message(str(why), watch.reasons, str(store_path))
                    ) from None
            stored = store.get(judge_fp, list(pair_fp.values()), options.seed)
        verdicts: dict[tuple[int, str], str | None] = {}
        rows: list[dict[str, Any]] = []
        for index, order in plan:
            first, second = ordered(index, order)
            key = f"{first}>{second}"
            record = transient.get(key) or stored.get((pair_fp[(first, second)], 0)) or {}
            verdict = record.get("verdict") if record.get("status") == "ok" else None
            verdicts[(index, order)] = verdict
            c = bench.comparisons[index]
            rows.append({
                "index": index, "row_id": c.row_id, "order": order, "first": first,
                "second": second, "seed": options.seed, "status": record.get("status", "failed"),
                "error": record.get("error"), "verdict": verdict, "raw": record.get("raw"),
                "prompt_tokens": record.get("prompt_tokens"),
                "completion_tokens": record.get("completion_tokens"),
                "attempts": record.get("attempts"),
            })  # fmt: skip
        if rows and all(r["verdict"] is None for r in rows):
            failed = Counter(reason(r["error"]) for r in rows)
            raise BenchmarkRunError(
                f"no comparison succeeded ({len(rows)} failed); a table of zeros is no result. "
                "Top reasons: " + "; ".join(top_reasons(failed))
            )
        judge_info = {**judge.describe(), "fingerprint": run_fp, "judge_fingerprint": judge_fp,
                      "name": judge.name}  # fmt: skip
        metrics, judgments = run_metrics(
            adapter, bench, judge=judge_info, kind="pairwise", verdicts=verdicts,
            orders=options.orders, seed=options.seed, n_bootstrap=options.n_bootstrap,
        )  # fmt: skip
        usage = {
            "k": 1, "seed": options.seed, "orders": options.orders, "store": str(store_path),
            "judgments": len(plan), "pairs_asked_now": asked, "pairs_total": len(pair_fp),
            "pairs_reused": len(pair_fp) - asked,
            "judging_seconds": round(time.monotonic() - t0, 3),
            "tokens": {
                "prompt": sum(int(r.get("prompt_tokens") or 0) for r in rows),
                "completion": sum(int(r.get("completion_tokens") or 0) for r in rows),
            },
        }  # fmt: skip
        metrics["usage"] = usage
        manifest = _manifest(bench, started, judge_info, usage)
        records_table = pa.Table.from_pylist(rows, schema=_PAIRWISE_SCHEMA())
        _write_folder(run_dir, metrics=metrics, records=records_table,
                      outcomes=outcomes_table(judgments, None), manifest=manifest,
                      pointwise_records=False)  # fmt: skip
    finally:
        judge.close()
    warnings = []
    if metrics["failures"]:
        warnings.append(
            f"{metrics['failures']} of {len(plan)} judgment(s) failed; erb's strict view counts "
            "them wrong (records.parquet has each reason)"
        )
    note = (
        f"{usage['pairs_reused']} of {len(pair_fp)} ordered pairs reused from the store "
        f"{store_path}; {asked} asked now"
    )
    return _summary(run_dir, metrics, warnings, [note])


def _PAIRWISE_SCHEMA() -> Any:
    import pyarrow as pa

    return pa.schema(
        [
            ("index", pa.int64()), ("row_id", pa.string()), ("order", pa.string()),
            ("first", pa.string()), ("second", pa.string()), ("seed", pa.int64()),
            ("status", pa.string()), ("error", pa.string()), ("verdict", pa.string()),
            ("raw", pa.string()), ("prompt_tokens", pa.int64()),
            ("completion_tokens", pa.int64()), ("attempts", pa.int64()),
        ]
    )  # fmt: skip


def read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))
