"""The cross-benchmark leaderboard: a column group per benchmark, judges as rows."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest
from conftest import REPO
from typer.testing import CliRunner

from editreward_bench.benchmarks import get_adapter
from editreward_bench.benchmarks.reported import headline_numbers, read_reported
from editreward_bench.cli import app
from editreward_bench.testing.fake_pairwise import PairwiseFakeServer

runner = CliRunner()


def invoke(*args: str) -> Any:
    result = runner.invoke(app, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result


def predictions(tmp_path: Path, name: str, split: str | None = None) -> Path:
    bench = get_adapter(name).load("mini", split=split)
    path = tmp_path / f"{name}-{split}.jsonl"
    path.write_text("".join(
        json.dumps({"key": k, "overall": float(i % 3)}) + "\n" for i, k in enumerate(bench.candidates)
    ))  # fmt: skip
    return path


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("lb")
    root = tmp / "runs"
    store = str(tmp / "store.sqlite")
    invoke("evaluate", "--dataset", "mini", "--judge", "image-diff", "--out",
           str(root / "er-diff"), "--store", store, "--bootstrap", "50")  # fmt: skip
    invoke("evaluate", "--benchmark", "tiger-editreward", "--dataset", "mini", "--judge",
           "image-diff", "--out", str(root / "tiger-diff"), "--store", store,
           "--bootstrap", "50")  # fmt: skip
    for split in ("test", "test_v1"):
        invoke("evaluate", "--benchmark", "genai-bench-edit", "--dataset", "mini", "--split",
               split, "--predictions", str(predictions(tmp, "genai-bench-edit", split)),
               "--name", "scores", "--out", str(root / f"genai-{split}"))  # fmt: skip
    card = tmp / "fake.toml"
    with PairwiseFakeServer(bias=0.5) as server:
        card.write_text(
            'name = "fake-pairwise"\nkind = "pairwise"\nprompt = "edit-preference"\n'
            f'backend = "openai"\nmodel = "fake-judge"\n[options]\nbase_url = "{server.url}"\n'
        )
        invoke("evaluate", "--benchmark", "mmrb2-edit", "--dataset", "mini", "--judge",
               str(card), "--orders", "both", "--out", str(root / "mmrb2-pw"), "--store", store,
               "--bootstrap", "50")  # fmt: skip
    return root


def test_reported_numbers_are_read_with_their_source() -> None:
    numbers = read_reported()
    assert {n.benchmark for n in numbers} == {"tiger-editreward", "genai-bench-edit", "mmrb2-edit"}
    assert all(n.source and 0 <= n.value <= 1 for n in numbers)
    gpt5 = {(n.benchmark, n.metric): n.value for n in numbers if n.judge == "GPT-5"}
    assert gpt5[("tiger-editreward", "Overall")] == 0.3781
    assert gpt5[("mmrb2-edit", "accuracy")] == 0.738
    assert all(n.metric in ("Overall", "accuracy") for n in headline_numbers())


def test_one_page_with_a_column_group_per_benchmark(runs: Path) -> None:
    result = invoke("leaderboard", str(runs), "--format", "csv")
    lines = list(csv.DictReader(io.StringIO(result.stdout)))
    measured = [x for x in lines if x["reported"] == "False"]
    # Each cell comes from a run on that cell's benchmark and dataset: never mixed.
    for line in measured:
        metrics = json.loads((Path(line["origin"]) / "metrics.json").read_text())
        bench = metrics.get("benchmark", {}).get("name", "editreward-bench")
        assert bench == line["benchmark"]
        assert (metrics["dataset"].get("split") or "") == line["split"]
    by_judge: dict[str, set[tuple[str, str]]] = {}
    for line in measured:
        by_judge.setdefault(line["judge"], set()).add((line["benchmark"], line["split"]))
    # One row per judge across benchmarks; GenAI-Bench's two splits are two groups.
    assert by_judge["image-diff (k=1)"] == {("editreward-bench", ""), ("tiger-editreward", "train")}
    assert by_judge["scores (k=1)"] == {
        ("genai-bench-edit", "test"),
        ("genai-bench-edit", "test_v1"),
    }
    assert by_judge["fake-pairwise (pairwise, orders both)"] == {("mmrb2-edit", "test")}
    # The authors' metric and erb's strict one, clearly named.
    tiger = next(x for x in measured if x["benchmark"] == "tiger-editreward")
    assert tiger["authors_metric"] == "overall strict_ranking_accuracy"
    assert tiger["authors"] and tiger["erb_strict"]
    # Reported rows, with their source, in their benchmark's group (real data: as published).
    reported = [x for x in lines if x["reported"] == "True"]
    gpt5 = next(x for x in reported if x["judge"] == "GPT-5 (reported, pairwise)"
                and x["benchmark"] == "tiger-editreward")  # fmt: skip
    assert gpt5["authors"] == "0.378" and gpt5["erb_strict"] == ""
    assert "arXiv:2509.26346" in gpt5["origin"] and gpt5["dataset"] == "as published"
    assert any(x["benchmark"] == "editreward-bench" for x in reported)


def test_markdown_and_html_pages(runs: Path, tmp_path: Path) -> None:
    md = invoke("leaderboard", str(runs), "--format", "md").stdout
    header = md.splitlines()[0]
    assert "TIGER EditReward-Bench, split train, SYNTHETIC mini: authors" in header
    assert "TIGER EditReward-Bench, split train, SYNTHETIC mini: erb strict" in header
    assert "GenAI-Bench (image editing), split test, SYNTHETIC mini" in header
    assert "GenAI-Bench (image editing), split test_v1, SYNTHETIC mini" in header
    row = next(line for line in md.splitlines() if line.startswith("| fake-pairwise"))
    assert row.count("|  |") >= 4  # empty cells where the judge has no run
    assert "CC BY-NC 4.0" in md
    page = tmp_path / "lb.html"
    result = invoke("leaderboard", str(runs), "--out", str(page))
    assert "one column group per benchmark" in result.output
    text = page.read_text()
    assert text.count("class='group' colspan='2'") >= 6
    assert "erb strict accuracy" in text and "non-commercial" in text


def test_report_and_verify_say_what_covers_other_benchmarks(runs: Path) -> None:
    for command in ("report", "verify"):
        result = runner.invoke(app, [command, str(runs / "tiger-diff")])
        assert result.exit_code == 2
        assert "erb leaderboard" in result.output


def test_editreward_bench_runs_alone_keep_their_leaderboard(tmp_path: Path) -> None:
    out = tmp_path / "run"
    invoke("evaluate", "--predictions", str(REPO / "data" / "mini_predictions.jsonl"),
           "--dataset", "mini", "--out", str(out), "--bootstrap", "20")  # fmt: skip
    md = invoke("leaderboard", str(out), "--format", "md").stdout
    assert "Overall" in md and "authors" not in md
    by = invoke("leaderboard", str(out), "--format", "md", "--by-benchmark").stdout
    assert "EditReward-Bench (EditScore), split train" not in by  # the core run has no split
    assert "EditReward-Bench (EditScore), SYNTHETIC mini: authors" in by
