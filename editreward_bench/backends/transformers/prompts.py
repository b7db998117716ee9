"""Prompt assembly: upstream's hand-built Qwen2.5-VL string, or chat messages for a template.

No torch here: rendering a prompt needs neither the model nor the processor.
"""

from __future__ import annotations

from typing import Any

DEFAULT_SYSTEM_PROMPT = "You are a helpful assistant."
#: Layouts: upstream's hand-built Qwen2.5-VL prompt, or the chat template (images or text first).
LAYOUTS = ("qwen2.5-vl", "chat-template", "images-first", "text-first")
IMAGE_TOKEN = "<|image_pad|>"


def qwen25_prompt(text: str, n_images: int, system: str = DEFAULT_SYSTEM_PROMPT) -> str:
    """Upstream EditScore's Qwen2.5-VL prompt string (its ``apply_chat_template``)."""
    prompt = f"<|im_start|>system\n{system}<|im_end|>\n<|im_start|>user\n"
    prompt += "".join(
        f"<img{i}>: <|vision_start|>{IMAGE_TOKEN}<|vision_end|>" for i in range(1, n_images + 1)
    )
    return prompt + f"{text}<|im_end|>\n<|im_start|>assistant\n"


def chat_messages(text: str, n_images: int, text_first: bool = False) -> list[dict[str, Any]]:
    """One user message: the images and the text, in the layout's order."""
    images: list[dict[str, Any]] = [{"type": "image"} for _ in range(n_images)]
    text_part = {"type": "text", "text": text}
    content = [text_part, *images] if text_first else [*images, text_part]
    return [{"role": "user", "content": content}]


def render_prompt(layout: str, text: str, n_images: int, processor: Any) -> str:
    """The prompt string of one request in ``layout``, image placeholders unexpanded."""
    if layout == "qwen2.5-vl":
        return qwen25_prompt(text, n_images)
    messages = chat_messages(text, n_images, text_first=layout == "text-first")
    rendered = processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    return str(rendered)
