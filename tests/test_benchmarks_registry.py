"""The benchmark registry: built-ins, plugins through an entry point, and `erb benchmarks`."""

from __future__ import annotations

import json
from importlib import metadata

import pytest
from typer.testing import CliRunner

from editreward_bench.benchmarks import (
    ENTRY_POINT_GROUP,
    UnknownBenchmarkError,
    discover,
    get_adapter,
)
from editreward_bench.benchmarks.tiger import TigerEditReward
from editreward_bench.cli import app


class ToyBenchmark(TigerEditReward):
    """A third party's benchmark: TIGER's schema under another name."""

    name = "toy-bench"
    title = "Toy"


NOT_AN_ADAPTER = object()


def ep(name: str, attr: str) -> metadata.EntryPoint:
    return metadata.EntryPoint(name, f"test_benchmarks_registry:{attr}", ENTRY_POINT_GROUP)


def test_builtins_and_a_plugin() -> None:
    registry = discover([
        ep("toy-bench", "ToyBenchmark"),
        ep("tiger-editreward", "ToyBenchmark"),  # name mismatch: skipped
        ep("other", "NOT_AN_ADAPTER"),
        ep("missing", "NoSuchThing"),
    ])  # fmt: skip
    assert registry.names() == [
        "editreward-bench", "tiger-editreward", "genai-bench-edit", "mmrb2-edit", "toy-bench",
    ]  # fmt: skip
    assert isinstance(registry.get("toy-bench"), ToyBenchmark)
    assert len(registry.problems) == 3
    assert any("named 'toy-bench'" in p for p in registry.problems)
    bench = registry.get("toy-bench").load("mini")  # type: ignore[union-attr]
    assert bench.benchmark == "toy-bench" and len(bench) == 38


def test_a_plugin_cannot_take_a_builtin_name() -> None:
    class Clash(TigerEditReward):
        name = "mmrb2-edit"

    import test_benchmarks_registry as me

    me.Clash = Clash  # type: ignore[attr-defined]
    registry = discover([ep("mmrb2-edit", "Clash")])
    assert "name is taken" in registry.problems[0]
    assert not isinstance(registry.get("mmrb2-edit"), TigerEditReward)


def test_unknown_names_get_suggestions() -> None:
    with pytest.raises(UnknownBenchmarkError, match="did you mean 'tiger-editreward'"):
        get_adapter("tiger-edit-reward")


def test_erb_benchmarks_lists_them() -> None:
    result = CliRunner().invoke(app, ["benchmarks", "--json"], catch_exceptions=False)
    rows = json.loads(result.output)
    assert [r["name"] for r in rows][:4] == [
        "editreward-bench", "tiger-editreward", "genai-bench-edit", "mmrb2-edit",
    ]  # fmt: skip
    for row in rows:
        assert row["source"] and row["licence"] and row["authors_metric"] and row["strict_metric"]
    result = CliRunner().invoke(app, ["benchmarks"], catch_exceptions=False)
    assert "CC BY-NC 4.0" in result.output
    result = CliRunner().invoke(app, ["evaluate", "--benchmark", "nope", "--judge", "x"])
    assert result.exit_code == 2 and "unknown benchmark 'nope'" in result.output
