"""A failed run must not look like a result: it stops early, says why, and keeps what it did."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from editreward_bench.cli import app
from editreward_bench.failures import FailureWatch, StopRule, persistent, reason, top_reasons
from editreward_bench.runner import RunError, RunOptions, run_evaluation
from editreward_bench.testing.fake_openai import FakeOpenAIServer, Faults

runner = CliRunner()


def test_reasons_fold_what_differs_between_passes() -> None:
    assert reason("sc: gave up after 6 attempt(s): HTTP 400: bad layout") == "HTTP 400: bad layout"
    assert reason("pq: HTTP 400: bad layout") == "HTTP 400: bad layout"
    assert (
        reason("unparseable after 3 attempt(s): sc: no JSON object found; pq: empty answer")
        == "unparseable answer: no JSON object found"
    )
    assert reason(None) == "unknown" and len(reason("x" * 1000)) == 160
    assert persistent("HTTP 400: bad layout") and persistent("unparseable answer: empty")
    assert not persistent("HTTP 429: slow down") and not persistent("HTTP 503: busy")
    assert not persistent("APIConnectionError: refused")
    assert top_reasons(Counter({"a": 3, "b": 2, "c": 1}), n=2) == [
        "3 x a",
        "2 x b",
        "1 x other reasons",
    ]


def test_stop_rules() -> None:
    watch = FailureWatch(StopRule(all_failed_after=3, min_passes=0))
    assert watch.see("failed", "HTTP 503: x") is None
    assert watch.see("failed", "HTTP 503: x") is None
    assert watch.see("failed", "HTTP 503: x") == "the first 3 passes all failed"
    # One success turns the first rule off; a persistent majority still stops the run.
    watch = FailureWatch(StopRule(all_failed_after=3, min_passes=4, persistent_share=0.5))
    assert watch.see("ok", None) is None
    for _ in range(2):
        assert watch.see("failed", "sc: HTTP 400: nope") is None
    stop = watch.see("failed", "pq: HTTP 400: nope")
    assert stop is not None and "3 of 4 passes failed with the same persistent error" in stop
    # A transient majority does not stop it (a rerun retries those).
    watch = FailureWatch(StopRule(all_failed_after=3, min_passes=4, persistent_share=0.5))
    watch.see("ok", None)
    assert all(watch.see("failed", "HTTP 503: busy") is None for _ in range(10))
    # 0 turns the rules off.
    watch = FailureWatch(StopRule(all_failed_after=0, min_passes=0))
    assert all(watch.see("failed", "HTTP 400: x") is None for _ in range(100))


def _options(server: FakeOpenAIServer, tmp_path: Path, **kw) -> RunOptions:
    return RunOptions(
        base_urls=[server.url], store=tmp_path / "store.sqlite", progress=False, n_bootstrap=0,
        concurrency=2, max_retries=0, **kw,
    )  # fmt: skip


def test_a_run_whose_every_request_is_refused_stops_early_and_keeps_what_it_did(
    mini, tmp_path: Path
) -> None:
    faults = Faults(echo_400=1.0)
    with FakeOpenAIServer(models=["editscore-72b"], faults=faults, mode="hash") as server:
        out = tmp_path / "run"
        with pytest.raises(RunError) as info:
            run_evaluation(mini, "editscore-72b", _options(server, tmp_path), out=out)
        requests = len(server.log.snapshot())
    message = str(info.value)
    assert "the run stopped: the first 20 passes all failed" in message
    assert "Top reasons: " in message and " x HTTP 400" in message
    # It stopped long before asking for every candidate (2 requests per candidate).
    assert requests < 2 * len(mini.candidates) / 3
    assert not (out / "metrics.json").exists()
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "stopped" and "HTTP 400" in manifest["top_failures"][0]
    assert manifest["stopped_because"] == "the first 20 passes all failed"
    records = pd.read_parquet(out / "records.parquet")
    assert len(records) >= 20 and set(records["status"]) == {"failed"}


def test_mostly_unparseable_answers_stop_the_run(mini, tmp_path: Path) -> None:
    faults = Faults(garbage=0.4, seed=3)
    with FakeOpenAIServer(models=["editscore-72b"], faults=faults, mode="hash") as server:
        with pytest.raises(RunError, match=r"failed with the same persistent error \(unparseable"):
            run_evaluation(
                mini, "editscore-72b", _options(server, tmp_path, k=1), out=tmp_path / "run"
            )
        assert len(server.log.snapshot()) < 2 * len(mini.candidates)


def test_a_small_run_that_fails_entirely_is_an_error_not_a_table_of_zeros(
    mini, tmp_path: Path
) -> None:
    bench = mini.subset(3)
    assert len(bench.candidates) * 1 < 20  # under the early-stop rule: caught at the end
    with FakeOpenAIServer(models=["editscore-72b"], faults=Faults(echo_400=1.0)) as server:
        result = runner.invoke(app, [
            "evaluate", "--judge", "editscore-72b", "--dataset", "mini", "--limit", "3",
            "--base-url", server.url, "--store", str(tmp_path / "s.sqlite"),
            "--out", str(tmp_path / "run"), "--max-retries", "0", "--bootstrap", "0",
        ])  # fmt: skip
    assert result.exit_code == 2, result.output
    text = " ".join(result.output.split())
    assert "no pass succeeded" in text and "x HTTP 400" in text and "Traceback" not in text
    assert not (tmp_path / "run" / "metrics.json").exists()


def test_a_finished_run_names_its_failures_and_what_it_reused(mini, tmp_path: Path) -> None:
    args = [
        "evaluate", "--judge", "editscore-72b", "--dataset", "mini", "--limit", "12",
        "--store", str(tmp_path / "s.sqlite"), "--max-retries", "0", "--bootstrap", "0",
    ]  # fmt: skip
    with FakeOpenAIServer(models=["editscore-72b"], faults=Faults(garbage=0.2, seed=1)) as server:
        first = runner.invoke(app, [*args, "--base-url", server.url, "--out", str(tmp_path / "a")])
        assert first.exit_code == 0, first.output
        text = " ".join(first.output.split())
        assert "pass(es) failed; top reasons: " in text and "x unparseable answer" in text
        assert "0 of " in text and "passes reused from the store" in text
        second = runner.invoke(app, [*args, "--base-url", server.url, "--out", str(tmp_path / "b")])
    assert second.exit_code == 0, second.output
    n = len(mini.subset(12).candidates) * 4
    text = " ".join(second.output.split())
    assert f"{n} of {n} passes reused from the store" in text and "0 judged now" in text
    assert "temperature=0.7" in text and "layout=qwen2.5-vl" in text


def test_predictions_matching_no_candidate_are_an_error(mini, tmp_path: Path) -> None:
    preds = tmp_path / "p.jsonl"
    preds.write_text(
        json.dumps({"key": "nope", "prompt_following": 1, "consistency": 1, "overall": 1}) + "\n"
    )
    result = runner.invoke(app, ["evaluate", "--predictions", str(preds), "--dataset", "mini",
                                 "--out", str(tmp_path / "run")])  # fmt: skip
    assert result.exit_code == 2 and "has a prediction" in result.output
    assert not (tmp_path / "run").exists()


def test_runs_on_the_other_benchmarks_stop_and_fail_the_same_way(tmp_path: Path) -> None:
    """Pointwise runs on every benchmark share the runner's loop: stop rules, no table of zeros."""
    with FakeOpenAIServer(models=["editscore-72b"], faults=Faults(echo_400=1.0)) as server:
        result = runner.invoke(app, [
            "evaluate", "--benchmark", "tiger-editreward", "--dataset", "mini",
            "--judge", "editscore-72b", "--base-url", server.url, "--max-retries", "0",
            "--store", str(tmp_path / "s.sqlite"), "--out", str(tmp_path / "run"),
            "--bootstrap", "0", "--stop-after", "5",
        ])  # fmt: skip
        asked = len(server.log.snapshot())
    text = " ".join(result.output.split())
    assert result.exit_code == 2, result.output
    assert "the run stopped: the first 5 passes all failed" in text and "x HTTP 400" in text
    assert asked < 160  # of up to 320 requests: 40 candidates x 4 passes x 2 prompts
    assert not (tmp_path / "run" / "metrics.json").exists()


def test_a_pairwise_run_where_every_comparison_failed_is_an_error(tmp_path: Path) -> None:
    card = tmp_path / "pairwise.toml"
    with FakeOpenAIServer(models=["fake-judge"], faults=Faults(echo_400=1.0)) as server:
        card.write_text(
            'name = "pw"\nkind = "pairwise"\nprompt = "edit-preference"\nbackend = "openai"\n'
            f'model = "fake-judge"\n[options]\nbase_url = "{server.url}"\nmax_attempts = 1\n'
        )
        result = runner.invoke(app, [
            "evaluate", "--benchmark", "mmrb2-edit", "--dataset", "mini", "--judge", str(card),
            "--store", str(tmp_path / "s.sqlite"), "--out", str(tmp_path / "run"),
            "--bootstrap", "0",
        ])  # fmt: skip
    text = " ".join(result.output.split())
    assert result.exit_code == 2, result.output
    assert "no comparison succeeded" in text and "x HTTP 400" in text
    assert not (tmp_path / "run" / "metrics.json").exists()
