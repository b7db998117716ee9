"""A tiny, randomly initialised Qwen2.5-VL (about 190k parameters) for offline tests.

- :func:`build_tiny_qwen` writes a model folder: config, weights, a byte-level
  ``Qwen2Tokenizer`` with Qwen's special tokens and a chat template, and an image
  processor config (the full processor too where torchvision imports);
- :func:`build_tiny_lora` writes a random peft LoRA adapter on the language
  model's projections (the vision tower's MLP has the same names, so the targets
  are a regex);
- :func:`train_fixed_answer` teaches a copy of the model to answer a fixed text
  (by default an EditScore JSON) to the prompts it is shown, in a few seconds.

No downloads: everything is built from code.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

SPECIAL_TOKENS = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|image_pad|>",
    "<|video_pad|>",
)
#: Room in the embedding table for the 256 bytes and the special tokens.
VOCAB_SIZE = 272
FIXED_ANSWER = '{"reasoning": "ok", "score": [20, 15]}'
#: The language model's projections; the vision tower has gate/up/down_proj too.
LORA_TARGETS = r".*language_model.*\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)"

# Qwen2-VL's chat template, trimmed to text and images.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
    "{% endif %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content %}"
    "<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'text' %}{{ content['text'] }}{% endif %}"
    "{% endfor %}{% endif %}<|im_end|>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte -> printable character map."""
    bs = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, (chr(c) for c in cs), strict=True))


def build_tokenizer() -> Any:
    from transformers import Qwen2Tokenizer

    vocab = {symbol: i for i, symbol in enumerate(bytes_to_unicode().values())}
    for token in SPECIAL_TOKENS:
        vocab[token] = len(vocab)
    tokenizer = Qwen2Tokenizer(
        vocab=vocab,
        merges=[],
        unk_token="<|endoftext|>",
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        additional_special_tokens=list(SPECIAL_TOKENS[1:]),
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def token_ids(tokenizer: Any) -> dict[str, int]:
    return {t: int(tokenizer.convert_tokens_to_ids(t)) for t in SPECIAL_TOKENS}


def build_config(ids: dict[str, int]) -> Any:
    from transformers import Qwen2_5_VLConfig

    text = {
        "vocab_size": VOCAB_SIZE,
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "max_position_embeddings": 4096,
        "rope_parameters": {
            "rope_type": "default",
            "rope_theta": 10000.0,
            "mrope_section": [2, 3, 3],
        },
        "bos_token_id": ids["<|endoftext|>"],
        "eos_token_id": ids["<|im_end|>"],
        "pad_token_id": ids["<|endoftext|>"],
    }
    vision = {
        "depth": 2,
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_heads": 2,
        "out_hidden_size": 64,
        "patch_size": 14,
        "spatial_merge_size": 2,
        "temporal_patch_size": 2,
        "window_size": 112,
        "fullatt_block_indexes": [1],
    }
    return Qwen2_5_VLConfig(
        text_config=text,
        vision_config=vision,
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
    )


def save_processor_files(folder: Path, tokenizer: Any) -> None:
    """Tokenizer and image processor config; the full processor where torchvision works."""
    from transformers import Qwen2VLImageProcessorPil

    image_processor = Qwen2VLImageProcessorPil(
        min_pixels=4 * 28 * 28, max_pixels=16384 * 28 * 28, patch_size=14, merge_size=2
    )
    tokenizer.save_pretrained(folder)
    image_processor.save_pretrained(folder)
    try:  # needs torchvision (the video processor); without it AutoProcessor fails anyway
        from transformers import Qwen2_5_VLProcessor, Qwen2VLVideoProcessor

        processor = Qwen2_5_VLProcessor(
            image_processor=image_processor,
            tokenizer=tokenizer,
            video_processor=Qwen2VLVideoProcessor(),
            chat_template=CHAT_TEMPLATE,
        )
        processor.save_pretrained(folder)
    except Exception:
        pass


def build_tiny_qwen(folder: str | Path, seed: int = 0) -> Path:
    """A random tiny Qwen2.5-VL, saved to ``folder`` (from_pretrained-ready)."""
    import torch
    from transformers import GenerationConfig, Qwen2_5_VLForConditionalGeneration

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tokenizer()
    ids = token_ids(tokenizer)
    torch.manual_seed(seed)
    model = Qwen2_5_VLForConditionalGeneration(build_config(ids))
    model.generation_config = GenerationConfig(
        eos_token_id=[ids["<|im_end|>"], ids["<|endoftext|>"]],
        pad_token_id=ids["<|endoftext|>"],
        bos_token_id=ids["<|endoftext|>"],
    )
    model.save_pretrained(folder)
    save_processor_files(folder, tokenizer)
    return folder


def build_tiny_lora(
    model_dir: str | Path, folder: str | Path, seed: int = 1, rank: int = 4
) -> Path:
    """A random LoRA adapter (non-zero B, so merging changes the weights) on the LM projections."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import Qwen2_5_VLForConditionalGeneration

    folder = Path(folder)
    base = Qwen2_5_VLForConditionalGeneration.from_pretrained(str(model_dir), dtype=torch.float32)
    torch.manual_seed(seed)
    config = LoraConfig(
        r=rank, lora_alpha=2 * rank, target_modules=LORA_TARGETS, init_lora_weights=False
    )
    peft_model = get_peft_model(base, config)
    peft_model.save_pretrained(str(folder))
    return folder


def _copy_processor_files(source: Path, target: Path) -> None:
    for path in source.iterdir():
        if (
            path.is_file()
            and not path.name.endswith(".safetensors")
            and path.name
            not in {
                "config.json",
                "generation_config.json",
            }
        ):
            shutil.copy2(path, target / path.name)


def train_fixed_answer(
    model_dir: str | Path,
    folder: str | Path,
    prompts: Sequence[tuple[Sequence[Any], str]],
    answer: str = FIXED_ANSWER,
    *,
    layout: str = "qwen2.5-vl",
    steps: int = 120,
    lr: float = 3e-3,
    seed: int = 0,
) -> Path:
    """Teach a copy of the model to answer ``answer`` to each (images, text) prompt.

    Prompts are encoded exactly as :class:`TransformersBackend` encodes them (same
    layout, same image resizing), so the trained model answers them through the
    backend. The copy is written to ``folder``.
    """
    import torch

    from editreward_bench.backends.transformers_local import TransformersBackend
    from editreward_bench.judges.base import GenRequest

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    backend = TransformersBackend(str(model_dir), layout=layout, dtype="float32", device_map="cpu")
    backend.preflight()
    loaded = backend._load()
    model, tokenizer = loaded.model, loaded.processor.tokenizer
    end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    answer_ids = [*tokenizer(answer, add_special_tokens=False)["input_ids"], end]
    examples = []
    for images, text in prompts:
        request = GenRequest(backend.prepare_images(list(images)), text, 1, 0)
        inputs = backend.encode([request])
        extra = torch.tensor([answer_ids], dtype=inputs["input_ids"].dtype)
        prompt_len = inputs["input_ids"].shape[1]
        inputs["input_ids"] = torch.cat([inputs["input_ids"], extra], dim=1)
        inputs["attention_mask"] = torch.cat(
            [inputs["attention_mask"], torch.ones_like(extra)], dim=1
        )
        if "mm_token_type_ids" in inputs:
            mm = inputs["mm_token_type_ids"]
            inputs["mm_token_type_ids"] = torch.cat(
                [mm, torch.zeros_like(extra, dtype=mm.dtype)], dim=1
            )
        labels = inputs["input_ids"].clone()
        labels[:, :prompt_len] = -100
        inputs["labels"] = labels
        examples.append(inputs)
    torch.manual_seed(seed)
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    losses: list[float] = []
    for step in range(steps):
        inputs = examples[step % len(examples)]
        model.rope_deltas = None
        if hasattr(model, "model"):
            model.model.rope_deltas = None
        loss = model(**inputs).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(round(float(loss.detach()), 4))
    model.eval()
    model.save_pretrained(folder)
    _copy_processor_files(Path(model_dir), folder)
    (folder / "trained.json").write_text(
        json.dumps({"answer": answer, "steps": steps, "losses": losses}), encoding="utf-8"
    )
    backend.close()
    return folder
