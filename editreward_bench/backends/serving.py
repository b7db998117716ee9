"""The `vllm serve` command that serves a card's judge for the OpenAI-compatible backend."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

from ..judges.options import JudgeConfig, OpenAIOptions

#: Tensor-parallel size by model size, as upstream ran them (72B on 4 GPUs).
_DEFAULT_TP = {"72b": 4, "32b": 2}
#: vLLM must be told the largest LoRA rank it will load (its default is 16).
DEFAULT_MAX_LORA_RANK = 64


def served_name(config: JudgeConfig) -> str:
    """The model name requests use: the LoRA module's name, or the base model."""
    card, options = config.card, config.backend
    served = options.served_model if isinstance(options, OpenAIOptions) else None
    return str(served or (card.name if card.adapter else card.model))


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


def vllm_serve_command(config: JudgeConfig, tp: int | None = None, port: int = 8000) -> str:
    card = config.card
    if tp is None:
        model = (card.model or "").lower()
        tp = next((n for size, n in _DEFAULT_TP.items() if size in model), 1)
    args = ["vllm", "serve", str(card.model), "--tensor-parallel-size", str(tp)]
    if card.adapter:
        rank = _lora_rank(card.adapter) or DEFAULT_MAX_LORA_RANK
        args += [
            "--enable-lora",
            "--lora-modules",
            f"{served_name(config)}={card.adapter}",
            "--max-lora-rank",
            str(rank),
        ]
    else:
        args += ["--served-model-name", served_name(config)]
    args += [
        "--limit-mm-per-prompt", json.dumps({"image": 2}, separators=(",", ":")),
        "--max-model-len", str(_max_model_len(config)),
        "--enable-prefix-caching",
        # Sampling defaults are vLLM's own, not the model's generation_config.json: a field a
        # request leaves out then never takes a value the upstream path did not use.
        "--generation-config", "vllm",
        "--port", str(port),
    ]  # fmt: skip
    return shlex.join(args)


def _max_model_len(config: JudgeConfig) -> int:
    options = config.backend
    return options.max_model_len if isinstance(options, OpenAIOptions) else 4096
