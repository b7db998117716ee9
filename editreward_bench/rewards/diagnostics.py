"""Reward diagnostics for GRPO: is this batch of rewards any signal?

GRPO turns rewards into advantages within a *group* (the samples of one prompt):
a group whose rewards are all equal has zero spread and gives no gradient, and a
batch where the judge says the instruction was not followed at all
(prompt-following 0) is a batch the policy cannot learn from either.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .model import RewardResult


def reward_diagnostics(
    results: Sequence[RewardResult], groups: Sequence[str | None] | None = None
) -> dict[str, Any]:
    """Figures of one batch of rewards (the reward is ``overall``).

    - ``prompt_following_zero_share``: the share of scored items whose prompt-following
      score is 0 (None when nothing was scored);
    - ``group_std``: the population standard deviation (``np.std``, as Flow-GRPO's
      per-prompt statistics) of the rewards of each group with at least two scored items;
    - ``mean_group_std`` and ``zero_spread_group_share``: their mean, and the share of
      those groups whose rewards are all equal.

    ``groups`` is aligned with ``results``; items without a group are in none.
    """
    scored = [r for r in results if r.overall is not None]
    zero_pf = sum(1 for r in scored if r.prompt_following == 0)
    by_group: dict[str, list[float]] = {}
    for result, group in zip(results, groups or [None] * len(results), strict=True):
        if group is not None and result.overall is not None:
            by_group.setdefault(group, []).append(result.overall)
    spreads = {g: float(np.std(v)) for g, v in by_group.items() if len(v) >= 2}
    zero = sum(1 for g, v in by_group.items() if len(v) >= 2 and min(v) == max(v))
    return {
        "items": len(results),
        "scored": len(scored),
        "failed": len(results) - len(scored),
        "prompt_following_zero": zero_pf,
        "prompt_following_zero_share": zero_pf / len(scored) if scored else None,
        "groups": len(spreads),
        "group_std": spreads,
        "mean_group_std": float(np.mean(list(spreads.values()))) if spreads else None,
        "zero_spread_groups": zero,
        "zero_spread_group_share": zero / len(spreads) if spreads else None,
    }
