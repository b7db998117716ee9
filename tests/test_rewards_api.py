"""RewardModel, the Python reward API, against the local OpenAI-compatible server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import base64
import gc
import threading
import time
import warnings
from io import BytesIO
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from PIL import Image
from typer.testing import CliRunner

from editreward_bench import RewardModel
from editreward_bench.cli import app
from editreward_bench.judges import JudgeCard, resolve_card
from editreward_bench.metrics import PassScores, avg_at_k
from editreward_bench.rewards import RewardItem, RewardResult, reward_diagnostics
from editreward_bench.testing.fake_openai import FakeOpenAIServer, Faults

runner = CliRunner()


def _png(colour: tuple[int, int, int], size: tuple[int, int] = (48, 48)) -> bytes:
    buf = BytesIO()
    Image.new("RGB", size, colour).save(buf, format="PNG")
    return buf.getvalue()


def _items(bench: Any, with_keys: bool = True) -> list[RewardItem]:
    return [
        RewardItem(
            c.instruction, c.source_bytes(), c.edited_bytes(), key=key if with_keys else None
        )
        for key, c in bench.candidates.items()
    ]


def test_results_equal_erb_evaluates_and_reuse_its_store_only_when_asked(
    mini, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bench, k, store = mini.subset(8), 3, tmp_path / "store.sqlite"
    with FakeOpenAIServer(models=["editscore-72b"]) as srv:
        done = runner.invoke(
            app,
            ["evaluate", "--judge", "editscore-72b", "--base-url", srv.url, "--dataset", "mini",
             "--limit", "8", "--k", str(k), "--store", str(store), "--out", str(tmp_path / "run"),
             "--bootstrap", "10"],
        )  # fmt: skip
        assert done.exit_code == 0, done.output
        records = pd.read_parquet(tmp_path / "run" / "records.parquet").to_dict("records")
        scores, ok = avg_at_k((PassScores.of(r) for r in records), k)
        expected = [
            RewardResult(
                scores[key]["overall"],
                scores[key]["prompt_following"],
                scores[key]["consistency"],
                scores[key]["perceptual_quality"],
                ok[key],
            )
            for key in bench.candidates
        ]
        assert len(expected) > 8  # several candidates per row, deduplicated
        after_evaluate = len(srv.log.snapshot())

        monkeypatch.setenv("ERB_STORE", str(store))  # the default store holds evaluate's passes
        with RewardModel("editscore-72b", base_urls=srv.url, k=k) as reward:  # no store
            fresh = reward.score_many(_items(bench))
        assert fresh == expected
        assert len(srv.log.snapshot()) == after_evaluate + 2 * len(expected)  # n = k: 2 requests

        with RewardModel("editscore-72b", base_urls=srv.url, k=k, store=store) as reward:
            reused = reward.score_many(_items(bench))
        assert reused == expected
        assert len(srv.log.snapshot()) == after_evaluate + 2 * len(expected)  # nothing asked


def test_the_sync_api_reuses_one_loop_and_its_clients_inside_a_running_loop(
    monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    import openai

    made: list[Any] = []
    closed: list[Any] = []

    class Counting(openai.AsyncOpenAI):
        def __init__(self, *a: Any, **kw: Any) -> None:
            super().__init__(*a, **kw)
            made.append(self)

        async def close(self) -> None:
            closed.append(self)
            await super().close()

    monkeypatch.setattr(openai, "AsyncOpenAI", Counting)
    src, edited = Image.new("RGB", (40, 40), (10, 10, 10)), Image.new("RGB", (40, 40), (200, 9, 9))
    gc.collect()  # what earlier tests left behind is theirs
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with FakeOpenAIServer(models=["editscore-72b"]) as srv:
            reward = RewardModel("editscore-72b", base_urls=srv.url, k=2)
            first = reward.score("Add a cat.", src, edited)
            clients = len(made)

            async def inside_a_running_loop() -> tuple[RewardResult, list[RewardResult]]:
                blocking = reward.score("Add a cat.", src, edited)  # sync call, loop running
                awaited = await asyncio.gather(
                    *(reward.ascore_many([("Add a cat.", src, edited)]) for _ in range(3))
                )
                return blocking, [r[0] for r in awaited]

            blocking, awaited = asyncio.run(inside_a_running_loop())
            assert blocking == first and awaited == [first] * 3
            assert len(made) == clients > 0  # the same clients served every call
            reward.close()
            reward.close()  # idempotent
        gc.collect()
    assert sorted(map(id, closed)) == sorted(map(id, made))  # every client closed, once
    leaks = [w for w in caught if issubclass(w.category, (ResourceWarning, RuntimeWarning))]
    assert not [(w.category, str(w.message)[:200]) for w in leaks]
    assert "Event loop is closed" not in capfd.readouterr().err
    assert not [t for t in threading.enumerate() if t.name == "erb-reward-loop"]
    assert first.ok and first.passes == 2


def test_a_failed_item_gets_an_error_never_a_made_up_score() -> None:
    src, edited = _png((10, 10, 10)), _png((200, 9, 9))
    with (
        FakeOpenAIServer(models=["editscore-72b"], faults=Faults(http_500=1.0)) as srv,
        RewardModel(
            "editscore-72b", base_urls=srv.url, k=2, max_attempts=2, backoff=0.01
        ) as reward,
    ):
        [down] = reward.score_many([("Add a cat.", src, edited)])
    assert (down.overall, down.prompt_following, down.consistency, down.perceptual_quality) == (
        None, None, None, None,
    )  # fmt: skip
    assert down.passes == 0 and "HTTP 500" in (down.error or "")
    with (
        FakeOpenAIServer(models=["editscore-72b"], faults=Faults(garbage=1.0)) as srv,
        RewardModel("editscore-72b", base_urls=srv.url, k=2, max_retries=1) as reward,
    ):
        [garbage, unreadable] = reward.score_many(
            [("Add a cat.", src, edited), ("Add a cat.", src, b"not an image")]
        )
    assert garbage.overall is None and "unparseable" in (garbage.error or "")
    assert unreadable.overall is None and "edited image cannot be decoded" in (
        unreadable.error or ""
    )


def test_items_take_pil_images_paths_and_bytes_alike(tmp_path: Path) -> None:
    src, edited = _png((10, 10, 10)), _png((200, 9, 9), (64, 40))
    (tmp_path / "s.png").write_bytes(src)
    (tmp_path / "e.png").write_bytes(edited)
    with (
        FakeOpenAIServer(models=["editscore-72b"]) as srv,
        RewardModel("editscore-72b", base_urls=[srv.url], k=2) as reward,
    ):
        items = [
            ("Make it red.", src, edited),
            {"instruction": "Make it red.", "source": tmp_path / "s.png", "edited": str(tmp_path / "e.png")},
            RewardItem("Make it red.", Image.open(BytesIO(src)).convert("RGB"), Image.open(BytesIO(edited)).convert("RGB")),
        ]  # fmt: skip
        results = reward.score_many(items)
    assert results[0].ok and results[0] == results[1] == results[2]
    with pytest.raises(TypeError, match="instruction, source, edited"):
        RewardItem.of(("only", "two"))


def test_pil_images_of_different_calls_are_never_confused() -> None:
    """A PIL image is named per call, so one call's source never stands for another's."""
    edited = Image.new("RGB", (48, 48), (200, 9, 9))
    sources = [Image.new("RGB", (48, 48), colour) for colour in ((0, 0, 0), (200, 9, 9))]
    with (
        FakeOpenAIServer(models=["editscore-72b"]) as srv,
        RewardModel("editscore-72b", base_urls=srv.url, k=1) as reward,
    ):
        as_bytes = [reward.score("Make it red.", _bytes(s), _bytes(edited)) for s in sources]
        one_by_one = [reward.score("Make it red.", s, edited) for s in sources]

        async def together() -> list[list[RewardResult]]:
            calls = (reward.ascore_many([("Make it red.", s, edited)]) for s in sources * 4)
            return list(await asyncio.gather(*calls))

        concurrent = [r[0] for r in asyncio.run(together())]
    assert as_bytes[0] != as_bytes[1]
    assert one_by_one == as_bytes and concurrent == as_bytes * 4


def _bytes(image: Image.Image) -> bytes:
    buf = BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


class _SizeRecorder(FakeOpenAIServer):
    """Records the size of every image it is sent."""

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.sizes: list[tuple[int, int]] = []

    def answer(self, body: dict[str, Any], choice: int, request_id: int = 0) -> str:
        for message in body["messages"]:
            for part in message["content"]:
                if part.get("type") == "image_url":
                    data = base64.b64decode(part["image_url"]["url"].split(",", 1)[1])
                    self.sizes.append(Image.open(BytesIO(data)).size)
        return super().answer(body, choice, request_id)


def test_the_edit_is_resized_to_the_source_unless_told_otherwise() -> None:
    src, edited = _png((10, 10, 10), (48, 32)), _png((200, 9, 9), (96, 64))
    for resize, expected in ((True, {(48, 32)}), (False, {(48, 32), (96, 64)})):
        with _SizeRecorder(models=["editscore-72b"], mode="hash") as srv:
            with RewardModel(  # the sizes as sent: without the served cards' qwen-vl-utils resize
                "editscore-72b", base_urls=srv.url, k=1, resize_edited=resize, pre_resize=False
            ) as reward:
                assert reward.score("Add a cat.", src, edited).ok
            assert set(srv.sizes) == expected


def _shared_source_batch(n: int) -> list[Any]:
    """``n`` edits of one source image (colour (1, 2, 3)), each its own colour."""
    source = Image.new("RGB", (40, 40), (1, 2, 3))
    return [("Add a cat.", source, Image.new("RGB", (40, 40), (100 + i, 0, 0)))
                    for i in range(n)]  # fmt: skip


def _watch_prepare(reward: RewardModel, fail_source: bool = False) -> list[Any]:
    """Record the colour of every image the judge prepares; slow, so that all the worker
    threads ask for the shared source while it is being prepared."""
    backend = reward.judge.backend
    prepare, seen = backend.prepare_images, []

    def watched(images: list[Image.Image]) -> Any:
        colours = [image.getpixel((0, 0)) for image in images]
        seen.extend(colours)
        time.sleep(0.05)
        if fail_source and (1, 2, 3) in colours:
            raise OSError("disk on fire")
        return prepare(images)

    backend.prepare_images = watched
    return seen


def test_a_source_shared_by_edits_judged_at_once_is_prepared_once() -> None:
    batch = _shared_source_batch(12)
    with (
        FakeOpenAIServer(models=["editscore-72b"], mode="hash") as srv,
        RewardModel("editscore-72b", base_urls=srv.url, k=1, concurrency=12) as reward,
    ):
        seen = _watch_prepare(reward)
        results = reward.score_many(batch)
    assert all(r.ok for r in results), results
    assert seen.count((1, 2, 3)) == 1 and len(seen) == 13, seen


def test_a_shared_source_that_fails_fails_every_edit_of_it_and_nothing_waits_forever() -> None:
    batch = _shared_source_batch(12)
    with (
        FakeOpenAIServer(models=["editscore-72b"], mode="hash") as srv,
        RewardModel("editscore-72b", base_urls=srv.url, k=1, concurrency=12) as reward,
    ):
        seen = _watch_prepare(reward, fail_source=True)
        done: list[Any] = []
        worker = threading.Thread(target=lambda: done.extend(reward.score_many(batch)))
        worker.start()
        worker.join(timeout=60)
        assert not worker.is_alive(), "score_many waits for a source that failed"
    assert len(done) == 12 and all("disk on fire" in (r.error or "") for r in done), done
    # Those waiting took the failure; only edits that came after it tried the source again.
    assert seen.count((1, 2, 3)) < len(batch) // 2, seen
    assert srv.log.snapshot() == []


def test_an_item_past_its_deadline_gets_an_error() -> None:
    src, edited = _png((10, 10, 10)), _png((200, 9, 9))
    with (
        FakeOpenAIServer(models=["editscore-72b"], latency=5.0) as srv,
        RewardModel("editscore-72b", base_urls=srv.url, k=1, item_deadline=0.3) as reward,
    ):
        [late] = reward.score_many([("Add a cat.", src, edited)])
    assert late.overall is None and "deadline" in (late.error or "")


def test_a_card_object_and_any_judge_setting_are_taken() -> None:
    card = resolve_card("editscore-72b").card
    assert isinstance(card, JudgeCard)
    with FakeOpenAIServer(models=["editscore-72b"]) as srv:
        with RewardModel(
            card, base_urls=srv.url, k=2, temperature=0.3, supports_n=False, concurrency=2
        ) as reward:
            assert reward.score("Add a cat.", _png((1, 2, 3)), _png((9, 9, 9))).passes == 2
        entries = srv.log.snapshot()
    assert {e["sampling"]["temperature"] for e in entries} == {0.3}
    assert {e["n"] for e in entries} == {1} and len(entries) == 4  # one request per pass
    with pytest.raises(Exception, match="did you mean 'temperature'"):
        RewardModel("editscore-72b", base_urls="http://127.0.0.1:9/v1", temperatur=0.3)


def test_a_local_card_given_a_url_asks_for_the_k_passes_in_one_request() -> None:
    with FakeOpenAIServer(models=["editscore-7b"]) as srv:
        with RewardModel("editscore-7b", base_urls=srv.url, k=3) as reward:
            assert reward.score("Add a cat.", _png((1, 2, 3)), _png((9, 9, 9))).passes == 3
        entries = srv.log.snapshot()
    assert [e["n"] for e in entries] == [3, 3] and {e["seed"] for e in entries} == {42}


def test_diagnostics_measure_the_signal_of_a_batch() -> None:
    def r(overall: float | None, pf: float = 5.0) -> RewardResult:
        if overall is None:
            return RewardResult.failed("x")
        return RewardResult(overall, pf, 5.0, 5.0, 1)

    results = [r(1.0, 0.0), r(1.0), r(2.0), r(4.0), r(3.0, 0.0), r(None), r(6.0)]
    groups = ["a", "a", "b", "b", "c", "c", None]
    diag = reward_diagnostics(results, groups)
    assert diag["scored"] == 6 and diag["failed"] == 1
    assert diag["prompt_following_zero_share"] == 2 / 6
    assert diag["group_std"] == {"a": 0.0, "b": 1.0}  # c has one scored item
    assert diag["zero_spread_group_share"] == 0.5 and diag["mean_group_std"] == 0.5
