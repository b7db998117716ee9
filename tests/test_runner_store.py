"""The pass store and runner: resumable, never judging a stored pass twice."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from conftest import REPO

from editreward_bench.benchmark import load_benchmark
from editreward_bench.runner import RunOptions, run_evaluation
from editreward_bench.store import PassStore
from editreward_bench.testing.fake_openai import FakeOpenAIServer


@pytest.fixture
def server():
    with FakeOpenAIServer(
        models=["editscore-72b", "gpt-4.1", "Qwen/Qwen2.5-VL-72B-Instruct", "other-model"]
    ) as srv:
        yield srv


def run(bench, server, tmp_path: Path, judge: str = "editscore-72b", **kw) -> dict:
    options = RunOptions(
        base_urls=[server.url],
        store=tmp_path / "store.sqlite",
        progress=False,
        n_bootstrap=100,
        **kw,
    )
    summary = run_evaluation(bench, judge, options, out=tmp_path / f"run-{time.monotonic_ns()}")
    return summary.metrics


def test_raising_k_reuses_earlier_passes(mini, server, tmp_path: Path) -> None:
    bench = mini.subset(12)
    n = len(bench.candidates)
    m1 = run(bench, server, tmp_path, k=1)
    first = server.log.snapshot()
    assert (
        len(first) == 2 * n
        and {e["seed"] for e in first} == {42}
        and {e["n"] for e in first} == {1}
    )
    m4 = run(bench, server, tmp_path, k=4)
    second = server.log.snapshot()[len(first) :]
    # passes 1..3 only: one SC and one PQ request per candidate with n=3, seed 42 + 1
    assert (
        len(second) == 2 * n
        and {e["seed"] for e in second} == {43}
        and {e["n"] for e in second} == {3}
    )
    assert m4["avg_at_k"]["1"] == m1["accuracy"]  # k'=1 from the same records
    run(bench, server, tmp_path, k=4)
    assert len(server.log.snapshot()) == 4 * n  # a finished run makes no call at all


def test_changing_anything_that_changes_answers_never_reuses(mini, server, tmp_path: Path) -> None:
    bench = mini.subset(6)
    run(bench, server, tmp_path, k=1)
    calls = len(server.log.snapshot())
    run(bench, server, tmp_path, k=1, seed=7)  # other seeds: other passes
    assert len(server.log.snapshot()) == 2 * calls
    card = tmp_path / "card.toml"
    text = (
        (REPO / "judges" / "editscore-72b.toml")
        .read_text()
        .replace("temperature = 0.7", "temperature = 0.5")
    )
    card.write_text(text)
    run(bench, server, tmp_path, judge=str(card), k=1)
    assert len(server.log.snapshot()) == 3 * calls
    assert server.log.snapshot()[-1]["sampling"]["temperature"] == 0.5
    # another replica of the same server changes nothing: all reused
    run(bench, server, tmp_path, k=1, concurrency=3)
    assert len(server.log.snapshot()) == 3 * calls
    # --fresh ignores the store
    run(bench, server, tmp_path, k=1, fresh=True)
    assert len(server.log.snapshot()) == 4 * calls


def test_store_integrity_and_candidate_fingerprints(mini, server, tmp_path: Path) -> None:
    run(mini.subset(3), server, tmp_path, k=2)
    with PassStore(tmp_path / "store.sqlite") as store:
        assert store.integrity_check() == []
        assert store.count() == 2 * len(mini.subset(3).candidates)


def _erb(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "editreward_bench.cli", *args], env=env, cwd=cwd, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip


def test_sigkill_mid_run_then_rerun_repeats_no_stored_pass(tmp_path: Path) -> None:
    bench = load_benchmark("mini")
    total = len(bench.candidates)
    with FakeOpenAIServer(models=["editscore-72b"], latency=0.03) as srv:
        env = {**os.environ, "PYTHONPATH": str(REPO), "ERB_STORE": str(tmp_path / "store.sqlite")}
        args = ["evaluate", "--judge", "editscore-72b", "--base-url", srv.url, "--dataset", "mini", "--k", "1",
                "--concurrency", "4", "--bootstrap", "100"]  # fmt: skip
        proc = _erb([*args, "--out", "run"], env, tmp_path)
        deadline = time.monotonic() + 60
        while len(srv.log.snapshot()) < total // 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        assert proc.returncode == -signal.SIGKILL
        with PassStore(tmp_path / "store.sqlite") as store:
            assert store.integrity_check() == []
            kept = store.count()
        assert 0 < kept < total
        before = len(srv.log.snapshot())
        rerun = _erb([*args, "--out", "run"], env, tmp_path)
        _, err = rerun.communicate(timeout=120)
        assert rerun.returncode == 0, err
        after = srv.log.snapshot()[before:]
        # exactly the passes that were not stored: one SC and one PQ request each
        assert len(after) == 2 * (total - kept)
        prompts = Counter(
            (e["kind"], e["prompt"], e["seed"]) for e in srv.log.snapshot()[:before] if e["id"]
        )
        stored_requests = sum(1 for e in after if prompts.get((e["kind"], e["prompt"], e["seed"])))
        assert stored_requests <= 2 * 4  # at most the passes in flight at the kill are asked again
        # an uninterrupted run on a fresh store ends with the same metrics
        env2 = {**env, "ERB_STORE": str(tmp_path / "store2.sqlite")}
        clean = _erb([*args, "--out", "clean"], env2, tmp_path)
        clean.communicate(timeout=120)
        assert clean.returncode == 0
    resumed = json.loads((tmp_path / "run" / "metrics.json").read_text())
    uninterrupted = json.loads((tmp_path / "clean" / "metrics.json").read_text())
    for key in ("accuracy", "ci95", "tie_rate", "failures", "avg_at_k"):
        assert resumed[key] == uninterrupted[key]


def test_hub_benchmark_runs_show_the_papers_row_beside_the_measured_one(
    mini, server, tmp_path: Path, capsys
) -> None:
    from dataclasses import replace

    from editreward_bench.benchmark import HUB_ID
    from editreward_bench.cli import _print_paper_table

    as_hub = replace(mini.subset(9), source=HUB_ID)
    # The endpoint is the card's (a card file that names it), not a --base-url override.
    card = tmp_path / "editscore-72b.toml"
    card.write_text(
        (REPO / "judges" / "editscore-72b.toml")
        .read_text()
        .replace('base_url = "http://localhost:8000/v1"', f'base_url = "{server.url}"')
    )
    options = RunOptions(store=tmp_path / "s.sqlite", progress=False, n_bootstrap=50, k=4)
    summary = run_evaluation(as_hub, str(card), options, out=tmp_path / "run")
    assert summary.reference is not None
    assert summary.reference["overall"] == {
        "prompt_following": 0.755,
        "consistency": 0.735,
        "overall": 0.763,
    }
    _print_paper_table(summary.metrics, summary.reference)
    shown = capsys.readouterr().out
    assert (
        "paper (overall)" in shown
        and "0.763" in shown
        and ("inside CI" in shown or "outside CI" in shown)
    )
    # another dataset: no reference row
    assert (
        run_evaluation(mini.subset(9), str(card), options, out=tmp_path / "run2").reference is None
    )
    # a model, adapter or endpoint given on the command line is not the paper's judge
    for override in ({"model": "someone/other"}, {"adapter": "none"}, {"base_urls": [server.url]}):
        changed = replace(options, **override)
        summary = run_evaluation(
            as_hub, str(card), changed, out=tmp_path / f"run-{len(override)}-{next(iter(override))}"
        )
        assert summary.reference is None, override
