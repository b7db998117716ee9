"""The trainer clients (Flow-GRPO, OmniGen2-RL) against a real reward server on 127.0.0.1."""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from editreward_bench.rewards import RewardModel
from editreward_bench.rewards.client import RewardError, RewardServerError
from editreward_bench.rewards.flow_grpo import editscore_score, to_uint8_images
from editreward_bench.rewards.omnigen2 import evaluate_images
from editreward_bench.rewards.server import RewardServer
from editreward_bench.testing.fake_openai import FakeOpenAIServer

REPO = Path(__file__).resolve().parent.parent
TOKEN = "client-token-0123456789"


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[RewardServer, RewardModel]]:
    with (
        FakeOpenAIServer(models=["editscore-72b"]) as judge,
        RewardModel("editscore-72b", base_urls=judge.url, k=2) as reward,
        RewardServer(reward, token=TOKEN) as server,
    ):
        yield server, reward


@pytest.fixture(autouse=True)
def token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ERB_REWARD_TOKEN", TOKEN)


def edits(n: int, size: int = 32) -> tuple[np.ndarray, list[Image.Image]]:
    """n edited images as Flow-GRPO has them (N x C x H x W floats in [0, 1]) and their sources."""
    rng = np.random.default_rng(0)
    images = rng.random((n, 3, size, size)).astype(np.float32)
    images[:, 0] = np.linspace(0, 1, n)[:, None, None]  # each edit different
    sources = [Image.new("RGB", (size, size), (10 * i, 20, 30)) for i in range(n)]
    return images, sources


def _direct(
    reward: RewardModel, prompts: list[str], sources: list[Any], edited: list[Any]
) -> list[Any]:
    return reward.score_many(list(zip(prompts, sources, edited, strict=True)))


def test_flow_grpo_reward_takes_the_editing_trainers_tensors_and_ref_images(served) -> None:
    torch = pytest.importorskip("torch")
    server, reward = served
    images, sources = edits(4)
    prompts = ["Make it red.", "Make it red.", "Add a cat.", "Add a cat."]
    fn = editscore_score("cpu", url=server.url)
    scores, details = fn(torch.from_numpy(images), prompts, [{}] * 4, sources)
    uint8 = to_uint8_images(torch.from_numpy(images))
    # Flow-GRPO's own conversion of a float N x C x H x W tensor
    theirs = (torch.from_numpy(images) * 255).round().clamp(0, 255).to(torch.uint8).numpy()
    assert np.array_equal(np.stack(uint8), theirs.transpose(0, 2, 3, 1))
    assert np.array_equal(np.stack(to_uint8_images(images)), theirs.transpose(0, 2, 3, 1))
    expected = _direct(reward, prompts, sources, [Image.fromarray(a) for a in uint8])
    assert scores == [r.overall / 10 for r in expected]
    assert details["prompt_following"] == [r.prompt_following for r in expected]
    assert details["passes"] == [2] * 4 and details["errors"] == [None] * 4
    assert details["diagnostics"]["groups"] == 2
    # the same through a numpy array, without torch
    scores_np, _ = fn(images, prompts, [{}] * 4, sources)
    assert scores_np == scores


def test_flow_grpo_reward_works_from_multi_score(served, monkeypatch: pytest.MonkeyPatch) -> None:
    """The way Flow-GRPO's multi_score builds and calls a reward, with the editing trainer's
    ref_images; the server's address comes from $ERB_REWARD_URL."""
    server, _ = served
    monkeypatch.setenv("ERB_REWARD_URL", server.url)
    images, sources = edits(2)
    score_functions = {"editscore": editscore_score}
    score_dict = {"editscore": 0.5}
    score_fns = {
        name: score_functions[name]("cpu")
        if "device" in score_functions[name].__code__.co_varnames
        else score_functions[name]()
        for name in score_dict
    }
    scores, _ = score_fns["editscore"](images, ["Add a cat."] * 2, [{}] * 2, sources)
    total = [score_dict["editscore"] * s for s in scores]
    assert len(total) == 2 and all(0 <= t <= 0.5 for t in total)


def test_importing_the_flow_grpo_reward_never_imports_torch() -> None:
    code = (
        "import sys, numpy as np\n"
        "from editreward_bench.rewards.flow_grpo import editscore_score, to_uint8_images\n"
        "to_uint8_images(np.zeros((1, 3, 4, 4), np.float32))\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_a_failed_item_becomes_what_on_error_says(served, caplog: pytest.LogCaptureFixture) -> None:
    server, _ = served
    images, sources = edits(3)
    prompts = ["Make it red."] * 3
    broken = [sources[0], b"not an image", sources[2]]  # the server cannot judge item 1
    caplog.set_level(logging.WARNING)
    scores, details = editscore_score(url=server.url)(images, prompts, None, broken)
    assert details["errors"][1].startswith("invalid item 1")
    assert scores[1] == (scores[0] + scores[2]) / 2  # the group's mean: no advantage
    assert "1 of 3 item(s) got no reward" in caplog.text
    fixed, _ = editscore_score(url=server.url, on_error=-1.0)(images, prompts, None, broken)
    assert fixed[1] == -1.0 and fixed[0] == scores[0]
    with pytest.raises(RewardError, match="item 1: invalid item 1"):
        editscore_score(url=server.url, on_error="raise")(images, prompts, None, broken)
    with pytest.raises(ValueError, match="needs the source images"):
        editscore_score(url=server.url)(images, prompts, None)


def test_omnigen2_drop_in_keeps_upstreams_meanings(served) -> None:
    server, reward = served
    images, sources = edits(3)
    outputs = [Image.fromarray(a) for a in to_uint8_images(images)]
    metas = [json.dumps({"instruction": "Make it red.", "tag": "edit"})] * 2 + [
        {"instruction": "Add a cat."}
    ]
    host, port = server.host, server.port
    answer = evaluate_images([[s] for s in sources], outputs, metas, host, port, "vlm")
    assert answer is not None
    scores, rewards, reasoning, meta_data = answer
    expected = _direct(reward, ["Make it red.", "Make it red.", "Add a cat."], sources, outputs)
    assert rewards == [r.overall / 10 for r in expected]
    assert scores == [1.0 if r >= 0.5 else 0.0 for r in rewards]
    assert [m["original_index"] for m in meta_data] == [0, 1, 2] and meta_data[0]["tag"] == "edit"
    assert all("O_score" in text and "SC_raw_output" in text for text in reasoning)
    assert evaluate_images([], [], [], host, port) == ([], [], [], [])


def test_omnigen2_drop_in_failed_items_and_unreachable_server(served) -> None:
    server, _ = served
    images, sources = edits(2)
    outputs = [Image.fromarray(a) for a in to_uint8_images(images)]
    metas = [{"instruction": "Make it red."}] * 2
    answer = evaluate_images(sources, [outputs[0], b"broken"], metas, server.host, server.port)
    assert answer is not None
    _, rewards, reasoning, meta_data = answer
    assert rewards[1] == rewards[0] and "error" in meta_data[1] and reasoning[1].startswith("error")
    with pytest.raises(RewardError):
        evaluate_images(
            sources, [outputs[0], b"broken"], metas, server.host, server.port, on_error="raise"
        )
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead_port = s.getsockname()[1]
    assert evaluate_images(sources, outputs, metas, "127.0.0.1", dead_port, max_retries=0) is None


def test_a_client_without_the_token_is_refused(served, monkeypatch: pytest.MonkeyPatch) -> None:
    server, _ = served
    monkeypatch.delenv("ERB_REWARD_TOKEN")
    images, sources = edits(1)
    with pytest.raises(RewardServerError, match="HTTP 401"):
        editscore_score(url=server.url)(images, ["x"], None, sources)
