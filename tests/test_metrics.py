"""Pairwise accuracy, checked against hand-computed values and the paper's arithmetic."""

from __future__ import annotations

import csv
import math

import pytest

from editreward_bench.benchmark import Pair
from editreward_bench.metrics import (
    PassScores,
    RowOutcome,
    accuracy,
    avg_at_k,
    bootstrap_ci,
    compare_pairs,
    macro_table,
    missing_cells,
    pooled_accuracy,
    row_outcome,
    tie_rate,
)
from editreward_bench.resources import published_results_csv
from editreward_bench.taxonomy import DIMENSIONS, GROUPS, SUBTASKS


def rows(subtask: str, dimension: str, outcomes: str, source: str = "s") -> list[RowOutcome]:
    """'c' correct, 'w' wrong, 't' tie, 'f' failed."""
    names = {"c": "correct", "w": "wrong", "t": "tie", "f": "failed"}
    return [
        RowOutcome(i, subtask, dimension, f"{source}{i}", ("a", "b"), None, None, names[o])  # type: ignore[arg-type]
        for i, o in enumerate(outcomes)
    ]


def test_row_outcome_strict_greater_and_ties_and_failures() -> None:
    assert row_outcome(7.0, 6.9) == "correct"
    assert row_outcome(6.0, 6.0) == "tie"
    assert row_outcome(1.0, 2.0) == "wrong"
    assert row_outcome(None, 2.0) == "failed"
    assert row_outcome(3.0, math.nan) == "failed"


def test_compare_pairs_uses_the_rows_dimension_and_index_zero_is_preferred() -> None:
    pairs = [
        Pair(0, ("x", "y"), "i", "extract", "prompt_following", "s"),
        Pair(1, ("x", "y"), "i", "extract", "consistency", "s"),
        Pair(2, ("y", "x"), "i", "extract", "consistency", "s"),
        Pair(3, ("x", "z"), "i", "extract", "overall", "s"),
    ]
    scores = {
        "x": {"prompt_following": 9, "consistency": 2, "overall": 5},
        "y": {"prompt_following": 1, "consistency": 8, "overall": 5},
        "z": None,
    }
    got = [o.outcome for o in compare_pairs(pairs, scores)]
    assert got == ["correct", "wrong", "correct", "failed"]


def test_worked_example_from_the_module_docstring() -> None:
    outcomes = (
        rows("subject-add", "prompt_following", "ccw")
        + rows("subject-remove", "prompt_following", "c")
        + rows("subject-replace", "prompt_following", "tc")
    )
    table = accuracy(outcomes)
    assert table["subtasks"]["subject-add"]["prompt_following"] == pytest.approx(2 / 3)
    assert table["subtasks"]["subject-replace"]["prompt_following"] == pytest.approx(1 / 2)
    assert table["groups"]["subject"]["prompt_following"] == pytest.approx((2 / 3 + 1 + 1 / 2) / 3)
    assert table["overall"]["prompt_following"] == pytest.approx((2 / 3 + 1 + 1 / 2) / 3)
    assert pooled_accuracy(outcomes)["prompt_following"] == pytest.approx(4 / 6)
    # half credit for the one tie
    half = accuracy(outcomes, credit="half")
    assert half["subtasks"]["subject-replace"]["prompt_following"] == pytest.approx(3 / 4)
    # cells not present are null, and so are blocks with no cells
    assert table["subtasks"]["extract"]["prompt_following"] is None
    assert table["groups"]["scene"]["prompt_following"] is None
    assert table["overall"]["consistency"] is None


def test_macro_mean_over_unequal_cells_differs_from_pooled() -> None:
    # color_alter: 1 of 1 correct; material_alter: 1 of 9 correct.
    outcomes = rows("color_alter", "overall", "c") + rows("material_alter", "overall", "cwwwwwwww")
    table = accuracy(outcomes)
    assert table["groups"]["appearance"]["overall"] == pytest.approx((1 + 1 / 9) / 2)
    assert pooled_accuracy(outcomes)["overall"] == pytest.approx(2 / 10)


def test_ties_and_failures_count_as_wrong_by_default() -> None:
    outcomes = rows("extract", "consistency", "cttf")
    assert accuracy(outcomes)["subtasks"]["extract"]["consistency"] == pytest.approx(1 / 4)
    assert accuracy(outcomes, credit="half")["subtasks"]["extract"]["consistency"] == pytest.approx(
        2 / 4
    )
    assert tie_rate(outcomes)["consistency"] == pytest.approx(2 / 4)
    assert tie_rate(outcomes)["overall"] is None


def _published() -> dict[tuple[str, int, str], dict[str, float]]:
    table: dict[tuple[str, int, str], dict[str, float]] = {}
    with published_results_csv().open() as fh:
        for rec in csv.DictReader(fh):
            table.setdefault((rec["judge"], int(rec["k"]), rec["dimension"]), {})[rec["block"]] = (
                float(rec["accuracy"])
            )
    return {key: v for key, v in table.items() if len(v) == 5}


def test_paper_overall_is_the_macro_mean_of_13_subtasks_for_every_published_row() -> None:
    """What this proves: the paper's Overall block is the unweighted mean of the 13 subtasks
    (reconstructed from its group numbers, within rounding), for every published row, and not the
    mean of the four groups; so erb's aggregation is the paper's. It does not run any judge."""
    weights = {g: len(members) for g, members in GROUPS.items()}
    published = _published()
    assert len(published) >= 48
    mean_of_groups_off = 0
    for blocks in published.values():
        macro13 = sum(weights[g] * blocks[g] for g in GROUPS) / 13
        assert macro13 == pytest.approx(blocks["overall"], abs=0.0015)
        mean_of_groups_off += abs(sum(blocks[g] for g in GROUPS) / 4 - blocks["overall"]) > 0.0015
    assert mean_of_groups_off > 40  # the naive mean of the four groups does not reproduce the paper


def test_constructed_subtask_accuracies_reproduce_a_paper_row_to_the_digit() -> None:
    """Subtask accuracies consistent with the paper's rounded group numbers give its Overall.

    What this proves: erb's own ``accuracy`` code, fed outcomes built to match the paper's
    EditScore-72B Avg@4 group numbers, prints the paper's three Overall numbers to the digit.
    It holds by construction for the groups; the Overall block is the part under test."""
    published = {d: _published()[("EditScore-72B", 4, d)] for d in DIMENSIONS}
    weights = {g: len(members) for g, members in GROUPS.items()}
    n = 10_000  # rows per cell: accuracies resolve to 1e-4
    outcomes: list[RowOutcome] = []
    for d in DIMENSIONS:
        blocks = published[d]
        macro13 = sum(weights[g] * blocks[g] for g in GROUPS) / 13
        # Every group's true value lies within rounding of the published one;
        # pick the common offset that also rounds the Overall block correctly.
        offset = next(
            o / 10_000 for o in range(-4, 5) if round(macro13 + o / 10_000, 3) == blocks["overall"]
        )
        for g, members in GROUPS.items():
            correct = round((blocks[g] + offset) * n)
            for subtask in members:
                outcomes += rows(subtask, d, "c" * correct + "t" * (n - correct))
    table = accuracy(outcomes)
    for d in DIMENSIONS:
        for g in GROUPS:
            assert round(table["groups"][g][d], 3) == published[d][g]
        assert round(table["overall"][d], 3) == published[d]["overall"]
    assert [round(table["overall"][d], 3) for d in DIMENSIONS] == [0.755, 0.735, 0.763]


def test_missing_cells_are_named() -> None:
    outcomes = rows("extract", "overall", "c")
    missing = missing_cells(outcomes)
    assert "extract/prompt_following" in missing and "extract/overall" not in missing
    assert len(missing) == 13 * 3 - 1


def test_bootstrap_is_seeded_clustered_and_brackets_the_estimate() -> None:
    outcomes = []
    for i, subtask in enumerate(SUBTASKS):
        for d in DIMENSIONS:
            outcomes += rows(subtask, d, "ccwcctwcwc"[: 6 + i % 4], source=f"{subtask}-")
    a = bootstrap_ci(outcomes, n_resamples=300, seed=3)
    b = bootstrap_ci(outcomes, n_resamples=300, seed=3)
    assert a == b
    point = accuracy(outcomes)
    for d in DIMENSIONS:
        low, high = a["overall"][d]
        assert low <= point["overall"][d] <= high
        assert high - low > 0
    # one source image shared by every row: all rows move together, so every
    # resample reproduces the data exactly and the interval collapses.
    shared = [
        RowOutcome(o.index, o.subtask, o.dimension, "same", o.keys, None, None, o.outcome)
        for o in outcomes
    ]
    c = bootstrap_ci(shared, n_resamples=100, seed=0)
    low, high = c["overall"]["overall"]
    assert low == pytest.approx(high) == pytest.approx(accuracy(shared)["overall"]["overall"])


def test_macro_table_shape() -> None:
    table = macro_table({("ps_human", "overall"): 0.5})
    assert set(table) == {"overall", "groups", "subtasks"}
    assert set(table["groups"]) == set(GROUPS)
    assert set(table["subtasks"]) == set(SUBTASKS)
    assert table["groups"]["advanced"]["overall"] == 0.5


def test_avg_at_k_means_successful_passes_below_k() -> None:
    def rec(key: str, p: int, status: str = "ok", v: float = 0.0) -> dict[str, object]:
        return {"key": key, "pass": p, "status": status, "prompt_following": v, "consistency": v,
                "perceptual_quality": v, "overall": v}  # fmt: skip

    records = [
        rec("a", 0, v=2),
        rec("a", 1, v=4),
        rec("a", 2, v=9),
        rec("b", 0, "failed"),
        rec("b", 1, v=6),
        rec("c", 0, "failed"),
    ]
    passes = [PassScores.of(r) for r in records]
    scores, counts = avg_at_k(passes, 2)
    assert scores["a"] == {
        "prompt_following": 3,
        "consistency": 3,
        "perceptual_quality": 3,
        "overall": 3,
    }
    assert scores["b"]["overall"] == 6 and counts["b"] == 1  # type: ignore[index]
    assert scores["c"] is None
    assert avg_at_k(passes, 1)[0]["b"] is None


def test_hand_computed_accuracies_of_a_constructed_predictions_file(
    parquet_bench, tmp_path
) -> None:
    """`erb evaluate --predictions` on a tiny dataset whose every number is worked out by hand."""
    import json

    from conftest import make_row
    from typer.testing import CliRunner

    from editreward_bench.cli import app

    rows = [
        make_row(("a1", "b1"), "subject-add", "prompt_following"),  # 8 > 5: correct
        make_row(("a2", "b2"), "subject-add", "prompt_following"),  # 5 = 5: tie, wrong
        make_row(("a3", "b3"), "subject-add", "prompt_following"),  # 2 < 9: wrong
        make_row(("a4", "b4"), "subject-remove", "prompt_following"),  # correct
        make_row(("a5", "b5"), "subject-replace", "prompt_following"),  # correct
        make_row(("a6", "b6"), "subject-replace", "prompt_following"),  # b6 missing: failed
        make_row(("c1", "d1"), "color_alter", "overall"),  # 7 > 6: correct
        make_row(("c2", "d2"), "color_alter", "overall"),  # 1 < 2: wrong
    ]
    pf = {"a1": 8, "b1": 5, "a2": 5, "b2": 5, "a3": 2, "b3": 9, "a4": 3, "b4": 1, "a5": 6,
          "b5": 4, "a6": 9}  # fmt: skip
    o = {"c1": 7, "d1": 6, "c2": 1, "d2": 2}
    lines = [
        {"key": k, "prompt_following": v, "consistency": 0, "overall": 0} for k, v in pf.items()
    ] + [{"key": k, "prompt_following": 0, "consistency": 0, "overall": v} for k, v in o.items()]
    preds = tmp_path / "preds.jsonl"
    preds.write_text("".join(json.dumps(line) + "\n" for line in lines))
    bench = parquet_bench(rows)
    result = CliRunner().invoke(app, ["evaluate", "--predictions", str(preds), "--dataset",
                                      str(bench), "--bootstrap", "0", "--out", str(tmp_path / "r")])  # fmt: skip
    assert result.exit_code == 0, result.output
    m = json.loads((tmp_path / "r" / "metrics.json").read_text())
    sub = m["accuracy"]["subtasks"]
    assert sub["subject-add"]["prompt_following"] == pytest.approx(1 / 3, abs=1e-15)
    assert sub["subject-remove"]["prompt_following"] == 1.0
    assert sub["subject-replace"]["prompt_following"] == 0.5
    # a group is the mean of its subtasks (11/18), not the pooled 4/6 of its rows
    subject = m["accuracy"]["groups"]["subject"]["prompt_following"]
    assert subject == pytest.approx(11 / 18, abs=1e-15) and subject != pytest.approx(4 / 6)
    assert m["accuracy"]["overall"]["prompt_following"] == pytest.approx(11 / 18, abs=1e-15)
    assert m["accuracy"]["groups"]["appearance"]["overall"] == 0.5
    assert m["accuracy"]["overall"]["overall"] == 0.5
    assert m["tie_rate"]["prompt_following"] == pytest.approx(1 / 6, abs=1e-15)
    assert m["failures"] == 1  # b6
