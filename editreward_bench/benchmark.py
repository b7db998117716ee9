"""Loading EditReward-Bench: sources, schema validation, pairs and candidates.

A benchmark row is an ordered pair of edits of one source image; the edit people
preferred on the row's dimension is always index 0 (there is no label column).
Rows become :class:`Pair` objects; the edits they compare become
:class:`Candidate` objects, deduplicated by key, whose images are decoded only
when a judge asks for them.
"""

from __future__ import annotations

import hashlib
import io
import mmap
import os
import re
import socket
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from .taxonomy import DIMENSIONS, SUBTASKS

if TYPE_CHECKING:
    import pyarrow as pa
    from PIL import Image as PILImage

HUB_ID = "EditScore/EditReward-Bench"
TIGER_HUB_ID = "TIGER-Lab/EditReward-Bench"
MINI = "mini"
#: The mark erb's synthetic benchmarks carry in their metadata (``DatasetInfo.description``):
#: a ``save_to_disk`` copy keeps it. It is not part of the dataset fingerprint, which hashes
#: the rows alone, so runs made before the mark existed still verify.
SYNTHETIC_TAG = "[erb:synthetic]"
#: Fingerprints of erb's bundled benchmark, recognised even in a copy that lost the metadata
#: (a parquet export keeps the rows, not the description).
KNOWN_SYNTHETIC = frozenset(
    {"sha256:ea8318ce82d758f978d3cfb57f3c3e0941177fc6de3fe887459d41691984a2d7"}
)

REQUIRED_COLUMNS = ("key", "instruction", "input_image", "output_images", "task_type", "dimension")
_TIGER_MARKERS = {"candidate_1", "candidate_2", "ranking", "source_image"}

#: Images above this many pixels are refused (decompression bombs). 8192 x 8192.
DEFAULT_MAX_IMAGE_PIXELS = 8192 * 8192


class BenchmarkError(ValueError):
    """The dataset cannot be used; the message says why and what to do."""


class CandidateImageError(RuntimeError):
    """One candidate's image cannot be decoded; the candidate fails, the run goes on."""


@dataclass(frozen=True, slots=True)
class Pair:
    """One benchmark row: ``keys[0]`` is the edit people preferred on ``dimension``."""

    index: int
    keys: tuple[str, str]
    instruction: str
    subtask: str
    dimension: str
    #: Hash of the source image's bytes: rows sharing a source are resampled together.
    source_id: str


@dataclass(frozen=True, slots=True)
class ImageRef:
    """Where one image's encoded bytes live in the Arrow table."""

    row: int
    column: str
    slot: int | None
    sha: str
    width: int
    height: int


@dataclass(frozen=True, slots=True)
class Candidate:
    """One edit to judge: an (instruction, source image, edited image) triple."""

    key: str
    instruction: str
    source: ImageRef
    edited: ImageRef
    _reader: _ImageReader = field(repr=False, compare=False)

    def source_bytes(self) -> bytes:
        return self._reader.read(self.source)

    def edited_bytes(self) -> bytes:
        return self._reader.read(self.edited)

    def load_images(self) -> tuple[PILImage.Image, PILImage.Image]:
        """Decode (source, edited) as RGB, the edited image resized to the source's size.

        The resize uses PIL's default resampling, as the upstream harness does.
        Raises :class:`CandidateImageError` for undecodable or oversized images.
        """
        return self.load_source(), self.load_edited()

    @property
    def source_key(self) -> str:
        """Identifies the source image: candidates of one source share its encoding."""
        return self.source.sha

    def load_source(self) -> PILImage.Image:
        return self._reader.decode(self.source, self.key)

    def load_edited(self) -> PILImage.Image:
        """The edited image, resized to the source's size (known from its header, no decode)."""
        edited = self._reader.decode(self.edited, self.key)
        size = (self.source.width, self.source.height)
        return edited if edited.size == size else edited.resize(size)


class _ImageReader:
    """Reads image bytes from the benchmark's Arrow table on demand."""

    #: Reads between two releases of the mapped pages.
    RELEASE_EVERY = 256

    def __init__(
        self,
        table: pa.Table,
        base_dir: Path | None,
        max_pixels: int,
        maps: list[mmap.mmap] | None = None,
    ) -> None:
        self._table = table
        self._base_dir = base_dir
        self.max_pixels = max_pixels
        self._maps = maps or []
        self._reads = 0

    def read(self, ref: ImageRef) -> bytes:
        cell = self._table.column(ref.column)[ref.row]
        if ref.slot is not None:
            cell = cell[ref.slot]
        data = _cell_bytes(cell.as_py(), self._base_dir)
        self._reads += 1
        if self._reads % self.RELEASE_EVERY == 0:
            self.release()
        return data

    def release(self) -> None:
        """Drop the mapped files' resident pages; the next read faults them back from the page cache."""
        for mapped in self._maps:
            if hasattr(mapped, "madvise") and hasattr(mmap, "MADV_DONTNEED"):
                mapped.madvise(mmap.MADV_DONTNEED)

    def decode(self, ref: ImageRef, key: str) -> PILImage.Image:
        from PIL import ImageOps

        if ref.width * ref.height > self.max_pixels:
            raise CandidateImageError(
                f"candidate {key!r}: {_where(ref)} of row {ref.row} is {ref.width}x{ref.height} "
                f"pixels, over the limit of --max-image-pixels ({self.max_pixels}); raise it "
                "if the image is genuine"
            )
        try:
            img = _open_image(self.read(ref))
            img.load()
            ImageOps.exif_transpose(img, in_place=True)
            # convert() copies even when the mode already matches; skip it then.
            return img if img.mode == "RGB" else img.convert("RGB")
        except (OSError, ValueError, SyntaxError) as exc:
            raise CandidateImageError(
                f"candidate {key!r}: {_where(ref)} of row {ref.row} cannot be decoded, "
                f"the image is corrupt or truncated ({exc})"
            ) from exc


def _where(ref: ImageRef) -> str:
    """The image's column, with its slot in a list column: ``output_images[1]``."""
    return ref.column if ref.slot is None else f"{ref.column}[{ref.slot}]"


def _open_image(data: bytes) -> PILImage.Image:
    """``Image.open`` with erb's own pixel limit in charge.

    Callers check the header's size against ``--max-image-pixels`` before decoding,
    so PIL's fixed decompression-bomb limit does not apply: an image above it opens
    (header only) here, and is then refused, or decoded, by that check.
    """
    from PIL import Image

    try:
        return Image.open(io.BytesIO(data))
    except Image.DecompressionBombError:
        pass
    # What Image.open does, without its size check: the first format plugin that accepts it.
    Image.init()
    for fmt in Image.ID:
        factory, accept = Image.OPEN[fmt]
        accepted = accept(data[:16]) if accept else True
        if not accepted or isinstance(accepted, str):
            continue
        try:
            return factory(io.BytesIO(data), "")
        except (SyntaxError, IndexError, TypeError, struct.error):
            continue
    raise Image.UnidentifiedImageError("cannot identify the image")


def _decode_problem(data: bytes) -> str | None:
    """Why the image's pixels cannot be decoded (truncated, corrupt), or None when they can."""
    try:
        with _open_image(data) as img:
            img.load()
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def _cell_bytes(value: Any, base_dir: Path | None) -> bytes:
    if isinstance(value, dict):
        data = value.get("bytes")
        if data:
            return bytes(data)
        path = value.get("path")
        if path:
            p = Path(path)
            if not p.is_absolute() and base_dir is not None:
                p = base_dir / p
            return p.read_bytes()
        return b""
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    return b""


@dataclass
class Benchmark:
    """A loaded, validated benchmark: its pairs, its candidates and where it came from."""

    source: str
    revision: str | None
    pairs: list[Pair]
    candidates: dict[str, Candidate]
    fingerprint: str
    _image_stats: dict[str, Any] = field(default_factory=dict, repr=False)
    #: Made by erb (the bundled mini, `erb data synth`): its numbers say nothing about real edits.
    synthetic: bool = False

    def __len__(self) -> int:
        return len(self.pairs)

    def cells(self) -> dict[tuple[str, str], int]:
        """Rows per (subtask, dimension) cell present in this benchmark."""
        counts: dict[tuple[str, str], int] = {}
        for pair in self.pairs:
            cell = (pair.subtask, pair.dimension)
            counts[cell] = counts.get(cell, 0) + 1
        return counts

    def subset(self, limit: int | None) -> Benchmark:
        """The first ``limit`` rows (and only the candidates they compare)."""
        if limit is None or limit >= len(self.pairs):
            return self
        if limit <= 0:
            raise BenchmarkError(f"--limit must be positive, got {limit}")
        pairs = self.pairs[:limit]
        needed = {k for p in pairs for k in p.keys}
        candidates = {k: c for k, c in self.candidates.items() if k in needed}
        return Benchmark(
            source=self.source,
            revision=self.revision,
            pairs=pairs,
            candidates=candidates,
            fingerprint=_fingerprint(pairs, candidates),
            _image_stats=self._image_stats,
            synthetic=self.synthetic,
        )

    def describe(self) -> dict[str, Any]:
        """What a run records about its dataset."""
        return {
            "source": self.source,
            "revision": self.revision,
            "fingerprint": self.fingerprint,
            "rows": len(self.pairs),
            "candidates": len(self.candidates),
            "synthetic": self.synthetic,
        }

    @property
    def image_stats(self) -> dict[str, Any]:
        return dict(self._image_stats)


# --------------------------------------------------------------------------- loading


def quiet_datasets() -> None:
    """Silence datasets' progress bars and info logs (the CLI and reports print their own)."""
    import datasets

    datasets.disable_progress_bars()
    datasets.logging.set_verbosity_error()


def load_benchmark(
    source: str | os.PathLike[str] = HUB_ID,
    revision: str | None = None,
    *,
    split: str | None = None,
    max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS,
) -> Benchmark:
    """Load and validate EditReward-Bench, or any dataset in its schema.

    ``source`` is a hub id (default ``EditScore/EditReward-Bench``; ``revision``
    pins a commit), a ``save_to_disk`` folder, a parquet file or folder of
    parquet files, or ``"mini"`` for the bundled benchmark. The schema is
    checked before any work; a wrong one raises :class:`BenchmarkError`.
    """
    source_str = os.fspath(source)
    dataset, base_dir, label = _open_dataset(source_str, revision, split)
    table, maps = _arrow_table(dataset)
    _check_columns(table, dataset, label)
    reader = _ImageReader(table, base_dir, max_image_pixels, maps)
    pairs, candidates, stats = _build(table, reader, label)
    reader.release()  # the validation pass touched every image
    fingerprint = _fingerprint(pairs, candidates)
    description = str(getattr(getattr(dataset, "info", None), "description", "") or "")
    return Benchmark(
        source=label,
        revision=revision,
        pairs=pairs,
        candidates=candidates,
        fingerprint=fingerprint,
        _image_stats=stats,
        synthetic=SYNTHETIC_TAG in description or fingerprint in KNOWN_SYNTHETIC,
    )


def is_synthetic(dataset: Mapping[str, Any]) -> bool:
    """Whether a run's recorded dataset (``metrics.json`` ``dataset``) is synthetic; runs made
    before the mark existed are recognised by the bundled benchmark's name and fingerprint."""
    if dataset.get("synthetic") is not None:
        return bool(dataset["synthetic"])
    return dataset.get("source") == MINI or dataset.get("fingerprint") in KNOWN_SYNTHETIC


def _open_dataset(
    source: str, revision: str | None, split: str | None
) -> tuple[Any, Path | None, str]:
    if source == MINI:
        from .resources import mini_dir

        path = mini_dir()
        if not path.exists():
            raise BenchmarkError(
                f"the bundled benchmark is missing at {path}; regenerate it with `erb data make-mini`"
            )
        return _load_local(path, split), path, MINI
    path = Path(source).expanduser()
    if path.exists():
        return _load_local(path, split), (path if path.is_dir() else path.parent), str(path)
    if source.strip().lower() == TIGER_HUB_ID.lower():
        raise BenchmarkError(_tiger_message(source))
    if looks_like_path(source):
        raise BenchmarkError(
            f"dataset {source}: no such file or folder ({path.resolve()} does not exist); "
            f"give an existing folder or parquet file, 'mini', or a hub id such as {HUB_ID}"
        )
    if not re.fullmatch(r"[\w.-]+/[\w.-]+", source):
        raise BenchmarkError(
            f"dataset source {source!r} is neither an existing path nor a hub id (owner/name); "
            f"use 'mini', a local folder or parquet file, or {HUB_ID}"
        )
    return _load_hub(source, revision, split), None, source


def looks_like_path(name: str) -> bool:
    """Whether a model, adapter or dataset name is meant as a local path, not a hub id.

    Hub ids are ``owner/name`` (or ``name``), never absolute, never starting with ``.``
    or ``~``, with one slash at most; a path-like name that does not exist is a missing
    path, not a hub id to download.
    """
    text = name.strip()
    return (
        os.path.isabs(text)
        or text.startswith((".", "~"))
        or "\\" in text
        or text.count("/") > 1
        or Path(text).suffix.lower() in {".parquet", ".arrow", ".json", ".jsonl"}
    )


def _load_local(path: Path, split: str | None) -> Any:
    import datasets

    try:
        if path.is_file():
            if path.suffix != ".parquet":
                raise BenchmarkError(f"{path}: expected a .parquet file or a dataset folder")
            return _pick_split(
                datasets.load_dataset("parquet", data_files=[str(path)]), split, str(path)
            )
        if (path / "state.json").exists() or (path / "dataset_dict.json").exists():
            return _pick_split(datasets.load_from_disk(str(path)), split, str(path))
        parquet = sorted(str(p) for p in path.rglob("*.parquet"))
        if parquet:
            return _pick_split(
                datasets.load_dataset("parquet", data_files=parquet), split, str(path)
            )
        return _pick_split(datasets.load_dataset(str(path)), split, str(path))
    except BenchmarkError:
        raise
    except Exception as exc:  # datasets raises many types; the user needs the path and the cause
        if "corresponds to no data" in str(exc):
            raise BenchmarkError(f"{path}: the dataset has no rows") from exc
        raise BenchmarkError(f"cannot read a dataset from {path}: {exc}") from exc


def _hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


def _hub_reachable(timeout: float = 3.0) -> bool:
    """A quick TCP probe, so an unreachable hub fails in seconds, not minutes."""
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    parsed = urlparse(endpoint)
    host = parsed.hostname or "huggingface.co"
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _force_offline() -> None:
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["HF_DATASETS_OFFLINE"] = "1"
    try:  # the libraries read these at import time
        import datasets.config
        import huggingface_hub.constants

        huggingface_hub.constants.HF_HUB_OFFLINE = True
        datasets.config.HF_HUB_OFFLINE = True
    except Exception:
        pass


def _load_hub(source: str, revision: str | None, split: str | None) -> Any:
    offline = _hub_offline()
    if not offline and not _hub_reachable():
        _force_offline()
        offline = True
    import datasets

    try:
        loaded = datasets.load_dataset(source, revision=revision)
    except Exception as exc:
        text = f"{type(exc).__name__}: {exc}"
        if offline or "offline" in text.lower() or "connect" in text.lower():
            raise BenchmarkError(
                f"{source} is not in the local Hugging Face cache and the hub cannot be reached "
                f"(offline). Fetch it where there is network, e.g. "
                f"`hf download {source} --repo-type dataset --local-dir DIR`, "
                f"then pass `--dataset DIR`; or use `--dataset mini` for the bundled benchmark."
            ) from exc
        raise BenchmarkError(f"cannot load {source} from the hub: {text}") from exc
    return _pick_split(loaded, split, source)


def _pick_split(loaded: Any, split: str | None, label: str) -> Any:
    import datasets

    if isinstance(loaded, datasets.DatasetDict):
        names = list(loaded)
        if split is not None:
            if split not in loaded:
                raise BenchmarkError(f"{label}: no split {split!r}; it has {names}")
            return loaded[split]
        if len(names) == 1:
            return loaded[names[0]]
        raise BenchmarkError(f"{label} has several splits {names}; choose one with --split")
    return loaded


def _arrow_table(dataset: Any) -> tuple[pa.Table, list[mmap.mmap]]:
    """The dataset's Arrow table, on mappings of its files that erb can release.

    Pages of a memory-mapped file count as resident memory once read. Mapping the
    Arrow files here (rather than through datasets) lets the reader drop them
    after use, so memory stays flat however large the benchmark is.
    """
    import pyarrow as pa

    if getattr(dataset, "_indices", None) is not None:
        dataset = dataset.flatten_indices()
    table = dataset.data.table
    files = [f["filename"] for f in getattr(dataset, "cache_files", [])]
    if not files:
        return table, []
    maps: list[mmap.mmap] = []
    try:
        parts = []
        for name in files:
            with open(name, "rb") as fh:
                mapped = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
            maps.append(mapped)
            parts.append(pa.ipc.open_stream(pa.py_buffer(mapped)).read_all())
        ours = pa.concat_tables(parts)
    except (OSError, ValueError, pa.ArrowInvalid):
        return table, []
    if ours.schema != table.schema or ours.num_rows != table.num_rows:
        return table, []
    return ours, maps


def _tiger_message(label: str) -> str:
    return (
        f"{label} looks like {TIGER_HUB_ID} (the EditReward paper's benchmark: columns "
        f"source_image, candidate_1, candidate_2, ranking). It shares the name but not the "
        f"schema or protocol of {HUB_ID}: evaluate it as its own benchmark with "
        f"--benchmark tiger-editreward, or use --dataset {HUB_ID}."
    )


def _check_columns(table: pa.Table, dataset: Any, label: str) -> None:
    import pyarrow as pa

    columns = set(table.column_names)
    if columns & _TIGER_MARKERS and "output_images" not in columns:
        raise BenchmarkError(_tiger_message(label))
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing:
        raise BenchmarkError(
            f"{label} is not in the EditReward-Bench schema: missing column(s) {missing}; "
            f"expected {list(REQUIRED_COLUMNS)}, found {sorted(columns)}"
        )
    schema = table.schema

    def is_string(t: pa.DataType) -> bool:
        return bool(pa.types.is_string(t) or pa.types.is_large_string(t))

    def is_image(t: pa.DataType) -> bool:
        if pa.types.is_struct(t):
            names = {t.field(i).name for i in range(t.num_fields)}
            return "bytes" in names
        return bool(pa.types.is_binary(t) or pa.types.is_large_binary(t))

    def is_list_of(t: pa.DataType, pred: Any) -> bool:
        return bool(
            (pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t))
            and pred(t.value_type)
        )

    expectations = {
        "key": (lambda t: is_list_of(t, is_string), "a list of 2 strings"),
        "instruction": (is_string, "a string"),
        "task_type": (is_string, "a string"),
        "dimension": (is_string, "a string"),
        "input_image": (is_image, "an Image"),
        "output_images": (lambda t: is_list_of(t, is_image), "a list of 2 Images"),
    }
    for column, (pred, what) in expectations.items():
        if not pred(schema.field(column).type):
            raise BenchmarkError(
                f"{label}: column {column!r} must be {what}, found {schema.field(column).type}"
            )
    if table.num_rows == 0:
        raise BenchmarkError(f"{label}: the dataset has no rows")


def _report(label: str, problem: str, offenders: list[str]) -> BenchmarkError:
    shown = "; ".join(offenders[:5])
    more = f" (and {len(offenders) - 5} more)" if len(offenders) > 5 else ""
    return BenchmarkError(f"{label}: {problem}: {shown}{more}")


def _image_header(data: bytes) -> tuple[int, int]:
    """Size from the image header, without decoding the pixels."""
    import warnings

    from PIL import Image

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        with _open_image(data) as img:
            width, height = img.size
            # EXIF orientations 5-8 rotate by 90 degrees: the decoded image is transposed.
            orientation = _orientation(img)
            return (height, width) if orientation in (5, 6, 7, 8) else (width, height)


def _orientation(img: Any) -> int | None:
    """EXIF orientation from the header only: never decode pixels to find it."""
    from PIL import Image

    try:
        if img.format in ("JPEG", "MPO", "WEBP", "TIFF"):
            return img.getexif().get(0x0112)
        raw = img.info.get("exif")  # PNG: an eXIf chunk before the image data
        if raw:
            exif = Image.Exif()
            exif.load(raw)
            return exif.get(0x0112)
    except Exception:  # a damaged header is the decoder's problem, reported per candidate
        return None
    return None


def _build(
    table: pa.Table, reader: _ImageReader, label: str
) -> tuple[list[Pair], dict[str, Candidate], dict[str, Any]]:
    keys_col = table.column("key").to_pylist()
    instr_col = table.column("instruction").to_pylist()
    task_col = table.column("task_type").to_pylist()
    dim_col = table.column("dimension").to_pylist()

    bad_dims = sorted({repr(d) for d in dim_col if d not in DIMENSIONS})
    if bad_dims:
        raise BenchmarkError(
            f"{label}: unknown dimension value(s) {', '.join(bad_dims)}; expected {list(DIMENSIONS)}"
        )
    bad_tasks = sorted({repr(t) for t in task_col if t not in SUBTASKS})
    if bad_tasks:
        raise BenchmarkError(
            f"{label}: unknown task_type value(s) {', '.join(bad_tasks)}; expected one of {list(SUBTASKS)}"
        )
    bad_rows = [
        f"row {i}: key={k!r}"
        for i, k in enumerate(keys_col)
        if not isinstance(k, list)
        or len(k) != 2
        or not all(isinstance(x, str) and x for x in k)
        or k[0] == k[1]
    ]
    if bad_rows:
        raise _report(label, "each row needs two distinct, non-empty keys", bad_rows)
    bad_instr = [f"row {i}" for i, s in enumerate(instr_col) if not isinstance(s, str)]
    if bad_instr:
        raise _report(label, "missing instruction", bad_instr)

    input_col = table.column("input_image")
    output_col = table.column("output_images")
    base_dir = reader._base_dir

    pairs: list[Pair] = []
    candidates: dict[str, Candidate] = {}
    unreadable: list[str] = []
    wrong_count: list[str] = []
    conflicts: list[str] = []
    sizes: set[tuple[int, int]] = set()

    def ref_for(data: bytes, row: int, column: str, slot: int | None, key: str) -> ImageRef | None:
        sha = hashlib.blake2b(data, digest_size=16).hexdigest()
        try:
            width, height = _image_header(data)
        except Exception as exc:
            where = f"{column}[{slot}]" if slot is not None else column
            unreadable.append(f"row {row} {where} (key {key!r}): {type(exc).__name__}")
            return None
        sizes.add((width, height))
        return ImageRef(row, column, slot, sha, width, height)

    damage_of: dict[str, str | None] = {}

    def damage(ref: ImageRef) -> str | None:
        """Why an image's pixels cannot be decoded; checked only where copies disagree."""
        if ref.sha not in damage_of:
            oversized = ref.width * ref.height > reader.max_pixels  # refused per candidate
            damage_of[ref.sha] = None if oversized else _decode_problem(reader.read(ref))
        return damage_of[ref.sha]

    for row in range(table.num_rows):
        if row % reader.RELEASE_EVERY == 0:
            reader.release()  # keep the pages this pass reads from piling up as resident memory
        keys = keys_col[row]
        outputs = output_col[row]
        if not outputs.is_valid or len(outputs) != 2:
            wrong_count.append(f"row {row}: {0 if not outputs.is_valid else len(outputs)} images")
            continue
        source_ref = ref_for(
            _cell_bytes(input_col[row].as_py(), base_dir), row, "input_image", None, keys[0]
        )
        edited_refs = [
            ref_for(
                _cell_bytes(outputs[slot].as_py(), base_dir), row, "output_images", slot, keys[slot]
            )
            for slot in (0, 1)
        ]
        if source_ref is None or edited_refs[0] is None or edited_refs[1] is None:
            continue
        for slot in (0, 1):
            key = keys[slot]
            ref = edited_refs[slot]
            assert ref is not None
            known = candidates.get(key)
            if known is None:
                candidates[key] = Candidate(key, instr_col[row], source_ref, ref, reader)
            elif (
                known.instruction != instr_col[row]
                or known.source.sha != source_ref.sha
                or known.edited.sha != ref.sha
            ):
                what = [
                    name
                    for name, same in (
                        ("instruction", known.instruction == instr_col[row]),
                        ("source image", known.source.sha == source_ref.sha),
                        ("edited image", known.edited.sha == ref.sha),
                    )
                    if not same
                ]
                # A damaged copy (a truncated file) differs from the intact one: name the damage.
                differing = [
                    *((known.source, source_ref) if "source image" in what else ()),
                    *((known.edited, ref) if "edited image" in what else ()),
                ]
                damaged = [
                    f"row {r.row} {_where(r)} (key {key!r}): corrupt or truncated ({problem})"
                    for r in differing
                    if (problem := damage(r)) is not None
                ]
                if damaged:
                    unreadable.extend(d for d in damaged if d not in unreadable)
                    what = [w for w in what if w == "instruction"]
                if what:
                    conflicts.append(
                        f"key {key!r} (rows {known.source.row} and {row}: different {', '.join(what)})"
                    )
        pairs.append(
            Pair(
                index=row,
                keys=(keys[0], keys[1]),
                instruction=instr_col[row],
                subtask=task_col[row],
                dimension=dim_col[row],
                source_id=source_ref.sha,
            )
        )
    if wrong_count:
        raise _report(label, "each row needs exactly two output_images", wrong_count)
    if unreadable:
        raise _report(
            label, "unreadable image bytes (corrupt, truncated or not an image)", unreadable
        )
    if conflicts:
        raise _report(label, "the same candidate key names different edits", conflicts)
    stats = {
        "distinct_sizes": len(sizes),
        "min_size": min(sizes, key=lambda s: s[0] * s[1]) if sizes else None,
        "max_size": max(sizes, key=lambda s: s[0] * s[1]) if sizes else None,
    }
    return pairs, candidates, stats


def _fingerprint(pairs: Sequence[Pair], candidates: dict[str, Candidate]) -> str:
    """sha256 over every row's keys (in label order), cell and instruction, and image hashes."""
    h = hashlib.sha256(b"editreward-bench/v1\n")
    for pair in pairs:
        a, b = (candidates[k] for k in pair.keys)
        fields = (
            *pair.keys,
            pair.subtask,
            pair.dimension,
            pair.instruction,
            pair.source_id,
            a.edited.sha,
            b.edited.sha,
        )
        h.update("\x1f".join(fields).encode("utf-8", "surrogatepass"))
        h.update(b"\x1e")
    return "sha256:" + h.hexdigest()
