"""What a vLLM or SGLang server renders from erb's request is upstream's prompt, byte for byte.

Upstream's 32B/72B path hands vLLM a raw ChatML string built by its own
``apply_chat_template`` (``editscore/mllm_tools/qwen25vl_vllm.py``); erb sends chat
messages that the server renders with the model's chat template. Rendering erb's request
through Qwen2.5-VL-Instruct's real chat template (with the tiny test tokenizer) must give
upstream's string. The server must render the content parts as a list (vLLM's
``--chat-template-content-format openai``), which ``erb serve-command`` pins.
"""

from __future__ import annotations

import ast
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest

from editreward_bench.judges import GenRequest, load_judge
from editreward_bench.judges.editscore import load_prompts

#: Qwen2.5-VL-*-Instruct's chat_template.json (the same as Qwen2-VL's), verbatim.
QWEN25_VL_CHAT_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}"
    "{% for message in messages %}{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n{% if message['content'] is string %}"
    "{{ message['content'] }}<|im_end|>\n{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "{% set image_count.value = image_count.value + 1 %}{% if add_vision_id %}Picture "
    "{{ image_count.value }}: {% endif %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'video' or 'video' in content %}"
    "{% set video_count.value = video_count.value + 1 %}{% if add_vision_id %}Video "
    "{{ video_count.value }}: {% endif %}<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n"
    "{% endif %}{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def upstream_apply_chat_template() -> Any:
    """Upstream's own function, from the installed editscore 0.2 wheel (its module imports
    vLLM, which has no CPU build here, so the function's code is taken out and run alone)."""
    assert metadata.version("editscore") == "0.2"
    files = metadata.files("editscore") or []
    path = next(Path(str(f.locate())) for f in files if str(f).endswith("qwen25vl_vllm.py"))
    tree = ast.parse(path.read_text(encoding="utf-8"))
    node = next(
        n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "apply_chat_template"
    )
    namespace: dict[str, Any] = {}
    exec(compile(ast.Module([node], []), str(path), "exec"), namespace)
    return namespace["apply_chat_template"]


@pytest.mark.parametrize("judge", ["editscore-72b", "editscore-32b", "qwen2.5-vl-72b"])
def test_served_requests_render_to_upstreams_prompt(judge: str) -> None:
    from tiny_qwen import build_tokenizer

    tokenizer = build_tokenizer()
    upstream = upstream_apply_chat_template()
    backend = load_judge(judge).backend  # type: ignore[attr-defined]
    prompts = load_prompts()
    images = ("data:image/png;base64,AAAA", "data:image/png;base64,BBBB")
    for text, shown in (
        (prompts.sc('Turn the "red" car blue.'), images),
        (prompts.pq(), images[1:]),
    ):
        body = backend._body(GenRequest(shown, text, 1, 42), 1, 42)
        rendered = tokenizer.apply_chat_template(
            body["messages"], chat_template=QWEN25_VL_CHAT_TEMPLATE, tokenize=False,
            add_generation_prompt=True,
        )  # fmt: skip
        assert rendered == upstream(text, num_images=len(shown))
