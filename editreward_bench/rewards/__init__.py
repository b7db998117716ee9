"""Rewards for RL and Best-of-N: a judge as a reward model, a reward server and trainer clients.

- :class:`RewardModel` scores batches of edits from Python (sync or async);
- ``erb serve-reward`` (:mod:`.server`) serves it as JSON over HTTP (``erb[serve]``);
- :mod:`.flow_grpo` and :mod:`.omnigen2` are drop-in clients for those trainers.
"""

from __future__ import annotations

from .diagnostics import reward_diagnostics
from .items import RewardItem
from .model import RewardModel, RewardResult

__all__ = ["RewardItem", "RewardModel", "RewardResult", "reward_diagnostics"]
