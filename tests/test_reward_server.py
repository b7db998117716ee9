"""`erb serve-reward`: the reward server end to end, on 127.0.0.1, against the local judge server."""

from __future__ import annotations

import base64
import http.client
import json
import logging
import os
import socket
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from io import BytesIO
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from prometheus_client.parser import text_string_to_metric_families
from typer.testing import CliRunner

from editreward_bench.cli import app
from editreward_bench.rewards import RewardModel, reward_diagnostics
from editreward_bench.rewards.model import RewardResult
from editreward_bench.rewards.server import Limits, RewardServer
from editreward_bench.testing.fake_openai import FakeOpenAIServer, Faults

REPO = Path(__file__).resolve().parent.parent
runner = CliRunner()
TOKEN = "reward-token-0123456789"
SECRET = "sk-test-0123456789abcdefSECRET"


def image_b64(colour: tuple[int, int, int], fmt: str = "PNG", size: int = 40) -> str:
    buf = BytesIO()
    Image.new("RGB", (size, size), colour).save(buf, format=fmt)
    return base64.b64encode(buf.getvalue()).decode()


def item(colour: tuple[int, int, int] = (200, 9, 9), **kw: Any) -> dict[str, Any]:
    return {"instruction": "Make it red.", "source": image_b64((9, 9, 9)),
            "edited": image_b64(colour), **kw}  # fmt: skip


def call(
    url: str, path: str, body: Any = None, token: str | None = None, raw: bytes | None = None
) -> tuple[int, Any]:
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url + path, data=data, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            text = response.read().decode()
            status = response.status
    except urllib.error.HTTPError as exc:
        text, status = exc.read().decode(), exc.code
    try:
        return status, json.loads(text)
    except json.JSONDecodeError:
        return status, text


@contextmanager
def serving(
    urls: str | list[str], token: str | None = None, limits: Limits | None = None, **kw: Any
) -> Iterator[tuple[RewardServer, RewardModel]]:
    """A reward server on 127.0.0.1 for editscore-72b served at ``urls``."""
    with (
        RewardModel("editscore-72b", base_urls=urls, **kw) as reward,
        RewardServer(reward, token=token, limits=limits) as server,
    ):
        yield server, reward


@pytest.fixture
def judge_server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer(models=["editscore-72b"]) as srv:
        yield srv


@pytest.fixture
def served(judge_server: FakeOpenAIServer) -> Iterator[tuple[RewardServer, RewardModel]]:
    limits = Limits(max_items=8, max_image_pixels=64 * 64)
    with serving(judge_server.url, limits=limits, k=2) as (server, reward):
        yield server, reward


def test_score_answers_each_item_as_the_python_api_does(served) -> None:
    server, reward = served
    jpeg_url = "data:image/jpeg;base64," + image_b64((9, 200, 9), "JPEG")
    items = [item(group="p1"), item((9, 200, 9), group="p1"), item(edited=jpeg_url, group="p2")]
    status, answer = call(server.url, "/v1/score", {"items": items})
    assert status == 200, answer
    results = answer["results"]
    assert len(results) == 3 and all(r["error"] is None and r["passes"] == 2 for r in results)
    direct = reward.score_many(
        [(i["instruction"], base64.b64decode(i["source"]),
          base64.b64decode(i["edited"].split(",")[-1])) for i in items]
    )  # fmt: skip
    assert results == [r.to_dict() for r in direct]
    assert answer["judge"]["fingerprint"] == reward.fingerprint
    assert answer["judge"]["name"].startswith("editscore-72b")
    expected = reward_diagnostics(direct, ["p1", "p1", "p2"])
    assert {k: answer["diagnostics"][k] for k in expected} == expected
    status, one = call(server.url, "/v1/score", {"items": items[:1], "k": 1, "reasoning": True})
    assert status == 200 and one["results"][0]["passes"] == 1
    assert one["results"][0]["reasoning"][0]["raw_sc"].startswith("{")
    status, info = call(server.url, "/v1/judge")
    assert status == 200 and info["k"] == 2 and info["resize_edited"] is True


def test_a_malformed_item_gets_its_own_error_and_the_others_are_scored(served) -> None:
    server, _ = served
    gif = BytesIO()
    Image.new("RGB", (8, 8)).save(gif, format="GIF")
    items = [
        item(),
        item(edited="@@not base64@@"),
        item(edited=base64.b64encode(gif.getvalue()).decode()),
        item(edited=image_b64((1, 1, 1), size=100)),  # 100 x 100 > the 64 x 64 limit
        {"instruction": "", "source": image_b64((1, 1, 1)), "edited": image_b64((2, 2, 2))},
        "not an object",
        item(extra=1),
        item(edited=base64.b64encode(b"plain text").decode()),
        item((9, 9, 200)),
    ]
    status, answer = call(server.url, "/v1/score", {"items": items[:8]})
    assert status == 200
    errors = [r["error"] for r in answer["results"]]
    assert errors[0] is None and answer["results"][0]["overall"] is not None
    for i, needle in (
        (1, "not valid base64"), (2, "GIF image; send PNG or JPEG"), (3, "100x100 pixels"),
        (4, "'instruction' must be a non-empty string"), (5, "an item is an object"),
        (6, "unknown field(s) ['extra']"), (7, "not a PNG or JPEG image"),
    ):  # fmt: skip
        assert errors[i].startswith(f"invalid item {i}: ") and needle in errors[i]
        assert answer["results"][i]["overall"] is None and answer["results"][i]["passes"] == 0
    assert answer["diagnostics"]["invalid"] == 7 and answer["diagnostics"]["scored"] == 1


@pytest.mark.parametrize(
    ("raw", "status", "needle"),
    [
        (b"{not json", 400, "not valid JSON"),
        (b"[1, 2]", 400, "must be a JSON object"),
        (b'{"item": []}', 400, "unknown field(s) ['item']"),
        (b'{"items": {}}', 400, '"items" must be a list'),
        (b'{"items": [], "k": 0}', 400, '"k" must be an integer from 1 to 16'),
        (b'{"items": [], "k": true}', 400, '"k" must be an integer'),
        (b'{"items": [], "reasoning": "yes"}', 400, '"reasoning" must be true or false'),
        (json.dumps({"items": [{}] * 9}).encode(), 413, "over this server's limit of 8"),
        (b"\xff\xfe", 400, "not UTF-8 JSON"),
    ],
)
def test_a_malformed_body_is_a_4xx_with_a_message(
    served, raw: bytes, status: int, needle: str
) -> None:
    server, _ = served
    got, answer = call(server.url, "/v1/score", raw=raw)
    assert got == status and needle in answer["error"]


def test_bodies_over_the_limit_are_refused(judge_server) -> None:
    with serving(judge_server.url, limits=Limits(max_body_bytes=1000), k=1) as (server, _):
        status, answer = call(server.url, "/v1/score", {"items": [item()] * 3})
        # a chunked body announces no length: it is counted as it arrives
        conn = http.client.HTTPConnection(server.host, server.port, timeout=30)
        chunks = iter([json.dumps({"items": [item()] * 3}).encode()])
        conn.request("POST", "/v1/score", body=chunks, encode_chunked=True)
        chunked = conn.getresponse()
        assert chunked.status == 413 and "limit of 1000" in json.loads(chunked.read())["error"]
        conn.close()
    assert status == 413 and "limit of 1000" in answer["error"]


def test_a_token_is_required_when_set_and_checked_in_constant_time(
    judge_server, monkeypatch: pytest.MonkeyPatch
) -> None:
    import hmac

    compared: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    with serving(judge_server.url, token=TOKEN, k=1) as (server, _):
        for path, body in (("/v1/score", {"items": [item()]}), ("/v1/judge", None),
                           ("/metrics", None)):  # fmt: skip
            assert call(server.url, path, body)[0] == 401
            assert call(server.url, path, body, token="wrong")[0] == 401
            assert call(server.url, path, body, token=TOKEN[:-1])[0] == 401
            assert call(server.url, path, body, token=TOKEN)[0] == 200
        assert call(server.url, "/health")[0] == 200  # for load balancers
    assert compared and all(b == TOKEN.encode() for _, b in compared)


def test_the_cli_refuses_a_non_loopback_bind_without_a_token_before_binding(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import uvicorn

    def never(*a: Any, **kw: Any) -> None:
        raise AssertionError("nothing may be loaded or bound")

    monkeypatch.setattr(uvicorn, "run", never)
    monkeypatch.setattr(socket.socket, "bind", never)
    monkeypatch.setattr("editreward_bench.rewards.RewardModel.__init__", never)
    for host in ("0.0.0.0", "::", "192.168.1.10", "my-host.example"):
        done = runner.invoke(app, ["serve-reward", "--judge", "editscore-72b", "--host", host])
        assert done.exit_code == 2, done.output
        assert (
            "--token-env" in done.output
            and "would accept requests from other machines" in done.output
        )
    monkeypatch.delenv("ERB_EMPTY_TOKEN", raising=False)
    done = runner.invoke(
        app, ["serve-reward", "--judge", "editscore-72b", "--host", "0.0.0.0",
              "--token-env", "ERB_EMPTY_TOKEN"],
    )  # fmt: skip
    assert done.exit_code == 2 and "empty or unset" in done.output


def test_the_cli_serves_with_the_judge_options_of_evaluate(
    judge_server, monkeypatch: pytest.MonkeyPatch
) -> None:
    import uvicorn

    seen: dict[str, Any] = {}

    def fake_run(app_: Any, host: str, port: int, **kw: Any) -> None:
        seen.update(host=host, port=port, app=app_)

    monkeypatch.setattr(uvicorn, "run", fake_run)
    monkeypatch.setenv("MY_TOKEN", TOKEN)
    done = runner.invoke(
        app,
        ["serve-reward", "--judge", "editscore-7b", "--k", "3", "--base-url", judge_server.url,
         "--model", "editscore-72b", "--adapter", "none", "-o", "temperature=0.5",
         "--keep-size", "--host", "127.0.0.2", "--port", "9999", "--token-env", "MY_TOKEN"],
    )  # fmt: skip
    assert done.exit_code == 0, done.output
    assert seen["host"] == "127.0.0.2" and seen["port"] == 9999
    done = runner.invoke(
        app, ["serve-reward", "--judge", "editscore-72b", "--base-url", judge_server.url,
              "-o", "temperatur=0.5"],
    )  # fmt: skip
    assert done.exit_code == 2 and "did you mean 'temperature'" in done.output
    done = runner.invoke(
        app, ["serve-reward", "--judge", "editscore-72b", "--base-url", "http://127.0.0.1:9/v1"]
    )
    assert done.exit_code == 2 and "nothing answers" in done.output


def _dead_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


def _metrics(url: str) -> dict[str, list[Any]]:
    status, text = call(url, "/metrics")
    assert status == 200
    return {f.name: f.samples for f in text_string_to_metric_families(text)}


def test_faults_and_a_dead_replica_never_fail_the_step(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="erb.reward")
    faults = Faults(http_500=0.05, http_429=0.02, garbage=0.02, drop=0.01, seed=3)
    dead = _dead_url()
    with (
        FakeOpenAIServer(models=["editscore-72b"], faults=faults) as live,
        serving([dead, live.url], k=2, backoff=0.01, eject_after=2, replica_cooldown=60,
                concurrency=8) as (server, _),
    ):  # fmt: skip
        urls = [dead, live.url]
        items = [item((i * 7 % 255, 9, 9), group=f"g{i % 5}") for i in range(30)]
        status, answer = call(server.url, "/v1/score", {"items": items})
        status_health, health = call(server.url, "/health")
        metrics = _metrics(server.url)
    assert status == 200 and len(answer["results"]) == 30
    for r in answer["results"]:
        assert (r["error"] is None and r["overall"] is not None and r["passes"] >= 1) or (
            r["error"] and r["overall"] is None
        )
    assert sum(r["error"] is None for r in answer["results"]) >= 28
    assert status_health == 200 and health == {
        "status": "degraded",
        "replicas_up": 1,
        "replicas": 2,
    }
    up = {s.labels["replica"]: s.value for s in metrics["erb_reward_replica_up"]}
    assert up == {urls[0]: 0.0, urls[1]: 1.0}
    outcomes = {(s.labels["replica"], s.labels["outcome"]) for s in metrics["erb_reward_backend_requests"]
                if s.name.endswith("_total") and s.value > 0}  # fmt: skip
    assert (urls[0], "transient") in outcomes and (urls[1], "ok") in outcomes
    assert "taken out" in caplog.text


def test_a_replica_killed_mid_request_is_left_for_the_others(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "editreward_bench.testing.fake_openai", "--port", str(port),
         "--latency", "1.5", "--mode", "hash", "--model", "editscore-72b"],
        env=env, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        doomed = proc.stdout.readline().strip()
        with (
            FakeOpenAIServer(models=["editscore-72b"], latency=0.1, mode="hash") as live,
            serving([doomed, live.url], k=1, backoff=0.01, eject_after=1) as (server, reward),
        ):
            killer = threading.Timer(0.7, proc.kill)
            killer.start()
            items = [item((i, 9, 9)) for i in range(12)]
            status, answer = call(server.url, "/v1/score", {"items": items})
            killer.join()
            assert reward.pool is not None and reward.pool.replicas[0].up is False
    finally:
        proc.kill()
        proc.wait(timeout=10)
    assert status == 200
    assert all(r["error"] is None and r["passes"] == 1 for r in answer["results"])


def test_concurrent_callers_share_one_bounded_pool(judge_server) -> None:
    judge_server.latency = 0.05
    with serving(judge_server.url, k=2, concurrency=3) as (server, reward):
        answers: list[Any] = []

        def rank(i: int) -> None:
            body = {"items": [item((i, 1, 1))] * 2 + [item((i, 2, 2))]}
            answers.append(call(server.url, "/v1/score", body))

        threads = [threading.Thread(target=rank, args=(i,)) for i in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert reward.pool is not None and reward.pool.peak_in_flight == 3
        metrics = _metrics(server.url)
    assert all(s == 200 and all(r["error"] is None for r in a["results"]) for s, a in answers)
    names = set(metrics)
    for name in ("erb_reward_requests", "erb_reward_items", "erb_reward_passes",
                 "erb_reward_request_seconds", "erb_reward_backend_request_seconds",
                 "erb_reward_backend_in_flight", "erb_reward_prompt_following_zero_share",
                 "erb_reward_zero_spread_group_share", "erb_reward_group_std"):  # fmt: skip
        assert name in names, name
    items_total = {s.labels["outcome"]: s.value for s in metrics["erb_reward_items"]
                   if s.name.endswith("_total")}  # fmt: skip
    assert items_total["scored"] == 18


def test_the_backend_api_key_never_reaches_a_response_or_a_log(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    caplog.set_level(logging.DEBUG)
    faults = Faults(echo_400=1.0)  # every error echoes the request headers, key included
    with (
        FakeOpenAIServer(models=["editscore-72b"], faults=faults) as srv,
        serving(srv.url, k=1) as (server, _),
    ):
        status, answer = call(server.url, "/v1/score", {"items": [item()], "reasoning": True})
        texts = [json.dumps(answer), json.dumps(call(server.url, "/v1/judge")[1]),
                 call(server.url, "/metrics")[1]]  # fmt: skip
    assert status == 200 and "HTTP 400" in answer["results"][0]["error"]
    assert all(SECRET not in text for text in texts)
    assert SECRET not in caplog.text


def test_group_diagnostics_are_running_figures_in_metrics(judge_server) -> None:
    same = item()
    with serving(judge_server.url, k=1) as (server, _):
        status, answer = call(
            server.url, "/v1/score",
            {"items": [{**same, "group": "flat"}, {**same, "group": "flat"},
                       item((9, 9, 200), group="x"), item((9, 200, 9), group="x")]},
        )  # fmt: skip
        metrics = _metrics(server.url)
    assert status == 200
    diag = answer["diagnostics"]
    assert diag["group_std"]["flat"] == 0.0 and diag["zero_spread_groups"] >= 1
    results = [RewardResult(**r) for r in answer["results"]]
    assert diag == {**diag, **reward_diagnostics(results, ["flat", "flat", "x", "x"])}
    [share] = metrics["erb_reward_zero_spread_group_share"]
    assert share.value == diag["zero_spread_group_share"]
