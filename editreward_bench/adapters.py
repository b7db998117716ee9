"""What a LoRA adapter touches, read from its files without loading a model.

A server that applies LoRA at run time may apply it to part of the model only: vLLM
applies it to the language model and drops vision-tower (``visual.*``) weights with a
warning unless started with ``--enable-tower-connector-lora``. Whether an adapter
touches the vision tower shows in two places, both read here without torch:

- its saved weights (the keys of ``adapter_model.safetensors``), which are exact;
- its ``target_modules`` (a list of module-name suffixes, a regular expression, or
  ``all-linear``), matched the way peft matches them against the module names of the
  vision towers of the Qwen-VL families (or of the base model's own weights, when its
  files are on disk), minus ``exclude_modules``.

Files are found in a local folder or in the Hugging Face cache; nothing is downloaded.
"""

from __future__ import annotations

import json
import re
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = ("adapter_model.safetensors", "adapter_model.bin")
#: A module name inside a vision tower (Qwen-VL: ``visual``; others: ``vision_tower``...).
VISION = re.compile(r"(^|\.)(visual|vision_tower|vision_model)(\.|$)")
#: Vision-tower modules of the Qwen2-VL, Qwen2.5-VL and Qwen3-VL families (block 0 stands
#: for every block), as transformers names them before and after its 4.52 renaming.
_TOWER_MODULES = (
    "visual.patch_embed.proj",
    "visual.blocks.0.attn.qkv",
    "visual.blocks.0.attn.proj",
    "visual.blocks.0.mlp.fc1",  # Qwen2-VL
    "visual.blocks.0.mlp.fc2",
    "visual.blocks.0.mlp.gate_proj",  # Qwen2.5-VL
    "visual.blocks.0.mlp.up_proj",
    "visual.blocks.0.mlp.down_proj",
    "visual.blocks.0.mlp.linear_fc1",  # Qwen3-VL
    "visual.blocks.0.mlp.linear_fc2",
    "visual.merger.mlp.0",
    "visual.merger.mlp.2",
    "visual.merger.linear_fc1",
    "visual.merger.linear_fc2",
    "visual.deepstack_merger_list.0.linear_fc1",
    "visual.deepstack_merger_list.0.linear_fc2",
)
#: vLLM accepts these values of --max-lora-rank only.
VLLM_LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)


def find_file(source: str, name: str) -> Path | None:
    """``name`` of the adapter or model ``source``: in the folder, else in the HF cache."""
    folder = Path(source).expanduser()
    if folder.is_dir():
        path = folder / name
        return path if path.is_file() else None
    try:
        from huggingface_hub import try_to_load_from_cache

        cached = try_to_load_from_cache(source, name)
    except Exception:  # not a valid hub id, no cache: nothing on disk
        return None
    return Path(cached) if isinstance(cached, str) else None


def safetensors_header(path: Path) -> dict[str, Any]:
    """The JSON header of a safetensors file: tensor names, dtypes, shapes, offsets."""
    with open(path, "rb") as fh:
        (length,) = struct.unpack("<Q", fh.read(8))
        if length > 100_000_000:
            raise ValueError(f"{path} is not a safetensors file (header of {length} bytes)")
        header = json.loads(fh.read(length))
    if not isinstance(header, dict):
        raise ValueError(f"{path} is not a safetensors file")
    return header


def tensor_names(path: Path) -> list[str]:
    return [k for k in safetensors_header(path) if k != "__metadata__"]


def module_of(key: str) -> str:
    """The module a saved LoRA tensor belongs to: ``visual.blocks.0.attn.qkv`` from
    ``base_model.model.visual.blocks.0.attn.qkv.lora_A.weight``."""
    name = key.removeprefix("base_model.model.")
    name = re.sub(
        r"\.lora_(A|B|embedding_A|embedding_B|magnitude_vector)(\.[^.]+)?\.weight$", "", name
    )
    return re.sub(r"\.(weight|bias)$", "", name)


def collapse(names: list[str], limit: int = 6) -> str:
    """Module names with block numbers folded (``visual.blocks.*.attn.qkv``), a few shown."""
    # One naming (transformers >= 4.52 prefixes the tower with "model."), block numbers folded.
    plain = (re.sub(r"^model\.(?=visual\.|vision_)", "", n) for n in names)
    folded = sorted({re.sub(r"\.\d+(?=\.|$)", ".*", n) for n in plain})
    shown = ", ".join(folded[:limit])
    return shown + (f" and {len(folded) - limit} more" if len(folded) > limit else "")


@dataclass(frozen=True)
class AdapterInfo:
    """An adapter's config, and its saved tensor names when its weights are on disk."""

    source: str
    config: dict[str, Any]
    config_path: Path
    weight_keys: tuple[str, ...] | None

    @property
    def rank(self) -> int:
        ranks = [int(self.config.get("r") or 0)]
        pattern = self.config.get("rank_pattern") or {}
        if isinstance(pattern, dict):
            ranks += [int(v) for v in pattern.values() if isinstance(v, (int, float))]
        return max(ranks)

    @property
    def base_model(self) -> str | None:
        value = self.config.get("base_model_name_or_path")
        return value if isinstance(value, str) and value else None

    def tower_weights(self) -> list[str]:
        """Vision-tower modules the saved weights carry (exact)."""
        keys = self.weight_keys or ()
        return sorted({module_of(k) for k in keys if VISION.search(module_of(k))})

    def tower_targets(self, module_names: list[str] | None = None) -> list[str]:
        """Vision-tower modules ``target_modules`` selects, as peft would select them among
        ``module_names`` (default: the Qwen-VL towers' modules, in both namings)."""
        names = module_names or [*_TOWER_MODULES, *("model." + n for n in _TOWER_MODULES)]
        tower = [n for n in names if VISION.search(n)]
        targets = self.config.get("target_modules")
        excluded = self.config.get("exclude_modules")
        return sorted(
            n for n in tower if _selects(targets, n) and not (excluded and _selects(excluded, n))
        )

    def tower_modules(self, module_names: list[str] | None = None) -> list[str]:
        """Every vision-tower module the adapter touches, by its weights or its targets."""
        return sorted({*self.tower_weights(), *self.tower_targets(module_names)})


def _selects(targets: Any, name: str) -> bool:
    """Whether peft's ``target_modules`` (or ``exclude_modules``) value selects module ``name``."""
    if isinstance(targets, str):
        if targets == "all-linear":
            return True
        return re.fullmatch(targets, name) is not None
    if isinstance(targets, (list, tuple, set)):
        return any(name == t or name.endswith("." + str(t)) for t in targets)
    return False


def read_adapter(source: str) -> AdapterInfo | None:
    """The adapter's config and weight names from a folder or the HF cache; None when its
    ``adapter_config.json`` is not on disk. A malformed file raises ValueError."""
    path = find_file(source, ADAPTER_CONFIG)
    if path is None:
        return None
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValueError(f"cannot read {path}: {exc}") from None
    if not isinstance(config, dict):
        raise ValueError(f"{path} is not an adapter config (a JSON object)")
    keys: tuple[str, ...] | None = None
    weights = find_file(source, ADAPTER_WEIGHTS[0])
    if weights is not None:
        try:
            keys = tuple(tensor_names(weights))
        except (OSError, ValueError, struct.error) as exc:
            raise ValueError(f"cannot read {weights}: {exc}") from None
    return AdapterInfo(source, config, path, keys)


def base_module_names(model: str) -> list[str] | None:
    """The base model's module names from its weight files' names, when they are on disk
    (a local folder or the HF cache), in both of transformers' namings; else None."""
    index = find_file(model, "model.safetensors.index.json")
    names: list[str] = []
    try:
        if index is not None:
            names = list(json.loads(index.read_text(encoding="utf-8")).get("weight_map", {}))
        else:
            single = find_file(model, "model.safetensors")
            if single is None:
                return None
            names = tensor_names(single)
    except (OSError, ValueError, struct.error, AttributeError):
        return None
    modules = {re.sub(r"\.(weight|bias)$", "", n) for n in names}
    return sorted(modules | {"model." + m for m in modules if not m.startswith("model.")})


def vllm_max_lora_rank(rank: int) -> int:
    """The smallest --max-lora-rank vLLM accepts that holds ``rank``."""
    return next((r for r in VLLM_LORA_RANKS if r >= rank), rank)
