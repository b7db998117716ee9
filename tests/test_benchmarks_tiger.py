"""``tiger-editreward``: TIGER's own numbers, exactly, and erb's strict ones beside them.

The snapshot ``snapshots/tiger_parity.json`` is what TIGER's own code printed on erb's
synthetic benchmark (``snapshots/make_tiger_parity.py``); erb must equal it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from editreward_bench.benchmark import BenchmarkError
from editreward_bench.benchmarks import get_adapter
from editreward_bench.benchmarks.strict import judge_pointwise, strict_metrics
from editreward_bench.benchmarks.tiecal import (
    accuracy_with_ties_prefix,
    accuracy_with_ties_threshold,
    accuracy_without_ties,
)
from editreward_bench.benchmarks.tiger import (
    eval_bench_items,
    eval_bench_metrics,
    rebuild_ranking,
    synthetic_rows,
)
from editreward_bench.cli import app

SNAPSHOT = json.loads((Path(__file__).parent / "snapshots" / "tiger_parity.json").read_text())
runner = CliRunner()


@pytest.fixture(scope="module")
def tiger() -> Any:
    return get_adapter("tiger-editreward")


@pytest.fixture(scope="module")
def bench(tiger: Any) -> Any:
    return tiger.load("mini")


def alias_of(bench: Any) -> dict[str, str]:
    out = {}
    for key, places in bench.locations.items():
        assert len(places) == 1, places
        out[key] = places[0]
    return out


def scores_by_key(bench: Any, by_alias: dict[str, float]) -> dict[str, float | None]:
    return {bench.aliases[a]: v for a, v in by_alias.items()}


def test_the_hub_rows_map_onto_eval_bench_json_as_an_independent_mapping_does(bench) -> None:
    names = alias_of(bench)
    ours = {
        part: [
            {
                "prompt": item["prompt"],
                "paths_generated": [names[k] for k in item["paths_generated"]],
                "human_vote": item["human_vote"],
            }
            for item in items
        ]
        for part, items in eval_bench_items(bench).items()
    }
    theirs = {
        part: [{k: v for k, v in item.items() if k != "path_src"} for item in items]
        for part, items in SNAPSHOT["eval_bench_items"].items()
    }
    assert ours == theirs


def test_eval_bench_numbers_equal_tigers_own_code(bench, tiger) -> None:
    scores = scores_by_key(bench, SNAPSHOT["scores"])
    metrics, _extra = eval_bench_metrics(eval_bench_items(bench), scores)
    assert metrics == SNAPSHOT["eval_bench"]
    result = tiger.authors_pointwise(bench, scores)
    assert result.metrics == SNAPSHOT["eval_bench"]
    assert result.headline == (
        "overall strict_ranking_accuracy",
        SNAPSHOT["eval_bench"]["overall"]["strict_ranking_accuracy"],
    )


def test_inference_scripts_counts_equal_tigers_own_code(bench, tiger) -> None:
    verdicts = {(int(r), "forward"): v for r, v in SNAPSHOT["verdicts"].items()}
    assert all(c.row == c.index for c in bench.comparisons)
    result = tiger.authors_pairwise(bench, verdicts)
    assert result.metrics == SNAPSHOT["inference"]
    parts = SNAPSHOT["inference"]
    pooled = (parts["2pair"]["correct_examples"] + parts["3pair"]["correct_groups"]
              + parts["4pair"]["correct_groups"]) / (parts["2pair"]["total_examples"]
              + parts["3pair"]["total_groups"] + parts["4pair"]["total_groups"])  # fmt: skip
    assert result.headline == ("overall_group_accuracy", pooled)


def test_verdicts_in_the_swapped_order_are_mapped_back(bench, tiger) -> None:
    forward = {(int(r), "forward"): v for r, v in SNAPSHOT["verdicts"].items()}
    swap = {"first": "second", "second": "first"}
    reverse = {(i, "reverse"): swap.get(v or "", v) for (i, _), v in forward.items()}
    assert tiger.authors_pairwise(bench, reverse).metrics == SNAPSHOT["inference"]


def test_calc_accuracy_worked_example_equals_upstream() -> None:
    example = SNAPSHOT["calc_accuracy_example"]
    assert accuracy_with_ties_prefix(example["h"], example["m"]) == example["with_ties"]
    assert accuracy_without_ties(example["h"], example["m"]) == example["without_ties"]
    assert example["with_ties"] == 6 / 9 and example["without_ties"] == 5 / 6


def test_tie_calibration_equals_upstream_on_seeded_cases() -> None:
    for case in SNAPSHOT["tie_calibration_cases"]:
        h, m = case["h"], case["m"]
        assert accuracy_with_ties_prefix(h, m) == case["with_ties"], case
        assert list(accuracy_with_ties_threshold(h, m)) == case["threshold"], case
        assert accuracy_without_ties(h, m) == case["without_ties"], case


def test_tie_calibration_by_hand() -> None:
    # Threshold variant: eps 0 -> C (rows 1, 2) + Thm (row 3, m = 0) = 3/4; eps .5 -> row 2
    # becomes Tm and row 4 Thm: 1 + 2 = 3/4 again; eps 2 -> 0 + 2 = 2/4. The first best wins.
    h, m = [1, 1, 0, 0], [2.0, 0.5, 0.0, -0.5]
    assert accuracy_with_ties_threshold(h, m) == (0.75, 0.0)
    # Prefix variant: sorted |m| = [0 (h0), .5 (h1), .5 (h0), 2 (h1)]; prefixes of ties give
    # (C_rest + Thm) = 2+1=3, 1+1=2, 1+2=3, 0+2=2 -> best 3/4; "no ties" (2/4) is no candidate.
    assert accuracy_with_ties_prefix(h, m) == 0.75
    assert accuracy_with_ties_prefix([1], [0.5]) == 0.0
    assert accuracy_without_ties([1, -1, 1, 0], [1.0, 1.0, 0.0, 3.0]) == 1 / 3
    assert accuracy_without_ties([0], [1.0]) is None


def test_metrics_json_holds_tigers_numbers_under_their_names(tmp_path: Path, bench) -> None:
    # Predictions named by alias: the keys a person can read.
    lines = [json.dumps({"key": a, "overall": v}) for a, v in SNAPSHOT["scores"].items()]
    preds = tmp_path / "known.jsonl"
    preds.write_text("\n".join(lines) + "\n")
    out = tmp_path / "run"
    result = runner.invoke(app, ["evaluate", "--benchmark", "tiger-editreward", "--dataset",
                                 "mini", "--predictions", str(preds), "--out", str(out),
                                 "--bootstrap", "50"], catch_exceptions=False)  # fmt: skip
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["authors"] == SNAPSHOT["eval_bench"]
    assert metrics["benchmark"]["name"] == "tiger-editreward"
    assert metrics["dataset"]["fingerprint"] == bench.fingerprint
    assert metrics["dataset"]["split"] == "train"
    assert metrics["authors_derived"]["optimal_epsilon_2pair"] is not None
    # erb's strict numbers, by its own definition, on the same scores.
    strict = strict_metrics(judge_pointwise(bench.comparisons,
                                            scores_by_key(bench, SNAPSHOT["scores"])), 50)  # fmt: skip
    assert metrics["strict"]["accuracy"] == strict["accuracy"]
    assert metrics["accuracy"] == {
        "authors": SNAPSHOT["eval_bench"]["overall"]["strict_ranking_accuracy"],
        "strict": strict["accuracy"],
    }
    assert "2-Pair" in result.output and "strict" in result.output


def test_strict_view_by_hand(bench) -> None:
    # Score every edit by its letter: A highest. Then 2-pair rows (A>B, B>A, 3 ties, A>B, B>A,
    # A>B) get right the three A>B rows only; ties need equal scores, and none are equal.
    by_letter = {"A": 4.0, "B": 3.0, "C": 2.0, "D": 1.0}
    scores = {k: by_letter[places[0][-1]] for k, places in bench.locations.items()}
    strict = strict_metrics(judge_pointwise(bench.comparisons, scores), 0)
    two = strict["by_stratum"]["2pair"]
    assert (two["correct"], two["rows"]) == (3, 8)
    # Every edit equal: only the human ties are right (rows 2, 3, 4 and the 3-pair B=C).
    flat = dict.fromkeys(bench.candidates, 1.0)
    strict = strict_metrics(judge_pointwise(bench.comparisons, flat), 0)
    assert strict["correct"] == 4 and strict["judge_ties"] == len(bench) - 4
    assert strict["human_tie_accuracy"] == 1.0 and strict["preference_accuracy"] == 0.0


def test_a_failed_candidate_leaves_its_group_out_of_the_authors_numbers(bench, tiger) -> None:
    scores = scores_by_key(bench, SNAPSHOT["scores"])
    group = bench.details["groups"][-1]
    scores[group.keys[0]] = None
    result = tiger.authors_pointwise(bench, scores)
    assert result.metrics["4-Pair"]["strict_total_samples"] == 2
    assert result.derived["groups_left_out"] == 1
    strict = strict_metrics(judge_pointwise(bench.comparisons, scores), 0)
    assert strict["failed"] == 3  # its three comparisons with the failed edit


# --------------------------------------------------------------------------- rankings


def test_rankings_are_rebuilt_or_refused() -> None:
    assert rebuild_ranking("ABC", [("A", ">", "B"), ("B", ">", "C"), ("A", ">", "C")]) == "A>B>C"
    assert rebuild_ranking("ABC", [("C", ">", "A"), ("A", ">", "B")]) == "C>A>B"  # closure
    assert rebuild_ranking("ABC", [("A", ">", "B"), ("A", ">", "C"), ("B", "=", "C")]) == "A>B=C"
    assert rebuild_ranking("ABC", [("A", ">", "B"), ("B", ">", "C"), ("C", ">", "A")]) is None
    assert rebuild_ranking("ABC", [("A", ">", "B"), ("A", ">", "C")]) is None  # B vs C open
    assert rebuild_ranking("AB", [("A", "=", "B"), ("A", ">", "B")]) is None


def write_rows(path: Path, rows: list[dict[str, Any]]) -> Path:
    import datasets

    from editreward_bench.benchmarks.tiger import TigerEditReward

    features = TigerEditReward().synthetic_dataset().features
    datasets.Dataset.from_list(rows, features=features).to_parquet(str(path))
    return path


def test_contradicting_rows_are_refused_naming_the_group(tmp_path: Path, tiger) -> None:
    rows = synthetic_rows()
    group = [r for r in rows if r["id"].startswith("3p000_")]
    by_type = {r["comparison_type"]: r for r in group}
    by_type["AvsC"]["ranking"] = "C>A"  # A>B, B>C, C>A: a cycle
    with pytest.raises(BenchmarkError, match=r"3pair group '3p000'.*contradict"):
        tiger.load(write_rows(tmp_path / "bad.parquet", rows))


def test_bad_values_name_their_rows(tmp_path: Path, tiger) -> None:
    rows = synthetic_rows()
    rows[9]["ranking"] = "A>D"
    with pytest.raises(BenchmarkError, match=r"row 9 \(3pair, AvsC\): ranking='A>D'"):
        tiger.load(write_rows(tmp_path / "a.parquet", rows))
    rows = synthetic_rows()
    rows[1]["dataset"] = "5pair"
    with pytest.raises(BenchmarkError, match=r"row 1: dataset='5pair'"):
        tiger.load(write_rows(tmp_path / "b.parquet", rows))
    rows = synthetic_rows()
    rows[12]["comparison_type"] = "AvsD"
    with pytest.raises(BenchmarkError, match=r"row 12 \(3pair\): comparison_type='AvsD'"):
        tiger.load(write_rows(tmp_path / "c.parquet", rows))


def test_missing_columns_say_what_was_expected(tmp_path: Path, tiger) -> None:
    import datasets

    rows = [{k: v for k, v in r.items() if k != "ranking"} for r in synthetic_rows()]
    datasets.Dataset.from_list(rows).to_parquet(str(tmp_path / "x.parquet"))
    with pytest.raises(BenchmarkError, match=r"missing column\(s\) \['ranking'\]; expected"):
        tiger.load(tmp_path / "x.parquet")


def test_editscore_data_is_sent_to_its_own_benchmark(tiger) -> None:
    from editreward_bench.resources import mini_dir

    with pytest.raises(BenchmarkError, match="--benchmark editreward-bench"):
        tiger.load(mini_dir())


def test_a_hub_layout_reads_each_row_once(tmp_path: Path, tiger, bench) -> None:
    rows = synthetic_rows()
    for kind in ("2pair", "3pair", "4pair"):
        (tmp_path / "hub" / kind).mkdir(parents=True)
        write_rows(tmp_path / "hub" / kind / "train-00000.parquet",
                   [r for r in rows if r["dataset"] == kind])  # fmt: skip
    # A stray export of everything beside the parts must not be read too.
    write_rows(tmp_path / "hub" / "all.parquet", rows)
    loaded = tiger.load(tmp_path / "hub")
    assert len(loaded) == len(rows) == 38
    assert loaded.fingerprint == bench.fingerprint
    one = tiger.load(write_rows(tmp_path / "one.parquet", rows))  # one default config
    assert len(one) == 38 and one.fingerprint == bench.fingerprint


def test_repeated_two_pair_ids_are_separate_groups_and_extra_columns_are_tolerated(bench) -> None:
    twos = [c for c in bench.comparisons if c.stratum == "2pair"]
    assert [c.row_id for c in twos].count("2p-003") == 2
    assert len({c.group for c in twos}) == len(twos)


def test_plain_a_equals_b_is_a_tie_and_tigers_parsers_read_it_as_they_do(bench, tiger) -> None:
    from editreward_bench.benchmarks.tiger import tiger_answer

    plain = next(c for c in bench.comparisons if c.raw_label == "A=B")
    good = next(c for c in bench.comparisons if c.raw_label == "A=B=Good")
    assert plain.label == good.label == "tie"
    # inference_2pair_hf.py answers A=B for any tie: only the plain ranking can match it.
    assert tiger_answer(plain, "tie-good") == "A=B" == plain.raw_label
    assert tiger_answer(good, "tie") != good.raw_label
    group = next(g for g in bench.details["groups"] if g.comparisons == (plain.index,))
    assert group.ranking == "A=B=Good"  # eval_bench.py's tie form
    # A tie inside a 3-pair group: the 3/4-pair parsers never answer one.
    inner = next(c for c in bench.comparisons if c.stratum == "3pair" and c.label == "tie")
    assert tiger_answer(inner, "tie") == "Unknown"


def test_one_candidate_shared_by_rows_is_judged_once(tmp_path: Path, bench) -> None:
    # Each letter of a 3-pair group is in two comparison rows; each 4-pair letter in three.
    rows_per_key: dict[str, int] = {}
    for c in bench.comparisons:
        for k in c.keys:
            rows_per_key[k] = rows_per_key.get(k, 0) + 1
    assert max(rows_per_key.values()) == 3
    out = tmp_path / "run"
    store = tmp_path / "store.sqlite"
    result = runner.invoke(app, ["evaluate", "--benchmark", "tiger-editreward", "--dataset",
                                 "mini", "--judge", "image-diff", "--out", str(out), "--store",
                                 str(store), "--bootstrap", "0"], catch_exceptions=False)  # fmt: skip
    assert result.exit_code == 0, result.output
    usage = json.loads((out / "metrics.json").read_text())["usage"]
    assert usage["passes_judged_now"] == len(bench.candidates) == 40 < 2 * len(bench)
    # Another benchmark sharing an edit: GenAI-Bench's synthetic row 0 is TIGER's row 0.
    out2 = tmp_path / "run2"
    result = runner.invoke(app, ["evaluate", "--benchmark", "genai-bench-edit", "--dataset",
                                 "mini", "--judge", "image-diff", "--out", str(out2), "--store",
                                 str(store), "--bootstrap", "0"], catch_exceptions=False)  # fmt: skip
    assert result.exit_code == 0, result.output
    usage = json.loads((out2 / "metrics.json").read_text())["usage"]
    assert usage["passes_reused"] == 2 and usage["passes_judged_now"] == 18


def test_limit_keeps_whole_groups(tmp_path: Path) -> None:
    out = tmp_path / "run"
    preds = tmp_path / "p.jsonl"
    preds.write_text("".join(json.dumps({"key": a, "overall": v}) + "\n"
                             for a, v in SNAPSHOT["scores"].items()))  # fmt: skip
    result = runner.invoke(app, ["evaluate", "--benchmark", "tiger-editreward", "--dataset",
                                 "mini", "--predictions", str(preds), "--limit", "9", "--out",
                                 str(out), "--bootstrap", "0"], catch_exceptions=False)  # fmt: skip
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    # 8 two-pair rows, then the first 3-pair row: its whole group (3 rows) comes along.
    assert metrics["dataset"]["rows"] == 11
    assert metrics["authors"]["3-Pair"]["strict_total_samples"] == 1
    assert "4-Pair" not in metrics["authors"]


def test_data_info_and_keys(tmp_path: Path, bench) -> None:
    result = runner.invoke(app, ["data", "info", "mini", "--benchmark", "tiger-editreward",
                                 "--json"], catch_exceptions=False)  # fmt: skip
    assert result.exit_code == 0, result.output
    info = json.loads(result.output)
    assert info["rows"] == 38 and info["groups"] == 15 and info["synthetic"] is True
    assert info["labels"]["2pair"] == {"first": 3, "second": 2, "tie": 3}
    result = runner.invoke(app, ["data", "info", "mini", "--benchmark", "tiger-editreward",
                                 "--keys"], catch_exceptions=False)  # fmt: skip
    lines = [json.loads(x) for x in result.output.splitlines()]
    assert len(lines) == 40 and lines[0]["aliases"] == ["2pair/0/A"]
