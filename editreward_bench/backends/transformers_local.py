"""Compatibility: the local transformers backend now lives in :mod:`.transformers`.

This module re-exports its public names under the old import path.
"""

from __future__ import annotations

from ..vision import DEFAULT_MAX_PIXELS, DEFAULT_MIN_PIXELS
from .transformers import (
    DEFAULT_MAX_NEW_TOKENS,
    DEFAULT_SYSTEM_PROMPT,
    IMAGE_TOKEN,
    LAYOUTS,
    ImageTextProcessor,
    TransformersBackend,
    chat_messages,
    load_processor,
    qwen25_prompt,
    seed_everything,
)
from .transformers.loading import hub_hint as _hub_hint

__all__ = [
    "DEFAULT_MAX_NEW_TOKENS", "DEFAULT_MAX_PIXELS", "DEFAULT_MIN_PIXELS", "DEFAULT_SYSTEM_PROMPT",
    "IMAGE_TOKEN", "LAYOUTS", "ImageTextProcessor", "TransformersBackend", "_hub_hint",
    "chat_messages", "load_processor", "qwen25_prompt", "seed_everything",
]  # fmt: skip
