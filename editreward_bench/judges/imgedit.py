"""ImgEdit-Bench's judging protocol (basic suite), from the facts of its ``Benchmark/Basic`` scripts.

ImgEdit's repository carries no licence, so none of its code or rubric texts is here:
the rubrics are read from the user's copy of ``prompts.json`` (one text per edit type,
``<edit_prompt>`` replaced by the item's instruction), and this module implements what
its scripts do:

- one request per item (``basic_bench.py``): the rubric text, then the original image,
  then the edited image, each the file's raw bytes base64-encoded and labelled
  ``image/png`` (the originals are JPEG files), no resizing, no temperature, no
  ``max_tokens``;
- the item's score (``step1_get_avgscore.py``): of every line that, stripped and split
  at ``": "``, has exactly two parts whose second is all digits, the mean of those
  integers, ``round(sum / count, 2)``; an answer without such a line gives no score
  (upstream drops the item; erb records it as failed, with the answer).

Scores are whatever integers the model wrote (the rubrics ask for 1..5); erb does not
re-ask, so its answers are upstream's. Transport errors are retried by the backend (one
API error crashes upstream's step 1); a request the content filter refuses fails its item.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

from .base import Backend, GenRequest, JudgeTask, PassResult, in_worker, open_image
from .editscore import cap_text
from .itempass import CONTENT_FILTER_PREFIX, ItemPassResult, is_content_filter
from .model import ModelJudge
from .options import JudgeConfig

STORE_KEY_VERSION = 1
#: The placeholder ImgEdit's rubrics hold for the item's instruction.
PLACEHOLDER = "<edit_prompt>"


@runtime_checkable
class RubricCandidate(Protocol):
    """An ImgEdit item: its rubric text (placeholder filled) and both images' file bytes."""

    @property
    def key(self) -> str: ...

    @property
    def rubric_prompt(self) -> str: ...

    def source_bytes(self) -> bytes: ...

    def edited_bytes(self) -> bytes: ...


def rubric_scores(answer: str) -> list[int]:
    """The integers of the answer's ``Name: N`` lines, as ImgEdit's step 1 reads them."""
    scores = []
    for line in answer.splitlines():
        parts = line.strip().split(": ")
        if len(parts) == 2 and parts[1].isdigit():
            scores.append(int(parts[1]))
    return scores


def item_score(scores: Sequence[int]) -> float | None:
    """ImgEdit's step 1 score of one item: the mean, rounded to 2 decimals; None without lines."""
    if not scores:
        return None
    return round(sum(scores) / len(scores), 2)


def png_data_url(data: bytes) -> str:
    """The file's bytes as ImgEdit sends them: base64, labelled ``image/png`` whatever they are."""
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


class ImgEditJudge(ModelJudge):
    """ImgEdit's rubric protocol on any backend (raw bytes as-is on OpenAI-compatible ones)."""

    store_key_version = STORE_KEY_VERSION

    def __init__(self, config: JudgeConfig, backend: Backend) -> None:
        super().__init__(config, backend)
        self.batch_size = 1
        from ..backends.openai_compat import OpenAIBackend

        #: Raw file bytes go to a server as they are; a local model is handed decoded images.
        self.raw_images = isinstance(backend, OpenAIBackend)

    def protocol_description(self) -> dict[str, Any]:
        images = "raw file bytes, labelled image/png, not resized"
        return {"images": images if self.raw_images else "decoded, as the backend takes them"}

    def template_hash(self) -> str:
        """The rubrics come with each item (the user's prompts.json): only the layout is ours."""
        return "sha256:" + hashlib.sha256(b"imgedit-basic: rubric, original, edited").hexdigest()

    def protocol_key(self) -> dict[str, Any]:
        return {"raw_images": self.raw_images}

    def _prepare(self, candidate: Any) -> tuple[Any, Any]:
        source, edited = candidate.source_bytes(), candidate.edited_bytes()
        if self.raw_images:
            return png_data_url(source), png_data_url(edited)
        prepared = self.backend.prepare_images([open_image(source), open_image(edited)])
        return prepared[0], prepared[1]

    async def ajudge(self, tasks: Sequence[JudgeTask]) -> list[PassResult]:
        results: list[PassResult] = []
        for task in tasks:
            candidate = task.candidate
            pairs = list(zip(task.passes, task.seeds, strict=True))
            if not isinstance(candidate, RubricCandidate):
                results += [
                    ItemPassResult.failure(
                        candidate.key, p, s,
                        "the imgedit protocol judges ImgEdit-Bench items (a rubric per edit type)",
                    )
                    for p, s in pairs
                ]  # fmt: skip
                continue
            try:
                images = await in_worker(self._prepare, candidate)
            except Exception as exc:
                results += [
                    ItemPassResult.failure(candidate.key, p, s, f"image: {exc}") for p, s in pairs
                ]
                continue
            requests = [GenRequest(images, candidate.rubric_prompt, 1, s) for _, s in pairs]
            responses = await self.backend.generate(requests)
            for (p, s), response in zip(pairs, responses, strict=True):
                results.append(self._result(candidate.key, p, s, response))
        return results

    def _result(self, key: str, pass_index: int, seed: int, response: Any) -> PassResult:
        extra: dict[str, Any] = {"requests": 1}
        if response.model:
            extra["served_model"] = response.model
        tokens = {"prompt_tokens": response.prompt_tokens,
                  "completion_tokens": response.completion_tokens}  # fmt: skip
        if is_content_filter(response.error, response.finish_reasons):
            why = response.error or "finish_reason content_filter"
            extra["refused"] = 1
            return ItemPassResult.failure(key, pass_index, seed, f"{CONTENT_FILTER_PREFIX}{why}",
                                          extra=extra, **tokens)  # fmt: skip
        if response.error is not None or not response.texts:
            return ItemPassResult.failure(key, pass_index, seed, response.error or "no answer",
                                          transient=True, extra=extra, **tokens)  # fmt: skip
        text = response.texts[0]
        scores = rubric_scores(text)
        score = item_score(scores)
        if score is None:
            return ItemPassResult.failure(
                key, pass_index, seed,
                "no 'Name: N' line in the answer (ImgEdit's step 1 drops the item)",
                raw_sc=cap_text(text), extra=extra, **tokens,
            )  # fmt: skip
        extra["scores"] = scores
        if any(not 1 <= v <= 5 for v in scores):
            extra["out_of_range"] = True
        return ItemPassResult(key, pass_index, seed, "ok", overall=score, raw_sc=cap_text(text),
                              extra=extra, **tokens)  # fmt: skip
