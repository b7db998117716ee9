"""The OpenAI-compatible backend against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from editreward_bench.cli import app
from editreward_bench.judges import JudgeLoadError, load_judge
from editreward_bench.runner import RunError, RunOptions, run_evaluation
from editreward_bench.testing.fake_openai import FakeOpenAIServer, Faults

runner = CliRunner()
SECRET = "sk-test-0123456789abcdefSECRET"


def evaluate(bench, judge: str, urls: list[str], tmp_path: Path, **kw):
    options = RunOptions(
        base_urls=urls, store=tmp_path / "store.sqlite", progress=False, n_bootstrap=50, **kw
    )
    return run_evaluation(bench, judge, options, out=tmp_path / "run")


def test_api_cards_send_only_model_messages_and_n_text_first(mini, tmp_path: Path) -> None:
    with FakeOpenAIServer(models=["gpt-4.1"]) as srv:
        summary = evaluate(mini.subset(3), "gpt-4.1", [srv.url], tmp_path, k=2)
        entries = srv.log.snapshot()
    assert {tuple(e["keys"]) for e in entries} == {("messages", "model", "n")}
    assert all(e["n"] == 2 and e["seed"] is None for e in entries)
    assert summary.metrics["failures"] == 0
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["tokens"]["prompt"] > 0 and manifest["tokens"]["completion"] > 0
    expected = (
        manifest["tokens"]["prompt"] / 1e6 * 2.0 + manifest["tokens"]["completion"] / 1e6 * 8.0
    )
    assert manifest["cost_usd"] == pytest.approx(expected, abs=1e-6)


def test_message_layouts() -> None:
    from editreward_bench.backends.openai_compat import build_content

    text_first = build_content(["data:a", "data:b"], "PROMPT", "text-first")
    assert [p["type"] for p in text_first] == ["text", "image_url", "image_url"]
    qwen = build_content(["data:a", "data:b"], "PROMPT", "qwen2.5-vl")
    assert [p.get("text") for p in qwen] == ["<img1>: ", None, "<img2>: ", None, "PROMPT"]
    assert [p["type"] for p in build_content(["data:a"], "P", "images-first")] == [
        "image_url",
        "text",
    ]


def test_vllm_cards_send_the_sampling_parameters_and_seeds(mini, tmp_path: Path) -> None:
    with FakeOpenAIServer(models=["editscore-72b"]) as srv:
        evaluate(mini.subset(2), "editscore-72b", [srv.url], tmp_path, k=1)
        entries = srv.log.snapshot()
    for e in entries:
        assert e["sampling"] == {
            "temperature": 0.7, "top_p": 0.9, "top_k": 20, "max_tokens": 512,
            "repetition_penalty": 1.0,
        }  # fmt: skip
        assert e["seed"] == 42 and e["model"] == "editscore-72b"


def test_servers_refusing_n_get_one_request_per_pass(mini, tmp_path: Path) -> None:
    with FakeOpenAIServer(models=["editscore-72b"], allow_n=False) as srv:
        summary = evaluate(mini.subset(2), "editscore-72b", [srv.url], tmp_path, k=3)
        entries = [e for e in srv.log.snapshot() if e["n"] == 1]
    assert summary.metrics["failures"] == 0
    n_candidates = len(mini.subset(2).candidates)
    assert len(entries) == 2 * 3 * n_candidates
    assert sorted({e["seed"] for e in entries}) == [42, 43, 44]


def test_transient_faults_are_retried_with_retry_after(mini, tmp_path: Path) -> None:
    faults = Faults(http_500=0.2, http_429=0.2, retry_after=0.2, seed=3)
    with FakeOpenAIServer(models=["editscore-72b"], faults=faults) as srv:
        summary = evaluate(
            mini.subset(6),
            "editscore-72b",
            [srv.url],
            tmp_path,
            k=1,
            backend_options={"backoff": 0.01},
        )
        entries = srv.log.snapshot()
    assert summary.metrics["failures"] == 0
    assert any(e["fault"] == "429" for e in entries) and any(e["fault"] == "500" for e in entries)
    # Each request refused with 429 was sent again only after its Retry-After (0.2 s), far
    # longer than the 0.01 s backoff used for the 500s.
    same = lambda e: (e["kind"], e["prompt"], e["seed"], e["n"])  # noqa: E731
    retried = 0
    for i, entry in enumerate(entries):
        if entry["fault"] != "429":
            continue
        later = [e for e in entries[i + 1 :] if same(e) == same(entry)]
        assert later, "a rate-limited request was never sent again"
        assert later[0]["received"] - entry["received"] >= faults.retry_after
        retried += 1
    assert retried > 0


def test_hung_and_dropped_connections_time_out_and_retry(mini, tmp_path: Path) -> None:
    faults = Faults(hang=0.15, hang_seconds=5, drop=0.15, seed=1)
    with FakeOpenAIServer(models=["editscore-72b"], faults=faults) as srv:
        summary = evaluate(
            mini.subset(4),
            "editscore-72b",
            [srv.url],
            tmp_path,
            k=1,
            backend_options={"timeout": 1.0, "backoff": 0.01},
        )
        faults_seen = {e["fault"] for e in srv.log.snapshot()}
    assert {"hang", "drop"} <= faults_seen
    assert summary.metrics["failures"] == 0


def test_persistent_errors_fail_the_pass_with_a_reason_and_are_not_stored(
    mini, tmp_path: Path
) -> None:

    with (
        FakeOpenAIServer(models=["editscore-72b"], faults=Faults(http_500=1.0)) as srv,
        pytest.raises(RunError, match=r"no pass succeeded.*x HTTP 500"),
    ):
        evaluate(
            mini.subset(1),
            "editscore-72b",
            [srv.url],
            tmp_path,
            k=1,
            backend_options={"backoff": 0.001, "max_attempts": 2},
        )
    # A run where everything failed is an error, not a result; what it did is kept.
    assert not (tmp_path / "run" / "metrics.json").exists()
    import pyarrow.parquet as pq

    records = pq.read_table(tmp_path / "run" / "records.parquet").to_pylist()
    assert len(records) == len(mini.subset(1).candidates)
    errors = {r["error"] for r in records}
    assert all("HTTP 500" in e and "gave up after 2" in e for e in errors)
    from editreward_bench.store import PassStore

    with PassStore(tmp_path / "store.sqlite") as store:
        assert store.count() == 0  # a rerun will try again


def test_replicas_share_the_work(mini, tmp_path: Path) -> None:
    with (
        FakeOpenAIServer(models=["editscore-72b"]) as a,
        FakeOpenAIServer(models=["editscore-72b"]) as b,
    ):
        evaluate(mini.subset(6), "editscore-72b", [a.url, b.url], tmp_path, k=1)
        na, nb = len(a.log.snapshot()), len(b.log.snapshot())
    assert na > 0 and nb > 0 and abs(na - nb) <= 2


def test_preflight_errors_are_clear(mini, tmp_path: Path) -> None:
    with pytest.raises(
        RunError,
        match=r"nothing answers at http://127\.0\.0\.1:9/v1[\s\S]*MERGED=\$\(erb merge-adapter editscore-72b\)\n  vllm serve \"\$MERGED\" --served-model-name editscore-72b ",
    ):
        evaluate(mini.subset(1), "editscore-72b", ["http://127.0.0.1:9/v1"], tmp_path)
    with (
        FakeOpenAIServer(models=["something-else"]) as srv,
        pytest.raises(RunError, match=r"'editscore-72b' is not served.*something-else"),
    ):
        evaluate(mini.subset(1), "editscore-72b", [srv.url], tmp_path)
    result = runner.invoke(
        app,
        [
            "evaluate",
            "--judge",
            "editscore-72b",
            "--dataset",
            "mini",
            "--base-url",
            "http://127.0.0.1:9/v1",
            "--store",
            str(tmp_path / "s"),
        ],
    )
    assert (
        result.exit_code == 2 and "vllm serve" in result.output and "Traceback" not in result.output
    )


def test_serve_command_prints_the_vllm_command() -> None:
    result = runner.invoke(app, ["serve-command", "editscore-72b", "--tp", "8"])
    assert result.exit_code == 0
    assert result.output.startswith(
        'MERGED=$(erb merge-adapter editscore-72b)\nvllm serve "$MERGED" --served-model-name '
        "editscore-72b --dtype bfloat16 --tensor-parallel-size 8 "
    )
    assert "--limit-mm-per-prompt '{\"image\":2}'" in result.output


def test_api_key_comes_from_the_environment_and_is_never_written(
    mini, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MY_JUDGE_KEY", SECRET)
    faults = Faults(echo_400=0.5, seed=2)
    with FakeOpenAIServer(models=["gpt-4.1"], faults=faults) as srv:
        result = runner.invoke(
            app,
            ["evaluate", "--judge", "gpt-4.1", "--dataset", "mini", "--limit", "6", "--base-url", srv.url,
             "--api-key-env", "MY_JUDGE_KEY", "--store", str(tmp_path / "store.sqlite"), "--out", str(tmp_path / "run"),
             "--bootstrap", "20"],
        )  # fmt: skip
        assert any(e["fault"] == "echo400" for e in srv.log.snapshot())
    assert result.exit_code == 0, result.output
    assert SECRET not in result.output
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path


def test_missing_extra_or_unknown_backend_is_explained() -> None:
    with pytest.raises(JudgeLoadError, match="needs a model backend"):
        load_judge("editscore-7b", backend="none")


def test_scoring_twice_leaves_no_closed_loop_errors_or_open_clients(tmp_path: Path) -> None:
    """Judge.score runs a loop per call: its HTTP clients are closed inside that loop."""
    import gc
    import subprocess
    import sys

    from conftest import png

    (tmp_path / "a.png").write_bytes(png((10, 10, 10)))
    (tmp_path / "b.png").write_bytes(png((200, 0, 0)))
    with FakeOpenAIServer(models=["gpt-4.1"], mode="hash") as srv:
        code = (
            "import gc, warnings; warnings.simplefilter('always');"
            "from editreward_bench.judges import load_judge;"
            f"j = load_judge('gpt-4.1', base_urls=[{srv.url!r}]);"
            f"r = [j.score('Add a cat.', {str(tmp_path / 'a.png')!r}, {str(tmp_path / 'b.png')!r}) "
            "for _ in range(3)]; assert all(x['passes_ok'] == 1 for x in r);"
            "j.close(); del j; gc.collect(); print('done')"
        )
        done = subprocess.run(
            [sys.executable, "-X", "dev", "-c", code], capture_output=True, text=True, timeout=120
        )
    gc.collect()
    assert done.returncode == 0 and done.stdout.strip() == "done", done.stderr[-2000:]
    for bad in ("Event loop is closed", "unclosed", "ResourceWarning", "Traceback"):
        assert bad not in done.stderr, done.stderr[-2000:]
