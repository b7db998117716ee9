"""Pairwise judges: cards, verdicts, seeded and both-order runs, and the position bias."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from editreward_bench.benchmarks.strict import Judgment, order_statistics
from editreward_bench.cli import app
from editreward_bench.judges import CardError
from editreward_bench.pairwise import builtin_cards, card_from_mapping, parse_verdict
from editreward_bench.testing.fake_pairwise import PairwiseFakeServer

runner = CliRunner()


def invoke(*args: str) -> Any:
    return runner.invoke(app, list(args), catch_exceptions=False)


def card_file(tmp_path: Path, url: str) -> Path:
    path = tmp_path / "fake-pairwise.toml"
    path.write_text(
        'name = "fake-pairwise"\nkind = "pairwise"\nprompt = "edit-preference"\n'
        'backend = "openai"\nmodel = "fake-judge"\n[sampling]\ntemperature = 0.0\n'
        f'[options]\nbase_url = "{url}"\nmax_attempts = 1\n'
    )
    return path


def run(tmp_path: Path, server: Any, benchmark: str, orders: str | None, name: str,
        *extra: str) -> dict[str, Any]:  # fmt: skip
    out = tmp_path / name
    args = ["evaluate", "--benchmark", benchmark, "--dataset", "mini", "--judge",
            str(card_file(tmp_path, server.url)), "--out", str(out), "--store",
            str(tmp_path / "store.sqlite"), "--bootstrap", "100", *extra]  # fmt: skip
    if orders is not None:
        args += ["--orders", orders]
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    metrics["_records"] = pq.read_table(out / "records.parquet").to_pylist()
    metrics["_output"] = result.output
    return metrics


def test_verdicts_are_parsed_from_the_last_bracketed_answer() -> None:
    assert parse_verdict("A is sharper. [[A>B]]") == "first"
    assert parse_verdict("[[B>>A]]") == "second"
    assert parse_verdict("first [[A>B]] then, on reflection, [[ b > a ]]") == "second"
    assert parse_verdict("[[A=B]]") == "tie"
    assert parse_verdict("[[A=B=Good]]") == "tie-good"
    assert parse_verdict("[[a = b = bad]]") == "tie-bad"
    assert parse_verdict("A>B") is None and parse_verdict("[[C>A]]") is None
    assert parse_verdict(None) is None


def test_cards_are_validated() -> None:
    cards = builtin_cards()
    assert {"gpt-4.1-pairwise", "qwen2.5-vl-7b-pairwise"} <= set(cards)
    base = {"name": "x", "kind": "pairwise", "prompt": "edit-preference", "backend": "openai",
            "model": "m"}  # fmt: skip
    card_from_mapping(base, "test")
    with pytest.raises(CardError, match=r"unknown field\(s\) \['protocol'\]"):
        card_from_mapping({**base, "protocol": "editscore"}, "test")
    with pytest.raises(CardError, match="no prompt template 'nope'"):
        card_from_mapping({**base, "prompt": "nope"}, "test")
    with pytest.raises(CardError, match="temperatur"):
        card_from_mapping({**base, "sampling": {"temperatur": 0.1}}, "test")


@pytest.mark.parametrize("bias", [0.0, 0.4, 1.0])
def test_the_reported_flip_rate_equals_the_injected_position_bias(tmp_path: Path, bias) -> None:
    with PairwiseFakeServer(bias=bias, salt="flip") as server:
        metrics = run(tmp_path, server, "mmrb2-edit", "both", f"b{bias}")
    rows = metrics["dataset"]["rows"]
    assert len(server.pairs) == rows == 8
    injected = len(server.biased_pairs) / len(server.pairs)
    flip = metrics["position_bias"]["flip_rate"]
    assert flip["rows"] == rows and flip["unpaired"] == 0
    assert flip["rate"] == injected
    assert flip["flips"] == len(server.biased_pairs)
    if bias == 0.4:
        assert 0 < injected < 1  # the salt gives a mixed case
    low, high = flip["ci95"]
    assert low <= flip["rate"] <= high
    # Records keep the order each judgment used; every row is asked in both.
    orders = [r["order"] for r in metrics["_records"]]
    assert orders.count("forward") == orders.count("reverse") == rows
    bias_stats = metrics["position_bias"]
    if bias == 1.0:
        # Always "the first shown": right exactly where people chose the first (A) edit.
        assert bias_stats["accuracy_forward"]["accuracy"] == 0.5
        assert bias_stats["accuracy_reverse"]["accuracy"] == 0.5
        assert bias_stats["both_order_accuracy"]["accuracy"] == 0.0
    if bias == 0.0:
        assert bias_stats["both_order_accuracy"]["accuracy"] == 1.0
        assert metrics["authors"]["accuracy"] == 1.0
    # MMRB2's own count: both orders, each judgment once.
    assert metrics["authors"]["total_evaluated"] == 2 * rows
    expected = (bias_stats["accuracy_forward"]["correct"]
                + bias_stats["accuracy_reverse"]["correct"]) / (2 * rows)  # fmt: skip
    assert metrics["authors"]["accuracy"] == expected
    assert "non-commercial" in metrics["benchmark"]["licence_note"]
    assert "CC BY-NC 4.0" in metrics["_output"]


def test_a_bias_toward_the_second_image_flips_too(tmp_path: Path) -> None:
    with PairwiseFakeServer(bias=1.0, bias_to="second") as server:
        metrics = run(tmp_path, server, "mmrb2-edit", "both", "second")
    assert metrics["position_bias"]["flip_rate"]["rate"] == 1.0


def test_random_orders_are_seeded_per_row_and_reuse_the_store(tmp_path: Path) -> None:
    with PairwiseFakeServer() as server:
        first = run(tmp_path, server, "tiger-editreward", None, "r1")
        again = run(tmp_path, server, "tiger-editreward", None, "r2")
        other = run(tmp_path, server, "tiger-editreward", "random", "r3", "--seed", "7")
        both = run(tmp_path, server, "tiger-editreward", "both", "r4")
    order = [(r["index"], r["order"]) for r in first["_records"]]
    assert order == [(r["index"], r["order"]) for r in again["_records"]]
    assert order != [(r["index"], r["order"]) for r in other["_records"]]
    kinds = {o for _, o in order}
    assert kinds == {"forward", "reverse"}  # a mix, one order per row
    assert len(order) == first["dataset"]["rows"]
    assert again["usage"]["pairs_asked_now"] == 0  # every ordered pair came from the store
    # Both orders: the orders the random run already asked are reused (same seed).
    assert both["usage"]["pairs_reused"] == len(order)
    assert both["usage"]["pairs_asked_now"] == len(order)
    assert first["orders"] == "random" and both["orders"] == "both"


def test_tiger_pairwise_run_reports_the_inference_scripts_counts(tmp_path: Path) -> None:
    from editreward_bench.benchmarks import get_adapter

    with PairwiseFakeServer() as server:
        metrics = run(tmp_path, server, "tiger-editreward", "forward", "fw")
    tiger = get_adapter("tiger-editreward")
    bench = tiger.load("mini")
    verdicts = {(r["index"], r["order"]): r["verdict"] for r in metrics["_records"]}
    assert metrics["authors"] == tiger.authors_pairwise(bench, verdicts).metrics
    # The fake judge prefers the brighter edit: it is right on every comparison with a
    # preference, and answers "A=B=Good" for equal edits. The 3-pair group holding a tie
    # fails TIGER's count (its 3-pair parser never answers a tie); of the 2-pair rows, the
    # plain A=B between equal edits is right (the answer A=B equals the ranking), the ties
    # written A=B=Good / A=B=Bad between unequal edits (rows 3, 4) are wrong, for erb too.
    assert metrics["authors"]["3pair"]["correct_groups"] == 3
    assert metrics["authors"]["2pair"]["correct_examples"] == 6
    assert metrics["strict"]["accuracy"] == 36 / 38


def test_genai_pairwise_run_counts_as_genai_bench_does(tmp_path: Path) -> None:
    with PairwiseFakeServer() as server:
        metrics = run(tmp_path, server, "genai-bench-edit", "forward", "g")
    # Rows: the judge says A=B=Good only for equal squares (row 2, a tievote: right); the
    # both-bad row 3 (qualities .1 / .15) it prefers the right edit: wrong; row 7's tie
    # (.8 / .75) it breaks: wrong; the 7 rows with a preference are right. 8 of 10.
    assert metrics["authors"] == {"accuracy": 0.8, "correct": 8, "total": 10}
    assert metrics["dataset"]["split"] == "test"


def test_pairwise_judges_are_refused_on_editreward_bench(tmp_path: Path) -> None:
    result = runner.invoke(app, ["evaluate", "--judge", "gpt-4.1-pairwise", "--dataset", "mini"])
    assert result.exit_code == 2
    assert "pointwise" in result.output


def test_order_statistics_by_hand() -> None:
    from editreward_bench.benchmarks.base import Comparison

    def c(i: int, label: str) -> Comparison:
        return Comparison(i, i, str(i), str(i), "s", ("a", "b"), label, label)  # type: ignore[arg-type]

    rows = [c(0, "first"), c(1, "second"), c(2, "tie"), c(3, "first")]

    def j(row: Comparison, order: str, verdict: str | None) -> Judgment:
        from editreward_bench.benchmarks.strict import outcome_of

        return Judgment(row, order, verdict, outcome_of(row.label, verdict))

    judgments = [
        j(rows[0], "forward", "first"), j(rows[0], "reverse", "first"),  # right twice
        j(rows[1], "forward", "first"), j(rows[1], "reverse", "second"),  # flips
        j(rows[2], "forward", "tie"), j(rows[2], "reverse", None),  # unpaired
        j(rows[3], "forward", "first"),  # one order only
    ]  # fmt: skip
    stats = order_statistics(judgments, 0)
    assert stats["accuracy_forward"]["accuracy"] == 3 / 4
    assert stats["accuracy_reverse"]["accuracy"] == 2 / 3
    assert stats["both_order_accuracy"]["accuracy"] == 1 / 3  # row 0 of rows 0, 1, 2
    assert stats["flip_rate"]["rate"] == 1 / 2 and stats["flip_rate"]["unpaired"] == 1
