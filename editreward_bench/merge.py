"""Merging a LoRA adapter into its base model's weights, once, as upstream serves EditScore.

Upstream (``editscore/mllm_tools/qwen25vl_vllm.py``) loads the base model in bf16 on
the CPU, applies the adapter with peft, ``merge_and_unload()``\\ s it, saves the merged
model with the base model's processor beside it, and serves that folder. It caches the
result by the adapter's *path string*, so a changed adapter at the same path silently
serves the old merge. Here:

- the cache key is a hash of the adapter's content (its files' bytes, or its hub
  revision), the base model's (its files' bytes, or its hub revision) and the dtype,
  so any change gives a new entry and nothing else does;
- the base model's processor files (tokenizer, image processor, chat template) are
  copied beside the merged weights byte for byte;
- free disk space is checked first, against the merged size estimated from the base
  model's safetensors headers (parameters x the dtype's size; a 72B is about 145 GB);
- the merge is written to a temporary folder and renamed into place, so an interrupted
  merge never leaves a folder that looks complete;
- a base model that is missing, or that the adapter does not fit (shapes, module
  names, adapter weights that find no module), is a one-line :class:`MergeError`.

torch, transformers and peft are imported only when a merge runs.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import struct
import time
import warnings
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .adapters import ADAPTER_CONFIG, ADAPTER_WEIGHTS, safetensors_header

DTYPES = ("bfloat16", "float16", "float32")
DTYPE_BYTES = {"bfloat16": 2, "float16": 2, "float32": 4}
_SAFETENSORS_BYTES = {"BF16": 2, "F16": 2, "F32": 4, "F64": 8, "I64": 8, "I32": 4, "I16": 2,
                      "I8": 1, "U8": 1, "BOOL": 1, "F8_E4M3": 1, "F8_E5M2": 1}  # fmt: skip
#: The marker a finished merge carries (also what a cache hit is checked against).
MARKER = "erb-merge.json"
#: Bump when the merged folder's layout changes: old entries are then not reused.
MERGE_FORMAT = 1
TEMP_PREFIX = ".erb-tmp-merge-"
#: Weight files are not copied from the base folder (the merged model writes its own).
_WEIGHTS = re.compile(
    r".*\.(safetensors|bin|pt|pth|gguf|msgpack|h5)$|.*\.safetensors\.index\.json$"
)
#: Files the merged model's save_pretrained writes itself.
_WRITTEN = {"config.json", "generation_config.json"}
#: Non-weight files fetched from the hub for a base model (config, processor, licence).
_BASE_FILES = ["*.json", "*.jinja", "*.txt", "*.model", "*.tiktoken", "LICENSE*", "*.md"]
#: Free space kept on top of the estimate (metadata, a shard being written).
_MARGIN = 0.05

Progress = Callable[[str], None]


class MergeError(RuntimeError):
    """A merge cannot run or failed; the one-line message says why and what to do."""


def default_cache_dir() -> Path:
    """``$ERB_MERGE_CACHE``, else ``$XDG_CACHE_HOME/erb/merged`` (``~/.cache/erb/merged``)."""
    env = os.environ.get("ERB_MERGE_CACHE")
    if env:
        return Path(env).expanduser()
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "erb" / "merged"


@dataclass(frozen=True)
class Source:
    """A model or adapter as found: the folder holding its (non-weight) files, and what
    identifies its content (``sha256:...`` of its files, or ``hub:repo@commit``)."""

    given: str
    folder: Path
    identity: str
    repo: str | None = None
    revision: str | None = None

    @property
    def load_ref(self) -> str:
        """What ``from_pretrained`` is given."""
        return self.repo if self.repo is not None else str(self.folder)

    @property
    def short(self) -> str:
        name = (self.repo or str(self.folder)).rstrip("/").split("/")[-1]
        return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.") or "model"


@dataclass(frozen=True)
class MergeResult:
    path: Path
    reused: bool
    key: str


# --------------------------------------------------------------------------- identities


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(8 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class _Digests:
    """Content hashes of files, remembered by (path, size, mtime, inode) so that a large base
    model is read once, not on every call. A file in the HF cache's blob store is named by
    its SHA-256 already."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            self.memo: dict[str, str] = data if isinstance(data, dict) else {}
        except (OSError, ValueError):
            self.memo = {}
        self.changed = False

    def of(self, file: Path, progress: Progress | None = None) -> str:
        real = file.resolve()
        if real.parent.name == "blobs" and re.fullmatch(r"[0-9a-f]{64}", real.name):
            return real.name
        st = real.stat()
        key = f"{real}|{st.st_size}|{st.st_mtime_ns}|{st.st_ino}"
        if key not in self.memo:
            if progress is not None and st.st_size > 1 << 30:
                progress(f"hashing {file.name} ({st.st_size / 1e9:.1f} GB), once")
            self.memo[key] = _sha256_file(real)
            self.changed = True
        return self.memo[key]

    def save(self) -> None:
        if not self.changed:
            return
        with suppress(OSError):
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}")
            tmp.write_text(json.dumps(self.memo, indent=0, sort_keys=True), encoding="utf-8")
            os.replace(tmp, self.path)


def _folder_identity(files: list[Path], digests: _Digests, progress: Progress | None) -> str:
    h = hashlib.sha256()
    for file in sorted(files, key=lambda p: p.name):
        h.update(f"{file.name}\0{digests.of(file, progress)}\n".encode())
    return "sha256:" + h.hexdigest()


def _looks_like_path(name: str) -> bool:
    from .benchmark import looks_like_path

    return looks_like_path(name)


def _hub_snapshot(repo: str, patterns: list[str], what: str, flag: str) -> tuple[Path, str]:
    """A hub repo's snapshot folder (the files matching ``patterns``) and its commit."""
    try:
        from huggingface_hub import snapshot_download

        folder = Path(snapshot_download(repo, allow_patterns=patterns))
    except Exception as exc:
        offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in {"1", "true", "yes", "on"}
        why = (
            "offline mode is on (HF_HUB_OFFLINE) and it is not in the Hugging Face cache"
            if offline
            else f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        )
        raise MergeError(
            f"cannot find the {what} {repo!r}: {why}. Download it first (`hf download {repo}`) "
            f"or give {flag}"
        ) from None
    return folder, folder.name


def resolve_adapter(adapter: str, digests: _Digests) -> Source:
    """The adapter's folder and identity: its files' bytes (a folder) or its hub revision."""
    folder = Path(adapter).expanduser()
    if folder.is_dir():
        if not (folder / ADAPTER_CONFIG).is_file():
            raise MergeError(f"{folder} is not a LoRA adapter folder: it has no {ADAPTER_CONFIG}")
        files = [folder / n for n in (ADAPTER_CONFIG, *ADAPTER_WEIGHTS) if (folder / n).is_file()]
        if len(files) < 2:
            raise MergeError(f"the adapter folder {folder} has no adapter_model.safetensors")
        return Source(adapter, folder, _folder_identity(files, digests, None))
    if _looks_like_path(adapter):
        raise MergeError(f"the adapter folder {adapter!r} does not exist ({folder.resolve()})")
    snapshot, commit = _hub_snapshot(
        adapter,
        [ADAPTER_CONFIG, *ADAPTER_WEIGHTS],
        "adapter",
        "its local folder instead (erb merge-adapter FOLDER, or --adapter FOLDER)",
    )
    if not (snapshot / ADAPTER_CONFIG).is_file():
        raise MergeError(f"the hub repo {adapter!r} holds no {ADAPTER_CONFIG}: not a LoRA adapter")
    return Source(adapter, snapshot, f"hub:{adapter}@{commit}", repo=adapter, revision=commit)


def resolve_base(model: str, digests: _Digests, progress: Progress | None = None) -> Source:
    """The base model's folder and identity: its files' bytes (a folder) or its hub revision."""
    folder = Path(model).expanduser()
    if folder.is_dir():
        if not (folder / "config.json").is_file():
            raise MergeError(
                f"the base model folder {folder} holds no config.json: not a Hugging Face model; "
                "pass --base with the model the adapter was trained on"
            )
        files = [p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")]
        return Source(model, folder, _folder_identity(files, digests, progress))
    if _looks_like_path(model):
        raise MergeError(
            f"the base model folder {model!r} does not exist ({folder.resolve()}); pass --base "
            "with the model the adapter was trained on"
        )
    snapshot, commit = _hub_snapshot(model, _BASE_FILES, "base model", "--base with a local folder")
    if not (snapshot / "config.json").is_file():
        raise MergeError(f"the hub repo {model!r} holds no config.json: not a model")
    return Source(model, snapshot, f"hub:{model}@{commit}", repo=model, revision=commit)


def merge_key(adapter: Source, base: Source, dtype: str) -> str:
    data = {
        "format": MERGE_FORMAT,
        "adapter": adapter.identity,
        "base": base.identity,
        "dtype": dtype,
    }
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


# --------------------------------------------------------------------------- disk space


def _stored_bytes(config: dict[str, Any]) -> int:
    text = config.get("dtype") or config.get("torch_dtype") or "bfloat16"
    return DTYPE_BYTES.get(str(text).removeprefix("torch."), 2)


def estimate_merged_bytes(base: Source, dtype: str) -> int | None:
    """The merged model's size: its parameter count (from the safetensors headers, or the
    index's total size over the stored dtype's size) times the dtype's size; None if unknown."""
    params = 0
    shards = sorted(base.folder.glob("*.safetensors"))
    if download_bytes(base) > 0:
        shards = []  # some shards are not downloaded yet: the index has the total
    try:
        for shard in shards:
            for name, info in safetensors_header(shard).items():
                if name == "__metadata__" or not isinstance(info, dict):
                    continue
                count = 1
                for dim in info.get("shape", []):
                    count *= int(dim)
                params += count
        if params:
            return params * DTYPE_BYTES[dtype]
        index = base.folder / "model.safetensors.index.json"
        if index.is_file():
            total = (
                json.loads(index.read_text(encoding="utf-8")).get("metadata", {}).get("total_size")
            )
            config = json.loads((base.folder / "config.json").read_text(encoding="utf-8"))
            if isinstance(total, (int, float)) and total > 0:
                return int(total / _stored_bytes(config) * DTYPE_BYTES[dtype])
    except (OSError, ValueError, struct.error, TypeError, AttributeError):
        return None
    return None


def _size(n: float) -> str:
    return f"{n / 1e9:.1f} GB" if n >= 1e8 else f"{n / 1e6:.1f} MB"


def download_bytes(base: Source) -> int:
    """Bytes of the hub base model's weights still to download into the HF cache (its
    index's total size, in proportion to the shards not there yet); 0 for a folder."""
    index = base.folder / "model.safetensors.index.json"
    if base.repo is None or not index.is_file():
        return 0
    try:
        data = json.loads(index.read_text(encoding="utf-8"))
        total = int(data.get("metadata", {}).get("total_size") or 0)
        shards = set(data.get("weight_map", {}).values())
    except (OSError, ValueError, TypeError, AttributeError):
        return 0
    missing = [s for s in shards if not (base.folder / s).exists()]
    return int(total * len(missing) / len(shards)) if shards else 0


def _existing(path: Path) -> Path:
    while not path.exists() and path.parent != path:
        path = path.parent
    return path


def check_disk_space(where: Path, needed: int, download: tuple[Path, int] | None = None) -> None:
    """Refuse (MergeError) when the file system holding ``where`` has too little free space
    for ``needed`` bytes, plus the ``download`` (bytes into a folder) when it is the same."""
    probe = _existing(where)
    wanted = int(needed * (1 + _MARGIN))
    what = "the merged model"
    if download is not None and download[1] > 0:
        cache, size = _existing(download[0]), int(download[1] * (1 + _MARGIN))
        if cache.stat().st_dev == probe.stat().st_dev:
            wanted, what = wanted + size, "the base model's download and the merged model"
        elif shutil.disk_usage(cache).free < size:
            raise MergeError(
                f"not enough disk space to download the base model: about {_size(size)} needed "
                f"in {download[0]}, {_size(shutil.disk_usage(cache).free)} free; free some space "
                "or set HF_HOME to a larger disk"
            )
    free = shutil.disk_usage(probe).free
    if free < wanted:
        raise MergeError(
            f"not enough disk space for {what}: about {_size(wanted)} needed in "
            f"{where}, {_size(free)} free; free some space or pass --out (or set "
            "ERB_MERGE_CACHE) to a larger disk"
        )


# --------------------------------------------------------------------------- the merge


def _read_marker(folder: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((folder / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _sweep(parent: Path) -> None:
    """Remove the temporary folders of merges whose process is gone (killed outright)."""
    with suppress(OSError):
        for entry in parent.iterdir():
            match = re.fullmatch(re.escape(TEMP_PREFIX) + r".*-(\d+)-[0-9a-f]{8}", entry.name)
            if match and entry.is_dir() and not _alive(int(match.group(1))):
                shutil.rmtree(entry, ignore_errors=True)


def _torch_dtype(dtype: str) -> Any:
    import torch

    return {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}[dtype]


def _load_base(base: Source, dtype: str) -> Any:
    import transformers

    kwargs: dict[str, Any] = {"dtype": _torch_dtype(dtype)}
    if base.revision is not None:
        kwargs["revision"] = base.revision
    classes = [
        getattr(transformers, n, None)
        for n in ("AutoModelForImageTextToText", "AutoModelForVision2Seq", "AutoModelForCausalLM")
    ]
    last: Exception | None = None
    for cls in classes:
        if cls is None:
            continue
        try:
            return cls.from_pretrained(base.load_ref, **kwargs)
        except ValueError as exc:  # this auto class does not know the architecture
            last = exc
            continue
        except OSError as exc:
            raise MergeError(
                f"cannot load the base model {base.given!r}: {_first_line(exc)}"
            ) from None
    raise MergeError(f"cannot load the base model {base.given!r}: {_first_line(last)}")


def _first_line(exc: BaseException | None) -> str:
    text = str(exc or "").strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _adapter_tensor_count(adapter: Source) -> int | None:
    path = adapter.folder / ADAPTER_WEIGHTS[0]
    if not path.is_file():
        return None
    return sum(1 for k in safetensors_header(path) if k != "__metadata__")


def _apply_adapter(model: Any, adapter: Source, base: Source) -> Any:
    """peft's PeftModel over ``model``, checked to hold every weight the adapter saved."""
    try:
        from peft import PeftModel, get_peft_model_state_dict
    except ImportError:
        raise MergeError("merging an adapter needs peft: pip install 'erb[local]'") from None
    misfit = f"the adapter {adapter.given!r} does not fit the base model {base.given!r}"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            peft_model = PeftModel.from_pretrained(model, str(adapter.folder))
        except (RuntimeError, ValueError, KeyError) as exc:
            raise MergeError(f"{misfit}: {_first_line(exc)}") from None
    for warning in caught:
        message = str(warning.message)
        if "missing adapter keys" in message:
            shown = message if len(message) <= 300 else message[:300] + "..."
            raise MergeError(f"{misfit}: {' '.join(shown.split())}")
    expected = _adapter_tensor_count(adapter)
    loaded = len(get_peft_model_state_dict(peft_model))
    if expected is not None and loaded != expected:
        raise MergeError(
            f"{misfit}: the adapter saved {expected} tensors, {loaded} found a module in the model"
        )
    return peft_model


def _copy_processor_files(base: Source, target: Path) -> list[str]:
    """The base model's processor files (tokenizer, image processor, chat template), byte
    for byte: the merged model is served with the base model's processor, as upstream does."""
    copied = []
    for path in sorted(base.folder.iterdir()):
        if (
            path.is_file()
            and not path.name.startswith(".")
            and path.name not in _WRITTEN
            and not _WEIGHTS.fullmatch(path.name)
        ):
            shutil.copyfile(path, target / path.name)
            copied.append(path.name)
    return copied


def _merge_into(folder: Path, adapter: Source, base: Source, dtype: str, say: Progress) -> None:
    """Load, apply, merge and save into ``folder`` (upstream's steps)."""
    started = time.monotonic()
    say(f"loading the base model {base.given} in {dtype}")
    model = _load_base(base, dtype)
    say(f"applying the adapter {adapter.given}")
    peft_model = _apply_adapter(model, adapter, base)
    say("merging (merge_and_unload) and saving")
    merged = peft_model.merge_and_unload()
    merged.save_pretrained(str(folder))
    _copy_processor_files(base, folder)
    say(f"merged in {time.monotonic() - started:.0f} s")


def _entry_name(adapter: Source, base: Source, dtype: str, key: str) -> str:
    # The base model's name comes first: servers that pick a chat template by the model's
    # path (SGLang) then see a Qwen-VL path.
    return f"{base.short}--{adapter.short}--{dtype}--{key[:16]}"


def _cache_entry(cache: Path, adapter: Source, base: Source, dtype: str, key: str) -> Path:
    """The cache folder of this merge: an existing one with the same key, whatever names it
    was made under (the same bytes in another folder), else a new one."""
    with suppress(OSError):
        for entry in sorted(cache.glob(f"*--{key[:16]}")):
            marker = _read_marker(entry)
            if marker is not None and marker.get("key") == key:
                return entry
    return cache / _entry_name(adapter, base, dtype, key)


def merge_adapter(
    adapter: str,
    base: str,
    *,
    dtype: str = "bfloat16",
    out: Path | None = None,
    cache_dir: Path | None = None,
    progress: Progress | None = None,
) -> MergeResult:
    """``adapter`` merged into ``base`` in ``dtype``, in ``out`` or the merge cache.

    A folder that already holds this very merge (same adapter content, base content and
    dtype) is reused. Raises :class:`MergeError`.
    """
    say = progress or (lambda _message: None)
    if dtype not in DTYPES:
        raise MergeError(f"unknown dtype {dtype!r}; one of {', '.join(DTYPES)}")
    cache = cache_dir or default_cache_dir()
    digests = _Digests(cache / "digests.json")
    source = resolve_adapter(adapter, digests)
    model = resolve_base(base, digests, say)
    digests.save()
    key = merge_key(source, model, dtype)
    target = (
        Path(out).expanduser()
        if out is not None
        else _cache_entry(cache, source, model, dtype, key)
    )
    marker = _read_marker(target)
    if marker is not None and marker.get("key") == key:
        say(f"reusing the merged model in {target}")
        return MergeResult(target, True, key)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        if out is not None:
            what = "another merge" if marker is not None else "files erb did not write"
            raise MergeError(
                f"{target} already holds {what}; choose another --out (a new or empty folder)"
            )
        shutil.rmtree(target)  # an entry of erb's own cache without its marker: unfinished
    parent = target.parent
    parent.mkdir(parents=True, exist_ok=True)
    _sweep(parent)
    needed = estimate_merged_bytes(model, dtype)
    if needed is not None:
        # A hub base's snapshot folder is <cache>/models--owner--name/snapshots/<commit>.
        hub = (model.folder.parents[2], download_bytes(model)) if model.repo is not None else None
        check_disk_space(parent, needed, hub)
        say(
            f"merging {source.given} into {model.given} ({dtype}, about {_size(needed)}) -> {target}"
        )
    else:
        say(f"merging {source.given} into {model.given} ({dtype}; size unknown) -> {target}")
    temp = parent / f"{TEMP_PREFIX}{target.name}-{os.getpid()}-{os.urandom(4).hex()}"
    temp.mkdir()
    try:
        _merge_into(temp, source, model, dtype, say)
        record = {
            "written_by": "erb", "format": MERGE_FORMAT, "key": key, "dtype": dtype,
            "adapter": {"given": source.given, "identity": source.identity},
            "base": {"given": model.given, "identity": model.identity},
        }  # fmt: skip
        (temp / MARKER).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
        try:
            os.replace(temp, target)
        except OSError:
            done = _read_marker(target)
            if done is None or done.get("key") != key:  # not another run finishing the same merge
                raise
            say(f"another erb finished the same merge first; using {target}")
            return MergeResult(target, True, key)
    except MemoryError:
        raise MergeError(
            f"out of memory while merging: the base model is loaded whole in {dtype} on the CPU"
        ) from None
    finally:
        shutil.rmtree(temp, ignore_errors=True)
    return MergeResult(target, False, key)


def adapter_base(adapter: str) -> str | None:
    """The base model an adapter's config names, when its config is on disk."""
    from .adapters import read_adapter

    try:
        info = read_adapter(adapter)
    except ValueError:
        return None
    return info.base_model if info is not None else None
