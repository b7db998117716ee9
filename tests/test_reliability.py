"""What erb guarantees: faults, kills, concurrent runs, hostile input, secrets, reproducibility."""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from conftest import REPO, make_row, png
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from editreward_bench.cli import app
from editreward_bench.predictions import PredictionsError, read_predictions
from editreward_bench.runner import RunOptions, run_evaluation
from editreward_bench.store import PassStore
from editreward_bench.testing.fake_openai import FakeOpenAIServer, Faults

runner = CliRunner()
SECRET = "sk-live-THIS-IS-A-SECRET-0123456789"


def records(run: Path) -> list[dict[str, Any]]:
    return pq.read_table(run / "records.parquet").to_pylist()


def erb(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "editreward_bench.cli", *args], env=env, cwd=cwd, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip


def child_env(store: Path, **extra: str) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO), "ERB_STORE": str(store), **extra}


# --------------------------------------------------------------------------- flaky endpoint


def test_flaky_endpoint_run_completes_and_agrees_with_a_clean_run(mini, tmp_path: Path) -> None:
    faults = Faults(
        http_500=0.10,
        http_429=0.05,
        retry_after=0.1,
        garbage=0.05,
        hang=0.02,
        hang_seconds=4,
        drop=0.01,
        seed=11,
    )
    options = {"progress": False, "n_bootstrap": 100, "concurrency": 16, "k": 1}
    backend = {"timeout": 1.5, "backoff": 0.02}
    with FakeOpenAIServer(models=["editscore-72b"], faults=faults) as flaky:
        summary = run_evaluation(
            mini, "editscore-72b", RunOptions(base_urls=[flaky.url], store=tmp_path / "a.sqlite", backend_options=backend, **options),
            out=tmp_path / "flaky",
        )  # fmt: skip
        seen = {e["fault"] for e in flaky.log.snapshot()}
    assert {"500", "429", "garbage", "hang", "drop"} <= seen
    with FakeOpenAIServer(models=["editscore-72b"]) as clean:
        run_evaluation(
            mini,
            "editscore-72b",
            RunOptions(base_urls=[clean.url], store=tmp_path / "b.sqlite", **options),
            out=tmp_path / "clean",
        )

    flaky_recs = {r["key"]: r for r in records(tmp_path / "flaky")}
    clean_recs = {r["key"]: r for r in records(tmp_path / "clean")}
    assert set(flaky_recs) == set(mini.candidates)
    for key, rec in flaky_recs.items():
        assert rec["status"] in ("ok", "failed")
        if rec["status"] == "failed":
            assert rec["error"]
        elif rec["attempts"] == 1:  # answered on the first try: the same answer as the clean run
            for name in ("prompt_following", "consistency", "perceptual_quality", "overall"):
                assert rec[name] == clean_recs[key][name], key
    retried = sum(r["attempts"] > 1 for r in flaky_recs.values())
    assert retried > 0  # unparseable answers were asked again
    # rows whose candidates both answered first time have the clean run's outcome
    flaky_rows = pq.read_table(tmp_path / "flaky" / "outcomes.parquet").to_pylist()
    clean_rows = {
        r["index"]: r for r in pq.read_table(tmp_path / "clean" / "outcomes.parquet").to_pylist()
    }
    first_try = {k for k, r in flaky_recs.items() if r["status"] == "ok" and r["attempts"] == 1}
    compared = 0
    for row in flaky_rows:
        if row["key0"] in first_try and row["key1"] in first_try:
            assert row["outcome"] == clean_rows[row["index"]]["outcome"]
            compared += 1
    assert compared > len(flaky_rows) // 2
    failed = sum(r["status"] == "failed" for r in flaky_recs.values())
    assert summary.metrics["failures"] == failed


# --------------------------------------------------------------------------- kills


def _stored_request_ids(store: Path) -> set[int]:
    """Request ids (from the fake server's reasoning) behind every stored pass."""
    ids: set[int] = set()
    with PassStore(store) as s:
        assert s.integrity_check() == []
        rows = s._conn.execute("SELECT record FROM passes").fetchall()
    for (record,) in rows:
        rec = json.loads(record)
        for field in ("reasoning_sc", "reasoning_pq"):
            match = re.match(r"Request (\d+):", rec.get(field) or "")
            if match:
                ids.add(int(match.group(1)))
    return ids


def test_sigkill_at_random_moments_never_repeats_a_stored_pass(tmp_path: Path) -> None:
    rng = random.Random(7)
    store = tmp_path / "store.sqlite"
    from editreward_bench.benchmark import load_benchmark

    total = 2 * len(load_benchmark("mini").subset(90).candidates)  # k = 2 passes each
    with FakeOpenAIServer(models=["editscore-72b"], latency=0.1) as srv:
        args = ["evaluate", "--judge", "editscore-72b", "--base-url", srv.url, "--dataset", "mini", "--limit", "90",
                "--k", "2", "--concurrency", "4", "--bootstrap", "100", "--out", "run"]  # fmt: skip
        env = child_env(store)
        interrupted_work = 0
        for _ in range(10):
            before = len(srv.log.snapshot())
            stored_ids = _stored_request_ids(store) if store.exists() else set()
            log = srv.log.snapshot()
            stored_keys = {
                (e["kind"], e["prompt"], e["seed"], e["n"]) for e in log if e["id"] in stored_ids
            }
            proc = erb(args, env, tmp_path)
            # Kill while passes are being judged: once this run's first request has arrived,
            # after a random share of the judging, not during start-up.
            deadline = time.monotonic() + 60
            while len(srv.log.snapshot()) == before and proc.poll() is None:
                assert time.monotonic() < deadline, "the run never started judging"
                time.sleep(0.01)
            time.sleep(rng.uniform(0.0, 0.4))
            judging = proc.poll() is None and len(srv.log.snapshot()) > before
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
            with PassStore(store) as s:
                incomplete = s.count() < total
            interrupted_work += judging and incomplete
            repeated = [
                e
                for e in srv.log.snapshot()[before:]
                if (e["kind"], e["prompt"], e["seed"], e["n"]) in stored_keys
            ]
            assert repeated == [], "a stored pass was judged again"
        assert interrupted_work >= 8, f"only {interrupted_work} of 10 kills interrupted judging"
        final = erb(args, env, tmp_path)
        _, err = final.communicate(timeout=120)
        assert final.returncode == 0, err
        clean = erb([*args[:-1], "clean"], child_env(tmp_path / "clean.sqlite"), tmp_path)
        _, err = clean.communicate(timeout=120)
        assert clean.returncode == 0, err
    _stored_request_ids(store)  # integrity check
    resumed = json.loads((tmp_path / "run" / "metrics.json").read_text())
    uninterrupted = json.loads((tmp_path / "clean" / "metrics.json").read_text())
    for key in ("accuracy", "ci95", "tie_rate", "failures", "partial", "avg_at_k"):
        assert resumed[key] == uninterrupted[key]


def test_ctrl_c_exits_within_two_seconds_keeping_finished_passes(tmp_path: Path) -> None:
    store = tmp_path / "store.sqlite"
    with FakeOpenAIServer(models=["editscore-72b"], latency=1.0) as srv:
        args = ["evaluate", "--judge", "editscore-72b", "--base-url", srv.url, "--dataset", "mini", "--limit", "40",
                "--concurrency", "8", "--out", "run"]  # fmt: skip
        proc = erb(args, child_env(store), tmp_path)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            time.sleep(0.2)
            if store.exists() and PassStore(store).count() >= 4:
                break
        sent = time.monotonic()
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
        elapsed = time.monotonic() - sent
    assert proc.returncode == 130, err
    assert elapsed < 2.0
    assert "interrupted" in err and "rerun the same command" in err
    with PassStore(store) as s:
        assert s.count() >= 4 and s.integrity_check() == []


def test_two_runs_at_once_share_the_store_without_duplicate_work(tmp_path: Path) -> None:
    store = tmp_path / "store.sqlite"
    with FakeOpenAIServer(models=["editscore-72b"], latency=0.03) as srv:
        base = ["evaluate", "--judge", "editscore-72b", "--base-url", srv.url, "--dataset", "mini", "--limit", "45",
                "--concurrency", "4", "--bootstrap", "100"]  # fmt: skip
        a = erb([*base, "--out", "a"], child_env(store), tmp_path)
        b = erb([*base, "--out", "b"], child_env(store), tmp_path)
        _, err_a = a.communicate(timeout=180)
        _, err_b = b.communicate(timeout=180)
        assert a.returncode == 0, err_a
        assert b.returncode == 0, err_b
        requests = srv.log.snapshot()
    keys = [(e["kind"], e["prompt"], e["seed"]) for e in requests]
    assert len(keys) == len(set(keys)), "a pass was judged by both runs"
    from editreward_bench.benchmark import load_benchmark

    assert len(keys) == 2 * len(load_benchmark("mini").subset(45).candidates)
    ma = json.loads((tmp_path / "a" / "metrics.json").read_text())
    mb = json.loads((tmp_path / "b" / "metrics.json").read_text())
    assert ma["accuracy"] == mb["accuracy"]
    # Both runs did part of the work (claims are taken a chunk at a time), and together all of it.
    judged = [
        json.loads((tmp_path / run / "manifest.json").read_text())["passes_judged_now"]
        for run in ("a", "b")
    ]
    assert min(judged) > 0, f"one run did all the work: {judged}"
    assert sum(judged) == len(keys) // 2 * 4  # k = 4 passes per candidate, 2 requests each
    with PassStore(store) as s:
        assert s.integrity_check() == []


# --------------------------------------------------------------------------- hostile input


def _dataset(tmp_path: Path, rows: list[dict[str, Any]], name: str) -> Path:
    from conftest import write_parquet

    return write_parquet(tmp_path / f"{name}.parquet", rows)


def _bomb() -> bytes:
    from io import BytesIO

    from PIL import Image

    buf = BytesIO()
    Image.new("1", (12000, 12000)).save(buf, format="PNG")  # 144 Mpx in ~20 KB
    return buf.getvalue()


def _truncated() -> bytes:
    from io import BytesIO

    from PIL import Image

    buf = BytesIO()
    Image.effect_noise((64, 64), 60).convert("RGB").save(buf, format="PNG")
    return buf.getvalue()[:300]


@pytest.mark.parametrize(
    ("name", "rows", "message"),
    [
        (
            "corrupt",
            [make_row(("a", "b"), edited=(png(), b"GIF89a-garbage"))],
            "unreadable image bytes",
        ),
        ("zero", [make_row(("a", "b"), source=b"")], "unreadable image bytes"),
        (
            "dupkey",
            [make_row(("a", "b")), make_row(("a", "c"), edited=(png((1, 2, 3)), png()))],
            "names different edits",
        ),
        ("subtask", [make_row(("a", "b"), subtask="inpainting")], "unknown task_type"),
        ("dimension", [make_row(("a", "b"), dimension="realism")], "unknown dimension"),
        ("empty", [], "no rows"),
    ],
)
def test_broken_datasets_give_a_clear_error(
    tmp_path: Path, name: str, rows: list[dict[str, Any]], message: str
) -> None:
    path = _dataset(tmp_path, rows, name)
    result = runner.invoke(
        app,
        [
            "evaluate",
            "--judge",
            "image-diff",
            "--dataset",
            str(path),
            "--store",
            str(tmp_path / "s"),
        ],
    )
    assert result.exit_code == 2
    assert message in result.output and "Traceback" not in result.output


def test_wrong_types_and_missing_columns_give_a_clear_error(tmp_path: Path) -> None:
    import datasets

    row = make_row(("a", "b"))
    row["task_type"] = 3
    datasets.Dataset.from_list([row]).to_parquet(str(tmp_path / "types.parquet"))
    result = runner.invoke(app, ["data", "info", str(tmp_path / "types.parquet")])
    assert result.exit_code == 2 and "'task_type' must be a string" in result.output
    row = make_row(("a", "b"))
    row.pop("key")
    row["extra"] = "ignored"
    datasets.Dataset.from_list([row]).to_parquet(str(tmp_path / "cols.parquet"))
    result = runner.invoke(app, ["data", "info", str(tmp_path / "cols.parquet")])
    assert result.exit_code == 2 and "missing column(s) ['key']" in result.output


def test_bad_images_fail_their_candidate_and_the_run_goes_on(tmp_path: Path) -> None:
    rows = [
        make_row(("ok1", "bomb"), edited=(png(), _bomb())),
        make_row(("ok2", "cut"), edited=(png((0, 0, 200)), _truncated()), dimension="consistency"),
    ]
    path = _dataset(tmp_path, rows, "bad-images")
    out = tmp_path / "run"
    result = runner.invoke(app, ["evaluate", "--judge", "image-diff", "--dataset", str(path), "--store", str(tmp_path / "s"),
                                 "--out", str(out), "--bootstrap", "20", "--max-image-pixels", "50000000"])  # fmt: skip
    assert result.exit_code == 0, result.output
    by_key = {r["key"]: r for r in records(out)}
    assert by_key["ok1"]["status"] == by_key["ok2"]["status"] == "ok"
    assert by_key["bomb"]["status"] == "failed" and "over the limit" in by_key["bomb"]["error"]
    assert by_key["cut"]["status"] == "failed" and "cannot be decoded" in by_key["cut"]["error"]
    assert json.loads((out / "metrics.json").read_text())["failures"] == 2


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(st.one_of(st.text(max_size=80), st.binary(max_size=80).map(lambda b: b.decode("latin-1")),
                          st.fixed_dictionaries({"key": st.text(max_size=5), "prompt_following": st.one_of(st.floats(), st.text(max_size=3), st.none()),
                                                 "consistency": st.floats(), "overall": st.integers()}).map(json.dumps)),
                max_size=6))  # fmt: skip
def test_predictions_fuzz_never_crashes(tmp_path: Path, lines: list[str]) -> None:
    path = tmp_path / "fuzz.jsonl"
    path.write_bytes("\n".join(lines).encode("utf-8", "surrogateescape"))
    try:
        preds = read_predictions(path)
    except PredictionsError as exc:
        assert str(exc)
    else:
        for scores in preds.scores.values():
            assert all(isinstance(v, float) for v in scores.values())


# --------------------------------------------------------------------------- secrets


def test_secrets_never_reach_files_or_output(tmp_path: Path) -> None:
    store = tmp_path / "store.sqlite"
    faults = Faults(echo_400=0.3, seed=5)
    with FakeOpenAIServer(models=["gpt-4.1"], faults=faults) as srv:
        host = srv.url.removeprefix("http://")
        url = f"http://user:{SECRET}@{host}"
        env = child_env(store, OPENAI_API_KEY=SECRET)
        proc = erb(["evaluate", "--judge", "gpt-4.1", "--base-url", url, "--dataset", "mini", "--limit", "9",
                    "--bootstrap", "20", "--out", "run"], env, tmp_path)  # fmt: skip
        out, err = proc.communicate(timeout=120)
        assert any(e["fault"] == "echo400" for e in srv.log.snapshot())
    assert proc.returncode == 0, err
    assert SECRET not in out and SECRET not in err
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["base_urls"] == [f"http://***@{host}"]
    leaderboard = subprocess.run(
        [sys.executable, "-m", "editreward_bench.cli", "leaderboard", "run", "--out", "board.html"],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert SECRET not in leaderboard.stdout + leaderboard.stderr
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.suffix == ".sqlite" for p in files)
    for path in files:
        assert SECRET.encode() not in path.read_bytes(), path


# --------------------------------------------------------------------------- reproducibility


def test_same_seed_same_answers_give_byte_identical_metrics(mini, tmp_path: Path) -> None:
    with FakeOpenAIServer(models=["editscore-72b"]) as srv:
        for name in ("one", "two"):
            options = RunOptions(
                base_urls=[srv.url], store=tmp_path / f"{name}.sqlite", progress=False, k=2
            )
            run_evaluation(mini.subset(30), "editscore-72b", options, out=tmp_path / name)
    one, two = ((tmp_path / n / "metrics.json").read_text() for n in ("one", "two"))
    strip = re.compile(r'\n  "created": "[^"]*",')
    assert strip.sub("", one) == strip.sub("", two)
    assert one != strip.sub("", one)
