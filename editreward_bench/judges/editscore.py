"""The EditScore protocol (VIEScore-derived), as the paper's harness runs it.

Per candidate and pass, two prompts:

- SC (semantic consistency): source image, edited image, and context + two-image
  edit rule + SC rule with the instruction substituted; the answer's
  ``score`` is ``[editing_success, overediting]``;
- PQ (perceptual quality): the edited image, and context + PQ rule; the answer's
  ``score`` is ``[naturalness, artifacts]``.

The rule texts are written for 0..10; every ``10`` in the SC and PQ rule blocks
becomes the score range R (25) before the instruction is substituted, and
answers are rescaled to 0..10 by dividing by ``R / 10`` (2.5). Sub-scores of one
pass, with upstream's operations in upstream's order (``EditScore.evaluate`` in
``editscore`` 0.2), so that every value is the same float::

    SC_score           = min(SC) / (R / 10)
    prompt_following   = SC[0] / (R / 10)
    consistency        = SC[1] / (R / 10)
    perceptual_quality = min(PQ) / (R / 10)
    overall            = math.sqrt(SC_score * perceptual_quality)

Dividing by 2.5 is not multiplying by 0.4: 7 / 2.5 is 2.8 but 7 * 0.4 is
2.8000000000000003, and such a last bit decides ties.

Avg@k averages each sub-score over passes with ``np.mean`` in pass order
(:func:`editreward_bench.metrics.pass_mean`), so overall is the mean of per-pass
geometric means. Pass i is sampled with seed 42 + i.

A backend that ``supports_n`` answers passes a..b in one request seeded 42 + a, its
sample j standing for pass a + j; a retry is asked with another seed. Whenever a
pass's kept SC or PQ answer was not drawn alone right after seeding with the pass's
own seed, the record says what it was drawn with: ``extra["drawn"]`` is
``{"sc": {"seed": s, "sample": j}, ...}``, sample j of the request seeded s.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import threading
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from ..resources import judges_dir
from .base import (
    Backend,
    GenRequest,
    GenResponse,
    JudgeTask,
    PassResult,
    SharedSourceCandidate,
    in_worker,
)
from .model import ModelJudge
from .options import JudgeConfig
from .parsing import ParsedScores, parse_scores

SCORE_RANGE = 25
#: Version of the judge fingerprint's layout (1: erb 0.1's hand-kept description).
STORE_KEY_VERSION = 2
TEMPLATE_FILES = ("context.txt", "two_image_edit_rule.txt", "sc_rule.txt", "pq_rule.txt")
#: Prepared source images kept for the candidates that share them (runs order them together).
SOURCE_CACHE_SIZE = 64
#: Offset between a failed pass's seed and its retry's, per attempt.
RETRY_SEED_STRIDE = 1_000_003
#: Most of each raw answer and reasoning text a pass record keeps, in UTF-8 bytes. Answers
#: are parsed in full first; a longer text keeps its head and tail around a cut marker, and
#: the record's ``extra`` notes its full length (``raw_sc_chars`` and so on).
RAW_TEXT_LIMIT = 64 * 1024


@dataclass(frozen=True)
class EditScorePrompts:
    """The four upstream prompt blocks, byte-exact."""

    context: str
    edit_rule: str
    sc_rule: str
    pq_rule: str
    score_range: int = SCORE_RANGE

    def sc(self, instruction: str) -> str:
        rule = self.sc_rule.replace("10", str(self.score_range))
        return "\n".join([self.context, self.edit_rule, rule]).replace("<instruction>", instruction)

    def pq(self) -> str:
        return "\n".join([self.context, self.pq_rule.replace("10", str(self.score_range))])

    def template_hash(self) -> str:
        h = hashlib.sha256()
        for block in (
            self.context,
            self.edit_rule,
            self.sc_rule,
            self.pq_rule,
            str(self.score_range),
        ):
            h.update(block.encode())
            h.update(b"\x00")
        return "sha256:" + h.hexdigest()


@cache
def load_prompts(score_range: int = SCORE_RANGE) -> EditScorePrompts:
    folder = judges_dir() / "prompts" / "editscore"
    context, edit_rule, sc_rule, pq_rule = (
        (folder / name).read_bytes().decode("utf-8") for name in TEMPLATE_FILES
    )
    return EditScorePrompts(context, edit_rule, sc_rule, pq_rule, score_range=score_range)


def combine(
    sc: tuple[float, float], pq: tuple[float, float], score_range: float = SCORE_RANGE
) -> dict[str, float]:
    """One pass's four sub-scores (0..10) from its SC and PQ answers (0..R).

    The same operations, in the same order, as upstream's ``EditScore.evaluate``.
    """
    sc_score = min(sc) / (score_range / 10)
    pq_score = min(pq) / (score_range / 10)
    return {
        "prompt_following": sc[0] / (score_range / 10),
        "consistency": sc[1] / (score_range / 10),
        "perceptual_quality": pq_score,
        "overall": math.sqrt(sc_score * pq_score),
    }


def retry_seed(seed: int, attempt: int) -> int:
    return seed + RETRY_SEED_STRIDE * attempt


def _split(total: int | None, n: int) -> list[int | None]:
    """Share a request's token count among its n passes (the remainder to the first)."""
    if total is None:
        return [None] * n
    share, rest = divmod(total, n)
    return [share + (rest if i == 0 else 0) for i in range(n)]


@dataclass
class _Slot:
    """What one pass has gathered so far."""

    task: JudgeTask
    index: int  # position in task.passes
    sc: GenAnswer | None = None
    pq: GenAnswer | None = None
    error: str | None = None
    transient: bool = False
    attempts: int = 1
    #: The candidate's images as the backend wants them, encoded once per candidate.
    images: tuple[Any, ...] = ()
    #: For each prompt, (seed, sample) of the request its kept answer came from.
    drawn: dict[str, tuple[int, int]] = field(default_factory=dict)


@dataclass
class GenAnswer:
    text: str
    parsed: ParsedScores
    prompt_tokens: int | None
    completion_tokens: int | None


class EditScoreJudge(ModelJudge):
    """EditScore protocol on any backend."""

    store_key_version = STORE_KEY_VERSION

    def __init__(self, config: JudgeConfig, backend: Backend) -> None:
        super().__init__(config, backend)
        self.prompts = load_prompts(config.common.score_range)
        self.batch_size = max(1, backend.batch_size)
        self._source_cache: dict[str, Future[Any]] = {}
        self._cache_lock = threading.Lock()

    def template_hash(self) -> str:
        return self.prompts.template_hash()

    def protocol_description(self) -> dict[str, Any]:
        return {"score_range": self.prompts.score_range}

    def legacy_fingerprints(self) -> list[str]:
        """Fingerprints earlier versions of erb gave this very judge (for store migration)."""
        from .legacy import v1_fingerprint

        old = v1_fingerprint(self.config, self.prompts.template_hash())
        return [old] if old is not None else []

    def upgrade_record(self, record: dict[str, Any]) -> dict[str, Any]:
        """A pass stored by an earlier erb, its sub-scores recomputed from its stored answers.

        Earlier versions rescaled with ``s * (10 / R)``, one ulp off upstream's ``s / (R / 10)``
        for some answers; the answers themselves are what the model said, so they are kept.
        """
        if record.get("status") != "ok" or not record.get("raw_sc") or not record.get("raw_pq"):
            return record
        sc = parse_scores(record["raw_sc"], self.prompts.score_range)
        pq = parse_scores(record["raw_pq"], self.prompts.score_range)
        if sc.scores is None or pq.scores is None:  # a retry's answer was kept: leave it be
            return record
        return {**record, **combine(sc.scores, pq.scores, self.prompts.score_range)}

    async def ajudge(self, tasks: Sequence[JudgeTask]) -> list[PassResult]:
        slots: list[_Slot] = []
        requests: list[tuple[GenRequest, str, list[_Slot]]] = []
        # Decoding and encoding release the GIL: prepare the batch's images in worker threads.
        prepared = await asyncio.gather(*(in_worker(self._prepare, task) for task in tasks))
        for task, images in zip(tasks, prepared, strict=True):
            task_slots = [_Slot(task, i) for i in range(len(task.passes))]
            slots += task_slots
            if isinstance(images, str):  # an undecodable image fails this candidate only
                for slot in task_slots:
                    slot.error = images
                continue
            for slot in task_slots:
                slot.images = images
            pair_images, edited_only = (images[0], images[1]), (images[1],)
            sc_text = self.prompts.sc(task.candidate.instruction)
            pq_text = self.prompts.pq()
            if self.backend.supports_n and len(task.passes) > 1 and _contiguous(task.passes):
                # One request per prompt for all passes: choice j is pass passes[0] + j.
                n = len(task.passes)
                requests.append(
                    (GenRequest(pair_images, sc_text, n, task.seeds[0]), "sc", task_slots)
                )
                requests.append(
                    (GenRequest(edited_only, pq_text, n, task.seeds[0]), "pq", task_slots)
                )
            else:
                for slot in task_slots:
                    seed = task.seeds[slot.index]
                    requests.append((GenRequest(pair_images, sc_text, 1, seed), "sc", [slot]))
                    requests.append((GenRequest(edited_only, pq_text, 1, seed), "pq", [slot]))
        await self._answer(requests)
        # Unparseable answers are asked again, each time with a new seed.
        for attempt in range(1, self.max_retries + 1):
            retries: list[tuple[GenRequest, str, list[_Slot]]] = []
            for slot in slots:
                if slot.error is not None:
                    continue
                for which in ("sc", "pq"):
                    answer: GenAnswer | None = getattr(slot, which)
                    if answer is not None and not answer.parsed.ok:
                        retries.append((self._retry_request(slot, which, attempt), which, [slot]))
                        slot.attempts = attempt + 1
            if not retries:
                break
            await self._answer(retries)
        return [self._result(slot) for slot in slots]

    def _prepare(self, task: JudgeTask) -> tuple[Any, ...] | str:
        """The candidate's images as the backend wants them, or the reason they cannot be had."""
        candidate = task.candidate
        try:
            if not isinstance(candidate, SharedSourceCandidate):
                return self.backend.prepare_images(list(candidate.load_images()))
            # Several candidates edit one source and are judged at once: the first to need
            # it prepares it, the others wait for that rather than prepare it again, and
            # prepare their own edit first so that the wait overlaps work.
            source_key = candidate.source_key
            with self._cache_lock:
                source = self._source_cache.get(source_key)
                mine = source is None
                if source is None:
                    source = self._source_cache[source_key] = Future()
                    while len(self._source_cache) > SOURCE_CACHE_SIZE:
                        self._source_cache.pop(next(iter(self._source_cache)))
            if mine:
                try:
                    source.set_result(self.backend.prepare_images([candidate.load_source()])[0])
                except BaseException as exc:
                    source.set_exception(exc)  # for those waiting now; later ones try again
                    with self._cache_lock:
                        if self._source_cache.get(source_key) is source:
                            del self._source_cache[source_key]
                    raise
            edited = self.backend.prepare_images([candidate.load_edited()])[0]
            return (source.result(), edited)
        except Exception as exc:
            return f"image: {exc}"

    def _retry_request(self, slot: _Slot, which: str, attempt: int) -> GenRequest:
        task, images = slot.task, slot.images
        seed = retry_seed(task.seeds[slot.index], attempt)
        if which == "sc":
            return GenRequest(
                (images[0], images[1]), self.prompts.sc(task.candidate.instruction), 1, seed
            )
        return GenRequest((images[1],), self.prompts.pq(), 1, seed)

    async def _answer(self, requests: list[tuple[GenRequest, str, list[_Slot]]]) -> None:
        if not requests:
            return
        responses: list[GenResponse] = await self.backend.generate([r for r, _, _ in requests])
        for (request, which, targets), response in zip(requests, responses, strict=True):
            if response.error is not None or len(response.texts) < len(targets):
                for slot in targets:
                    slot.error = f"{which}: {response.error or 'backend returned too few samples'}"
                    slot.transient = True
                continue
            prompt_tokens = _split(response.prompt_tokens, len(targets))
            completion_tokens = _split(response.completion_tokens, len(targets))
            for j, slot in enumerate(targets):
                text = response.texts[j]
                answer = GenAnswer(
                    text,
                    parse_scores(text, self.prompts.score_range),
                    prompt_tokens[j],
                    completion_tokens[j],
                )
                previous: GenAnswer | None = getattr(slot, which)
                if previous is not None:  # a retry: keep the token bill of every attempt
                    answer.prompt_tokens = _add(previous.prompt_tokens, answer.prompt_tokens)
                    answer.completion_tokens = _add(
                        previous.completion_tokens, answer.completion_tokens
                    )
                setattr(slot, which, answer)
                slot.drawn[which] = (request.seed, j)

    def _result(self, slot: _Slot) -> PassResult:
        task = slot.task
        key, pass_index, seed = task.candidate.key, task.passes[slot.index], task.seeds[slot.index]
        sc, pq = slot.sc, slot.pq
        common: dict[str, Any] = {
            "raw_sc": sc.text if sc else None,
            "raw_pq": pq.text if pq else None,
            "reasoning_sc": sc.parsed.reasoning if sc else None,
            "reasoning_pq": pq.parsed.reasoning if pq else None,
            "prompt_tokens": _add(
                sc.prompt_tokens if sc else None, pq.prompt_tokens if pq else None
            ),
            "completion_tokens": _add(
                sc.completion_tokens if sc else None, pq.completion_tokens if pq else None
            ),
            "attempts": slot.attempts,
        }
        extra: dict[str, Any] = {}
        for name in ("raw_sc", "raw_pq", "reasoning_sc", "reasoning_pq"):
            text = common[name]
            if text is not None and len(text) > RAW_TEXT_LIMIT // 4:
                capped = cap_text(text)
                if capped != text:
                    common[name] = capped
                    extra[f"{name}_chars"] = len(text)
        drawn = {
            which: {"seed": at, "sample": j}
            for which, (at, j) in sorted(slot.drawn.items())
            if (at, j) != (seed, 0)
        }
        if drawn:  # the pass's seed alone did not draw this answer: say what did
            extra["drawn"] = drawn
        if extra:
            common["extra"] = extra
        if slot.error is not None:
            return PassResult.failure(
                key, pass_index, seed, slot.error, transient=slot.transient, **common
            )
        assert sc is not None and pq is not None
        if sc.parsed.scores is None or pq.parsed.scores is None:
            reasons = [
                f"{name}: {a.parsed.error}"
                for name, a in (("sc", sc), ("pq", pq))
                if not a.parsed.ok
            ]
            return PassResult.failure(
                key,
                pass_index,
                seed,
                f"unparseable after {slot.attempts} attempt(s): " + "; ".join(reasons),
                **common,
            )
        scores = combine(sc.parsed.scores, pq.parsed.scores, self.prompts.score_range)
        return PassResult.scored(key, pass_index, seed, scores, **common)


def cap_text(text: str, limit: int = RAW_TEXT_LIMIT) -> str:
    """``text`` if it fits in ``limit`` UTF-8 bytes; else its head and tail around a marker."""
    data = text.encode("utf-8", "surrogatepass")
    if len(data) <= limit:
        return text
    marker = f"\n[... {len(text)} characters in all; the middle was cut ...]\n".encode()
    keep = max(0, limit - len(marker))
    head, tail = data[: keep * 3 // 4], data[len(data) - (keep - keep * 3 // 4) :]
    # A cut inside a multi-byte character drops that character, never more.
    return head.decode("utf-8", "ignore") + marker.decode() + tail.decode("utf-8", "ignore")


def _contiguous(passes: Sequence[int]) -> bool:
    return list(passes) == list(range(passes[0], passes[0] + len(passes)))


def _add(a: int | None, b: int | None) -> int | None:
    if a is None and b is None:
        return None
    return (a or 0) + (b or 0)
