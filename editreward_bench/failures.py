"""Failures: what they have in common, and when a run should stop instead of going on.

A run whose every pass fails, or most of whose passes fail for one persistent
reason (HTTP 400 for a setting the server refuses, an unknown layout, empty or
unparseable answers), would otherwise spend its whole budget to produce a table
of zeros. :class:`FailureWatch` sees each judged pass and says when to stop;
:func:`reason` folds an error message into the reason people act on.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

#: HTTP statuses that may succeed on a retry; every other 4xx is the request's own fault.
_TRANSIENT_HTTP = {408, 409, 425, 429}
_PROMPT_PREFIX = re.compile(r"^(sc|pq): ")
_GAVE_UP = re.compile(r"^gave up after \d+ attempt\(s\): ")
_UNPARSEABLE = re.compile(r"^unparseable after \d+ attempt\(s\): ")
_HTTP = re.compile(r"^HTTP (\d{3})")
MAX_REASON_CHARS = 160


def reason(error: str | None) -> str:
    """The part of an error message that is the same for every pass it hits."""
    text = (error or "unknown").strip()
    text = _PROMPT_PREFIX.sub("", text)
    text = _GAVE_UP.sub("", text)
    if _UNPARSEABLE.match(text):
        # "unparseable after 3 attempt(s): sc: no JSON object; pq: ..." -> the first cause
        first = _UNPARSEABLE.sub("", text).split("; ")[0]
        text = "unparseable answer: " + _PROMPT_PREFIX.sub("", first)
    text = " ".join(text.split())
    return text if len(text) <= MAX_REASON_CHARS else text[: MAX_REASON_CHARS - 3] + "..."


def persistent(reason_text: str) -> bool:
    """Whether a failure will recur on every pass (a retry or another candidate won't help)."""
    http = _HTTP.match(reason_text)
    if http:
        status = int(http.group(1))
        return 400 <= status < 500 and status not in _TRANSIENT_HTTP
    return reason_text.startswith(("unparseable answer", "image:", "invalid judge result"))


def top_reasons(counts: Counter[str], n: int = 5) -> list[str]:
    """``["412 x HTTP 400: ...", ...]``, most frequent first."""
    lines = [f"{count} x {text}" for text, count in counts.most_common(n)]
    rest = sum(counts.values()) - sum(c for _, c in counts.most_common(n))
    if rest:
        lines.append(f"{rest} x other reasons")
    return lines


@dataclass(frozen=True)
class StopRule:
    """When a run gives up. Defaults: the first 20 passes all failed, or more than half of
    at least 50 passes failed for one persistent reason. 0 turns a rule off."""

    all_failed_after: int = 20
    min_passes: int = 50
    persistent_share: float = 0.5


@dataclass
class FailureWatch:
    rule: StopRule
    judged: int = 0
    ok: int = 0
    reasons: Counter[str] = field(default_factory=Counter)

    def see(self, status: str, error: str | None) -> str | None:
        """Count one judged pass; return why the run must stop, or None."""
        self.judged += 1
        if status == "ok":
            self.ok += 1
            return None
        self.reasons[reason(error)] += 1
        rule = self.rule
        if rule.all_failed_after and self.ok == 0 and self.judged >= rule.all_failed_after:
            return f"the first {self.judged} passes all failed"
        if rule.min_passes and self.judged >= rule.min_passes:
            text, count = self.reasons.most_common(1)[0]
            if persistent(text) and count > rule.persistent_share * self.judged:
                return (
                    f"{count} of {self.judged} passes failed with the same persistent error "
                    f"({text})"
                )
        return None
