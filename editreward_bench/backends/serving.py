"""The `vllm serve` command that serves a card's judge for the OpenAI-compatible backend."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

from ..judges.cards import JudgeCard

#: Tensor-parallel size by model size, as upstream ran them (72B on 4 GPUs).
_DEFAULT_TP = {"72b": 4, "32b": 2}
#: vLLM must be told the largest LoRA rank it will load (its default is 16).
DEFAULT_MAX_LORA_RANK = 64


def served_name(card: JudgeCard) -> str:
    """The model name requests use: the LoRA module's name, or the base model."""
    return str(card.options.get("served_model") or (card.name if card.adapter else card.model))


def _lora_rank(adapter: str) -> int | None:
    """The adapter's rank when its config is on disk (a folder or the HF cache)."""
    candidates = [Path(adapter) / "adapter_config.json"]
    try:
        from huggingface_hub import try_to_load_from_cache

        cached = try_to_load_from_cache(adapter, "adapter_config.json")
        if isinstance(cached, str):
            candidates.append(Path(cached))
    except Exception:
        pass
    for path in candidates:
        try:
            return int(json.loads(path.read_text())["r"])
        except (OSError, KeyError, ValueError, TypeError):
            continue
    return None


def vllm_serve_command(card: JudgeCard, tp: int | None = None, port: int = 8000) -> str:
    if tp is None:
        model = (card.model or "").lower()
        tp = next((n for size, n in _DEFAULT_TP.items() if size in model), 1)
    args = ["vllm", "serve", str(card.model), "--tensor-parallel-size", str(tp)]
    if card.adapter:
        rank = _lora_rank(card.adapter) or DEFAULT_MAX_LORA_RANK
        args += [
            "--enable-lora",
            "--lora-modules",
            f"{served_name(card)}={card.adapter}",
            "--max-lora-rank",
            str(rank),
        ]
    else:
        args += ["--served-model-name", served_name(card)]
    args += [
        "--limit-mm-per-prompt", json.dumps({"image": 2}, separators=(",", ":")),
        "--max-model-len", str(card.options.get("max_model_len", 4096)),
        "--enable-prefix-caching",
        "--port", str(port),
    ]  # fmt: skip
    return shlex.join(args)
