"""Finding benchmarks: the built-in adapters and plugins.

Plugins register under the entry-point group ``editreward_bench.benchmarks``; the entry
point's name is the benchmark's name and its object a :class:`~.base.BenchmarkAdapter`
subclass (or instance) whose ``name`` is the same. A plugin that fails to import, is of
the wrong type or takes a built-in name is reported and skipped; the built-ins keep working.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import metadata
from typing import Any

from .base import BenchmarkAdapter

ENTRY_POINT_GROUP = "editreward_bench.benchmarks"
#: EditScore's EditReward-Bench: the default, evaluated by erb's original code path.
DEFAULT_BENCHMARK = "editreward-bench"

_BUILTIN = {
    "tiger-editreward": "editreward_bench.benchmarks.tiger:TigerEditReward",
    "genai-bench-edit": "editreward_bench.benchmarks.genai:GenAIBenchEdit",
    "mmrb2-edit": "editreward_bench.benchmarks.mmrb2:MMRB2Edit",
}


class UnknownBenchmarkError(LookupError):
    pass


class EditRewardBench:
    """The default benchmark: EditScore's EditReward-Bench, scored by erb's core
    (:mod:`editreward_bench.metrics`); listed here so every benchmark is in one place."""

    name = DEFAULT_BENCHMARK
    title = "EditReward-Bench (EditScore)"
    hub_id = "EditScore/EditReward-Bench"
    licence = "Apache-2.0"
    licence_note: str | None = None
    splits: tuple[str, ...] = ("train",)

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "source": self.hub_id,
            "splits": list(self.splits),
            "licence": self.licence,
            "licence_note": None,
            "size": "3,072 rows (ordered pairs; 13 subtasks x 3 dimensions)",
            "label_form": "no label column: the preferred edit is always index 0",
            "authors_metric": (
                "pairwise accuracy per subtask and dimension, macro mean over the 13 subtasks "
                "(PF / C / O); judge ties wrong"
            ),
            "strict_metric": "the same: the authors' metric is already strict",
            "candidate_keys": "the dataset's own key column",
            "paper": "Luo et al., EditScore, arXiv:2509.23909",
        }


Adapter = BenchmarkAdapter | EditRewardBench


@dataclass
class Registry:
    entries: dict[str, Adapter]
    problems: list[str]

    def names(self) -> list[str]:
        return list(self.entries)

    def get(self, name: str) -> Adapter:
        if name in self.entries:
            return self.entries[name]
        close = difflib.get_close_matches(name, self.names(), n=3, cutoff=0.5)
        hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        raise UnknownBenchmarkError(
            f"unknown benchmark {name!r}{hint} (`erb benchmarks` lists them: "
            f"{', '.join(self.names())})"
        )


def _load(path: str) -> Any:
    module, _, attr = path.partition(":")
    return getattr(importlib.import_module(module), attr)


def _instance(obj: Any) -> BenchmarkAdapter:
    if isinstance(obj, type) and issubclass(obj, BenchmarkAdapter):
        return obj()
    if isinstance(obj, BenchmarkAdapter):
        return obj
    raise TypeError(f"entry point object is a {type(obj).__name__}, not a BenchmarkAdapter")


def discover(entry_points: Iterable[metadata.EntryPoint] | None = None) -> Registry:
    """The default benchmark, the built-in adapters, then plugins (never replacing one)."""
    entries: dict[str, Adapter] = {DEFAULT_BENCHMARK: EditRewardBench()}
    for name, path in _BUILTIN.items():
        entries[name] = _instance(_load(path))
    problems: list[str] = []
    eps = (
        list(entry_points)
        if entry_points is not None
        else list(metadata.entry_points(group=ENTRY_POINT_GROUP))
    )
    for ep in eps:
        try:
            adapter = _instance(ep.load())
        except Exception as exc:  # third-party code: report, never crash
            problems.append(
                f"plugin benchmark {ep.name!r} ({ep.value}) was skipped: {type(exc).__name__}: {exc}"
            )
            continue
        if adapter.name != ep.name:
            problems.append(
                f"plugin benchmark {ep.name!r} ({ep.value}) was skipped: its adapter is named "
                f"{adapter.name!r}"
            )
            continue
        if ep.name in entries:
            problems.append(
                f"plugin benchmark {ep.name!r} ({ep.value}) was skipped: the name is taken"
            )
            continue
        entries[ep.name] = adapter
    return Registry(entries, problems)


def get_adapter(name: str, registry: Registry | None = None) -> Adapter:
    """A benchmark by name; :class:`UnknownBenchmarkError` (with "did you mean") otherwise."""
    return (registry or discover()).get(name)
