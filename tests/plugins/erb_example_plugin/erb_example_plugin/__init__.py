"""An example erb judge plugin.

``brightness_judge`` is a factory returning a judge that prefers brighter,
unchanged-looking edits; ``EXAMPLE_CARD`` is a judge card given as data.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from PIL import ImageStat

from editreward_bench.judges import Judge, JudgeTask, PassResult


class BrightnessJudge(Judge):
    """A synchronous judge: scores are the edited image's brightness and its closeness to the source."""

    batch_size = 4

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "protocol": "brightness", "backend": "none", "version": "0.1.0"}

    def judge(self, tasks: Sequence[JudgeTask]) -> list[PassResult]:
        results = []
        for task in tasks:
            source, edited = task.candidate.load_images()
            bright = sum(ImageStat.Stat(edited.convert("L")).mean) / 255 * 10
            same = (
                10
                - abs(
                    sum(ImageStat.Stat(source.convert("L")).mean)
                    - sum(ImageStat.Stat(edited.convert("L")).mean)
                )
                / 255
                * 10
            )
            scores = {
                "prompt_following": bright,
                "consistency": same,
                "perceptual_quality": 10.0,
                "overall": (bright * same) ** 0.5,
            }
            for p, seed in zip(task.passes, task.seeds, strict=True):
                results.append(PassResult.scored(task.candidate.key, p, seed, scores))
        return results


def brightness_judge(**overrides: Any) -> BrightnessJudge:
    return BrightnessJudge("brightness")


brightness_judge.erb_card = {
    "backend": "none",
    "model": None,
    "description": "Prefers bright edits (example plugin).",
}  # type: ignore[attr-defined]

EXAMPLE_CARD = {
    "protocol": "image-diff",
    "backend": "none",
    "description": "The image-diff baseline, registered by a plugin as a card.",
}


def wrong_type(**overrides: Any) -> str:
    return "not a judge"
