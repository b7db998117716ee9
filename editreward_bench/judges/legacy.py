"""Judge fingerprints of earlier store-key versions, so that upgrading never rejudges a pass.

Store-key version 1 (erb 0.1) hashed a judge's backend description minus a
hand-kept list of keys. :func:`v1_fingerprint` recomputes that hash for a
configuration version 1 could have run; the store then moves the passes from
the old key to the new one (:meth:`editreward_bench.store.PassStore.adopt`).

Frozen: these functions must keep returning what version 1 returned, byte for
byte (the golden tests in ``tests/test_options.py`` pin every shipped card).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from typing import Any

from .options import JudgeConfig, OpenAIOptions, TransformersOptions

#: Version 1 resized images for the hand-built Qwen2.5-VL prompt, or when bounds were given.
_V1_MIN_PIXELS = 4 * 28 * 28
_V1_MAX_PIXELS = 16384 * 28 * 28
#: The repetition penalty the generation config of each model (hub id) sets, which version 1's
#: local backend applied implicitly: ``generate`` starts from the model's generation config.
#: Qwen2.5-VL-Instruct's sets 1.05, Qwen3-VL-Instruct's 1.0.
_GENERATION_CONFIG_REPETITION_PENALTY = {
    "Qwen/Qwen2.5-VL-7B-Instruct": 1.05,
    "Qwen/Qwen3-VL-4B-Instruct": 1.0,
    "Qwen/Qwen3-VL-8B-Instruct": 1.0,
}


def v1_fingerprint(config: JudgeConfig, template_hash: str) -> str | None:
    """Version 1's fingerprint of this (resolved) configuration, or None if version 1
    could not have run it (a setting version 1 did not have is in use).

    Version 1's local backend ran what is now its batched mode; exact mode has no
    version-1 key.

    One setting version 1 lacked maps back: on the local backend, an explicit repetition
    penalty equal to the one the model's own generation config sets is what version 1's
    ``generate`` applied anyway, so the answers are the same. On a server it does not map:
    what a server does with a field left out is its own default.
    """
    card, options, sampling = config.card, config.backend, config.sampling
    if sampling.repetition_penalty is not None:
        implicit = _GENERATION_CONFIG_REPETITION_PENALTY.get(card.model or "")
        if not isinstance(options, TransformersOptions) or sampling.repetition_penalty != implicit:
            return None
        sampling = replace(sampling, repetition_penalty=None)
    backend: dict[str, Any]
    if isinstance(options, OpenAIOptions):
        if options.image_format != "jpeg" or options.pre_resize:
            return None  # version 1 sent every image as JPEG, at its own size
        served = options.served_model or (card.name if card.adapter else card.model)
        backend = {
            "backend": "openai", "model": served, "adapter": card.adapter,
            "sampling": sampling.as_dict(), "layout": config.common.layout,
            "send_seed": options.send_seed,
        }  # fmt: skip
    elif isinstance(options, TransformersOptions):
        if options.mode != "batched":
            return None  # version 1 generated in batches, k samples of one seed per prompt
        resize = config.common.layout == "qwen2.5-vl" or (
            options.min_pixels is not None or options.max_pixels is not None
        )
        backend = {
            "backend": "transformers", "model": card.model, "adapter": card.adapter,
            "sampling": sampling.as_dict(), "layout": config.common.layout,
            "min_pixels": (options.min_pixels or _V1_MIN_PIXELS) if resize else None,
            "max_pixels": (options.max_pixels or _V1_MAX_PIXELS) if resize else None,
            "dtype": options.dtype,
            "merge_adapter": options.merge_adapter if card.adapter else None,
        }  # fmt: skip
    else:
        return None
    payload = {
        "protocol": card.protocol,
        "prompt_template_hash": template_hash,
        "score_range": config.common.score_range,
        "backend": backend,
    }
    blob = json.dumps(payload, sort_keys=True, default=str)
    return "sha256:" + hashlib.sha256(blob.encode()).hexdigest()
