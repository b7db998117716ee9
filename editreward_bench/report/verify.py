"""Verify a run folder: recompute its metrics from its per-item records.

A run folder is what anyone can send in. Its ``records.parquet`` holds every
candidate's pass records; from them and the benchmark alone, :func:`verify_run`
recomputes Avg@k scores (:func:`editreward_bench.metrics.avg_at_k`), the
per-row outcomes against the benchmark's pairs and the paper's accuracy table
(all through :func:`editreward_bench.results.compute_metrics`), and compares
them with ``metrics.json`` and ``outcomes.parquet``. It also checks that the
benchmark it loads has the fingerprint the run recorded. A maintainer can thus
accept a third-party judge's results without running the judge: the numbers
follow from the published records, on the benchmark's own rows.

What a verification cannot show is that the records came from the judge the
card names; that is what the judge fingerprint and a rerun are for.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from ..results import METRICS, OUTCOMES, RECORDS
from .runs import Run, RunData, read_run_data

if TYPE_CHECKING:
    from ..benchmark import Benchmark
    from ..metrics import RowOutcome

#: Two recomputed accuracies that differ by more than this are a mismatch.
TOLERANCE = 1e-12

#: metrics.json entries recomputed and compared (``ci95`` too when intervals are checked).
COMPARED_FIELDS = (
    "accuracy",
    "failures",
    "partial",
    "candidates",
    "tie_rate",
    "accuracy_ties_half",
    "accuracy_pooled",
    "avg_at_k",
    "missing_cells",
)

Status = Literal["verified", "mismatch", "unchecked"]


@dataclass
class Verification:
    """The result of verifying one run folder."""

    run: Path
    #: What was compared and found equal.
    checked: list[str] = field(default_factory=list)
    #: Each difference found, naming the entry (e.g. ``accuracy.groups.scene.overall``).
    mismatches: list[str] = field(default_factory=list)
    #: Remarks that are not mismatches.
    notes: list[str] = field(default_factory=list)
    #: Why the run could not be checked at all (no records, dataset unavailable).
    error: str | None = None

    @property
    def status(self) -> Status:
        if self.error is not None:
            return "unchecked"
        return "mismatch" if self.mismatches else "verified"

    @property
    def exit_code(self) -> int:
        """0 when everything matches, 1 when something does not, 2 when it could not check."""
        return {"verified": 0, "mismatch": 1, "unchecked": 2}[self.status]

    def summary(self) -> str:
        if self.status == "verified":
            return "verified: " + "; ".join(self.checked)
        if self.status == "unchecked":
            return f"not verified: {self.error}"
        more = f" (and {len(self.mismatches) - 3} more)" if len(self.mismatches) > 3 else ""
        return "MISMATCH: " + "; ".join(self.mismatches[:3]) + more


class BenchmarkCache:
    """Loads each (source, revision) once; remembers failures too."""

    def __init__(self) -> None:
        self._loaded: dict[tuple[str, str | None], Benchmark | str] = {}

    def load(self, source: str, revision: str | None) -> Benchmark | str:
        """The benchmark, or the reason it cannot be loaded."""
        key = (source, revision)
        if key not in self._loaded:
            from ..benchmark import BenchmarkError, load_benchmark, quiet_datasets

            quiet_datasets()
            try:
                self._loaded[key] = load_benchmark(source, revision)
            except (BenchmarkError, OSError) as exc:
                self._loaded[key] = f"cannot load the dataset {source!r}: {exc}"
        return self._loaded[key]

    def for_run(
        self, run: Run, dataset: str | None = None, revision: str | None = None
    ) -> tuple[Benchmark | None, str]:
        """The benchmark a run was made on: ``dataset`` (with ``revision``) or the one it recorded.

        A run made with ``--limit N`` recorded N rows; the first N rows are used then.
        Returns (benchmark or None, a line saying what was loaded or why not).
        """
        recorded = run.dataset
        source = dataset if dataset is not None else recorded.get("source")
        rev = revision if dataset is not None else recorded.get("revision")
        if not source:
            return None, f"{run.path / METRICS} records no dataset source; pass --dataset"
        loaded = self.load(str(source), None if rev is None else str(rev))
        if isinstance(loaded, str):
            return None, loaded
        bench = loaded
        rows = recorded.get("rows")
        if isinstance(rows, int) and 0 < rows < len(bench):
            bench = bench.subset(rows)
        where = f"{source}" + (f"@{rev}" if rev else "")
        return bench, f"dataset {where}: {len(bench)} rows"


def verify_run(
    run: Run,
    bench: Benchmark | None,
    *,
    intervals: bool = True,
    dataset_note: str | None = None,
    data: RunData | None = None,
) -> Verification:
    """Recompute ``run``'s metrics from its records on ``bench`` and compare.

    ``bench`` None means the dataset could not be loaded (``dataset_note`` says why): the
    run is then unchecked. With ``intervals`` the recomputation is
    :func:`~editreward_bench.results.compute_metrics` itself, bootstrap intervals (ci95)
    included, with the resamples and seed the run recorded; without, a faster
    recomputation of every other entry (:func:`recompute`), which the leaderboard uses.
    ``data`` is the run's parquet files when the caller has read them already.
    """
    result = Verification(run.path)
    if bench is None:
        result.error = dataset_note or "the dataset is not available"
        return result
    data = data if data is not None else read_run_data(run)
    if data.records is None:
        result.error = f"{data.records_error}; there is nothing to recompute from"
        return result
    records = data.records
    if records and any(c not in records[0] for c in ("key", "pass", "status")):
        result.error = f"{RECORDS} lacks one of the columns key, pass, status"
        return result
    recorded = run.metrics

    # The dataset: same rows, same fingerprint, or the comparison means nothing.
    rec_rows = run.dataset.get("rows")
    if rec_rows != len(bench):
        result.mismatches.append(
            f"dataset.rows: the run recorded {rec_rows}, the dataset has {len(bench)}"
        )
    if run.fingerprint != bench.fingerprint:
        result.mismatches.append(
            f"dataset.fingerprint: the run recorded {run.fingerprint}, the dataset "
            f"({bench.source}) is {bench.fingerprint}; metrics were not recomputed"
        )
        return result
    result.checked.append(f"dataset fingerprint and {len(bench)} rows")

    unknown = sorted({str(r["key"]) for r in records} - set(bench.candidates))
    if unknown:
        result.notes.append(
            f"{len(unknown)} record key(s) are not candidates of the dataset and were ignored "
            f"(e.g. {unknown[0]!r})"
        )

    boot = recorded.get("bootstrap") or {}
    n_boot = int(boot.get("resamples", 1000))
    seed = int(boot.get("seed", 0))
    try:
        if intervals:
            from ..results import compute_metrics

            metrics, outcomes, _ = compute_metrics(
                bench, records, judge=run.judge, k=run.k, n_bootstrap=n_boot, bootstrap_seed=seed
            )
        else:
            metrics, outcomes = recompute(bench, records, run.k)
    except (KeyError, TypeError, ValueError) as exc:
        result.error = f"cannot recompute from {RECORDS}: {type(exc).__name__}: {exc}"
        return result

    for name in COMPARED_FIELDS:
        if name not in recorded:
            result.notes.append(f"{name} is not in {METRICS}; not compared")
            continue
        before = len(result.mismatches)
        _diff(name, recorded[name], metrics[name], result.mismatches)
        if len(result.mismatches) == before:
            result.checked.append(name)

    if intervals:
        ci_issues: list[str] = []
        _diff("ci95", recorded.get("ci95"), metrics["ci95"], ci_issues)
        if not ci_issues:
            result.checked.append(f"ci95 ({n_boot} resamples, seed {seed})")
        else:
            theirs = (recorded.get("versions") or {}).get("numpy")
            ours = (metrics.get("versions") or {}).get("numpy")
            if theirs != ours:
                result.notes.append(
                    f"{len(ci_issues)} ci95 entr(y/ies) differ, but the run used numpy {theirs} "
                    f"and this is numpy {ours}, whose bootstrap draws may differ; not counted"
                )
            else:
                result.mismatches.extend(ci_issues)

    _check_outcomes(data, outcomes, result)
    return result


def recompute(
    bench: Benchmark, records: Sequence[Mapping[str, Any]], k: int
) -> tuple[dict[str, Any], list[RowOutcome]]:
    """Every entry of :data:`COMPARED_FIELDS` but the intervals, as ``erb evaluate`` computes them."""
    from ..results import score_run

    return score_run(bench, records, k)


def _check_outcomes(data: RunData, outcomes: Sequence[RowOutcome], result: Verification) -> None:
    if data.outcomes is None:
        result.mismatches.append(str(data.outcomes_error))
        return
    columns = data.outcomes
    n_rows = len(next(iter(columns.values()), []))
    if n_rows != len(outcomes):
        result.mismatches.append(
            f"{OUTCOMES}: {n_rows} rows, the recomputation has {len(outcomes)}"
        )
        return
    expected: dict[str, list[Any]] = {
        "index": [o.index for o in outcomes],
        "subtask": [o.subtask for o in outcomes],
        "dimension": [o.dimension for o in outcomes],
        "source_id": [o.source_id for o in outcomes],
        "key0": [o.keys[0] for o in outcomes],
        "key1": [o.keys[1] for o in outcomes],
        "score0": [o.score0 for o in outcomes],
        "score1": [o.score1 for o in outcomes],
        "outcome": [o.outcome for o in outcomes],
    }
    before = len(result.mismatches)
    for name, want in expected.items():
        got = columns.get(name)
        if got is None:
            result.mismatches.append(f"{OUTCOMES}: column {name!r} is missing")
            continue
        if got == want:  # the usual case, and fast
            continue
        bad = [i for i, (a, b) in enumerate(zip(got, want, strict=True)) if not _same(a, b)]
        if bad:
            i = bad[0]
            result.mismatches.append(
                f"{OUTCOMES} {name}: {len(bad)} row(s) differ, e.g. row {i}: "
                f"recorded {got[i]!r}, recomputed {want[i]!r}"
            )
    if len(result.mismatches) == before:
        result.checked.append(f"{OUTCOMES} ({n_rows} rows)")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _same(recorded: Any, recomputed: Any) -> bool:
    if _is_missing(recorded) or _is_missing(recomputed):
        return _is_missing(recorded) and _is_missing(recomputed)
    if _is_number(recorded) and _is_number(recomputed):
        return abs(float(recorded) - float(recomputed)) <= TOLERANCE
    return bool(recorded == recomputed)


def _diff(path: str, recorded: Any, recomputed: Any, out: list[str]) -> None:
    """Append one line per entry where ``recorded`` differs from ``recomputed``."""
    if isinstance(recomputed, Mapping):
        if not isinstance(recorded, Mapping):
            out.append(f"{path}: recorded {_show(recorded)}, recomputed a table")
            return
        for key, value in recomputed.items():
            if key not in recorded:
                out.append(f"{path}.{key}: missing from {METRICS} (recomputed {_show(value)})")
            else:
                _diff(f"{path}.{key}", recorded[key], value, out)
        for key in recorded:
            if key not in recomputed:
                out.append(f"{path}.{key}: in {METRICS} but not in the recomputation")
        return
    if isinstance(recomputed, (list, tuple)):
        if not isinstance(recorded, (list, tuple)) or len(recorded) != len(recomputed):
            out.append(f"{path}: recorded {_show(recorded)}, recomputed {_show(recomputed)}")
            return
        for i, (a, b) in enumerate(zip(recorded, recomputed, strict=True)):
            _diff(f"{path}[{i}]", a, b, out)
        return
    if not _same(recorded, recomputed):
        delta = ""
        if _is_number(recorded) and _is_number(recomputed):
            delta = f" (differs by {abs(float(recorded) - float(recomputed)):.3g})"
        out.append(f"{path}: recorded {_show(recorded)}, recomputed {_show(recomputed)}{delta}")


def _show(value: Any) -> str:
    if isinstance(value, float):
        return repr(value) if not math.isnan(value) else "NaN"
    if isinstance(value, (Mapping, list, tuple)):
        return type(value).__name__
    return repr(value)
