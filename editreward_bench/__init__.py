"""erb: the EditReward-Bench toolkit.

Load EditReward-Bench, run reward-model judges over it, and compute pairwise
accuracy exactly as the EditScore paper (arXiv:2509.23909) does.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["RewardModel", "__version__", "load_benchmark", "load_judge"]


def __getattr__(name: str) -> object:
    # Lazy, so `import editreward_bench` (and `erb --help`) stays light.
    if name == "load_benchmark":
        from .benchmark import load_benchmark

        return load_benchmark
    if name == "load_judge":
        from .judges import load_judge

        return load_judge
    if name == "RewardModel":
        from .rewards import RewardModel

        return RewardModel
    raise AttributeError(name)
