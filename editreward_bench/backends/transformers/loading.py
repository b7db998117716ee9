"""Loading: the model class for a config, dtype and device resolution, the LoRA adapter, and
what to do when a model or adapter cannot be found.

As upstream: ``from_pretrained`` (bf16, ``device_map="auto"`` on a GPU; float32 on the
CPU here), then the adapter applied with peft and merged.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import transformers

from ...judges import JudgeLoadError
from .processor import load_processor

#: Model classes by config ``model_type``; the first one transformers has is used.
MODEL_CLASSES: dict[str, tuple[str, ...]] = {
    "qwen2_5_vl": ("Qwen2_5_VLForConditionalGeneration",),
    "qwen2_vl": ("Qwen2VLForConditionalGeneration",),
    "qwen3_vl": ("Qwen3VLForConditionalGeneration",),
    "qwen3_vl_moe": ("Qwen3VLMoeForConditionalGeneration",),
}
TORCH_DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}


@dataclass
class Loaded:
    """A loaded model and what generation needs to know about it."""

    model: Any
    processor: Any
    processor_kind: str
    device: Any
    accepts_mm_token_type_ids: bool
    eos_ids: frozenset[int]
    pad_id: int | None


def cuda_available() -> bool:
    return bool(torch.cuda.is_available())


def wants_cuda(device_map: Any) -> bool:
    if device_map is None or device_map == "cpu":
        return False
    if isinstance(device_map, Mapping):
        return any(wants_cuda(v) for v in device_map.values())
    if isinstance(device_map, int) and not isinstance(device_map, bool):
        return True
    text = str(device_map).lower()
    return text.startswith("cuda") or text.isdigit()


def resolve_device_map(requested: str | None, cuda: bool) -> Any:
    """``auto`` on a GPU when none is given; None (plain loading) on the CPU."""
    if requested is None:
        return "auto" if cuda else None
    if requested == "auto" and not cuda:
        return None  # "auto" without a GPU would only place everything on the CPU
    return requested


def resolve_dtype(requested: str, on_cuda: bool) -> str:
    """``auto``: bf16 on a GPU that has it (else fp16), float32 on the CPU."""
    if requested != "auto":
        return requested
    if not on_cuda:
        return "float32"
    return "bfloat16" if torch.cuda.is_bf16_supported() else "float16"


def hub_hint(kind: str, name: str, exc: BaseException, flag: str) -> str:
    """What to do when a model or adapter cannot be loaded."""
    from ...benchmark import looks_like_path

    path = Path(name).expanduser()
    if path.exists():
        return (
            f"cannot load the {kind} from {name!r}: {exc}. Pass {flag} with a folder that holds a "
            f"Hugging Face {kind} (config and weights)."
        )
    if looks_like_path(name):
        return (
            f"the {kind} folder {name!r} does not exist ({path.resolve()}); pass {flag} with a "
            f"folder that holds a Hugging Face {kind}, or a hub id."
        )
    offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in {"1", "true", "yes", "on"}
    where = (
        "offline mode is on (HF_HUB_OFFLINE) and it is not in the Hugging Face cache"
        if offline
        else str(exc)
    )
    return (
        f"cannot load the {kind} {name!r}: {where}. Download it first with "
        f"`hf download {name}`, or pass {flag} with a local folder."
    )


def check_device(judge: str, device_map: Any, dtype: str) -> None:
    """Refuse, with what to do instead, settings that need a GPU where torch sees none."""
    if cuda_available():
        return
    if wants_cuda(device_map):
        raise JudgeLoadError(
            f"judge {judge!r}: device_map={device_map!r} needs a CUDA GPU, and torch "
            f"sees none (torch {torch.__version__}); leave device_map unset to run on the CPU"
        )
    if dtype == "float16":
        raise JudgeLoadError(
            f"judge {judge!r}: dtype float16 needs a CUDA GPU, and torch sees none "
            f"(torch {torch.__version__}); use dtype 'auto' or 'float32' on the CPU"
        )


def read_config(judge: str, model_id: str) -> Any:
    try:
        return transformers.AutoConfig.from_pretrained(model_id)
    except (OSError, ValueError) as exc:
        raise JudgeLoadError(
            f"judge {judge!r}: " + hub_hint("model", model_id, exc, "--model")
        ) from exc


def vision_factor(config: Any) -> int:
    """Pixels per side of one vision token: patch size x spatial merge size."""
    vision = getattr(config, "vision_config", None)
    return int(getattr(vision, "patch_size", 14)) * int(getattr(vision, "spatial_merge_size", 2))


def model_class(config: Any) -> Any:
    model_type = getattr(config, "model_type", None)
    for class_name in MODEL_CLASSES.get(str(model_type), ()):
        cls = getattr(transformers, class_name, None)
        if cls is not None:
            return cls
    if model_type in MODEL_CLASSES:
        raise JudgeLoadError(
            f"this transformers ({transformers.__version__}) cannot load {model_type!r} models; "
            "upgrade it: pip install -U transformers"
        )
    return getattr(transformers, "AutoModelForImageTextToText", None) or getattr(
        transformers, "AutoModelForVision2Seq", None
    )


def apply_adapter(judge: str, model: Any, adapter: str, merge: bool) -> Any:
    """The LoRA adapter applied with peft, merged into the weights (as upstream) or not."""
    try:
        from peft import PeftModel
    except ImportError as exc:
        raise JudgeLoadError(
            f"judge {judge!r} has a LoRA adapter, which needs peft: pip install 'erb[local]'"
        ) from exc
    try:
        model = PeftModel.from_pretrained(model, adapter)
    except (OSError, ValueError) as exc:
        raise JudgeLoadError(
            f"judge {judge!r}: " + hub_hint("adapter", adapter, exc, "--adapter")
        ) from exc
    return model.merge_and_unload() if merge else model


def load_model(
    judge: str,
    model_id: str,
    adapter: str | None,
    *,
    config: Any,
    dtype: str,
    device_map: Any,
    cuda: bool,
    merge_adapter: bool,
) -> Loaded:
    """The model (adapter applied), its processor, and the tokens generation stops on."""
    kwargs: dict[str, Any] = {"dtype": TORCH_DTYPES[dtype]}
    placed = device_map is not None and device_map != "cpu"
    if placed:  # accelerate places the weights; on the CPU plain loading does
        kwargs["device_map"] = device_map
    try:
        model = model_class(config).from_pretrained(model_id, **kwargs)
    except OSError as exc:
        raise JudgeLoadError(
            f"judge {judge!r}: " + hub_hint("model", model_id, exc, "--model")
        ) from exc
    if adapter:
        model = apply_adapter(judge, model, adapter, merge_adapter)
    if not placed:
        model = model.to("cuda" if cuda else "cpu")
    model.eval()
    try:
        processor, kind = load_processor(model_id)
    except Exception as exc:
        raise JudgeLoadError(
            f"judge {judge!r}: cannot build a processor for {model_id!r}: {exc}"
        ) from exc
    tokenizer = processor.tokenizer
    tokenizer.padding_side = "left"
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    accepts = "mm_token_type_ids" in inspect.signature(base.forward).parameters
    eos = model.generation_config.eos_token_id
    eos_ids = {eos} if isinstance(eos, int) else set(eos or [])
    if tokenizer.eos_token_id is not None:
        eos_ids.add(int(tokenizer.eos_token_id))
    device = next(iter(base.parameters())).device
    return Loaded(
        model, processor, kind, device, accepts, frozenset(eos_ids), tokenizer.pad_token_id
    )
