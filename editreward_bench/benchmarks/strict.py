"""erb's strict view of a preference benchmark: one rule for every benchmark and judge.

A row (a comparison) is right only when the judge agrees with people, and nothing is
tuned on the test set::

    people prefer one    judge prefers the same one   -> correct
                         judge ties (equal scores)    -> tie (wrong)
                         judge prefers the other one  -> wrong
    people tie           judge ties                   -> correct (equal scores: no threshold)
                         judge prefers either         -> wrong
    judge failed (no score, no verdict)               -> failed (wrong)

Accuracy is correct / rows, pooled over rows (per stratum too: ``2pair``, a split...).
``preference_accuracy`` is the same over the rows where people preferred one edit.
A pairwise judge run in both orders has one judgment per (row, order), each counted;
its position bias is reported apart (:func:`order_statistics`).

Worked example: rows (first, 3 vs 1), (first, 2 vs 2), (second, 1 vs 4), (tie, 5 vs 5),
(tie, 5 vs 4): correct, tie, correct, correct, wrong. Accuracy 3/5 = 0.6; preference
accuracy 2/3; the judge tie on row 2 counts as wrong.

Intervals are 95% percentile bootstraps that resample groups (a TIGER group, else a row),
so rows of one group move together.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from .base import Comparison, three_way

Outcome = Literal["correct", "wrong", "tie", "failed"]


@dataclass(frozen=True, slots=True)
class Judgment:
    """One judgment of one comparison (a pointwise judge gives one per row)."""

    comparison: Comparison
    order: str
    #: The judge's verdict in the dataset's order (first / second / tie), None when failed.
    verdict: str | None
    outcome: Outcome


def pointwise_verdict(s0: float | None, s1: float | None) -> str | None:
    """first / second / tie from two scores; None when either is missing (or NaN)."""
    if s0 is None or s1 is None or math.isnan(s0) or math.isnan(s1):
        return None
    if s0 > s1:
        return "first"
    if s0 < s1:
        return "second"
    return "tie"


def outcome_of(label: str, verdict: str | None) -> Outcome:
    """The strict outcome of one judgment (see the module docstring)."""
    verdict = three_way(verdict)
    if verdict is None:
        return "failed"
    if verdict == label:
        return "correct"
    if verdict == "tie":
        return "tie"
    return "wrong"


def judge_pointwise(
    comparisons: Sequence[Comparison], scores: Mapping[str, float | None]
) -> list[Judgment]:
    out = []
    for c in comparisons:
        verdict = pointwise_verdict(scores.get(c.keys[0]), scores.get(c.keys[1]))
        out.append(Judgment(c, "any", verdict, outcome_of(c.label, verdict)))
    return out


def judge_pairwise(
    comparisons: Sequence[Comparison], verdicts: Mapping[tuple[int, str], str | None]
) -> list[Judgment]:
    """Judgments from verdicts in the order shown (``forward`` / ``reverse``)."""
    out = []
    for c in comparisons:
        for order in ("forward", "reverse"):
            if (c.index, order) not in verdicts:
                continue
            shown = three_way(verdicts[(c.index, order)])
            verdict = shown if order == "forward" else _swap(shown)
            out.append(Judgment(c, order, verdict, outcome_of(c.label, verdict)))
    return out


def _swap(verdict: str | None) -> str | None:
    return {"first": "second", "second": "first"}.get(verdict or "", verdict)


def bootstrap_interval(
    values: Sequence[float],
    clusters: Sequence[str],
    n_resamples: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> list[float] | None:
    """Percentile interval of the mean of ``values``, resampling whole clusters."""
    if not values or n_resamples < 1:
        return None
    index: dict[str, int] = {}
    for c in clusters:
        index.setdefault(c, len(index))
    sums = np.zeros(len(index))
    counts = np.zeros(len(index))
    for v, c in zip(values, clusters, strict=True):
        sums[index[c]] += v
        counts[index[c]] += 1
    rng = np.random.default_rng(seed)
    p = np.full(len(index), 1.0 / len(index))
    estimates = []
    for start in range(0, n_resamples, 200):
        size = min(200, n_resamples - start)
        weights = rng.multinomial(len(index), p, size=size)
        with np.errstate(invalid="ignore", divide="ignore"):
            estimates.append((weights @ sums) / (weights @ counts))
    draws = np.concatenate(estimates)
    draws = draws[~np.isnan(draws)]
    if draws.size == 0:
        return None
    alpha = (1 - level) / 2 * 100
    low, high = np.percentile(draws, [alpha, 100 - alpha])
    return [float(low), float(high)]


def _share(judgments: Sequence[Judgment], n_bootstrap: int) -> dict[str, Any]:
    correct = sum(j.outcome == "correct" for j in judgments)
    return {
        "accuracy": correct / len(judgments) if judgments else None,
        "rows": len(judgments),
        "correct": correct,
        "ci95": bootstrap_interval(
            [float(j.outcome == "correct") for j in judgments],
            [j.comparison.group for j in judgments],
            n_bootstrap,
        ),
    }


def strict_metrics(judgments: Sequence[Judgment], n_bootstrap: int = 1000) -> dict[str, Any]:
    """erb's strict numbers for a list of judgments (see the module docstring)."""
    overall = _share(judgments, n_bootstrap)
    preference = [j for j in judgments if j.comparison.label != "tie"]
    human_ties = [j for j in judgments if j.comparison.label == "tie"]
    strata: dict[str, list[Judgment]] = {}
    for j in judgments:
        strata.setdefault(j.comparison.stratum, []).append(j)
    return {
        **overall,
        "judge_ties": sum(j.outcome == "tie" for j in judgments),
        "failed": sum(j.outcome == "failed" for j in judgments),
        "preference_accuracy": (
            sum(j.outcome == "correct" for j in preference) / len(preference)
            if preference
            else None
        ),
        "preference_rows": len(preference),
        "human_tie_rows": len(human_ties),
        "human_tie_accuracy": (
            sum(j.outcome == "correct" for j in human_ties) / len(human_ties)
            if human_ties
            else None
        ),
        "by_stratum": {s: _share(js, n_bootstrap) for s, js in strata.items()},
    }


def order_statistics(judgments: Sequence[Judgment], n_bootstrap: int = 1000) -> dict[str, Any]:
    """A pairwise judge's position bias: accuracy per order, both-order accuracy, flip rate.

    - ``accuracy_forward`` / ``accuracy_reverse``: strict accuracy of the judgments made
      with the dataset's order shown / with it swapped;
    - ``both_order_accuracy``: over rows judged in both orders, the share right in both;
    - ``flip_rate``: over rows judged in both orders with two verdicts (no failure), the
      share whose verdict changes when the order is swapped (position bias; 0 for a judge
      that ignores the order). Ties count as a verdict: first vs tie is a flip.
    """
    by_row: dict[int, dict[str, Judgment]] = {}
    for j in judgments:
        by_row.setdefault(j.comparison.index, {})[j.order] = j
    both = [(r["forward"], r["reverse"]) for r in by_row.values() if len(r) == 2]
    paired = [(f, r) for f, r in both if f.verdict is not None and r.verdict is not None]
    out: dict[str, Any] = {
        "orders_judged": {
            o: sum(1 for j in judgments if j.order == o) for o in ("forward", "reverse")
        },
    }
    for order in ("forward", "reverse"):
        out[f"accuracy_{order}"] = _share([j for j in judgments if j.order == order], n_bootstrap)
    right_both = [float(f.outcome == "correct" and r.outcome == "correct") for f, r in both]
    groups = [f.comparison.group for f, _ in both]
    out["both_order_accuracy"] = {
        "accuracy": sum(right_both) / len(both) if both else None,
        "rows": len(both),
        "correct": int(sum(right_both)),
        "ci95": bootstrap_interval(right_both, groups, n_bootstrap),
    }
    flips = [float(f.verdict != r.verdict) for f, r in paired]
    out["flip_rate"] = {
        "rate": sum(flips) / len(paired) if paired else None,
        "rows": len(paired),
        "flips": int(sum(flips)),
        "unpaired": len(both) - len(paired),
        "ci95": bootstrap_interval(flips, [f.comparison.group for f, _ in paired], n_bootstrap),
    }
    return out
