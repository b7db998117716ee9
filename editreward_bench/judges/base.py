"""The judge interface (version 1): what the runner hands a judge and what it gets back.

A *pointwise judge* scores one edit at a time. The runner hands it
:class:`JudgeTask` batches (a candidate and the pass indices still missing,
each with its seed) and stores every :class:`PassResult` as soon as it is
returned. A judge implements either :meth:`Judge.judge` (synchronous; run in a
worker thread) or :meth:`Judge.ajudge` (a coroutine; run on the event loop).
Batching is the judge's choice: :attr:`Judge.batch_size` says how many tasks
it wants per call.

Model judges here are assembled from a *protocol* (how prompts are rendered
and answers parsed and combined) and a *backend* (which model answers them,
through :class:`Backend`).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from io import BytesIO
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeVar, runtime_checkable

if TYPE_CHECKING:
    from PIL import Image as PILImage

INTERFACE_VERSION = 1
T = TypeVar("T")
Status = Literal["ok", "failed"]


@runtime_checkable
class CandidateLike(Protocol):
    """What a judge needs of an edit: benchmark candidates and ad-hoc edits both qualify."""

    @property
    def key(self) -> str: ...

    @property
    def instruction(self) -> str: ...

    def load_images(self) -> tuple[PILImage.Image, PILImage.Image]:
        """(source, edited) as RGB, the edited image resized to the source's size."""
        ...


@runtime_checkable
class SharedSourceCandidate(CandidateLike, Protocol):
    """A candidate that can decode its source and edit apart (benchmark candidates do).

    Judges use it to prepare a source image once for all the edits of it.
    """

    @property
    def source_key(self) -> str: ...

    def load_source(self) -> PILImage.Image: ...

    def load_edited(self) -> PILImage.Image: ...


@dataclass(frozen=True, slots=True)
class JudgeTask:
    """Score ``candidate`` for each pass in ``passes``; pass ``passes[i]`` uses ``seeds[i]``."""

    candidate: CandidateLike
    passes: tuple[int, ...]
    seeds: tuple[int, ...]


@dataclass
class PassResult:
    """One pass of one candidate: the four sub-scores (0..10) or a failure with its reason."""

    key: str
    pass_index: int
    seed: int
    status: Status
    error: str | None = None
    prompt_following: float | None = None
    consistency: float | None = None
    perceptual_quality: float | None = None
    overall: float | None = None
    raw_sc: str | None = None
    raw_pq: str | None = None
    reasoning_sc: str | None = None
    reasoning_pq: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    attempts: int = 1
    #: True for failures that may succeed on a rerun (network, timeouts); those are not stored.
    transient: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def scored(
        cls, key: str, pass_index: int, seed: int, scores: Mapping[str, float], **kw: Any
    ) -> PassResult:
        """A successful pass with the four sub-scores from ``scores``."""
        return cls(
            key, pass_index, seed, "ok",
            prompt_following=scores["prompt_following"], consistency=scores["consistency"],
            perceptual_quality=scores["perceptual_quality"], overall=scores["overall"], **kw,
        )  # fmt: skip

    def to_record(self) -> dict[str, Any]:
        record = asdict(self)
        record["pass"] = record.pop("pass_index")
        record.pop("transient")
        return record

    @classmethod
    def failure(
        cls, key: str, pass_index: int, seed: int, error: str, *, transient: bool = False, **kw: Any
    ) -> PassResult:
        return cls(key, pass_index, seed, "failed", error=error, transient=transient, **kw)

    def check(self) -> PassResult:
        """Validate what a (possibly third-party) judge returned."""
        if self.status == "ok":
            for name in ("prompt_following", "consistency", "perceptual_quality", "overall"):
                value = getattr(self, name)
                if (
                    not isinstance(value, (int, float))
                    or isinstance(value, bool)
                    or not math.isfinite(value)
                ):
                    raise TypeError(
                        f"pass result for {self.key!r}: {name} must be a finite number, got {value!r}"
                    )
                if not 0 <= value <= 10:
                    raise ValueError(
                        f"pass result for {self.key!r}: {name}={value} is outside 0..10"
                    )
        return self


class Judge(ABC):
    """A pointwise judge. Subclasses implement :meth:`judge` or :meth:`ajudge`."""

    interface_version: int = INTERFACE_VERSION
    #: Tasks per call; the runner never hands more.
    batch_size: int = 1

    def __init__(self, name: str) -> None:
        self.name = name

    @abstractmethod
    def describe(self) -> dict[str, Any]:
        """The card (name, protocol, backend, model, adapter, sampling...) recorded with every run."""

    def fingerprint(self) -> str:
        """Hash of everything that changes this judge's answers (the store key's judge part)."""
        blob = json.dumps(self.describe_for_fingerprint(), sort_keys=True, default=str)
        return "sha256:" + hashlib.sha256(blob.encode()).hexdigest()

    def describe_for_fingerprint(self) -> dict[str, Any]:
        """What goes into :meth:`fingerprint`; by default the whole description minus free text
        and provenance (card fields that never change what a baseline or plugin answers)."""
        return {
            k: v
            for k, v in self.describe().items()
            if k not in {"description", "source", "paper", "paper_path", "replaced"}
        }

    def judge(self, tasks: Sequence[JudgeTask]) -> list[PassResult]:
        """Synchronous scoring: one :class:`PassResult` per (task, pass)."""
        return asyncio.run(self.ajudge(tasks))

    async def ajudge(self, tasks: Sequence[JudgeTask]) -> list[PassResult]:
        """Asynchronous scoring; by default runs :meth:`judge` in a worker thread."""
        if type(self).judge is Judge.judge:
            raise NotImplementedError(
                f"{type(self).__name__} implements neither judge() nor ajudge()"
            )
        return await in_worker(self.judge, tasks)

    def preflight(self) -> None:  # noqa: B027 - optional hook
        """Fail fast, before a run starts, if the judge cannot work (endpoint down, model missing)."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release models, clients and threads."""

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Close what is bound to the running event loop (HTTP clients), before the loop ends."""

    # -- the judge as a reward function -------------------------------------------------

    def score(
        self,
        instruction: str,
        source: str | Path | bytes | PILImage.Image,
        edited: str | Path | bytes | PILImage.Image,
        *,
        k: int = 1,
        seed: int = 42,
    ) -> dict[str, Any]:
        """Score one edit: Avg@k of the four sub-scores, plus each pass's result.

        Each Avg@k mean is :func:`editreward_bench.metrics.pass_mean` over the
        successful passes in pass order, as a benchmark run computes it.
        """
        from ..metrics import pass_mean

        candidate = ImageCandidate("edit", instruction, source, edited)
        task = JudgeTask(candidate, tuple(range(k)), tuple(seed + i for i in range(k)))

        async def judge_then_close() -> list[PassResult]:
            try:
                return await self.ajudge([task])
            finally:  # clients die with their loop: close them in it, not after
                await self.aclose()

        results = [r.check() for r in asyncio.run(judge_then_close())]
        ok = sorted((r for r in results if r.status == "ok"), key=lambda r: r.pass_index)
        summary: dict[str, Any] = {"k": k, "passes_ok": len(ok)}
        for name in ("prompt_following", "consistency", "perceptual_quality", "overall"):
            values = [getattr(r, name) for r in ok]
            summary[name] = pass_mean(values) if values else None
        summary["passes"] = [r.to_record() for r in results]
        return summary


_POOL: ThreadPoolExecutor | None = None


def _worker_pool() -> ThreadPoolExecutor:
    """Threads for synchronous judges and image work.

    Not the event loop's default executor, which ``asyncio.run`` joins on exit:
    after Ctrl-C the run must stop at once, not wait for a model call to finish.
    """
    global _POOL
    if _POOL is None:
        workers = max(4, (os.cpu_count() or 1) * 2)
        _POOL = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="erb-worker")
    return _POOL


async def in_worker(fn: Callable[..., T], *args: Any) -> T:
    """Run blocking work (image decoding, a model call) off the event loop."""
    return await asyncio.get_running_loop().run_in_executor(_worker_pool(), fn, *args)


def open_image(value: str | Path | bytes | PILImage.Image) -> PILImage.Image:
    from PIL import Image, ImageOps

    if isinstance(value, Image.Image):
        return value.convert("RGB")
    data = value if isinstance(value, bytes) else Path(value).read_bytes()
    with Image.open(BytesIO(data)) as img:
        return ImageOps.exif_transpose(img).convert("RGB")


@dataclass(frozen=True)
class ImageCandidate:
    """An edit given directly (paths, bytes or PIL images), for ``erb score`` and the Python API."""

    key: str
    instruction: str
    source: Any
    edited: Any

    def load_images(self) -> tuple[PILImage.Image, PILImage.Image]:
        source, edited = open_image(self.source), open_image(self.edited)
        if edited.size != source.size:
            edited = edited.resize(source.size)
        return source, edited


# --------------------------------------------------------------------------- backends


@dataclass(frozen=True)
class GenRequest:
    """One prompt for a backend: images (in order), then or before the text; ``n`` samples."""

    images: tuple[Any, ...]
    text: str
    n: int
    seed: int


@dataclass
class GenResponse:
    """``n`` completions, or an error when the backend gave up (after its own retries)."""

    texts: list[str]
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    error: str | None = None
    #: The model id the server said answered (an API's dated snapshot), when it says one.
    model: str | None = None
    #: Each choice's finish reason (``stop``, ``length``, ``content_filter``...), when given.
    finish_reasons: list[str] | None = None


class Backend(ABC):
    """A model that answers prompts with images. Implementations live in ``editreward_bench.backends``."""

    #: Whether one request can return n samples (prefill once).
    supports_n: bool = False
    #: Requests the backend wants per :meth:`generate` call (local models batch them).
    batch_size: int = 1

    @abstractmethod
    def describe(self) -> dict[str, Any]:
        """Backend name, model, adapter and the sampling parameters it sends."""

    def prepare_images(self, images: Sequence[PILImage.Image]) -> tuple[Any, ...]:
        """Encode images once (e.g. base64 JPEG); reused by every request.

        Each image is encoded on its own: a source image shared by several
        candidates is prepared once and reused with each of their edits.
        """
        return tuple(images)

    @abstractmethod
    async def generate(self, requests: Sequence[GenRequest]) -> list[GenResponse]:
        """Answer every request; never raises for a single request's failure."""

    def preflight(self) -> None:  # noqa: B027 - optional hook
        """Check, before the run, that the model can answer."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release resources."""

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Close what is bound to the running event loop (HTTP clients), before the loop ends."""
