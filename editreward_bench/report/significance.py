"""Is judge A better than judge B on these rows? Paired tests on per-row outcomes.

Two runs on the same dataset (same fingerprint) judged the same rows, so their
outcomes are paired. For each dimension two tests are reported:

- a **paired bootstrap over source images** of the difference in the paper's
  Overall accuracy (the macro mean of the 13 subtasks): every resample draws
  source images with replacement (rows sharing an image move together, as in
  :func:`editreward_bench.metrics.bootstrap_ci`) and applies the *same* draw to
  both runs. The 95% interval is the percentile interval of the resampled
  differences; the two-sided p-value is the share of resampled differences at
  least as far from the observed one as the observed one is from zero,
  ``(1 + #{|d* - d| >= |d|}) / (1 + resamples)`` (the null-shifted bootstrap);
- **McNemar's exact test** on the rows of that dimension: of the rows exactly
  one judge got right, ``only_a`` went to A and ``only_b`` to B; under "equally
  good" each is Binomial(only_a + only_b, 1/2), and the two-sided p-value is
  ``min(1, 2 * P(X <= min(only_a, only_b)))`` (equal to scipy's ``binomtest``).

p-values are per comparison, not corrected for the number of pairs shown.
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..taxonomy import DIMENSIONS, SUBTASKS

if TYPE_CHECKING:
    import numpy as np

#: Resamples and seed of the paired bootstrap.
RESAMPLES = 1000
SEED = 0


@dataclass(frozen=True)
class RowResults:
    """One run's per-row correctness (from ``outcomes.parquet``), in row order."""

    key: str
    fingerprint: str | None
    #: (index, key0, key1) of every row: two runs are paired only when these agree.
    rows: tuple[tuple[int, str, str], ...]
    subtask: tuple[str, ...]
    dimension: tuple[str, ...]
    source_id: tuple[str, ...]
    correct: tuple[bool, ...]


def row_results(
    key: str, fingerprint: str | None, outcomes: Mapping[str, Sequence[Any]]
) -> RowResults | None:
    """A run's ``outcomes.parquet`` columns as :class:`RowResults` (None when columns lack)."""
    needed = ("index", "key0", "key1", "subtask", "dimension", "source_id", "outcome")
    if any(name not in outcomes for name in needed):
        return None
    return RowResults(
        key=key,
        fingerprint=fingerprint,
        rows=tuple(zip(outcomes["index"], outcomes["key0"], outcomes["key1"], strict=True)),
        subtask=tuple(outcomes["subtask"]),
        dimension=tuple(outcomes["dimension"]),
        source_id=tuple(outcomes["source_id"]),
        correct=tuple(o == "correct" for o in outcomes["outcome"]),
    )


@dataclass(frozen=True)
class DimensionTest:
    """A vs B on one dimension of the Overall block."""

    dimension: str
    #: Overall (macro) accuracy of A minus that of B.
    diff: float | None
    ci: tuple[float, float] | None
    p_bootstrap: float | None
    #: Rows of this dimension only A (only B) got right.
    only_a: int
    only_b: int
    p_mcnemar: float


@dataclass(frozen=True)
class PairTest:
    a: str
    b: str
    rows: int
    tests: dict[str, DimensionTest]


@functools.lru_cache(maxsize=4096)
def mcnemar_exact(only_a: int, only_b: int) -> float:
    """Two-sided exact McNemar p-value from the discordant counts."""
    n = only_a + only_b
    if n == 0:
        return 1.0
    k = min(only_a, only_b)
    if n <= 1000:  # exact integer arithmetic
        tail = sum(math.comb(n, i) for i in range(k + 1))
        return min(1.0, 2 * tail / 2**n)
    # Large n: sum the pmf in log space (relative error ~1e-12).
    log_half_n = n * math.log(2.0)
    logs = [math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) for i in range(k + 1)]
    top = max(logs)
    log_tail = top + math.log(sum(math.exp(v - top) for v in logs)) - log_half_n
    return min(1.0, 2 * math.exp(log_tail))


def paired_tests(
    results: Sequence[RowResults], n_resamples: int = RESAMPLES, seed: int = SEED
) -> tuple[list[PairTest], list[str]]:
    """Every pair of runs on identical rows, tested on each dimension.

    Returns (tests, notes); a note says when runs could not be paired.
    """
    groups: dict[tuple[str | None, tuple[tuple[int, str, str], ...]], list[RowResults]] = {}
    for res in results:
        groups.setdefault((res.fingerprint, res.rows), []).append(res)
    notes = []
    by_fp: dict[str | None, int] = {}
    for fp, _ in groups:
        by_fp[fp] = by_fp.get(fp, 0) + 1
    for fp, count in by_fp.items():
        if count > 1:
            notes.append(
                f"runs on dataset {fp} do not all list the same rows in outcomes.parquet; "
                f"only runs with identical rows are compared"
            )
    tests: list[PairTest] = []
    for members in groups.values():
        if len(members) > 1 and members[0].rows:
            tests.extend(_group_tests(members, n_resamples, seed))
    return tests, notes


def _macro(correct: np.ndarray, totals: np.ndarray) -> np.ndarray:
    """Macro accuracy per dimension: the mean over subtasks of correct / total per cell.

    ``correct`` is (..., 39 cells), ``totals`` broadcasts to it; cells with no rows are
    left out of the mean (NaN where a dimension has none), as in ``bootstrap_ci``.
    """
    import numpy as np

    valid = totals > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        inverse = np.where(valid, 1.0 / np.where(valid, totals, 1.0), 0.0)
        acc = correct * inverse
    shape = (len(SUBTASKS), len(DIMENSIONS))
    sums = acc.reshape(*acc.shape[:-1], *shape).sum(axis=-2)
    counts = valid.reshape(*valid.shape[:-1], *shape).sum(axis=-2)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.asarray(sums / counts)


def _group_tests(members: list[RowResults], n_resamples: int, seed: int) -> list[PairTest]:
    import numpy as np

    first = members[0]
    n_rows = len(first.rows)
    cell_of = {(s, d): i for i, (s, d) in enumerate((s, d) for s in SUBTASKS for d in DIMENSIONS)}
    n_cells = len(cell_of)
    cells = np.array([cell_of[(s, d)] for s, d in zip(first.subtask, first.dimension, strict=True)])
    _, clusters = np.unique(np.array(first.source_id, dtype=object), return_inverse=True)
    clusters = clusters.reshape(-1)
    n_clusters = int(clusters.max()) + 1
    flat = clusters * n_cells + cells
    dims = np.array([DIMENSIONS.index(d) for d in first.dimension])

    total = (
        np.bincount(flat, minlength=n_clusters * n_cells).reshape(n_clusters, n_cells).astype(float)
    )
    rng = np.random.default_rng(seed)
    weights = rng.multinomial(
        n_clusters, np.full(n_clusters, 1.0 / n_clusters), size=n_resamples
    ).astype(float)
    w_total = weights @ total  # resamples x cells

    correct = np.array([res.correct for res in members], dtype=bool)  # runs x rows
    n_runs = len(members)
    per_cluster = (
        np.stack([np.bincount(flat[ok], minlength=n_clusters * n_cells) for ok in correct])
        .reshape(n_runs, n_clusters, n_cells)
        .astype(float)
    )
    # One matrix product for all runs: resamples x (runs x cells).
    stacked = per_cluster.transpose(1, 0, 2).reshape(n_clusters, n_runs * n_cells)
    w_correct = (weights @ stacked).reshape(n_resamples, n_runs, n_cells).transpose(1, 0, 2)
    boots = _macro(w_correct, w_total)  # runs x resamples x dims
    points = _macro(per_cluster.sum(axis=1), total.sum(axis=0))  # runs x dims

    # Discordant rows per dimension: only[d][i, j] = rows of d run i got right and run j not.
    right = correct.astype(float)
    wrong = (~correct).astype(float)
    only = [((right * (dims == d)) @ wrong.T).astype(int) for d in range(len(DIMENSIONS))]

    out = []
    all_finite = bool(np.isfinite(boots).all())  # no resample lost a whole dimension
    for i in range(len(members) - 1):
        diffs = boots[i][None] - boots[i + 1 :]  # others x resamples x dims
        observed = points[i][None] - points[i + 1 :]  # others x dims
        threshold = np.abs(observed)[:, None, :] - 1e-12
        if all_finite:  # the usual case, computed in place
            bounds = np.percentile(diffs, [2.5, 97.5], axis=1)
            np.subtract(diffs, observed[:, None, :], out=diffs)
            extreme = (np.abs(diffs, out=diffs) >= threshold).sum(axis=1)
            p_boot = ((1 + extreme) / (1 + n_resamples)).tolist()
            usable = np.isfinite(observed).tolist()
        else:
            finite = np.isfinite(diffs)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                bounds = np.nanpercentile(diffs, [2.5, 97.5], axis=1)
            with np.errstate(invalid="ignore"):
                extreme = ((np.abs(diffs - observed[:, None, :]) >= threshold) & finite).sum(axis=1)
            p_boot = ((1 + extreme) / (1 + finite.sum(axis=1))).tolist()
            usable = (np.isfinite(observed) & finite.any(axis=1)).tolist()
        observed_l, low_l, high_l = observed.tolist(), bounds[0].tolist(), bounds[1].tolist()
        for offset, j in enumerate(range(i + 1, len(members))):
            per_dim = {}
            for di, dim in enumerate(DIMENSIONS):
                only_a, only_b = int(only[di][i, j]), int(only[di][j, i])
                ok = usable[offset][di]
                per_dim[dim] = DimensionTest(
                    dimension=dim,
                    diff=observed_l[offset][di] if ok else None,
                    ci=(low_l[offset][di], high_l[offset][di]) if ok else None,
                    p_bootstrap=p_boot[offset][di] if ok else None,
                    only_a=only_a,
                    only_b=only_b,
                    p_mcnemar=mcnemar_exact(only_a, only_b),
                )
            out.append(PairTest(members[i].key, members[j].key, n_rows, per_dim))
    return out
