"""Pass results of the editing-benchmark protocols (VIEScore for GEdit-Bench, ImgEdit's rubric).

These protocols score an edit on their own scales and name their numbers in their own
words: VIEScore gives semantics (SC), quality (PQ) and overall (O); ImgEdit one rubric
mean. Their authors' code takes whatever number the model wrote, so a pass here is checked
for a finite overall only, not for a 0..10 range (numbers outside the rubric's range are
counted beside the results, never changed or dropped).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from .base import PassResult

#: Errors that mark a request the provider's content filter refused.
CONTENT_FILTER_MARKERS = (
    "content_policy_violation",
    "content_filter",
    "responsibleaipolicyviolation",
    "content management policy",
)
CONTENT_FILTER_PREFIX = "content filter: "


def is_content_filter(error: str | None, finish_reasons: list[str] | None = None) -> bool:
    """Whether a failed or empty answer was the provider's content filter refusing the request."""
    if finish_reasons and "content_filter" in finish_reasons:
        return True
    text = (error or "").lower()
    return any(marker in text for marker in CONTENT_FILTER_MARKERS)


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


@dataclass
class ItemPassResult(PassResult):
    """A pass of a benchmark protocol: ``semantics`` and ``quality`` where the protocol has
    them (VIEScore's SC and PQ), and ``overall`` always."""

    semantics: float | None = None
    quality: float | None = None

    def check(self) -> ItemPassResult:
        if self.status == "ok":
            for name in ("overall", "semantics", "quality", "prompt_following", "consistency",
                         "perceptual_quality"):  # fmt: skip
                value = getattr(self, name)
                if value is None and name != "overall":
                    continue
                if not _finite(value):
                    raise TypeError(
                        f"pass result for {self.key!r}: {name} must be a finite number, got {value!r}"
                    )
        return self
