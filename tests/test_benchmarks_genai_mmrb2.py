"""``genai-bench-edit`` and ``mmrb2-edit``: schemas, the authors' counts, erb's strict view."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from editreward_bench.benchmark import BenchmarkError
from editreward_bench.benchmarks import get_adapter
from editreward_bench.benchmarks.genai import synthetic_rows as genai_rows
from editreward_bench.benchmarks.mmrb2 import synthetic_rows as mmrb2_rows
from editreward_bench.benchmarks.mmrb2 import task_accuracy
from editreward_bench.benchmarks.strict import judge_pairwise, judge_pointwise, strict_metrics
from editreward_bench.cli import app

SNAPSHOT = json.loads((Path(__file__).parent / "snapshots" / "tiger_parity.json").read_text())
runner = CliRunner()


@pytest.fixture(scope="module")
def genai() -> Any:
    return get_adapter("genai-bench-edit")


@pytest.fixture(scope="module")
def mmrb2() -> Any:
    return get_adapter("mmrb2-edit")


def write(adapter: Any, path: Path, rows: list[dict[str, Any]]) -> Path:
    import datasets

    features = adapter.synthetic_dataset().features
    datasets.Dataset.from_list(rows, features=features).to_parquet(str(path))
    return path


# --------------------------------------------------------------------------- GenAI-Bench


@pytest.mark.parametrize("split", ["test", "test_v1"])
def test_genai_pointwise_numbers_equal_eval_bench_functions(genai, split) -> None:
    bench = genai.load("mini", split=split)
    expected = SNAPSHOT["genai"][split]
    scores = {bench.aliases[a]: v for a, v in expected["scores"].items()}
    result = genai.authors_pointwise(bench, scores)
    assert result.metrics == {
        "samples": expected["samples"],
        "accuracy_with_ties": expected["accuracy_with_ties"],
        "accuracy_without_ties": expected["accuracy_without_ties"],
    }
    assert result.headline == ("accuracy_with_ties", expected["accuracy_with_ties"])


def test_genai_metrics_json_holds_the_authors_numbers(tmp_path: Path) -> None:
    expected = SNAPSHOT["genai"]["test_v1"]
    preds = tmp_path / "known.jsonl"
    preds.write_text("".join(
        json.dumps({"key": alias, "overall": v}) + "\n" for alias, v in expected["scores"].items()
    ))  # fmt: skip
    out = tmp_path / "run"
    result = runner.invoke(app, ["evaluate", "--benchmark", "genai-bench-edit", "--dataset",
                                 "mini", "--split", "test_v1", "--predictions", str(preds),
                                 "--out", str(out)], catch_exceptions=False)  # fmt: skip
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["authors"] == {k: expected[k] for k in ("samples", "accuracy_with_ties",
                                                           "accuracy_without_ties")}  # fmt: skip
    assert metrics["dataset"]["split"] == "test_v1"


def test_strict_worked_example_of_the_module_docstring() -> None:
    from editreward_bench.benchmarks.base import Comparison

    cases = [("first", 3, 1), ("first", 2, 2), ("second", 1, 4), ("tie", 5, 5), ("tie", 5, 4)]
    comparisons, scores = [], {}
    for i, (label, s0, s1) in enumerate(cases):
        keys = (f"a{i}", f"b{i}")
        comparisons.append(Comparison(i, i, str(i), str(i), "s", keys, label, label))  # type: ignore[arg-type]
        scores.update({keys[0]: float(s0), keys[1]: float(s1)})
    strict = strict_metrics(judge_pointwise(comparisons, scores), 0)
    assert strict["accuracy"] == 3 / 5 and strict["preference_accuracy"] == 2 / 3
    assert strict["judge_ties"] == 1 and strict["human_tie_accuracy"] == 1 / 2


def test_the_split_is_part_of_the_identity(genai, tmp_path: Path) -> None:
    test = genai.load("mini", split="test")
    v1 = genai.load("mini", split="test_v1")
    assert test.fingerprint != v1.fingerprint
    assert test.describe()["split"] == "test" and v1.describe()["split"] == "test_v1"
    # The same rows called by another split are another dataset.
    path = write(genai, tmp_path / "rows.parquet", genai_rows("test"))
    assert genai.load(path, split="test").fingerprint == test.fingerprint
    assert genai.load(path, split="test_v1").fingerprint != test.fingerprint
    with pytest.raises(BenchmarkError, match=r"no split 'dev'; it has \['test', 'test_v1'\]"):
        genai.load("mini", split="dev")


def test_genai_pairwise_count_by_hand(genai) -> None:
    bench = genai.load("mini")
    votes = [c.raw_label for c in bench.comparisons[:4]]
    assert votes == ["leftvote", "rightvote", "tievote", "bothbad_vote"]
    # Row 0 leftvote: "tie" wrong. Row 1 rightvote: "second" right. Row 2 tievote: "tie-bad"
    # wrong (A=B=Bad). Row 3 bothbad: "tie" right ([[A=B]] counts for both ties).
    verdicts = {(0, "forward"): "tie", (1, "forward"): "second", (2, "forward"): "tie-bad",
                (3, "forward"): "tie"}  # fmt: skip
    small = _first(bench, 4)
    result = genai.authors_pairwise(small, verdicts)
    assert result.metrics == {"accuracy": 0.5, "correct": 2, "total": 4}
    # A failure is wrong; a verdict seen swapped is mapped back ("first" shown swapped = right).
    result = genai.authors_pairwise(small, {(0, "forward"): None, (1, "reverse"): "first"})
    assert result.metrics == {"accuracy": 0.5, "correct": 1, "total": 2}
    # erb's strict view: a tie is a tie (tie-bad on a tievote is right), failures wrong.
    strict = strict_metrics(judge_pairwise(small.comparisons, verdicts), 0)
    assert (strict["correct"], strict["rows"]) == (3, 4)


def _first(bench: Any, n: int) -> Any:
    import dataclasses

    return dataclasses.replace(bench, comparisons=bench.comparisons[:n])


def test_genai_strict_pointwise_by_hand(genai) -> None:
    bench = _first(genai.load("mini"), 4)
    keys = [c.keys for c in bench.comparisons]
    scores = {
        keys[0][0]: 5.0, keys[0][1]: 5.0,  # leftvote, judge tie: wrong (a tie)
        keys[1][0]: 1.0, keys[1][1]: 2.0,  # rightvote: right
        keys[2][0]: 3.0, keys[2][1]: 3.0,  # tievote, equal scores: right
        keys[3][0]: 1.0, keys[3][1]: 1.5,  # both-bad (a tie), unequal: wrong
    }  # fmt: skip
    strict = strict_metrics(judge_pointwise(bench.comparisons, scores), 0)
    assert strict["accuracy"] == 0.5 and strict["judge_ties"] == 1
    assert strict["preference_accuracy"] == 0.5 and strict["human_tie_accuracy"] == 0.5


def test_genai_schema_errors_name_what_was_expected(genai, tmp_path: Path) -> None:
    rows = genai_rows("test")
    rows[4]["vote_type"] = "leftvote_maybe"
    with pytest.raises(BenchmarkError, match=r"row 4: vote_type='leftvote_maybe'"):
        genai.load(write(genai, tmp_path / "a.parquet", rows))
    import datasets

    bare = [{k: v for k, v in r.items() if k != "right_output_image"} for r in genai_rows("test")]
    datasets.Dataset.from_list(bare).to_parquet(str(tmp_path / "b.parquet"))
    with pytest.raises(BenchmarkError, match=r"missing column\(s\) \['right_output_image'\]"):
        genai.load(tmp_path / "b.parquet")


# --------------------------------------------------------------------------- MMRB2


def test_compute_accuracy_by_hand() -> None:
    chosen = {"p1": "A", "p2": "B", "p3": "A"}
    predictions = {
        "p1": {"forward": "A", "reverse": "B"},  # both right (reverse B flips to A)
        "p2": {"forward": "A", "reverse": None},  # wrong; no reverse judgment
    }
    assert task_accuracy(chosen, predictions) == {
        "task_name": "edit", "total_pairs": 3, "evaluated_pairs": 2, "missing_pairs": 1,
        "total_correct": 2, "total_evaluated": 3, "accuracy": 2 / 3,
    }  # fmt: skip
    assert task_accuracy({"p": "A"}, {})["accuracy"] == 0.0


def test_mmrb2_pointwise_counts_both_orders(mmrb2) -> None:
    bench = mmrb2.load("mini")
    assert bench.comparisons[0].raw_label == "A" and bench.comparisons[1].raw_label == "B"
    assert bench.comparisons[4].raw_label == "A"  # written "a" in the data
    assert bench.candidates[bench.comparisons[0].keys[0]].instruction == (
        "Make the square brighter (0)."
    )
    small = _first(bench, 3)
    k = [c.keys for c in small.comparisons]
    scores = {
        k[0][0]: 2.0, k[0][1]: 1.0,  # A chosen, A higher: right twice
        k[1][0]: 1.0, k[1][1]: 1.0,  # equal: 'tie' in both orders, wrong twice
        k[2][0]: None, k[2][1]: 1.0,  # a failed candidate: the pair is missing
    }  # fmt: skip
    result = mmrb2.authors_pointwise(small, scores)
    assert result.metrics == {
        "task_name": "edit", "total_pairs": 3, "evaluated_pairs": 2, "missing_pairs": 1,
        "total_correct": 2, "total_evaluated": 4, "accuracy": 0.5,
    }  # fmt: skip
    strict = strict_metrics(judge_pointwise(small.comparisons, scores), 0)
    assert (strict["correct"], strict["failed"], strict["judge_ties"]) == (1, 1, 1)
    assert strict["accuracy"] == 1 / 3


def test_mmrb2_pairwise_failures_are_no_judgment(mmrb2) -> None:
    bench = _first(mmrb2.load("mini"), 2)
    verdicts = {(0, "forward"): "first", (0, "reverse"): None, (1, "forward"): "tie-good",
                (1, "reverse"): "first"}  # fmt: skip
    result = mmrb2.authors_pairwise(bench, verdicts)
    # Row 0: A right, reverse failed (not counted). Row 1 (B chosen): tie wrong; reverse
    # "first" = the B shown first: right.
    assert result.metrics["total_evaluated"] == 3 and result.metrics["total_correct"] == 2


def test_mmrb2_schema_errors_name_rows(mmrb2, tmp_path: Path) -> None:
    rows = mmrb2_rows()
    rows[2]["chosen"] = "C"
    with pytest.raises(
        BenchmarkError, match=r"row 2 \('synthetic_edit_2_model-a_model-b'\): chosen='C'"
    ):
        mmrb2.load(write(mmrb2, tmp_path / "a.parquet", rows))
    rows = mmrb2_rows()
    rows[5]["response_b_images"] = []
    with pytest.raises(BenchmarkError, match=r"row 5 .*response_b_images is empty"):
        mmrb2.load(write(mmrb2, tmp_path / "b.parquet", rows))
    rows = mmrb2_rows()
    rows[3]["pair_id"] = rows[1]["pair_id"]
    with pytest.raises(BenchmarkError, match=r"pair_id must be unique.*rows 1 and 3"):
        mmrb2.load(write(mmrb2, tmp_path / "c.parquet", rows))
    import datasets

    bare = [{k: v for k, v in r.items() if k != "chosen"} for r in mmrb2_rows()]
    datasets.Dataset.from_list(bare).to_parquet(str(tmp_path / "d.parquet"))
    with pytest.raises(BenchmarkError, match=r"missing column\(s\) \['chosen'\]"):
        mmrb2.load(tmp_path / "d.parquet")


def test_mmrb2_says_its_licence_on_load_and_in_reports(tmp_path: Path, mmrb2) -> None:
    result = runner.invoke(app, ["data", "info", "mini", "--benchmark", "mmrb2-edit"])
    assert result.exit_code == 0, result.output
    assert "CC BY-NC 4.0" in result.output and "evaluation-only" in result.output
    bench = mmrb2.load("mini")
    preds = tmp_path / "p.jsonl"
    preds.write_text(
        "".join(json.dumps({"key": k, "overall": 1.0}) + "\n" for k in bench.candidates)
    )
    out = tmp_path / "run"
    result = runner.invoke(app, ["evaluate", "--benchmark", "mmrb2-edit", "--dataset", "mini",
                                 "--predictions", str(preds), "--out", str(out)])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "CC BY-NC 4.0" in result.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert "non-commercial" in metrics["benchmark"]["licence_note"]
    assert any("CC BY-NC" in n for n in metrics["authors_notes"])


@pytest.mark.parametrize("name", ["genai-bench-edit", "mmrb2-edit"])
def test_predictions_by_alias_or_key(tmp_path: Path, name) -> None:
    adapter = get_adapter(name)
    bench = adapter.load("mini")
    lines = []
    for i, (alias, key) in enumerate(sorted(bench.aliases.items())):
        shown = alias if i % 2 else key
        lines.append(json.dumps({"key": shown, "overall": float(i % 4)}))
    preds = tmp_path / "p.jsonl"
    preds.write_text("\n".join(lines) + "\n")
    out = tmp_path / "run"
    result = runner.invoke(app, ["evaluate", "--benchmark", name, "--dataset", "mini",
                                 "--predictions", str(preds), "--out", str(out)])  # fmt: skip
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["failures"] == 0
    assert metrics["strict"]["rows"] == len(bench)
