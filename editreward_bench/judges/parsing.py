"""Parsing a VLM judge's answer into two scores, as leniently as upstream and no further.

Accepted, as the EditScore harness accepts them: the outermost ``{...}`` as JSON;
the same after repairs (smart quotes, single quotes, unquoted keys, Python
literals, unescaped quotes inside ``"reasoning"``); a bare ``[a, b]`` list; and,
last, the first numbers after the word ``score``. Then validated, which upstream
does not do: exactly two finite numbers within ``0..score_range``. Anything
else is a parse failure with a reason; never a guessed or default score.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"


@dataclass(frozen=True)
class ParsedScores:
    """A parse: two scores and the reasoning, or an error."""

    scores: tuple[float, float] | None
    reasoning: str
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.scores is not None


def _normalize_quotes(s: str) -> str:
    return s.replace("“", '"').replace("”", '"').replace("‘", "'").replace("’", "'")


def _quote_keys(s: str) -> str:
    s = re.sub(r"\bTrue\b", "true", s)
    s = re.sub(r"\bFalse\b", "false", s)
    s = re.sub(r"\bNone\b", "null", s)
    return re.sub(r"([{\s,])([A-Za-z_]\w*)\s*:", r'\1"\2":', s)


def _single_to_double(s: str) -> str:
    return s.replace("'", '"')


def _escape_reasoning_quotes(s: str) -> str:
    pattern = re.compile(r'("reasoning"\s*:\s*")(.*?)(?="\s*[,}])', re.DOTALL)

    def fix(match: re.Match[str]) -> str:
        content = re.sub(r'(?<!\\)"', r'\\"', match.group(2))
        return match.group(1) + content

    return pattern.sub(fix, s)


_REPAIRS = (
    lambda s: s,
    _single_to_double,
    _quote_keys,
    lambda s: _escape_reasoning_quotes(_quote_keys(s)),
    lambda s: _escape_reasoning_quotes(s),
)


def _loads_object(text: str) -> dict[str, Any] | None:
    for repair in _REPAIRS:
        try:
            obj = json.loads(repair(text), strict=False)
        except (json.JSONDecodeError, RecursionError, ValueError):
            continue
        if isinstance(obj, dict):
            return obj
    return None


def _reasoning_of(obj: dict[str, Any]) -> str:
    for name in ("reasoning", "reason", "rationale"):
        value = obj.get(name)
        if isinstance(value, str):
            return value
    return ""


def _fallback_scores(text: str) -> list[float] | None:
    """Upstream's last resort: numbers after the word 'score' (within its bracket, if any)."""
    match = re.search(r"""["']?score["']?\s*[:：=]\s*""", text, re.IGNORECASE)
    if not match:
        return None
    rest = text[match.end() :]
    if rest.startswith("["):
        close = rest.find("]")
        rest = rest[: close + 1] if close != -1 else rest
    numbers = re.findall(_NUMBER, rest)
    return [float(n) for n in numbers] if numbers else None


def _fallback_reasoning(text: str) -> str:
    match = re.search(
        r"""["']?reasoning["']?\s*[:：]\s*["']?(.*?)["']?\s*,\s*["']?score""",
        text,
        re.DOTALL | re.IGNORECASE,
    )
    return match.group(1).strip() if match else ""


def _as_numbers(value: Any) -> list[float] | str:
    """A score value as a list of floats, or a reason it is not one."""
    if isinstance(value, bool):
        return "score is a boolean"
    if isinstance(value, (int, float)):
        return [float(value)]
    if isinstance(value, list):
        numbers = []
        for item in value:
            if isinstance(item, bool):
                return "score list contains a boolean"
            if isinstance(item, (int, float)):
                numbers.append(float(item))
            elif isinstance(item, str) and re.fullmatch(_NUMBER, item.strip()):
                numbers.append(float(item.strip()))
            else:
                return f"score list contains {item!r}"
        return numbers
    return f"score is {type(value).__name__}"


def _validate(numbers: list[float], reasoning: str, score_range: float) -> ParsedScores:
    if len(numbers) != 2:
        return ParsedScores(None, reasoning, f"expected 2 scores, got {len(numbers)}")
    for number in numbers:
        if not math.isfinite(number):
            return ParsedScores(None, reasoning, f"score {number} is not finite")
        if not 0 <= number <= score_range:
            return ParsedScores(None, reasoning, f"score {number:g} is outside 0..{score_range:g}")
    return ParsedScores((numbers[0], numbers[1]), reasoning)


def parse_scores(text: str | None, score_range: float = 25) -> ParsedScores:
    """Parse an answer; never raises, never returns a score outside ``0..score_range``."""
    if text is None or not text.strip():
        return ParsedScores(None, "", "empty answer")
    try:
        return _parse(text, score_range)
    except (RecursionError, ValueError, OverflowError) as exc:  # pathological input
        return ParsedScores(None, "", f"unparseable answer ({type(exc).__name__})")


def _parse(text: str, score_range: float) -> ParsedScores:
    text = _normalize_quotes(text)
    start, end = text.find("{"), text.rfind("}")
    if start != -1 and end > start:
        body = text[start : end + 1]
        obj = _loads_object(body.replace("\n", " "))
        if obj is not None and "score" in obj:
            numbers = _as_numbers(obj["score"])
            if isinstance(numbers, str):
                return ParsedScores(None, _reasoning_of(obj), numbers)
            return _validate(numbers, _reasoning_of(obj), score_range)
        fallback = _fallback_scores(body)
        if fallback is not None:
            reasoning = _reasoning_of(obj) if obj is not None else _fallback_reasoning(body)
            return _validate(fallback, reasoning, score_range)
        return ParsedScores(None, "", "no 'score' in the JSON answer")
    bare = re.search(rf"\[\s*({_NUMBER})\s*,\s*({_NUMBER})\s*\]", text)
    if bare:
        return _validate([float(bare.group(1)), float(bare.group(2))], "", score_range)
    fallback = _fallback_scores(text)
    if fallback is not None:
        return _validate(fallback, _fallback_reasoning(text), score_range)
    return ParsedScores(None, "", "no JSON object, score list or 'score' found")
