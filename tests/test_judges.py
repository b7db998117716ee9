"""Judge cards, the registry, prompts, the EditScore protocol's arithmetic, plugins."""

from __future__ import annotations

import asyncio
import json
import math
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest
from conftest import REPO
from typer.testing import CliRunner

from editreward_bench.cli import app
from editreward_bench.judges import (
    Backend,
    GenRequest,
    GenResponse,
    JudgeTask,
    UnknownJudgeError,
    discover,
    load_judge,
    resolve_card,
)
from editreward_bench.judges.base import ImageCandidate
from editreward_bench.judges.cards import CardError, read_card
from editreward_bench.judges.editscore import EditScoreJudge, combine, load_prompts, retry_seed
from editreward_bench.judges.options import parse_config

runner = CliRunner()
PAPER_JUDGES = {
    "editscore-7b": "EditScore-7B", "editscore-32b": "EditScore-32B", "editscore-72b": "EditScore-72B",
    "editscore-qwen3-vl-4b": "EditScore-Qwen3-VL-4B", "editscore-qwen3-vl-8b": "EditScore-Qwen3-VL-8B",
    "qwen2.5-vl-7b": "Qwen2.5-VL-7B", "qwen2.5-vl-32b": "Qwen2.5-VL-32B", "qwen2.5-vl-72b": "Qwen2.5-VL-72B",
    "gpt-4.1": "GPT-4.1", "gpt-5": "GPT-5", "gemini-2.5-pro": "Gemini-2.5-Pro",
}  # fmt: skip


def test_every_paper_judge_has_a_card_tied_to_its_published_row() -> None:
    import csv

    published = {
        row["judge"] for row in csv.DictReader((REPO / "data" / "published_results.csv").open())
    }
    registry = discover([])
    for name, paper in PAPER_JUDGES.items():
        card = registry.get(name).card
        assert card is not None and card.paper_judge == paper and paper in published
    assert registry.get("editscore-72b").card.adapter == "EditScore/EditScore-72B"  # type: ignore[union-attr]
    assert registry.get("editscore-7b").card.backend == "transformers"  # type: ignore[union-attr]
    assert registry.get("editscore-72b").card.backend == "openai"  # type: ignore[union-attr]


def test_api_cards_send_no_sampling_parameters() -> None:
    registry = discover([])
    for name in ("gpt-4.1", "gpt-5", "gemini-2.5-pro"):
        card = registry.get(name).card
        assert card is not None and card.sampling == {}
    sampled = registry.get("editscore-7b").card
    assert sampled is not None
    assert sampled.sampling == {
        "temperature": 0.7,
        "top_p": 0.9,
        "top_k": 20,
        "max_new_tokens": 512,
        "repetition_penalty": 1.05,
    }


def test_unknown_judge_suggests_names() -> None:
    with pytest.raises(UnknownJudgeError, match=r"did you mean 'editscore-7b'"):
        resolve_card("editscore-7")
    result = runner.invoke(app, ["evaluate", "--judge", "gpt4.1", "--dataset", "mini"])
    assert result.exit_code == 2 and "did you mean 'gpt-4.1'" in result.output


def test_user_card_file_and_bad_cards(tmp_path: Path) -> None:
    card = tmp_path / "mine.toml"
    card.write_text('name = "mine"\nprotocol = "image-diff"\nbackend = "none"\n')
    judge = load_judge(str(card))
    assert judge.name == "mine"
    bad = tmp_path / "bad.toml"
    bad.write_text(
        'name = "bad"\nprotocol = "editscore"\nbackend = "openai"\n[sampling]\ntemprature = 0.3\n'
    )
    with pytest.raises(CardError, match=r"unknown sampling parameter.*temprature"):
        read_card(bad)
    bad.write_text("name = ")
    with pytest.raises(CardError, match="not valid TOML"):
        read_card(bad)


def test_erb_judges_json_lists_everything() -> None:
    result = runner.invoke(app, ["judges", "--json"])
    assert result.exit_code == 0
    rows = json.loads(result.stdout)
    names = {row["name"] for row in rows}
    assert set(PAPER_JUDGES) | {"random", "image-diff"} <= names
    for row in rows:
        assert {"name", "backend", "model", "source"} <= set(row)


def test_prompts_snapshot_matches_upstream_byte_for_byte() -> None:
    """The snapshot is rendered by upstream's own code (editscore 0.2, the wheel the test command
    installs) with ``tests/snapshots/make_editscore_prompts.py``; checked here, then compared."""
    checked = subprocess.run(
        [sys.executable, str(REPO / "tests" / "snapshots" / "make_editscore_prompts.py"), "--check"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert checked.returncode == 0, checked.stdout + checked.stderr
    snapshot = json.loads((REPO / "tests" / "snapshots" / "editscore_prompts.json").read_text())
    instruction = 'Make the sky "purple" <b>now</b> 10'
    result = runner.invoke(
        app, ["prompts", "--judge", "editscore-7b", "--instruction", instruction, "--json"]
    )
    assert result.exit_code == 0
    assert json.loads(result.stdout) == snapshot
    # The 10 -> 25 rewrite touches the rule blocks, never the instruction.
    assert "From scale 0 to 25: \n" in snapshot["sc"] and snapshot["sc"].endswith(
        "Editing instruction: " + instruction + "\n"
    )
    assert "0 to 10" not in snapshot["pq"]


def test_template_files_are_the_upstream_blocks() -> None:
    prompts = load_prompts()
    assert prompts.context.startswith("You are a professional digital artist.")
    assert prompts.sc_rule.count("10") == 5 and prompts.pq_rule.count("10") == 5
    assert prompts.template_hash().startswith("sha256:")


def test_combine_matches_hand_computed_values() -> None:
    got = combine((20, 15), (18, 22))
    assert got["prompt_following"] == pytest.approx(8.0)
    assert got["consistency"] == pytest.approx(6.0)
    assert got["perceptual_quality"] == pytest.approx(7.2)
    assert got["overall"] == pytest.approx(math.sqrt(6.0 * 7.2))
    assert combine((0, 25), (25, 25))["overall"] == 0.0


class ScriptedBackend(Backend):
    """Answers from a script keyed by (kind, seed); records every request."""

    def __init__(self, answers: dict[tuple[str, int], list[str]], supports_n: bool = False) -> None:
        self.answers = answers
        self.supports_n = supports_n
        self.requests: list[GenRequest] = []

    def describe(self) -> dict[str, object]:
        return {"backend": "scripted"}

    async def generate(self, requests: Sequence[GenRequest]) -> list[GenResponse]:
        out = []
        for r in requests:
            self.requests.append(r)
            kind = "sc" if len(r.images) == 2 else "pq"
            script = self.answers.get((kind, r.seed))
            if script is None:
                out.append(GenResponse([], error="connection refused"))
            else:
                out.append(
                    GenResponse(script[: r.n], prompt_tokens=100 * r.n, completion_tokens=10 * r.n)
                )
        return out


def _judge(backend: Backend, max_retries: int = 2) -> EditScoreJudge:
    card = resolve_card("editscore-7b").card
    assert card is not None
    return EditScoreJudge(parse_config(card, {"max_retries": max_retries}), backend)


def _candidate() -> ImageCandidate:
    from PIL import Image

    return ImageCandidate(
        "c1", "Add a cat.", Image.new("RGB", (32, 32), "red"), Image.new("RGB", (16, 16), "blue")
    )


def answer(a: float, b: float) -> str:
    return json.dumps({"reasoning": f"{a},{b}", "score": [a, b]})


def test_avg_at_k_is_the_mean_of_per_pass_subscores() -> None:
    backend = ScriptedBackend({
        ("sc", 42): [answer(20, 15)], ("pq", 42): [answer(18, 22)],
        ("sc", 43): [answer(25, 5)], ("pq", 43): [answer(25, 25)],
    })  # fmt: skip
    judge = _judge(backend)
    summary = judge.score("Add a cat.", _candidate().source, _candidate().edited, k=2)
    pass0 = combine((20, 15), (18, 22))
    pass1 = combine((25, 5), (25, 25))
    for name in ("prompt_following", "consistency", "perceptual_quality", "overall"):
        assert summary[name] == pytest.approx((pass0[name] + pass1[name]) / 2)
    # overall is the mean of per-pass geometric means, not the geometric mean of means
    assert summary["overall"] == pytest.approx((math.sqrt(6 * 7.2) + math.sqrt(2 * 10)) / 2)
    # both images go to SC, the edited one (resized to the source) to PQ
    sc = next(r for r in backend.requests if len(r.images) == 2)
    pq = next(r for r in backend.requests if len(r.images) == 1)
    assert sc.images[1] is pq.images[0] and sc.images[1].size == (32, 32)
    assert "Editing instruction: Add a cat." in sc.text


def test_unparseable_answers_are_retried_with_new_seeds_then_fail() -> None:
    backend = ScriptedBackend({
        ("sc", 42): ["no idea"], ("sc", retry_seed(42, 1)): ['{"score": [30, 2]}'],
        ("sc", retry_seed(42, 2)): [answer(21, 20)], ("pq", 42): [answer(20, 20)],
    })  # fmt: skip
    task = JudgeTask(_candidate(), (0,), (42,))
    [result] = asyncio.run(_judge(backend).ajudge([task]))
    assert result.status == "ok" and result.attempts == 3
    assert result.prompt_following == pytest.approx(8.4)
    assert [r.seed for r in backend.requests if len(r.images) == 2] == [
        42,
        retry_seed(42, 1),
        retry_seed(42, 2),
    ]

    backend = ScriptedBackend(
        {
            ("sc", 42): ["nope"],
            ("sc", retry_seed(42, 1)): ["still no"],
            ("pq", 42): [answer(20, 20)],
        }
    )
    [result] = asyncio.run(_judge(backend, max_retries=1).ajudge([task]))
    assert result.status == "failed" and result.raw_sc == "still no"
    assert "unparseable after 2 attempt(s)" in (result.error or "")
    assert result.prompt_following is None  # never a made-up score


def test_n_requests_map_choice_j_to_pass_a_plus_j() -> None:
    backend = ScriptedBackend(
        {("sc", 44): [answer(25, 25), answer(0, 0)], ("pq", 44): [answer(25, 25), answer(25, 25)]},
        supports_n=True,
    )
    task = JudgeTask(_candidate(), (2, 3), (44, 45))
    results = asyncio.run(_judge(backend).ajudge([task]))
    assert [(r.pass_index, r.seed, r.overall) for r in results] == [(2, 44, 10.0), (3, 45, 0.0)]
    assert len(backend.requests) == 2 and all(r.n == 2 and r.seed == 44 for r in backend.requests)
    # each request (SC and PQ) bills 100 prompt tokens per sample, shared among its passes
    assert results[0].prompt_tokens == 200 and results[0].completion_tokens == 20


def test_backend_errors_are_transient_failures_and_bad_images_fail_one_candidate() -> None:
    task = JudgeTask(_candidate(), (0,), (42,))
    [result] = asyncio.run(_judge(ScriptedBackend({})).ajudge([task]))
    assert (
        result.status == "failed"
        and result.transient
        and "connection refused" in (result.error or "")
    )
    broken = ImageCandidate("bad", "x", b"not an image", b"nor this")
    good = JudgeTask(_candidate(), (0,), (42,))
    backend = ScriptedBackend({("sc", 42): [answer(1, 1)], ("pq", 42): [answer(1, 1)]})
    results = asyncio.run(_judge(backend).ajudge([JudgeTask(broken, (0,), (42,)), good]))
    assert (
        results[0].status == "failed"
        and (results[0].error or "").startswith("image:")
        and not results[0].transient
    )
    assert results[1].status == "ok"


def test_baselines_and_the_score_command(tmp_path: Path) -> None:
    from PIL import Image

    src, ed = tmp_path / "s.png", tmp_path / "e.png"
    Image.new("RGB", (64, 64), "white").save(src)
    img = Image.new("RGB", (64, 64), "white")
    img.paste(Image.new("RGB", (20, 20), "red"), (10, 10))
    img.save(ed)
    result = runner.invoke(
        app,
        [
            "score",
            str(src),
            str(ed),
            "--judge",
            "image-diff",
            "--instruction",
            "Add a red square.",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    scores = json.loads(result.stdout)
    assert 0 < scores["prompt_following"] <= 10 and 0 < scores["consistency"] < 10
    again = load_judge("random").score("x", src, ed, k=3)
    assert again == load_judge("random").score("x", src, ed, k=3)  # seeded
    assert again["passes_ok"] == 3
    missing = runner.invoke(
        app,
        [
            "score",
            str(src),
            str(tmp_path / "nope.png"),
            "--judge",
            "image-diff",
            "--instruction",
            "x",
        ],
    )
    assert missing.exit_code == 2


@pytest.fixture(scope="module")
def plugin_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("plugin-site")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--no-compile",
         "--target", str(target), str(REPO / "tests" / "plugins" / "erb_example_plugin")],
        check=True, capture_output=True,
    )  # fmt: skip
    return target


def _erb(args: list[str], plugin_path: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(plugin_path), str(REPO)]),
        "ERB_STORE": str(tmp_path / "store.sqlite"),
    }
    return subprocess.run(
        [sys.executable, "-m", "editreward_bench.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )


def test_plugins_are_listed_run_and_broken_ones_skipped(plugin_path: Path, tmp_path: Path) -> None:
    listing = _erb(["judges", "--json"], plugin_path, tmp_path)
    assert listing.returncode == 0, listing.stderr
    rows = {row["name"]: row for row in json.loads(listing.stdout)}
    assert rows["brightness"]["source"] == "plugin:erb-example-plugin"
    assert rows["example-card"]["backend"] == "none"
    assert rows["random"]["source"] == "built-in"  # a plugin never replaces a built-in
    assert "'broken'" in listing.stderr and "skipped" in listing.stderr
    assert "'random'" in listing.stderr and "name is taken" in listing.stderr

    run = _erb(
        [
            "evaluate",
            "--judge",
            "brightness",
            "--dataset",
            "mini",
            "--limit",
            "12",
            "--out",
            "run",
            "--bootstrap",
            "50",
        ],
        plugin_path,
        tmp_path,
    )
    assert run.returncode == 0, run.stderr
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["judge"]["name"] == "brightness" and metrics["failures"] == 0

    card_run = _erb(
        [
            "evaluate",
            "--judge",
            "example-card",
            "--dataset",
            "mini",
            "--limit",
            "6",
            "--out",
            "run2",
            "--bootstrap",
            "20",
        ],
        plugin_path,
        tmp_path,
    )
    assert card_run.returncode == 0, card_run.stderr

    wrong = _erb(
        ["evaluate", "--judge", "wrongtype", "--dataset", "mini", "--limit", "3"],
        plugin_path,
        tmp_path,
    )
    assert (
        wrong.returncode == 2 and "not a Judge" in wrong.stderr and "Traceback" not in wrong.stderr
    )
