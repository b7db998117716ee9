"""Local Hugging Face ``transformers`` backend: Qwen2.5-VL / Qwen3-VL, with an optional LoRA.

What it reproduces of upstream EditScore's local path:

- the model is loaded with ``from_pretrained`` (bf16, ``device_map="auto"`` on a
  GPU; float32 on CPU), and the LoRA adapter is applied with peft and merged
  (:mod:`.loading`);
- layout ``qwen2.5-vl``: the prompt string is built by hand, images first
  (``<img1>: `` + vision tokens, ...), then the text, under the default system
  prompt; each image is first resized as ``qwen_vl_utils.process_vision_info``
  does (``smart_resize`` to a multiple of 28, between 4 and 16384 vision tokens,
  :mod:`editreward_bench.vision`); layout ``chat-template`` (Qwen3-VL): the
  processor's chat template renders ``[images..., text]``, and the processor alone
  resizes the images (:mod:`.prompts`);
- sampling with the card's temperature, top_p, top_k and max_new_tokens on top of
  the model's own generation config; answers are decoded with special tokens
  skipped and stripped. In exact mode (the default) every prompt and pass is its
  own ``generate`` of one sequence right after seeding (``random``, numpy, torch,
  CUDA) with the pass's seed, as upstream calls it; batched mode batches
  same-seed prompts and draws n samples from one seed (:mod:`.generation`).

When ``AutoProcessor`` cannot be built (PyPI's torchvision does not import beside
every torch), an image-only processor is assembled from ``Qwen2VLImageProcessorPil``
and the tokenizer (:mod:`.processor`).

Only this package imports torch; :mod:`.prompts` does not.
"""

from __future__ import annotations

from ...vision import DEFAULT_MAX_PIXELS, DEFAULT_MIN_PIXELS
from .backend import TransformersBackend
from .generation import DEFAULT_MAX_NEW_TOKENS, seed_everything
from .loading import hub_hint
from .processor import ImageTextProcessor, load_processor
from .prompts import DEFAULT_SYSTEM_PROMPT, IMAGE_TOKEN, LAYOUTS, chat_messages, qwen25_prompt

__all__ = [
    "DEFAULT_MAX_NEW_TOKENS", "DEFAULT_MAX_PIXELS", "DEFAULT_MIN_PIXELS", "DEFAULT_SYSTEM_PROMPT",
    "IMAGE_TOKEN", "LAYOUTS", "ImageTextProcessor", "TransformersBackend", "chat_messages",
    "hub_hint", "load_processor", "qwen25_prompt", "seed_everything",
]  # fmt: skip
