"""Pairwise accuracy exactly as the EditScore paper computes it, and more.

For a row, the judge is correct iff score(candidate 0) > score(candidate 1) on
the row's dimension: judge ties count as wrong, a failed candidate counts as
wrong, and no row is dropped. Contingency per row::

    score0 > score1   -> correct   (1)
    score0 == score1  -> tie       (0; 1/2 with credit="half")
    score0 < score1   -> wrong     (0)
    either missing    -> failed    (0)

Accuracy per (subtask, dimension) cell is correct / rows. A group's accuracy is
the unweighted mean of its subtasks' accuracies; the Overall block is the
unweighted mean of the 13 subtasks (macro, not pooled over rows).

Worked example: subject-add has 3 PF rows, 2 correct (2/3); subject-remove has
1 PF row, correct (1/1); subject-replace has 2 PF rows, one tie and one
correct (1/2). The subject group's PF is (2/3 + 1 + 1/2) / 3 = 0.7222..., while
the pooled accuracy over those 6 rows is 4/6 = 0.6667.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from operator import attrgetter
from typing import Any, Literal

import numpy as np

from .benchmark import Pair
from .taxonomy import DIMENSIONS, GROUPS, OVERALL_BLOCK, SUBSCORES, SUBTASKS

Outcome = Literal["correct", "wrong", "tie", "failed"]
Credit = Literal["strict", "half"]
Scores = Mapping[str, Mapping[str, float] | None]
#: {"overall": {dim: v}, "groups": {g: {dim: v}}, "subtasks": {s: {dim: v}}}
Table = dict[str, Any]


@dataclass(frozen=True, slots=True)
class RowOutcome:
    """How the judge did on one benchmark row."""

    index: int
    subtask: str
    dimension: str
    source_id: str
    keys: tuple[str, str]
    score0: float | None
    score1: float | None
    outcome: Outcome


def row_outcome(score0: float | None, score1: float | None) -> Outcome:
    """Classify one row; the preferred candidate is index 0."""
    if score0 is None or score1 is None or math.isnan(score0) or math.isnan(score1):
        return "failed"
    if score0 > score1:
        return "correct"
    if score0 == score1:
        return "tie"
    return "wrong"


def compare_pairs(pairs: Iterable[Pair], scores: Scores) -> list[RowOutcome]:
    """Outcome of every row; ``scores[key]`` is None (or absent) for a failed candidate."""
    outcomes = []
    for pair in pairs:
        s0, s1 = (_dimension_score(scores.get(k), pair.dimension) for k in pair.keys)
        outcomes.append(
            RowOutcome(
                pair.index,
                pair.subtask,
                pair.dimension,
                pair.source_id,
                pair.keys,
                s0,
                s1,
                row_outcome(s0, s1),
            )
        )
    return outcomes


def _dimension_score(candidate: Mapping[str, float] | None, dimension: str) -> float | None:
    if candidate is None:
        return None
    value = candidate.get(dimension)
    return None if value is None else float(value)


def _credit(outcome: Outcome, credit: Credit) -> float:
    if outcome == "correct":
        return 1.0
    if outcome == "tie" and credit == "half":
        return 0.5
    return 0.0


def _mean(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return sum(present) / len(present) if present else None


def cell_accuracy(
    outcomes: Iterable[RowOutcome], credit: Credit = "strict"
) -> dict[tuple[str, str], float]:
    """Accuracy per (subtask, dimension) cell present in ``outcomes``."""
    sums: dict[tuple[str, str], list[float]] = {}
    for row in outcomes:
        acc = sums.setdefault((row.subtask, row.dimension), [0.0, 0.0])
        acc[0] += _credit(row.outcome, credit)
        acc[1] += 1
    return {cell: c / n for cell, (c, n) in sums.items()}


def macro_table(cells: Mapping[tuple[str, str], float]) -> Table:
    """Subtask cells -> the paper's table: subtasks, groups (mean of subtasks), overall.

    Cells absent from ``cells`` are None; means run over the cells present.
    """
    subtasks = {s: {d: cells.get((s, d)) for d in DIMENSIONS} for s in SUBTASKS}
    groups = {
        g: {d: _mean(subtasks[s][d] for s in members) for d in DIMENSIONS}
        for g, members in GROUPS.items()
    }
    overall = {d: _mean(subtasks[s][d] for s in SUBTASKS) for d in DIMENSIONS}
    return {OVERALL_BLOCK: overall, "groups": groups, "subtasks": subtasks}


def accuracy(outcomes: Sequence[RowOutcome], credit: Credit = "strict") -> Table:
    """The paper's pairwise accuracy table (``credit="strict"``: ties are wrong)."""
    return macro_table(cell_accuracy(outcomes, credit))


def pooled_accuracy(outcomes: Sequence[RowOutcome]) -> dict[str, float | None]:
    """Row-weighted accuracy per dimension (not the paper's number)."""
    result: dict[str, float | None] = {}
    for d in DIMENSIONS:
        rows = [r for r in outcomes if r.dimension == d]
        result[d] = sum(r.outcome == "correct" for r in rows) / len(rows) if rows else None
    return result


def tie_rate(outcomes: Sequence[RowOutcome]) -> dict[str, float | None]:
    """Share of rows per dimension where the judge scored both candidates equal."""
    result: dict[str, float | None] = {}
    for d in DIMENSIONS:
        rows = [r for r in outcomes if r.dimension == d]
        result[d] = sum(r.outcome == "tie" for r in rows) / len(rows) if rows else None
    return result


def missing_cells(outcomes: Sequence[RowOutcome]) -> list[str]:
    """Subtask x dimension cells with no rows, as 'subtask/dimension'."""
    present = {(r.subtask, r.dimension) for r in outcomes}
    return [f"{s}/{d}" for s in SUBTASKS for d in DIMENSIONS if (s, d) not in present]


def _cluster_matrices(outcomes: Sequence[RowOutcome]) -> tuple[np.ndarray, np.ndarray]:
    """Per source cluster: correct and total rows in each of the 39 cells."""
    cell_index = {
        (s, d): i for i, (s, d) in enumerate((s, d) for s in SUBTASKS for d in DIMENSIONS)
    }
    cluster_index: dict[str, int] = {}
    for row in outcomes:
        cluster_index.setdefault(row.source_id, len(cluster_index))
    correct = np.zeros((len(cluster_index), len(cell_index)))
    total = np.zeros_like(correct)
    for row in outcomes:
        c, i = cluster_index[row.source_id], cell_index[(row.subtask, row.dimension)]
        total[c, i] += 1
        correct[c, i] += row.outcome == "correct"
    return correct, total


_BOOTSTRAP_CHUNK = 100


def bootstrap_ci(
    outcomes: Sequence[RowOutcome], n_resamples: int = 1000, seed: int = 0, level: float = 0.95
) -> Table:
    """Percentile intervals of every table entry, resampling source images.

    Rows that share a source image move together (a cluster bootstrap), so the
    interval reflects how many independent images the benchmark has.
    Returns the table shape with ``[low, high]`` (None where a cell is absent).
    """
    correct, total = _cluster_matrices(outcomes)
    n_clusters = correct.shape[0]
    if n_clusters == 0 or n_resamples < 1:  # nothing to resample, or no intervals asked for
        return _map_table(macro_table({}), lambda _: None)
    rng = np.random.default_rng(seed)
    probabilities = np.full(n_clusters, 1.0 / n_clusters)
    chunks = []
    # Draw the resampling weights a chunk at a time: resamples x clusters would
    # otherwise grow with the benchmark (33 MB at 12,288 rows).
    for start in range(0, n_resamples, _BOOTSTRAP_CHUNK):
        size = min(_BOOTSTRAP_CHUNK, n_resamples - start)
        weights = rng.multinomial(n_clusters, probabilities, size=size)
        with np.errstate(invalid="ignore", divide="ignore"):
            chunks.append((weights @ correct) / (weights @ total))  # resamples x cells
    acc = np.concatenate(chunks).reshape(n_resamples, len(SUBTASKS), len(DIMENSIONS))
    present = total.sum(axis=0).reshape(len(SUBTASKS), len(DIMENSIONS)) > 0
    alpha = (1 - level) / 2 * 100

    def interval(samples: np.ndarray) -> list[float] | None:
        samples = samples[~np.isnan(samples)]
        if samples.size == 0:
            return None
        low, high = np.percentile(samples, [alpha, 100 - alpha])
        return [float(low), float(high)]

    def block(indices: list[int], j: int) -> list[float] | None:
        cols = [i for i in indices if present[i, j]]
        if not cols:
            return None
        with warnings.catch_warnings():  # a resample may miss every cell of a block
            warnings.simplefilter("ignore", RuntimeWarning)
            means = np.nanmean(acc[:, cols, j], axis=1)
        return interval(means)

    sub_idx = {s: i for i, s in enumerate(SUBTASKS)}
    table: Table = {
        OVERALL_BLOCK: {d: block(list(range(len(SUBTASKS))), j) for j, d in enumerate(DIMENSIONS)},
        "groups": {
            g: {d: block([sub_idx[s] for s in members], j) for j, d in enumerate(DIMENSIONS)}
            for g, members in GROUPS.items()
        },
        "subtasks": {
            s: {
                d: (interval(acc[:, i, j]) if present[i, j] else None)
                for j, d in enumerate(DIMENSIONS)
            }
            for i, s in enumerate(SUBTASKS)
        },
    }
    return table


def _map_table(table: Table, fn: Any) -> Table:
    return {
        OVERALL_BLOCK: {d: fn(v) for d, v in table[OVERALL_BLOCK].items()},
        "groups": {g: {d: fn(v) for d, v in dims.items()} for g, dims in table["groups"].items()},
        "subtasks": {
            s: {d: fn(v) for d, v in dims.items()} for s, dims in table["subtasks"].items()
        },
    }


# --------------------------------------------------------------------------- Avg@k


@dataclass(frozen=True, slots=True)
class PassScores:
    """What Avg@k needs of one pass record (compact: a run keeps one per pass in memory)."""

    key: str
    pass_index: int
    ok: bool
    prompt_following: float | None = None
    consistency: float | None = None
    perceptual_quality: float | None = None
    overall: float | None = None

    @classmethod
    def of(cls, record: Mapping[str, Any]) -> PassScores:
        """From a pass record (``key``, ``pass``, ``status`` and the sub-scores)."""

        def number(name: str) -> float | None:
            value = record.get(name)
            # A sub-score a judge does not produce (predictions without perceptual
            # quality) stays None instead of poisoning the mean.
            if value is None or (isinstance(value, float) and math.isnan(value)):
                return None
            return float(value)

        return cls(
            str(record["key"]),
            int(record["pass"]),
            record["status"] == "ok",
            *(number(name) for name in SUBSCORES),
        )


def pass_mean(values: Sequence[float]) -> float:
    """The mean of one sub-score over passes, given in pass order, as upstream computes it.

    ``float(np.mean(values))``, like ``EditScore.evaluate`` in ``editscore`` 0.2: numpy's
    pairwise summation differs in the last bit from a running sum from 8 values on, and
    so may another order of the same values.
    """
    return float(np.mean(values))


def avg_at_k(
    passes: Iterable[PassScores], k: int
) -> tuple[dict[str, dict[str, float] | None], dict[str, int]]:
    """Avg@k: per candidate, the mean of each sub-score over its successful passes < k.

    Each mean is :func:`pass_mean` of the values in pass-index order, whatever order the
    records come in; a sub-score a pass lacks (None) is left out of that mean.
    Returns (scores per key, None where no pass < k succeeded; successful pass count per key).
    """
    ok: dict[str, list[PassScores]] = {}
    scores: dict[str, dict[str, float] | None] = {}
    for rec in passes:
        if rec.pass_index >= k:
            continue
        scores.setdefault(rec.key, None)
        if rec.ok:
            ok.setdefault(rec.key, []).append(rec)
    for key, recs in ok.items():
        recs.sort(key=attrgetter("pass_index"))
        means: dict[str, float] = {}
        for name in SUBSCORES:
            values = [v for v in (getattr(r, name) for r in recs) if v is not None]
            if values:
                means[name] = pass_mean(values)
        scores[key] = means
    return scores, {key: len(recs) for key, recs in ok.items()}
