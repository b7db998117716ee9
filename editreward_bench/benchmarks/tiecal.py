"""Pairwise accuracy with and without ties, as TIGER's EditReward evaluation computes it.

``h`` holds the people's labels (1: the first edit preferred, -1: the second, 0: a tie)
and ``m`` the judge's score differences (first minus second). With a tie threshold
epsilon, each pair falls in one cell::

    +-----------+---------------------------------------+
    |           |     judge: m < -eps | |m| <= eps | m > eps |
    +-----------+---------------------+------------+---------+
    | people -1 |         C           |     Tm     |    D    |
    | people  0 |         Th          |    Thm     |    Th   |
    | people +1 |         D           |     Tm     |    C    |
    +-----------+---------------------+------------+---------+

and accuracy with ties is (C + Thm) / (C + D + Th + Tm + Thm). The epsilon is chosen on
the test set itself to maximise that accuracy ("tie calibration", Deutsch et al.,
arXiv:2305.14324), which is why erb reports these numbers beside its strict one and never
in its place. Two variants exist upstream, and they differ:

- :func:`accuracy_with_ties_prefix` (``calc_accuracy_with_ties``, used for GenAI-Bench):
  pairs are sorted by |m| (a stable sort) and, for j = 1..N, the first j pairs are taken
  as judge ties and the rest not, even where later pairs have the same |m|; the best of
  those N accuracies is returned. "No judge ties at all" is never one of the candidates.
- :func:`accuracy_with_ties_threshold` (``calc_accuracy_with_ties_for_edit_reward_bench``,
  used for EditReward-Bench): epsilon runs over 0 and every distinct |m|, every pair with
  |m| <= epsilon is a tie; the first best epsilon wins and is returned with the accuracy.

:func:`accuracy_without_ties` is C / (C + D) over the pairs people did not tie (a judge
tie, m == 0, counts as D).

Worked example (``calc_accuracy.py``'s own): h = [1, -1, 0, 1, -1, 0, 1, -1, 0] and
m = A - B for A = [0.9, -0.7, 0.1, 0.8, -0.6, 0.2, 0.7, -0.5, 0.3] and
B = [0.1, -0.8, 0.5, 0.5, -0.3, 0.3, 0.4, -0.4, 0.4]: without ties 5/6 (the pair with
m = 0.1 against people's -1 is the miss); with ties (prefix variant) 6/9.
"""

from __future__ import annotations

from collections.abc import Sequence


def contingency(h: Sequence[int], m: Sequence[float], epsilon: float) -> tuple[int, ...]:
    """(C, D, Th, Tm, Thm) for threshold ``epsilon`` (the table above)."""
    c = d = th = tm = thm = 0
    for hi, mi in zip(h, m, strict=True):
        if hi == 0 and abs(mi) <= epsilon:
            thm += 1
        elif hi == 0:
            th += 1
        elif abs(mi) <= epsilon:
            tm += 1
        elif hi * mi > 0:
            c += 1
        else:
            d += 1
    return c, d, th, tm, thm


def accuracy_without_ties(h: Sequence[int], m: Sequence[float]) -> float | None:
    """C / (C + D) over the pairs people did not tie; None when there are none."""
    c, d, _, tm, _ = contingency(h, m, -1)
    return c / (c + d + tm) if c + d + tm else None


def accuracy_with_ties_prefix(h: Sequence[int], m: Sequence[float]) -> float | None:
    """Tie-calibrated accuracy, upstream's incremental variant (see the module docstring).

    None for no pairs (upstream returns minus infinity there).
    """
    n = len(h)
    if n == 0:
        return None
    order = sorted(range(n), key=lambda i: abs(m[i]))  # stable, as sorted(zip(h, m), key=...)
    consistent_left = sum(1 for hi, mi in zip(h, m, strict=True) if hi != 0 and hi * mi > 0)
    both_tie = 0
    best = float("-inf")
    for i in order:
        if h[i] == 0:
            both_tie += 1
        elif h[i] * m[i] > 0:
            consistent_left -= 1
        acc = (consistent_left + both_tie) / n
        if acc > best:
            best = acc
    return best


def accuracy_with_ties_threshold(h: Sequence[int], m: Sequence[float]) -> tuple[float, float]:
    """(best accuracy, its epsilon) over epsilon in [0] + every distinct |m|, first best
    kept; (0.0, 0.0) for no pairs, as upstream."""
    n = len(h)
    if n == 0:
        return 0.0, 0.0
    thresholds = [0.0, *sorted({abs(x) for x in m})]
    order = sorted(range(n), key=lambda i: abs(m[i]))
    consistent = sum(1 for hi, mi in zip(h, m, strict=True) if hi != 0 and hi * mi > 0)
    both_tie = 0
    pos = 0
    best_acc, best_eps = -1.0, -1.0
    for eps in thresholds:
        while pos < n and abs(m[order[pos]]) <= eps:
            i = order[pos]
            if h[i] == 0:
                both_tie += 1
            elif h[i] * m[i] > 0:
                consistent -= 1
            pos += 1
        acc = (consistent + both_tie) / n
        if acc > best_acc:
            best_acc, best_eps = acc, eps
    return best_acc, best_eps
