"""``erb evaluate --serve`` and ``erb serve`` with stand-in engines on PATH.

The stand-in ``vllm`` (and a stand-in ``sglang`` package) is a small Python script: it
writes its argv and process group to a file, then forks a child that runs erb's local
OpenAI-compatible server on the port it was given, as a real engine forks workers. Every
test checks that no process of the engine's group is left, after success, after the
engine failed, and after Ctrl-C (SIGINT to erb), by ``os.killpg(pgid, 0)``.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from conftest import REPO

from editreward_bench.engines import parallel_sizes, visible_gpus

STAND_IN = """
import json, os, subprocess, sys, time

args = sys.argv[1:]
out = os.environ["ERB_TEST_ENGINE_DIR"]
with open(os.path.join(out, "engine.json"), "w") as fh:
    json.dump({"argv": sys.argv, "pid": os.getpid(), "pgid": os.getpgid(0)}, fh)
mode = os.environ.get("ERB_TEST_ENGINE_MODE", "serve")
print("stand-in engine: loading the model", flush=True)
if mode == "crash":
    print("RuntimeError: CUDA out of memory (stand-in)", flush=True)
    sys.exit(3)
name = args[args.index("--served-model-name") + 1]
port = args[args.index("--port") + 1]
if mode == "hang":  # loads forever, with a worker
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
else:
    child = subprocess.Popen([
        sys.executable, "-m", "editreward_bench.testing.fake_openai", "--port", port,
        "--model", name, "--latency", os.environ.get("ERB_TEST_LATENCY", "0"),
    ])
sys.exit(child.wait())
"""


def group_gone(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.fixture
def engine_env(tmp_path: Path) -> dict[str, str]:
    """A PATH whose first folder holds a stand-in ``vllm``, and a stand-in ``sglang`` package."""
    bin_dir, pkgs = tmp_path / "bin", tmp_path / "pkgs"
    bin_dir.mkdir()
    (pkgs / "sglang").mkdir(parents=True)
    vllm = bin_dir / "vllm"
    vllm.write_text(f"#!{sys.executable}\n{STAND_IN}")
    vllm.chmod(0o755)
    (pkgs / "sglang" / "__init__.py").write_text("")
    (pkgs / "sglang" / "launch_server.py").write_text(STAND_IN)
    (tmp_path / "engine").mkdir()
    return {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONPATH": f"{pkgs}{os.pathsep}{REPO}",
        "ERB_TEST_ENGINE_DIR": str(tmp_path / "engine"),
        "ERB_STORE": str(tmp_path / "store.sqlite"),
        "ERB_MERGE_CACHE": str(tmp_path / "merged"),
        "CUDA_VISIBLE_DEVICES": "0,1",
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
    }


def erb_args(run: Path, *extra: str, judge: str = "qwen2.5-vl-7b") -> list[str]:
    return [sys.executable, "-m", "editreward_bench.cli", "evaluate", "--judge", judge,
            "--dataset", "mini", "--limit", "3", "--k", "1", "--bootstrap", "10",
            "--out", str(run), *extra]  # fmt: skip


def erb(args: list[str], env: dict[str, str], **overrides: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args, env={**env, **overrides}, capture_output=True, text=True, timeout=300, cwd=REPO
    )


def engine_record(env: dict[str, str]) -> dict[str, Any]:
    return json.loads((Path(env["ERB_TEST_ENGINE_DIR"]) / "engine.json").read_text())


def printed_recipe(stderr: str) -> list[str]:
    line = next(line for line in stderr.splitlines() if line.startswith("erb: starting: "))
    return shlex.split(line.removeprefix("erb: starting: ").split("; ")[-1])


def test_serve_vllm_runs_on_the_recipe_and_leaves_nothing(engine_env, tmp_path: Path) -> None:
    run = tmp_path / "run"
    done = erb(erb_args(run, "--serve", "vllm"), engine_env)
    assert done.returncode == 0, done.stderr
    record = engine_record(engine_env)
    assert group_gone(record["pgid"]) and record["pgid"] == record["pid"]  # its own group
    recipe = printed_recipe(done.stderr)
    assert record["argv"][1:] == recipe[1:]  # started with the printed recipe
    assert recipe[:3] == ["vllm", "serve", "Qwen/Qwen2.5-VL-7B-Instruct"]
    assert recipe[recipe.index("--host") + 1] == "127.0.0.1"
    # Two visible GPUs, a 7B: two replicas of one GPU each.
    assert recipe[recipe.index("--tensor-parallel-size") + 1] == "1"
    assert recipe[recipe.index("--data-parallel-size") + 1] == "2"
    log = (run / "server.log").read_text()
    assert "stand-in engine: loading the model" in log and "http://127.0.0.1:" in log
    marker = json.loads((run / ".erb-output.json").read_text())
    assert "server.log" in marker["files"] and (run / "metrics.json").is_file()
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["engine"]["command"] == recipe and manifest["base_urls"][0].startswith(
        "http://127.0.0.1:"
    )
    assert "base_url" not in manifest["judge"]["name"]  # its own server: the same judge
    # Run again into the same folder: resumed from the store, the new log replaces the old.
    again = erb(erb_args(run, "--serve", "vllm"), engine_env)
    assert again.returncode == 0, again.stderr
    assert "3 of 3 passes reused" in again.stdout
    assert (run / "server.log").read_text().count("stand-in engine: loading the model") == 1


def test_serve_merges_the_adapter_once_and_serves_the_merged_folder(
    engine_env, tmp_path: Path
) -> None:
    from tiny_qwen import build_tiny_lora, build_tiny_qwen

    base = build_tiny_qwen(tmp_path / "base")
    lora = build_tiny_lora(base, tmp_path / "lora")
    args = erb_args(tmp_path / "run", "--serve", "vllm", "--tp", "1", "--dp", "1", "--model",
                    str(base), "--adapter", str(lora), judge="editscore-7b")  # fmt: skip
    done = erb(args, engine_env)
    assert done.returncode == 0, done.stderr
    argv = engine_record(engine_env)["argv"]
    served = Path(argv[2])
    assert (
        served.parent == Path(engine_env["ERB_MERGE_CACHE"])
        and (served / "erb-merge.json").is_file()
    )
    assert argv[argv.index("--served-model-name") + 1] == "editscore-7b"
    assert argv[argv.index("--dtype") + 1] == "bfloat16"
    assert "--enable-lora" not in argv
    again = erb(args, engine_env)
    assert again.returncode == 0, again.stderr
    assert (
        "reusing the merged model" in again.stderr and "loading the base model" not in again.stderr
    )


def test_serve_sglang(engine_env, tmp_path: Path) -> None:
    done = erb(erb_args(tmp_path / "run", "--serve", "sglang", "--tp", "2"), engine_env)
    assert done.returncode == 0, done.stderr
    record = engine_record(engine_env)
    assert group_gone(record["pgid"])
    recipe = printed_recipe(done.stderr)
    assert recipe[:5] == ["python", "-m", "sglang.launch_server", "--model-path",
                          "Qwen/Qwen2.5-VL-7B-Instruct"]  # fmt: skip
    assert record["argv"][1:] == recipe[3:]
    assert recipe[recipe.index("--tp-size") + 1] == "2" and "--dp-size" not in recipe


def test_an_engine_that_exits_early_is_a_one_line_error_with_its_log(
    engine_env, tmp_path: Path
) -> None:
    run = tmp_path / "run"
    done = erb(erb_args(run, "--serve", "vllm"), engine_env, ERB_TEST_ENGINE_MODE="crash")
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "vllm exited with status 3" in errors[0], done.stderr
    assert "| RuntimeError: CUDA out of memory (stand-in)" in done.stderr  # the log's tail
    assert group_gone(engine_record(engine_env)["pgid"])
    assert "CUDA out of memory" in (run / "server.log").read_text()


def _wait_for(check: Any, what: str, limit: float = 120.0) -> Any:
    """Poll ``check`` until it returns something true (a guard against hanging, not a timing)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"gave up waiting for {what}")


def _engine_requests(env: dict[str, str]) -> int:
    try:
        argv = engine_record(env)["argv"]
        url = f"http://127.0.0.1:{argv[argv.index('--port') + 1]}/v1/stats"
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(url, timeout=2) as response:
            return int(json.loads(response.read())["requests"])
    except Exception:
        return 0


@pytest.mark.parametrize("when", ["while judging", "while the engine loads"])
def test_ctrl_c_stops_the_engines_whole_group(engine_env, tmp_path: Path, when: str) -> None:
    run = tmp_path / "run"
    mode = {"while judging": "serve", "while the engine loads": "hang"}[when]
    env = {**engine_env, "ERB_TEST_ENGINE_MODE": mode, "ERB_TEST_LATENCY": "60"}
    erb_process = subprocess.Popen(
        erb_args(run, "--serve", "vllm"), env=env, cwd=REPO, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        record = _wait_for(lambda: (Path(env["ERB_TEST_ENGINE_DIR"]) / "engine.json").is_file()
                           and engine_record(env), "the engine to start")  # fmt: skip
        if when == "while judging":
            _wait_for(lambda: _engine_requests(env) > 0, "the first request")
        assert not group_gone(record["pgid"])
        erb_process.send_signal(signal.SIGINT)
        _, err = erb_process.communicate(timeout=120)
    finally:
        if erb_process.poll() is None:
            erb_process.kill()
            erb_process.communicate()
    assert erb_process.returncode == 130, err
    assert group_gone(record["pgid"]), err
    assert (run / "server.log").is_file()


def test_a_missing_engine_is_a_one_line_error(engine_env, tmp_path: Path) -> None:
    env = {**engine_env, "PATH": str(tmp_path / "empty"), "PYTHONPATH": str(REPO)}
    for engine, needle in (("vllm", "`vllm` command is not on PATH"), ("sglang", "SGLang is not")):
        done = erb(erb_args(tmp_path / "run", "--serve", engine), env)
        assert done.returncode == 2, done.stderr
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], lines
    assert not (tmp_path / "run").exists()


def test_an_output_it_cannot_write_is_refused_before_any_engine_starts(
    engine_env, tmp_path: Path
) -> None:
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "notes.txt").write_text("mine")
    done = erb(erb_args(theirs, "--serve", "vllm"), engine_env)
    assert done.returncode == 2 and "was not written by erb" in done.stderr, done.stderr
    assert not (Path(engine_env["ERB_TEST_ENGINE_DIR"]) / "engine.json").exists()
    assert sorted(p.name for p in theirs.iterdir()) == ["notes.txt"]
    both = erb(erb_args(tmp_path / "run", "--serve", "vllm", "--base-url", "http://x/v1"),
               engine_env)  # fmt: skip
    assert both.returncode == 2 and "drop --base-url" in both.stderr


def test_erb_serve_keeps_the_engine_until_ctrl_c(engine_env, tmp_path: Path) -> None:
    from editreward_bench.engines import free_port

    port = str(free_port())
    log = tmp_path / "erb-serve.err"
    with open(log, "w") as err_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "editreward_bench.cli", "serve", "qwen2.5-vl-7b", "--port", port],
            env=engine_env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=err_file, text=True,
        )  # fmt: skip
        try:
            _wait_for(lambda: "in another shell" in log.read_text(), "erb to say it serves")
            url = f"http://127.0.0.1:{port}/v1/models"
            opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
            with opener.open(url, timeout=10) as response:
                served = [m["id"] for m in json.loads(response.read())["data"]]
            assert served == ["Qwen/Qwen2.5-VL-7B-Instruct"]
            record = engine_record(engine_env)
            assert process.poll() is None  # in the foreground, serving
            process.send_signal(signal.SIGINT)
            process.wait(timeout=120)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    err = log.read_text()
    assert process.returncode == 130, err
    assert group_gone(record["pgid"])
    assert "--base-url http://127.0.0.1:" in err and "--backend openai" in err


def test_parallel_sizes_follow_the_visible_gpus(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1,2,3,4,5,6,7")
    assert visible_gpus() == 8
    assert parallel_sizes(None, None, "Qwen/Qwen2.5-VL-72B-Instruct") == (4, 2)
    assert parallel_sizes(None, None, "Qwen/Qwen2.5-VL-7B-Instruct") == (1, 8)
    assert parallel_sizes(2, None, "x") == (2, 4) and parallel_sizes(None, 2, "x") == (4, 2)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,-1,2")  # CUDA stops at an invalid id
    assert visible_gpus() == 1
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")
    assert parallel_sizes(None, None, "Qwen/Qwen2.5-VL-72B-Instruct") == (1, 1)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    monkeypatch.setenv("PATH", "")  # no nvidia-smi
    assert visible_gpus() == 1


def test_evaluate_flags_name_the_server_behind_base_url(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from editreward_bench.cli import app
    from editreward_bench.testing.fake_openai import FakeOpenAIServer

    sglang_name = "Qwen/Qwen2.5-VL-72B-Instruct:editscore-72b"
    args = ["evaluate", "--judge", "editscore-72b", "--dataset", "mini", "--limit", "2", "--k",
            "1", "--store", str(tmp_path / "s.sqlite"), "--bootstrap", "10"]  # fmt: skip
    with FakeOpenAIServer(models=[sglang_name]) as srv:
        done = CliRunner().invoke(app, [*args, "--base-url", srv.url, "--server", "sglang",
                                        "--lora", "--out", str(tmp_path / "a")])  # fmt: skip
        assert done.exit_code == 0, done.output
        assert {e["model"] for e in srv.log.snapshot()} == {sglang_name}
    clash = CliRunner().invoke(app, [*args, "--serve", "sglang", "--server", "vllm"])
    assert clash.exit_code == 2 and "drop --server vllm" in clash.output
