"""The field's editing-preference benchmarks through one interface.

Each benchmark is an adapter (:class:`~.base.BenchmarkAdapter`) that loads the dataset in
its own schema (with row-naming errors), offers a synthetic copy in that schema
(``--dataset mini``), and scores a judge twice: exactly as the benchmark's authors do,
under their metric names, and by erb's strict rule (:mod:`.strict`), side by side.

- ``editreward-bench``: EditScore's EditReward-Bench, the default (erb's core path);
- ``tiger-editreward``: TIGER-Lab's EditReward-Bench (:mod:`.tiger`);
- ``genai-bench-edit``: GenAI-Bench's image-editing votes (:mod:`.genai`);
- ``mmrb2-edit``: Multimodal RewardBench 2's image-editing pairs (:mod:`.mmrb2`).

Third parties add one through the entry-point group ``editreward_bench.benchmarks``
(:mod:`.registry`). Runs go through :mod:`.run`.
"""

from __future__ import annotations

from .base import (
    AuthorsResult,
    BenchmarkAdapter,
    Comparison,
    PreferenceBenchmark,
)
from .registry import (
    DEFAULT_BENCHMARK,
    ENTRY_POINT_GROUP,
    EditRewardBench,
    UnknownBenchmarkError,
    discover,
    get_adapter,
)

__all__ = [
    "DEFAULT_BENCHMARK",
    "ENTRY_POINT_GROUP",
    "AuthorsResult",
    "BenchmarkAdapter",
    "Comparison",
    "EditRewardBench",
    "PreferenceBenchmark",
    "UnknownBenchmarkError",
    "discover",
    "get_adapter",
]
