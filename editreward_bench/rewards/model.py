"""A judge as a reward model: batches of edits in, Avg@k sub-scores out.

:class:`RewardModel` owns one event loop, in a background thread, for its whole
life: the backend's HTTP clients are made once on it, reused by every call and
closed once by :meth:`RewardModel.close`. The synchronous methods hand their work
to that loop and wait, so they work from plain code and from inside a running
event loop alike; :meth:`RewardModel.ascore_many` awaits the same work from async
code without nesting loops.

A batch is judged with bounded concurrency: images are decoded and encoded in
worker threads (a source shared by several edits once), an OpenAI-compatible
server is asked for the k passes of a prompt in one request (``n = k``), and the
requests of every concurrent call share one pool of ``concurrency`` requests in
flight over all replicas (:class:`~editreward_bench.rewards.replicas.ReplicaPool`).

Each result is computed as ``erb evaluate`` computes a candidate's scores: the
pass records go through :func:`editreward_bench.metrics.avg_at_k` (``np.mean`` of
each sub-score over the successful passes, in pass order), so for the same inputs,
card, settings and seeds the numbers are the same floats.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import itertools
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from ..failures import reason, top_reasons
from ..judges import Judge, JudgeCard, JudgeTask, PassResult, load_judge, resolve_card
from ..judges.base import in_worker
from ..metrics import PassScores, avg_at_k
from ..redact import redact_text
from .items import ItemCandidate, ItemImage, ItemImageError, RewardItem, item_fingerprint

T = TypeVar("T")

#: Default backend requests in flight, over all replicas.
DEFAULT_CONCURRENCY = 64
#: Images larger than this are refused (an item error), before they are decoded.
DEFAULT_MAX_IMAGE_PIXELS = 8192 * 8192


@dataclass(frozen=True)
class RewardResult:
    """The reward of one edit: Avg@k of the four sub-scores (0..10) over the passes that succeeded.

    ``passes`` counts the successful passes (fewer than k when some failed). When none
    succeeded every score is None and ``error`` says why: a failed item never gets a
    made-up score. ``records`` (not compared) are the pass records, with raw answers.
    """

    overall: float | None
    prompt_following: float | None
    consistency: float | None
    perceptual_quality: float | None
    passes: int
    error: str | None = None
    records: tuple[dict[str, Any], ...] = field(default=(), compare=False, repr=False)

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_dict(self) -> dict[str, Any]:
        """The six fields the reward server returns per item."""
        return {
            "overall": self.overall,
            "prompt_following": self.prompt_following,
            "consistency": self.consistency,
            "perceptual_quality": self.perceptual_quality,
            "passes": self.passes,
            "error": self.error,
        }

    @classmethod
    def failed(cls, error: str) -> RewardResult:
        return cls(None, None, None, None, 0, error)

    @classmethod
    def from_records(cls, passes: Iterable[Mapping[str, Any]], k: int) -> RewardResult:
        """Avg@k of one edit's pass records (passes < k), exactly as a benchmark run computes it."""
        records = [dict(r) for r in passes if int(r["pass"]) < k]
        scores, ok = avg_at_k((PassScores.of({**r, "key": ""}) for r in records), k)
        means = next(iter(scores.values()), None) if scores else None
        if not means:
            failed = Counter(reason(r.get("error")) for r in records if r.get("status") != "ok")
            if len(failed) == 1:
                why = next(iter(failed))
            else:
                why = "; ".join(top_reasons(failed, n=3)) if failed else "no pass was judged"
            return cls(
                None, None, None, None, 0, f"all {len(records)} pass(es) failed: {why}",
                tuple(records),
            )  # fmt: skip
        return cls(
            means.get("overall"), means.get("prompt_following"), means.get("consistency"),
            means.get("perceptual_quality"), next(iter(ok.values()), 0), None, tuple(records),
        )  # fmt: skip


def _new_loop() -> asyncio.AbstractEventLoop:
    """uvloop's event loop where it is installed (``erb[serve]``): less CPU per request."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


class _Loop:
    """One event loop in a daemon thread, for a model's lifetime."""

    def __init__(self) -> None:
        self.loop = _new_loop()
        self._thread = threading.Thread(target=self._run, name="erb-reward-loop", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def submit(self, coro: Awaitable[T]) -> concurrent.futures.Future[T]:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)  # type: ignore[arg-type]

    def stop(self) -> None:
        async def finish() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self.loop.shutdown_asyncgens()

        if self.loop.is_closed():
            return
        self.submit(finish()).result(timeout=30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=30)
        self.loop.close()


class RewardModel:
    """A judge as a reward function for RL and Best-of-N (see the module docstring).

    ``judge`` is a card name (``editscore-7b``), a card file's path, a
    :class:`~editreward_bench.judges.JudgeCard`, a plugin's name or a built
    :class:`~editreward_bench.judges.Judge`. ``k`` defaults to the card's; pass i
    has seed ``seed + i``. ``base_urls`` (one URL or several replicas) serve a card
    through an OpenAI-compatible server (a local card switches to the ``openai``
    backend); the k passes of a prompt are then asked for in one request
    (``n = k``) unless the card or ``supports_n=False`` says otherwise.
    ``concurrency`` bounds the backend requests in flight over all replicas;
    ``timeout`` each request; ``item_deadline`` (seconds from the call) each item:
    an item not judged by then gets an error. Any other judge setting
    (``temperature``, ``max_retries``, ``layout``...; ``erb settings``) is a keyword.

    ``resize_edited`` (default True) resizes the edited image to the source's size
    before judging, as the benchmark protocol and ``erb evaluate`` do; False judges
    it as given, as upstream's RL reward server does. ``store`` (off by default: in
    RL every image is new) reuses and fills a pass store: True for the default
    store, or a path.
    """

    def __init__(
        self,
        judge: str | Path | JudgeCard | Judge,
        *,
        k: int | None = None,
        seed: int = 42,
        base_urls: str | Sequence[str] | None = None,
        model: str | None = None,
        adapter: str | None = None,
        backend: str | None = None,
        concurrency: int = DEFAULT_CONCURRENCY,
        timeout: float | None = None,
        item_deadline: float | None = None,
        resize_edited: bool = True,
        store: bool | str | Path = False,
        retry_failed: bool = False,
        max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS,
        eject_after: int = 5,
        replica_cooldown: float = 2.0,
        **settings: Any,
    ) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {concurrency}")
        if item_deadline is not None and item_deadline <= 0:
            raise ValueError(f"item_deadline must be positive, got {item_deadline}")
        self.judge = self._build(
            judge, base_urls, model, adapter, backend, concurrency, timeout, settings
        )
        card = getattr(self.judge, "card", None)
        self.k = int(k if k is not None else (card.default_k if card is not None else 1))
        if self.k < 1:
            raise ValueError(f"k must be at least 1, got {self.k}")
        self.seed = seed
        self.concurrency = concurrency
        self.item_deadline = item_deadline
        self.resize_edited = resize_edited
        self.retry_failed = retry_failed
        self.max_image_pixels = max_image_pixels
        self.pool = self._pool(concurrency, eject_after, replica_cooldown)
        self.fingerprint = self.judge.fingerprint()
        self._store_path = self._resolve_store(store)
        self._store: Any = None
        self._store_lock = threading.Lock()
        self._closed = False
        self._call_ids = itertools.count(1)  # next() is atomic: concurrent calls get their own
        self._loop = _Loop()

    # -- construction -------------------------------------------------------------------

    @staticmethod
    def _build(
        judge: str | Path | JudgeCard | Judge,
        base_urls: str | Sequence[str] | None,
        model: str | None,
        adapter: str | None,
        backend: str | None,
        concurrency: int,
        timeout: float | None,
        settings: dict[str, Any],
    ) -> Judge:
        if isinstance(judge, Judge):
            return judge
        urls = [base_urls] if isinstance(base_urls, str) else list(base_urls or [])
        overrides = {**settings}
        if urls:
            overrides["base_urls"] = urls
        if timeout is not None:
            overrides["timeout"] = timeout
        optional: dict[str, Any] = {"concurrency": concurrency}
        if isinstance(judge, JudgeCard):
            card: JudgeCard | None = judge
        else:
            card = resolve_card(str(judge)).card
        if card is not None:
            if urls and backend is None and card.backend == "transformers":
                backend = "openai"  # a local card served by vLLM or SGLang
            if (backend or card.backend) == "openai" and "supports_n" not in card.options:
                # The reward path asks for the k passes of a prompt in one request (one
                # prefill); a card or a caller that says supports_n keeps its choice.
                optional["supports_n"] = True
        return load_judge(
            judge if isinstance(judge, JudgeCard) else str(judge),
            model=model,
            adapter=adapter,
            backend=backend,
            optional=optional,
            **overrides,
        )

    def _pool(self, concurrency: int, eject_after: int, cooldown: float) -> Any:
        """Put an OpenAI backend's replicas behind one health-checked pool."""
        inner = getattr(self.judge, "backend", None)
        config = getattr(self.judge, "config", None)
        if inner is None or config is None or type(inner).__name__ != "OpenAIBackend":
            return None
        from .replicas import ReplicaPool

        pool = ReplicaPool.from_config(
            config,
            type(inner),
            concurrency=concurrency,
            eject_after=eject_after,
            cooldown=cooldown,
        )
        self.judge.backend = pool  # type: ignore[attr-defined]
        return pool

    @staticmethod
    def _resolve_store(store: bool | str | Path) -> Path | None:
        if store is False or store is None:
            return None
        if store is True:
            from ..store import default_store_path

            return default_store_path()
        return Path(store)

    # -- the public API -----------------------------------------------------------------

    @property
    def name(self) -> str:
        return self.judge.name

    def describe(self) -> dict[str, Any]:
        """What is served: the judge, its fingerprint, k, the seed and the reward's protocol."""
        card = getattr(self.judge, "card", None)
        return {
            "name": self.judge.name,
            "model": getattr(card, "model", None),
            "adapter": getattr(card, "adapter", None),
            "fingerprint": self.fingerprint,
            "k": self.k,
            "seed": self.seed,
            "resize_edited": self.resize_edited,
            "concurrency": self.concurrency,
            "replicas": len(self.pool.replicas) if self.pool is not None else None,
        }

    def check(self) -> list[str]:
        """Pre-flight: every replica answers and serves the model. Returns the problems of
        replicas taken out; raises when the judge cannot work at all."""
        if self.pool is not None:
            # Each replica's pre-flight runs its own event loop: keep it off the caller's.
            with concurrent.futures.ThreadPoolExecutor(1) as thread:
                problems = thread.submit(self.pool.check).result()
            if len(problems) == len(self.pool.replicas):
                from ..judges import JudgeLoadError

                raise JudgeLoadError(problems[0])
            return problems
        with concurrent.futures.ThreadPoolExecutor(1) as thread:
            thread.submit(self.judge.preflight).result()
        return []

    def score(
        self,
        instruction: str,
        source: Any,
        edited: Any,
        *,
        key: str | None = None,
        k: int | None = None,
    ) -> RewardResult:
        """The reward of one edit (synchronous)."""
        return self.score_many([RewardItem(instruction, source, edited, key=key)], k=k)[0]

    def score_many(self, items: Iterable[Any], *, k: int | None = None) -> list[RewardResult]:
        """Rewards of a batch, aligned with ``items`` (synchronous; safe inside a running loop)."""
        self._check_open()
        return self._loop.submit(self._score_many(list(items), k)).result()

    async def ascore_many(
        self, items: Iterable[Any], *, k: int | None = None
    ) -> list[RewardResult]:
        """Rewards of a batch, from async code: the work runs on the model's own loop."""
        self._check_open()
        future = self._loop.submit(self._score_many(list(items), k))
        return await asyncio.wrap_future(future)

    def close(self) -> None:
        """Close the backend's clients, the judge, the store and the loop (idempotent)."""
        if self._closed:
            return
        self._closed = True
        try:
            if self.pool is not None:
                self._loop.submit(self.pool.aclose()).result(timeout=30)
            else:
                self._loop.submit(self.judge.aclose()).result(timeout=30)
        finally:
            try:
                self.judge.close()
            finally:
                self._loop.stop()
                if self._store is not None:
                    self._store.close()
                    self._store = None

    def __enter__(self) -> RewardModel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("this RewardModel is closed")

    # -- the work -----------------------------------------------------------------------

    def _open_store(self) -> Any:
        with self._store_lock:
            if self._store is None and self._store_path is not None:
                from ..store import PassStore

                self._store = PassStore(self._store_path)
                self._store.register_judge(self.fingerprint, self.judge.describe_for_fingerprint())
            return self._store

    def _prepare_all(self, items: list[RewardItem]) -> list[ItemCandidate | str]:
        """The items as candidates, or why an item's images cannot be read.

        A PIL image is hashed (its pixels) only for a pass store; otherwise it is named by
        a token unique to this call, so one image object shared by several items (the
        source of a group) is still encoded once.
        """
        call = next(self._call_ids)
        images: dict[int, ItemImage] = {}

        def image(value: Any, what: str) -> ItemImage:
            known = images.get(id(value))
            if known is not None:
                return known
            made = ItemImage.read(value, what, self.max_image_pixels)
            if made.image is not None and self._store_path is None:
                made._sha = f"pil-{id(self)}-{call}-{len(images)}"
            images[id(value)] = made
            return made

        out: list[ItemCandidate | str] = []
        for item in items:
            try:
                source = image(item.source, "source image")
                edited = image(item.edited, "edited image")
            except ItemImageError as exc:
                out.append(f"image: {exc}")
                continue
            record_key, fp = item_fingerprint(
                item.instruction, source, edited, item.key, self.resize_edited
            )
            out.append(
                ItemCandidate(fp, record_key, item.instruction, source, edited, self.resize_edited)
            )
        return out

    async def _score_many(self, raw: list[Any], k: int | None) -> list[RewardResult]:
        k = self.k if k is None else int(k)
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        items = [RewardItem.of(value) for value in raw]
        deadline = None if self.item_deadline is None else time.monotonic() + self.item_deadline
        prepared = await in_worker(self._prepare_all, items)
        unique: dict[str, ItemCandidate] = {}
        for entry in prepared:
            if isinstance(entry, ItemCandidate):
                unique.setdefault(entry.key, entry)
        records: dict[str, dict[int, dict[str, Any]]] = {fp: {} for fp in unique}
        store = self._open_store() if self._store_path is not None and unique else None
        if store is not None:
            stored = await in_worker(
                lambda: store.get(
                    self.fingerprint, list(unique), self.seed, include_failed=not self.retry_failed
                )
            )
            for (fp, p), record in stored.items():
                if p < k and (record.get("status") == "ok" or not self.retry_failed):
                    records[fp][p] = record
        tasks = []
        for fp, candidate in unique.items():
            missing = tuple(p for p in range(k) if p not in records[fp])
            if missing:
                tasks.append(JudgeTask(candidate, missing, tuple(self.seed + p for p in missing)))

        def on_result(result: PassResult) -> None:
            candidate = unique[result.key]
            record = result.to_record()
            record["key"] = candidate.record_key
            records[result.key][result.pass_index] = record
            if store is not None and not result.transient:
                store.put(self.fingerprint, result.key, record)

        await self._judge(tasks, deadline, on_result)
        results = []
        for entry in prepared:
            if isinstance(entry, str):
                results.append(RewardResult.failed(redact_text(entry)))
                continue
            passes = [records[entry.key][p] for p in sorted(records[entry.key]) if p < k]
            result = RewardResult.from_records(passes, k)
            if result.error is not None:
                result = RewardResult(
                    None, None, None, None, 0, redact_text(result.error), result.records
                )
            results.append(result)
        return results

    async def _judge(self, tasks: list[JudgeTask], deadline: float | None, on_result: Any) -> None:
        """Judge tasks in batches of the judge's size with bounded concurrency; a batch past
        the deadline, or one whose judge raised, fails its passes instead of the call."""
        size = max(1, int(getattr(self.judge, "batch_size", 1)))
        batches = iter([tasks[i : i + size] for i in range(0, len(tasks), size)])

        def fail_all(batch: list[JudgeTask], why: str) -> None:
            for task in batch:
                for p, s in zip(task.passes, task.seeds, strict=True):
                    on_result(PassResult.failure(task.candidate.key, p, s, why, transient=True))

        async def run(batch: list[JudgeTask]) -> None:
            expected = {
                (t.candidate.key, p): s
                for t in batch
                for p, s in zip(t.passes, t.seeds, strict=True)
            }
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                fail_all(batch, f"deadline: not judged within {self.item_deadline:g} s")
                return
            try:
                results = await asyncio.wait_for(self.judge.ajudge(batch), remaining)
            except asyncio.TimeoutError:
                fail_all(batch, f"deadline: not judged within {self.item_deadline:g} s")
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a judge bug fails its batch, not the call
                fail_all(batch, f"judge raised {type(exc).__name__}: {exc}")
                return
            for result in results:
                if not isinstance(result, PassResult):
                    continue
                if expected.pop((result.key, result.pass_index), None) is None:
                    continue
                try:
                    result.check()
                except (TypeError, ValueError) as exc:
                    result = PassResult.failure(
                        result.key, result.pass_index, result.seed, f"invalid judge result: {exc}"
                    )
                on_result(result)
            for (key, p), s in expected.items():
                on_result(PassResult.failure(key, p, s, "judge returned no result", transient=True))

        async def worker() -> None:
            for batch in batches:
                await run(batch)

        workers = min(len(tasks), self.concurrency)
        await asyncio.gather(*(worker() for _ in range(workers)))
