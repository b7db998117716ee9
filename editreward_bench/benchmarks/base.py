"""What every preference benchmark adapter shares: comparisons, candidates, loading.

An adapter turns one benchmark's own schema into :class:`PreferenceBenchmark`: a list of
:class:`Comparison` (two candidate edits and the people's verdict on them) and the
:class:`~editreward_bench.benchmark.Candidate` objects they compare. Candidates are the
same objects EditReward-Bench uses, so every pointwise judge works on every benchmark
unchanged, and their keys are derived from their content (instruction, source image,
edited image): the pass store then judges an edit once, however many rows or benchmarks
share it. Each candidate also has a readable *alias* that names where it sits in the
dataset (``3pair/12/B``), and a predictions file may use either.

Each adapter scores a judge twice: as the benchmark's authors do (their metric names and
their quirks, reproduced exactly) and by erb's strict rule (:mod:`.strict`).
"""

from __future__ import annotations

import hashlib
import os
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from ..benchmark import (
    DEFAULT_MAX_IMAGE_PIXELS,
    MINI,
    BenchmarkError,
    Candidate,
    ImageRef,
    _arrow_table,
    _cell_bytes,
    _force_offline,
    _hub_offline,
    _hub_reachable,
    _image_header,
    _ImageReader,
    _pick_split,
    _report,
    looks_like_path,
)

if TYPE_CHECKING:
    import pyarrow as pa

#: The people's verdict on a comparison, in the dataset's order of the two candidates.
Label = Literal["first", "second", "tie"]
LABELS: tuple[str, ...] = ("first", "second", "tie")


@dataclass(frozen=True, slots=True)
class Comparison:
    """One judged pair: ``keys[0]`` is shown first in the dataset (candidate_1, left, A)."""

    #: Position in the benchmark (0..n-1).
    index: int
    #: Row of the source table it came from (error messages name it).
    row: int
    #: The dataset's own id of the row (``id``, ``pair_id``), or the row number.
    row_id: str
    #: The unit rows are grouped (and resampled) by: a TIGER group, else the row itself.
    group: str
    #: Where per-part numbers are reported: ``2pair``/``3pair``/``4pair``, or the split.
    stratum: str
    keys: tuple[str, str]
    label: Label
    #: The label exactly as the dataset writes it (``A>C``, ``tievote``, ``B``).
    raw_label: str
    #: The dataset's names of the two candidates (TIGER's group letters; else A and B).
    names: tuple[str, str] = ("A", "B")


@dataclass
class PreferenceBenchmark:
    """A loaded, validated preference benchmark: comparisons, candidates, provenance."""

    #: The adapter's name (``tiger-editreward``...).
    benchmark: str
    source: str
    revision: str | None
    split: str | None
    comparisons: list[Comparison]
    candidates: dict[str, Candidate]
    #: Readable names of candidates (``3pair/12/B``) -> content keys.
    aliases: dict[str, str]
    fingerprint: str
    synthetic: bool = False
    #: Adapter-specific structure (TIGER's groups), built at load time.
    details: dict[str, Any] = field(default_factory=dict)
    #: Where each candidate comes from, for ``erb data info --keys``.
    locations: dict[str, list[str]] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.comparisons)

    def describe(self) -> dict[str, Any]:
        """What a run records about its dataset (the split is part of the identity)."""
        return {
            "benchmark": self.benchmark,
            "source": self.source,
            "revision": self.revision,
            "split": self.split,
            "fingerprint": self.fingerprint,
            "rows": len(self.comparisons),
            "candidates": len(self.candidates),
            "synthetic": self.synthetic,
        }

    def strata(self) -> list[str]:
        seen: dict[str, None] = {}
        for c in self.comparisons:
            seen.setdefault(c.stratum, None)
        return list(seen)

    def resolve(self, name: str) -> str | None:
        """A candidate's content key from its key or its alias; None when neither."""
        if name in self.candidates:
            return name
        return self.aliases.get(name)


# --------------------------------------------------------------------------- keys


def content_key(instruction: str, source_sha: str, edited_sha: str) -> str:
    """A candidate's key: the same edit (instruction, source, edited image) in any row or
    benchmark gets the same key, so the pass store judges it once."""
    digest = hashlib.blake2b(
        "\x1f".join((instruction, source_sha, edited_sha)).encode("utf-8", "surrogatepass"),
        digest_size=10,
    ).hexdigest()
    return f"e{digest}"


def fingerprint_of(benchmark: str, split: str | None, comparisons: Sequence[Comparison]) -> str:
    """sha256 over the benchmark, split and every comparison (keys, label, group, stratum).

    Keys are content hashes, so the images and instructions are covered too.
    """
    h = hashlib.sha256(f"erb-preferences/v1\x1f{benchmark}\x1f{split or ''}\n".encode())
    for c in comparisons:
        fields = (*c.keys, c.raw_label, c.label, c.group, c.stratum, c.row_id, *c.names)
        h.update("\x1f".join(fields).encode("utf-8", "surrogatepass"))
        h.update(b"\x1e")
    return "sha256:" + h.hexdigest()


# --------------------------------------------------------------------------- tables


@dataclass
class Table:
    """A dataset's Arrow table, the reader of its images, and how to name it in messages."""

    table: pa.Table
    reader: _ImageReader
    label: str
    synthetic: bool = False
    revision: str | None = None

    def column(self, name: str) -> list[Any]:
        return list(self.table.column(name).to_pylist())


def is_string_type(t: Any) -> bool:
    import pyarrow as pa

    return bool(pa.types.is_string(t) or pa.types.is_large_string(t))


def is_image_type(t: Any) -> bool:
    import pyarrow as pa

    if pa.types.is_struct(t):
        return "bytes" in {t.field(i).name for i in range(t.num_fields)}
    return bool(pa.types.is_binary(t) or pa.types.is_large_binary(t))


def is_image_list_type(t: Any) -> bool:
    import pyarrow as pa

    return bool(
        (pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t))
        and is_image_type(t.value_type)
    )


def check_schema(
    data: Table,
    title: str,
    expected: Mapping[str, tuple[Callable[[Any], bool], str]],
    *,
    optional: Sequence[str] = (),
    refuse: Callable[[set[str]], str | None] | None = None,
) -> None:
    """Refuse a table without the columns (and column types) ``expected`` names.

    ``expected`` maps a column to (type test, what it must be); columns in ``optional``
    are checked only when present. Other columns are tolerated. The message says what
    was expected and what was found.
    """
    columns = set(data.table.column_names)
    if refuse is not None:
        why = refuse(columns)
        if why:
            raise BenchmarkError(f"{data.label}: {why}")
    required = [c for c in expected if c not in optional]
    missing = [c for c in required if c not in columns]
    if missing:
        raise BenchmarkError(
            f"{data.label} is not in the {title} schema: missing column(s) {missing}; expected "
            f"{required} (and optionally {list(optional)}), found {sorted(columns)}"
        )
    schema = data.table.schema
    for column, (pred, what) in expected.items():
        if column in columns and not pred(schema.field(column).type):
            raise BenchmarkError(
                f"{data.label}: column {column!r} must be {what}, found {schema.field(column).type}"
            )
    if data.table.num_rows == 0:
        raise BenchmarkError(f"{data.label}: the dataset has no rows")


class ImageRefs:
    """Image references of one table, with every unreadable image collected for one error."""

    def __init__(self, data: Table) -> None:
        self.data = data
        self.unreadable: list[str] = []
        self.sizes: set[tuple[int, int]] = set()
        self._base = data.reader._base_dir

    def ref(self, row: int, column: str, slot: int | None = None) -> ImageRef | None:
        cell = self.data.table.column(column)[row]
        if slot is not None:
            cell = cell[slot]
        blob = _cell_bytes(cell.as_py(), self._base)
        where = column if slot is None else f"{column}[{slot}]"
        if not blob:
            self.unreadable.append(f"row {row} {where}: no image")
            return None
        sha = hashlib.blake2b(blob, digest_size=16).hexdigest()
        try:
            width, height = _image_header(blob)
        except Exception as exc:
            self.unreadable.append(f"row {row} {where}: {type(exc).__name__}")
            return None
        self.sizes.add((width, height))
        return ImageRef(row, column, slot, sha, width, height)

    def check(self) -> None:
        if self.unreadable:
            raise _report(
                self.data.label,
                "unreadable image bytes (missing, corrupt, truncated or not an image)",
                self.unreadable,
            )


class CandidateBook:
    """Candidates by content key, each with its readable aliases and locations."""

    def __init__(self, data: Table) -> None:
        self.data = data
        self.candidates: dict[str, Candidate] = {}
        self.aliases: dict[str, str] = {}
        self.locations: dict[str, list[str]] = {}

    def add(self, instruction: str, source: ImageRef, edited: ImageRef, alias: str) -> str:
        key = content_key(instruction, source.sha, edited.sha)
        if key not in self.candidates:
            self.candidates[key] = Candidate(key, instruction, source, edited, self.data.reader)
        self.aliases.setdefault(alias, key)
        self.locations.setdefault(key, []).append(alias)
        return key


# --------------------------------------------------------------------------- loading


def open_table(
    source: str | os.PathLike[str],
    *,
    hub_id: str,
    config: str | None,
    configs: Sequence[str] = (),
    revision: str | None,
    split: str | None,
    max_image_pixels: int,
    synthetic: Callable[[str | None], pa.Table],
    title: str,
    local_parts: Sequence[str] = (),
) -> Table:
    """The dataset named by ``source`` as one Arrow table.

    ``mini`` is the adapter's synthetic version (built in memory); a path is a parquet file,
    a folder of parquet files (``local_parts``: subfolders read one by one, each file once)
    or a ``save_to_disk`` folder; anything else is a hub id, loaded with ``config`` (or,
    when the hub has several configs and none is the default, each of ``configs``).
    """
    source_str = os.fspath(source)
    if source_str == MINI:
        table = synthetic(split)
        return Table(table, _ImageReader(table, None, max_image_pixels), MINI, synthetic=True)
    path = Path(source_str).expanduser()
    if path.exists():
        dataset = _load_local_parts(path, split, local_parts)
        table, maps = _arrow_table(dataset)
        base = path if path.is_dir() else path.parent
        return Table(table, _ImageReader(table, base, max_image_pixels, maps), str(path))
    if looks_like_path(source_str):
        raise BenchmarkError(
            f"dataset {source_str}: no such file or folder ({path.resolve()} does not exist); "
            f"give an existing folder or parquet file, 'mini', or the hub id {hub_id}"
        )
    if not re.fullmatch(r"[\w.-]+/[\w.-]+", source_str):
        raise BenchmarkError(
            f"dataset source {source_str!r} is neither an existing path nor a hub id (owner/name); "
            f"use 'mini', a local folder or parquet file, or {hub_id}"
        )
    dataset = _load_hub_config(source_str, config, configs, revision, split, title)
    table, maps = _arrow_table(dataset)
    return Table(
        table, _ImageReader(table, None, max_image_pixels, maps), source_str, revision=revision
    )


def _load_local_parts(path: Path, split: str | None, parts: Sequence[str]) -> Any:
    """A local dataset; with ``parts`` (``2pair``, ...) present as subfolders, only their
    parquet files, each read once, in that order."""
    import datasets

    from ..benchmark import _load_local

    present = [p for p in parts if (path / p).is_dir()] if path.is_dir() else []
    if not present:
        try:
            return _load_local(path, split)
        except BenchmarkError as exc:
            # A local file holds one split whatever datasets calls it: it is the one asked for.
            if split is None or "no split" not in str(exc):
                raise
            return _load_local(path, None)
    files = [str(f) for p in present for f in sorted((path / p).rglob("*.parquet"))]
    if not files:
        raise BenchmarkError(f"{path}: the folders {present} hold no parquet files")
    try:
        loaded = datasets.load_dataset("parquet", data_files=files)
    except Exception as exc:
        raise BenchmarkError(f"cannot read a dataset from {path}: {exc}") from exc
    return _pick_split(loaded, split, str(path))


def _load_hub_config(
    source: str,
    config: str | None,
    configs: Sequence[str],
    revision: str | None,
    split: str | None,
    title: str,
) -> Any:
    offline = _hub_offline()
    if not offline and not _hub_reachable():
        _force_offline()
        offline = True
    import datasets

    def fail(exc: Exception) -> BenchmarkError:
        text = f"{type(exc).__name__}: {exc}"
        if offline or "offline" in text.lower() or "connect" in text.lower():
            return BenchmarkError(
                f"{source} is not in the local Hugging Face cache and the hub cannot be reached "
                f"(offline). Fetch it where there is network, e.g. "
                f"`hf download {source} --repo-type dataset --local-dir DIR`, then pass "
                f"`--dataset DIR`; or use `--dataset mini` for erb's synthetic {title}."
            )
        return BenchmarkError(f"cannot load {source} from the hub: {text}")

    try:
        loaded = datasets.load_dataset(source, config, revision=revision)
    except Exception as exc:
        if config is None and configs and "config" in str(exc).lower():
            # No default config: read each part once and put them together.
            try:
                parts = [
                    _pick_split(datasets.load_dataset(source, c, revision=revision), split, source)
                    for c in configs
                ]
            except Exception as inner:
                raise fail(inner) from inner
            return datasets.concatenate_datasets(parts)
        raise fail(exc) from exc
    return _pick_split(loaded, split, source)


# --------------------------------------------------------------------------- adapters


@dataclass(frozen=True)
class AuthorsResult:
    """The authors' numbers for one run, under the authors' names."""

    #: Exactly what the authors' code computes (its JSON or printed fields).
    metrics: dict[str, Any]
    #: Which of them the leaderboard shows: (name, value).
    headline: tuple[str, float | None]
    #: What the authors' code does not print but erb derives from it, and why.
    derived: dict[str, Any] = field(default_factory=dict)
    #: How erb fed the authors' code (failures left out, ties mapped...).
    notes: list[str] = field(default_factory=list)


class BenchmarkAdapter(ABC):
    """One human-preference benchmark: its schema, its authors' metric, a synthetic copy.

    Subclasses set the class attributes and implement :meth:`build`,
    :meth:`synthetic_dataset`, :meth:`authors_pointwise` and :meth:`authors_pairwise`.
    Third parties register one under the entry-point group ``editreward_bench.benchmarks``.
    """

    name: ClassVar[str]
    title: ClassVar[str]
    hub_id: ClassVar[str]
    #: Hub config to load (None: the default one).
    config: ClassVar[str | None] = None
    splits: ClassVar[tuple[str, ...]] = ()
    default_split: ClassVar[str | None] = None
    licence: ClassVar[str] = "see the dataset card"
    #: Shown whenever the benchmark is loaded and in every report of it (non-commercial...).
    licence_note: ClassVar[str | None] = None
    size: ClassVar[str] = ""
    label_form: ClassVar[str] = ""
    authors_metric: ClassVar[str] = ""
    strict_metric: ClassVar[str] = (
        "strict pairwise accuracy: judge ties and failures wrong, a human tie right only for "
        "a judge tie, nothing tuned on the test set"
    )
    #: How candidates are named, for predictions files.
    candidate_keys: ClassVar[str] = ""
    paper: ClassVar[str] = ""
    #: The score a pointwise judge's candidate is ranked by.
    score_field: ClassVar[str] = "overall"

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "source": self.hub_id + (f" (config {self.config})" if self.config else ""),
            "splits": list(self.splits),
            "licence": self.licence,
            "licence_note": self.licence_note,
            "size": self.size,
            "label_form": self.label_form,
            "authors_metric": self.authors_metric,
            "strict_metric": self.strict_metric,
            "candidate_keys": self.candidate_keys,
            "paper": self.paper,
        }

    def check_split(self, split: str | None) -> str | None:
        chosen = split if split is not None else self.default_split
        if self.splits and chosen not in self.splits:
            raise BenchmarkError(
                f"{self.name}: no split {chosen!r}; it has {list(self.splits)} (--split)"
            )
        return chosen

    def load(
        self,
        source: str | os.PathLike[str] | None = None,
        revision: str | None = None,
        *,
        split: str | None = None,
        max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS,
    ) -> PreferenceBenchmark:
        """Load and validate the benchmark: ``source`` is ``mini``, a path or a hub id
        (default: the benchmark's own). Raises BenchmarkError naming the offending rows."""
        chosen = self.check_split(split)
        data = open_table(
            source if source is not None else self.hub_id,
            hub_id=self.hub_id,
            config=self.config,
            configs=self.hub_configs(),
            revision=revision,
            split=chosen,
            max_image_pixels=max_image_pixels,
            synthetic=self.synthetic_table,
            title=self.title,
            local_parts=self.local_parts(),
        )
        bench = self.build(data, chosen)
        data.reader.release()
        return bench

    def hub_configs(self) -> Sequence[str]:
        """Configs to read one by one when the hub has no default one."""
        return ()

    def local_parts(self) -> Sequence[str]:
        """Subfolders of a local copy to read (each file once), when present."""
        return ()

    @abstractmethod
    def build(self, data: Table, split: str | None) -> PreferenceBenchmark:
        """Validate the table and turn it into comparisons and candidates."""

    @abstractmethod
    def synthetic_dataset(self, split: str | None = None) -> Any:
        """erb's synthetic version as a ``datasets.Dataset`` in the benchmark's own schema
        (deterministic: the same rows and bytes every time)."""

    def synthetic_table(self, split: str | None = None) -> pa.Table:
        """:meth:`synthetic_dataset` as an Arrow table (what ``--dataset mini`` loads)."""
        return self.synthetic_dataset(split).data.table

    @abstractmethod
    def authors_pointwise(
        self, bench: PreferenceBenchmark, scores: Mapping[str, float | None]
    ) -> AuthorsResult:
        """The authors' numbers for a judge that scores each candidate (None: failed)."""

    @abstractmethod
    def authors_pairwise(
        self, bench: PreferenceBenchmark, verdicts: Mapping[tuple[int, str], str | None]
    ) -> AuthorsResult:
        """The authors' numbers for a pairwise judge: ``verdicts[(index, order)]`` is
        ``first``/``second``/``tie``/``tie-good``/``tie-bad`` in the order shown
        (``forward``: the dataset's order; ``reverse``: swapped), None when it failed."""


def finish(
    adapter: BenchmarkAdapter,
    data: Table,
    split: str | None,
    comparisons: list[Comparison],
    book: CandidateBook,
    details: dict[str, Any] | None = None,
) -> PreferenceBenchmark:
    """The benchmark from validated parts, with its fingerprint."""
    return PreferenceBenchmark(
        benchmark=adapter.name,
        source=data.label,
        revision=data.revision,
        split=split,
        comparisons=comparisons,
        candidates=book.candidates,
        aliases=book.aliases,
        fingerprint=fingerprint_of(adapter.name, split, comparisons),
        synthetic=data.synthetic,
        details=details or {},
        locations=book.locations,
    )


def image_struct(blob: bytes) -> dict[str, Any]:
    """An image cell as ``datasets`` stores it."""
    return {"bytes": blob, "path": None}


def flip(verdict: str | None) -> str | None:
    """A verdict seen in the other order: first <-> second; ties unchanged."""
    return {"first": "second", "second": "first"}.get(verdict or "", verdict)


def three_way(verdict: str | None) -> str | None:
    """``tie-good`` and ``tie-bad`` are ties."""
    return "tie" if verdict in ("tie-good", "tie-bad") else verdict


__all__ = [
    "LABELS",
    "AuthorsResult",
    "BenchmarkAdapter",
    "BenchmarkError",
    "CandidateBook",
    "Comparison",
    "ImageRefs",
    "Label",
    "PreferenceBenchmark",
    "Table",
    "check_schema",
    "content_key",
    "fingerprint_of",
    "finish",
    "flip",
    "image_struct",
    "is_image_list_type",
    "is_image_type",
    "is_string_type",
    "open_table",
    "three_way",
]
