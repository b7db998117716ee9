"""A judge whose model, adapter or endpoint was replaced says so everywhere it is shown."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from editreward_bench.cli import app
from editreward_bench.judges import CardError, load_judge
from editreward_bench.runner import default_run_name
from editreward_bench.testing.fake_openai import FakeOpenAIServer

runner = CliRunner()


def test_replaced_model_adapter_or_endpoint_are_in_the_name_and_drop_the_paper_row() -> None:
    plain = load_judge("editscore-72b")
    assert plain.name == "editscore-72b" and plain.card.paper_judge == "EditScore-72B"  # type: ignore[attr-defined]
    judge = load_judge("editscore-72b", model="me/my-vlm", adapter="none")
    assert judge.name == "editscore-72b [model=me/my-vlm, adapter=none]"
    assert judge.card.paper_judge is None  # type: ignore[attr-defined]
    assert judge.describe()["name"] == judge.name and judge.describe()["card"] == "editscore-72b"
    url = load_judge("editscore-72b", base_urls=["http://user:secret@gpu-1:8000/v1"])
    assert url.name == "editscore-72b [base_url=http://***@gpu-1:8000/v1]"
    assert default_run_name(judge.name, 4) == "editscore-72b+model=me--my-vlm+adapter=none-k4"
    with pytest.raises(CardError, match="runs no model"):
        load_judge("image-diff", model="x")


def _evaluate(server: FakeOpenAIServer, tmp_path: Path, *args: str) -> tuple[str, Path]:
    result = runner.invoke(app, [
        "evaluate", "--dataset", "mini", "--limit", "6", "--bootstrap", "0",
        "--store", str(tmp_path / "s.sqlite"), "--base-url", server.url, *args,
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    folder = result.output.split("run folder: ")[-1].strip().split()[0]
    return " ".join(result.output.split()), Path(folder)


def test_runs_with_a_replaced_model_are_named_so_and_priced_only_for_the_card_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with FakeOpenAIServer(models=["gpt-4.1", "other-model"], mode="hash") as server:
        shown, folder = _evaluate(server, tmp_path, "--judge", "gpt-4.1")
        assert "gpt-4.1 [base_url=http://127.0.0.1:" in shown
        assert folder.name.startswith("gpt-4.1+base_url=127.0.0.1-")
        manifest = json.loads((folder / "manifest.json").read_text())
        assert manifest["cost_usd"] > 0  # the card's model: its prices apply
        shown, folder = _evaluate(server, tmp_path, "--judge", "gpt-4.1", "--model", "other-model")
        assert "gpt-4.1 [model=other-model, base_url=" in shown
        manifest = json.loads((folder / "manifest.json").read_text())
        assert "cost_usd" not in manifest  # gpt-4.1's prices are not other-model's
        metrics = json.loads((folder / "metrics.json").read_text())
        assert metrics["judge"]["name"].startswith("gpt-4.1 [model=other-model")
        assert metrics["judge"]["paper_judge"] is None
        board = runner.invoke(app, ["leaderboard", str(folder), "--format", "md"])
        assert "gpt-4.1 \\[model=other-model" in board.output
