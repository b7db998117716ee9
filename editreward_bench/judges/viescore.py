"""The VIEScore protocol as GEdit-Bench runs it (Step1X-Edit's ``GEdit-Bench/viescore``, task "tie").

Per edit and pass, two prompts, each sent as text first and then the images (JPEG data
URLs on the API path), with only ``max_tokens`` 1400 and no temperature (the card):

- SC: the source and the edited image (resized to the source's size), and the blocks
  ``_context_no_delimit``, ``_prompts_0shot_two_image_edit_rule`` and
  ``_prompts_0shot_tie_rule_SC`` joined with ``\\n``, ``<instruction>`` replaced;
- PQ: the edited image only, and ``_context_no_delimit`` + ``_prompts_0shot_rule_PQ``.

The texts are upstream's, byte for byte (``judges/prompts/viescore/``, credited in
``NOTICE``). Scores are on 0..10 as the model writes them, with upstream's arithmetic::

    semantics (SC) = min(SC answer's "score")
    quality   (PQ) = min(PQ answer's "score")
    overall   (O)  = math.sqrt(SC * PQ)

Answers are parsed with upstream's own rules (:func:`upstream_parse`, a port of
``mllm_output_to_dict``), and asked again exactly when upstream asks again, so that the
answers erb keeps are the ones upstream keeps:

- when either answer does not parse, both prompts are asked again (upstream's next
  round), as long as it takes (here: at most ``max_retries`` more rounds);
- from the second round on, upstream replaces an answer without any JSON by a random
  score; erb records the pass as failed instead, with the answer;
- where upstream's ``evaluate`` raises (no ``score`` in the answer, a score list that is
  empty or not all numbers, a negative product), upstream retries the whole item; so
  does erb (at most ``max_retries`` more times, without upstream's growing sleeps).

Transport errors (HTTP 429/5xx, dropped connections) are retried by the backend and, when
they persist, fail the pass without being stored. A request the provider's content filter
refuses is, as upstream reads it, an empty answer (so both prompts are asked again); where
upstream would then invent a score the pass fails as refused, is stored, and counted. Scores outside 0..10 are used
as upstream uses them and flagged in the record (``extra.out_of_range``).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from ..resources import judges_dir
from .base import Backend, GenRequest, JudgeTask, PassResult, in_worker
from .editscore import cap_text
from .itempass import CONTENT_FILTER_PREFIX, ItemPassResult, is_content_filter
from .model import ModelJudge
from .options import JudgeConfig

STORE_KEY_VERSION = 1
TEMPLATE_FILES = ("context_no_delimit.txt", "two_image_edit_rule.txt", "tie_rule_sc.txt",
                  "rule_pq.txt")  # fmt: skip
DELIMITER = "||V^=^V||"


@dataclass(frozen=True)
class VIEScorePrompts:
    """The four upstream prompt blocks of the "tie" (text-guided image editing) task."""

    context: str
    edit_rule: str
    sc_rule: str
    pq_rule: str

    def sc(self, instruction: str) -> str:
        return "\n".join([self.context, self.edit_rule, self.sc_rule]).replace(
            "<instruction>", instruction
        )

    def pq(self) -> str:
        return "\n".join([self.context, self.pq_rule])

    def template_hash(self) -> str:
        h = hashlib.sha256()
        for block in (self.context, self.edit_rule, self.sc_rule, self.pq_rule):
            h.update(block.encode())
            h.update(b"\x00")
        return "sha256:" + h.hexdigest()


@cache
def load_prompts() -> VIEScorePrompts:
    folder = judges_dir() / "prompts" / "viescore"
    blocks = [(folder / name).read_bytes().decode("utf-8") for name in TEMPLATE_FILES]
    return VIEScorePrompts(*blocks)


# --------------------------------------------------------------------------- upstream's parser


class _Guess:
    """What upstream's parser returns where it would invent a random score."""

    def __repr__(self) -> str:
        return "GUESS"


GUESS = _Guess()
RATE_LIMIT = "rate_limit_exceeded"


class ParserRaised(Exception):
    """Upstream's parser itself raises on this answer (upstream then retries the item)."""


def _fix_json(text: str) -> str:
    """Upstream's ``fix_json``: quote bare keys, wrap numbers in lists, quote other values."""
    fixed = re.sub(r"(\w+):", r'"\1":', text)

    def format_value(match: re.Match[str]) -> str:
        key, value, comma = match.groups()
        value = value.strip()
        if re.match(r"^-?\d+(\.\d+)?$", value):
            value = f"[{value}]"
        elif re.match(r"^(true|false|null)$", value, re.IGNORECASE):
            pass
        else:
            value = f'"{value}"'
        return f"{key}: {value}{comma}"

    return re.sub(r'(".*?"):(.*?)(,|})', format_value, fixed)


def _int_between_0_and_10(text: str) -> bool:
    try:
        return 0 <= int(text) <= 10
    except ValueError:
        return False


def upstream_parse(text: str, give_up: bool) -> Any:
    """What upstream's ``mllm_output_to_dict(text, give_up_parsing=give_up)`` returns.

    A dict (``{"score": [...], ...}``, or whatever JSON the answer held), ``False`` when it
    does not parse, :data:`GUESS` where upstream would substitute a random score, or
    :data:`RATE_LIMIT`. Raises :class:`ParserRaised` where upstream's parser raises.
    """
    if text == RATE_LIMIT:
        return RATE_LIMIT
    if text.count(DELIMITER) == 2:
        start = text.find(DELIMITER) + len(DELIMITER)
        end = text.rfind(DELIMITER)
    else:
        start = text.find("{")
        end = text.rfind("}") + 1
        if start == -1 or end == 0:
            start = text.find("[")
            end = text.rfind("]") + 1
            if give_up:
                return GUESS
            if re.match(r"^\[\d+, ?\d+\]$", text[start:end]):
                try:
                    scores = json.loads(text[start:end])
                except ValueError as exc:  # digits json cannot read (e.g. other scripts')
                    raise ParserRaised(f"a bare list json cannot read: {exc}") from exc
                text = json.dumps(
                    {"score": scores, "reasoning": "System: output is simply a list of scores"}
                )
            elif _int_between_0_and_10(text):
                text = json.dumps(
                    {"score": [int(text)], "reasoning": "System: output is simply a number"}
                )
            else:
                return False
            start, end = 0, len(text)
    if start != -1 and end != -1 and start != end:
        body = text[start:end].strip().replace("\n", "")
        try:
            data = json.loads(body)
            if not isinstance(data["score"], list):
                data["score"] = [data["score"]]
        except Exception:
            try:
                return json.loads(_fix_json(body))
            except Exception:
                return False
        return data
    return False


class _RetryItem(Exception):
    """Upstream's ``evaluate`` raises here, and its harness retries the whole item."""


def _score_list(answer: Any, which: str) -> list[float]:
    if not isinstance(answer, dict):
        raise _RetryItem(f"{which}: the parsed answer is a {type(answer).__name__}, not an object")
    if "score" not in answer:
        raise _RetryItem(f"{which}: no 'score' in the answer")
    scores = answer["score"]
    if not isinstance(scores, list) or not scores:
        raise _RetryItem(f"{which}: 'score' is {scores!r}, not a list of numbers")
    for value in scores:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _RetryItem(f"{which}: 'score' holds {value!r}, not a number")
    return scores


def combine(sc: Any, pq: Any) -> dict[str, Any]:
    """SC, PQ and O of one pass from the two parsed answers, as upstream's ``evaluate``."""
    sc_scores, pq_scores = _score_list(sc, "sc"), _score_list(pq, "pq")
    semantics, quality = min(sc_scores), min(pq_scores)
    product = semantics * quality
    if not math.isfinite(product) or product < 0:
        raise _RetryItem(f"sqrt of SC x PQ = {semantics} x {quality} is not a real number")
    overall = math.sqrt(product)
    return {
        "semantics": semantics,
        "quality": quality,
        "overall": overall,
        "prompt_following": sc_scores[0] if len(sc_scores) == 2 else None,
        "consistency": sc_scores[1] if len(sc_scores) == 2 else None,
        "perceptual_quality": quality,
        "out_of_range": any(not 0 <= v <= 10 for v in (*sc_scores, *pq_scores)),
        "sc_scores": sc_scores,
        "pq_scores": pq_scores,
    }


def _reasoning(answer: Any) -> str | None:
    if isinstance(answer, dict) and isinstance(answer.get("reasoning"), str):
        return str(answer["reasoning"])
    return None


# --------------------------------------------------------------------------- the judge


@dataclass
class _Asked:
    sc: str
    pq: str
    #: The prompts ("sc", "pq") the provider's content filter refused this round; upstream
    #: reads a refusal as an empty answer.
    refused: tuple[str, ...] = ()


class _Failed(Exception):
    def __init__(self, message: str, transient: bool) -> None:
        super().__init__(message)
        self.transient = transient


def _refusal(asked: _Asked | None, which: str) -> str | None:
    """The failure's message when the content filter refused a failing prompt's last request."""
    refused = [name for name in (asked.refused if asked else ()) if name in which.split(" and ")]
    if not refused:
        return None
    return (
        f"{CONTENT_FILTER_PREFIX}the provider refused the {' and '.join(refused)} request each "
        "time it was asked (upstream reads a refusal as an empty answer, then invents a score)"
    )


class VIEScoreJudge(ModelJudge):
    """VIEScore (GEdit-Bench's judge) on any backend."""

    store_key_version = STORE_KEY_VERSION

    def __init__(self, config: JudgeConfig, backend: Backend) -> None:
        super().__init__(config, backend)
        self.prompts = load_prompts()
        self.batch_size = 1

    def template_hash(self) -> str:
        return self.prompts.template_hash()

    def protocol_description(self) -> dict[str, Any]:
        return {"score_range": 10}

    async def ajudge(self, tasks: Sequence[JudgeTask]) -> list[PassResult]:
        results: list[PassResult] = []
        for task in tasks:
            try:
                images = await in_worker(self._prepare, task)
            except Exception as exc:  # an unreadable image fails this edit only
                results += [
                    ItemPassResult.failure(task.candidate.key, p, s, f"image: {exc}")
                    for p, s in zip(task.passes, task.seeds, strict=True)
                ]
                continue
            results += await asyncio.gather(
                *(self._pass(task, i, images) for i in range(len(task.passes)))
            )
        return results

    def _prepare(self, task: JudgeTask) -> tuple[Any, Any]:
        source, edited = task.candidate.load_images()
        prepared = self.backend.prepare_images([source, edited])
        return prepared[0], prepared[1]

    async def _ask(self, images: tuple[Any, Any], instruction: str, seed: int,
                   tally: dict[str, Any]) -> _Asked:  # fmt: skip
        sc_request = GenRequest(images, self.prompts.sc(instruction), 1, seed)
        pq_request = GenRequest((images[1],), self.prompts.pq(), 1, seed)
        answers = await self.backend.generate([sc_request, pq_request])
        texts: list[str] = []
        refused: list[str] = []
        for which, response in zip(("sc", "pq"), answers, strict=True):
            tally["requests"] += 1
            if response.prompt_tokens is not None:
                tally["prompt_tokens"] += response.prompt_tokens
            if response.completion_tokens is not None:
                tally["completion_tokens"] += response.completion_tokens
            if response.model:
                tally["served"][response.model] += 1
            if is_content_filter(response.error, response.finish_reasons):
                refused.append(which)
                tally["refused"] += 1
                texts.append("")
                continue
            if response.error is not None or not response.texts:
                raise _Failed(f"{which}: {response.error or 'no answer'}", transient=True)
            texts.append(response.texts[0])
        return _Asked(texts[0], texts[1], tuple(refused))

    async def _pass(self, task: JudgeTask, index: int, images: tuple[Any, Any]) -> PassResult:
        key, pass_index, seed = task.candidate.key, task.passes[index], task.seeds[index]
        tally: dict[str, Any] = {"requests": 0, "refused": 0, "prompt_tokens": 0,
                                 "completion_tokens": 0, "served": Counter()}  # fmt: skip
        asked: _Asked | None = None
        rounds = attempts = 0
        why = ""
        try:
            for attempt in range(1 + self.max_retries):
                attempts = attempt + 1
                final: tuple[Any, Any] | None = None
                for round_no in range(1, 2 + self.max_retries):
                    rounds += 1
                    asked = await self._ask(images, task.candidate.instruction, seed, tally)
                    try:
                        sc = upstream_parse(asked.sc, give_up=round_no > 1)
                        pq = upstream_parse(asked.pq, give_up=round_no > 1)
                    except ParserRaised as exc:
                        why = str(exc)
                        break
                    if sc is not False and pq is not False:
                        final = (sc, pq)
                        break
                else:
                    which = " and ".join(n for n, a in (("sc", sc), ("pq", pq)) if a is False)
                    raise _Failed(
                        _refusal(asked, which)
                        or f"unparseable after {round_no} round(s): {which} answer has no JSON "
                        "upstream can read (upstream asks until it can)",
                        transient=False,
                    )
                if final is None:
                    continue
                sc, pq = final
                if RATE_LIMIT in (sc, pq):
                    why = "the answer is 'rate_limit_exceeded'"
                    continue
                if GUESS in (sc, pq):
                    which = " and ".join(n for n, a in (("sc", sc), ("pq", pq)) if a is GUESS)
                    raise _Failed(
                        _refusal(asked, which)
                        or f"upstream would substitute a random score: the {which} answer has no "
                        f"JSON after asking again ({round_no} round(s))",
                        transient=False,
                    )
                try:
                    scores = combine(sc, pq)
                except _RetryItem as exc:
                    why = str(exc)
                    continue
                return self._result(key, pass_index, seed, asked, (sc, pq), scores, tally,
                                    rounds, attempts)  # fmt: skip
            raise _Failed(
                f"no usable answer after {attempts} attempt(s) of the item: {why}", transient=False
            )
        except _Failed as failure:
            common = self._common(asked, None, tally, rounds, attempts)
            return ItemPassResult.failure(
                key, pass_index, seed, str(failure), transient=failure.transient, **common
            )

    def _common(self, asked: _Asked | None, parsed: tuple[Any, Any] | None,
                tally: dict[str, Any], rounds: int, attempts: int) -> dict[str, Any]:  # fmt: skip
        extra: dict[str, Any] = {"requests": tally["requests"], "rounds": rounds,
                                 "item_attempts": attempts}  # fmt: skip
        if tally["refused"]:
            extra["refused"] = tally["refused"]
        served = tally["served"]
        if served:  # the model id the server said answered, per answer
            extra["served_model"] = served.most_common(1)[0][0]
            extra["served_models"] = dict(served)
        common: dict[str, Any] = {
            "raw_sc": cap_text(asked.sc) if asked else None,
            "raw_pq": cap_text(asked.pq) if asked else None,
            "reasoning_sc": _reasoning(parsed[0]) if parsed else None,
            "reasoning_pq": _reasoning(parsed[1]) if parsed else None,
            "prompt_tokens": tally["prompt_tokens"] or None,
            "completion_tokens": tally["completion_tokens"] or None,
            "attempts": rounds,
            "extra": extra,
        }
        return common

    def _result(self, key: str, pass_index: int, seed: int, asked: _Asked,
                parsed: tuple[Any, Any], scores: dict[str, Any], tally: dict[str, Any],
                rounds: int, attempts: int) -> ItemPassResult:  # fmt: skip
        common = self._common(asked, parsed, tally, rounds, attempts)
        common["extra"].update(sc_scores=scores["sc_scores"], pq_scores=scores["pq_scores"])
        if scores["out_of_range"]:
            common["extra"]["out_of_range"] = True
        return ItemPassResult(
            key, pass_index, seed, "ok",
            prompt_following=scores["prompt_following"], consistency=scores["consistency"],
            perceptual_quality=scores["perceptual_quality"], overall=scores["overall"],
            semantics=scores["semantics"], quality=scores["quality"], **common,
        )  # fmt: skip
