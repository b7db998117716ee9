"""Model-free baseline judges: floors to compare real judges against.

- ``random``: uniform scores in [0, 10), seeded by (seed, candidate key, pass).
  Its expected pairwise accuracy is 0.5 minus nothing (no ties in practice).
- ``image-diff``: a classical image-metric judge that never reads the
  instruction. It measures how much of the picture changed (per-pixel colour
  difference above a threshold, on a 64x64 thumbnail):

  * prompt_following = 10 * (1 - exp(-changed / 0.05)): something visible was
    edited (an untouched image scores 0);
  * consistency = 10 * (1 - changed): the less of the picture changed, the better;
  * perceptual_quality = 10 * sharpness(edited) / max(sharpness(source), eps),
    capped at 10 (blurring or smearing lowers it);
  * overall = sqrt(min(prompt_following, consistency) * perceptual_quality),
    the same geometric mean the EditScore protocol uses.

  It catches "nothing was edited" and "everything was repainted", and is blind
  to whether the right thing was edited.
"""

from __future__ import annotations

import hashlib
import math
import struct
from collections.abc import Sequence
from random import Random
from typing import Any

import numpy as np
from PIL import Image, ImageFilter

from .base import Judge, JudgeTask, PassResult
from .cards import JudgeCard

THUMBNAIL = 64
CHANGE_THRESHOLD = 0.1


def random_scores(key: str, pass_index: int, seed: int) -> dict[str, float]:
    digest = hashlib.sha256(f"{seed}\x1f{key}\x1f{pass_index}".encode()).digest()
    rng = Random(struct.unpack("<Q", digest[:8])[0])
    pf, c, pq = (rng.random() * 10 for _ in range(3))
    return {
        "prompt_following": pf,
        "consistency": c,
        "perceptual_quality": pq,
        "overall": math.sqrt(min(pf, c) * pq),
    }


def _array(img: Image.Image) -> np.ndarray:
    return np.asarray(img.convert("RGB").resize((THUMBNAIL, THUMBNAIL)), dtype=np.float64) / 255.0


def _sharpness(img: Image.Image) -> float:
    edges = np.asarray(
        img.convert("L").resize((THUMBNAIL, THUMBNAIL)).filter(ImageFilter.FIND_EDGES),
        dtype=np.float64,
    )
    return float(edges.mean())


def image_diff_scores(source: Image.Image, edited: Image.Image) -> dict[str, float]:
    diff = np.abs(_array(source) - _array(edited)).mean(axis=2)
    changed = float((diff > CHANGE_THRESHOLD).mean())
    pf = 10.0 * (1.0 - math.exp(-changed / 0.05))
    consistency = 10.0 * (1.0 - changed)
    pq = min(10.0, 10.0 * _sharpness(edited) / max(_sharpness(source), 1e-6))
    return {
        "prompt_following": pf,
        "consistency": consistency,
        "perceptual_quality": pq,
        "overall": math.sqrt(min(pf, consistency) * pq),
    }


class RandomJudge(Judge):
    """Uniform random scores: the chance floor (about 0.5 on every block)."""

    def __init__(self, card: JudgeCard) -> None:
        super().__init__(card.name)
        self.card = card

    def describe(self) -> dict[str, Any]:
        return {**self.card.to_dict(), "interface_version": self.interface_version}

    def judge(self, tasks: Sequence[JudgeTask]) -> list[PassResult]:
        return [
            PassResult.scored(
                task.candidate.key, p, seed, random_scores(task.candidate.key, p, seed)
            )
            for task in tasks
            for p, seed in zip(task.passes, task.seeds, strict=True)
        ]


class ImageDiffJudge(Judge):
    """The classical image-metric baseline (see the module docstring). Deterministic."""

    batch_size = 8

    def __init__(self, card: JudgeCard) -> None:
        super().__init__(card.name)
        self.card = card

    def describe(self) -> dict[str, Any]:
        return {
            **self.card.to_dict(),
            "thumbnail": THUMBNAIL,
            "change_threshold": CHANGE_THRESHOLD,
            "interface_version": self.interface_version,
        }

    def judge(self, tasks: Sequence[JudgeTask]) -> list[PassResult]:
        results = []
        for task in tasks:
            try:
                scores = image_diff_scores(*task.candidate.load_images())
            except Exception as exc:  # one bad image fails one candidate
                results += [
                    PassResult.failure(task.candidate.key, p, s, f"image: {exc}")
                    for p, s in zip(task.passes, task.seeds, strict=True)
                ]
                continue
            results += [
                PassResult.scored(task.candidate.key, p, s, scores)
                for p, s in zip(task.passes, task.seeds, strict=True)
            ]
        return results
