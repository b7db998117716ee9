"""The processor: ``AutoProcessor``, else an image + text processor that needs no torchvision.

PyPI's torchvision does not import beside every torch, and the Qwen processors need it
for their video processor; :class:`ImageTextProcessor` is then assembled from
``Qwen2VLImageProcessorPil`` and the tokenizer.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
import transformers

from .prompts import IMAGE_TOKEN


class ImageTextProcessor:
    """An image + text processor for Qwen-VL models that needs no torchvision.

    Does what ``Qwen2_5_VLProcessor`` does for images: each ``<|image_pad|>`` in
    the text becomes ``image_grid_thw.prod() // merge_size**2`` copies, and
    ``mm_token_type_ids`` marks them (1) apart from text (0).
    """

    def __init__(self, image_processor: Any, tokenizer: Any, chat_template: str | None = None):
        self.image_processor = image_processor
        self.tokenizer = tokenizer
        self.chat_template = chat_template or getattr(tokenizer, "chat_template", None)
        self.image_token = getattr(tokenizer, "image_token", None) or IMAGE_TOKEN
        self.image_token_id = tokenizer.convert_tokens_to_ids(self.image_token)
        if self.image_token_id is None or self.image_token_id == tokenizer.unk_token_id:
            raise ValueError(f"the tokenizer has no {self.image_token} token")
        self.merge_size = int(getattr(image_processor, "merge_size", 2))

    @classmethod
    def from_pretrained(cls, source: str, **kwargs: Any) -> ImageTextProcessor:
        # transformers 5 names the torchvision-free one ...Pil; in 4.x the slow one is PIL based.
        image_processor_cls: Any = getattr(
            transformers, "Qwen2VLImageProcessorPil", None
        ) or getattr(transformers, "Qwen2VLImageProcessor", None)
        image_processor = image_processor_cls.from_pretrained(source, **kwargs)
        tokenizer = transformers.AutoTokenizer.from_pretrained(source, **kwargs)
        return cls(image_processor, tokenizer, read_chat_template(source, **kwargs))

    def apply_chat_template(
        self,
        conversation: list[dict[str, Any]],
        *,
        tokenize: bool = False,
        add_generation_prompt: bool = True,
        **kwargs: Any,
    ) -> Any:
        if not self.chat_template:
            raise ValueError("the tokenizer has no chat template")
        return self.tokenizer.apply_chat_template(
            conversation,
            chat_template=self.chat_template,
            tokenize=tokenize,
            add_generation_prompt=add_generation_prompt,
            **kwargs,
        )

    def __call__(
        self,
        *,
        text: list[str],
        images: list[Any] | None = None,
        padding: bool = True,
        padding_side: str | None = None,
        return_tensors: str = "pt",
        images_kwargs: Mapping[str, Any] | None = None,
        **_: Any,
    ) -> dict[str, Any]:
        image_inputs: dict[str, Any] = {}
        grids: list[int] = []
        if images:
            image_inputs = dict(
                self.image_processor(
                    images=images, return_tensors=return_tensors, **(images_kwargs or {})
                )
            )
            merge = self.merge_size**2
            grids = [
                int(torch.as_tensor(g).prod()) // merge for g in image_inputs["image_grid_thw"]
            ]
        expanded, used = [], 0
        for sample in text:
            pieces = sample.split(self.image_token)
            out = pieces[0]
            for piece in pieces[1:]:
                if used >= len(grids):
                    raise ValueError(
                        f"the text has more {self.image_token} placeholders than the {len(grids)} image(s) given"
                    )
                out += self.image_token * grids[used] + piece
                used += 1
            expanded.append(out)
        if used != len(grids):
            raise ValueError(
                f"{len(grids)} image(s) given for {used} {self.image_token} placeholder(s)"
            )
        side = {"padding_side": padding_side} if padding_side else {}
        encoded = dict(
            self.tokenizer(expanded, padding=padding, return_tensors=return_tensors, **side)
        )
        encoded["mm_token_type_ids"] = (encoded["input_ids"] == self.image_token_id).to(torch.int64)
        return {**encoded, **image_inputs}

    def batch_decode(self, sequences: Any, **kwargs: Any) -> list[str]:
        return list(self.tokenizer.batch_decode(sequences, **kwargs))


def read_chat_template(source: str, **kwargs: Any) -> str | None:
    """The processor's chat template (chat_template.jinja / .json), if the repo has one."""
    from transformers.utils import cached_file

    for name in ("chat_template.jinja", "chat_template.json"):
        try:
            path = cached_file(
                source,
                name,
                _raise_exceptions_for_missing_entries=False,
                _raise_exceptions_for_connection_errors=False,
                **kwargs,
            )
        except Exception:
            path = None
        if not path:
            continue
        text = Path(path).read_text(encoding="utf-8")
        if name.endswith(".json"):
            template = json.loads(text).get("chat_template")
            return template if isinstance(template, str) else None
        return text
    return None


def load_processor(source: str, **kwargs: Any) -> tuple[Any, str]:
    """``AutoProcessor``, else the image-only fallback; with the name of what was built."""
    try:
        return transformers.AutoProcessor.from_pretrained(source, **kwargs), "auto"
    except Exception as auto_error:
        try:
            return ImageTextProcessor.from_pretrained(source, **kwargs), "image-only"
        except Exception as exc:
            raise exc from auto_error
