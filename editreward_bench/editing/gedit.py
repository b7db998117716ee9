"""GEdit-Bench (``stepfun-ai/GEdit-Bench``): loading, checking, and finding a model's outputs.

The dataset has one row per instruction: ``key``, ``task_type`` (one of 11 groups),
``instruction``, ``instruction_language`` (``en`` or ``cn``, as the data spells them),
``input_image``, ``input_image_raw`` and ``Intersection_exist``; 606 rows per language.
It loads from the hub (with a pinned revision), from a local ``save_to_disk`` copy (a
``Dataset``, or a ``DatasetDict`` whose ``train`` split is used), a parquet file or
folder, or as ``gedit-mini``, erb's synthetic version in the same schema. The schema is
checked before any work; a problem names the row.

A model's outputs are found in Step1X-Edit's layout
(``DIR/fullset/<task_type>/<lang>/<key>.png``, judged against ``<key>_SRCIMG.png``, the
source the model was given), flat (``DIR/<key>.png``, judged against the dataset's
``input_image``), or listed in a JSONL file (``{"key": ..., "path": ...}`` per line,
optionally ``"sample"`` and ``"source"``; relative paths from the file's folder). Later
samples, for Best-of-N, are ``<key>_sample<t>.png`` beside the first, as upstream names them.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .items import EditItem, ImageRef, MissingOutput

HUB_ID = "stepfun-ai/GEdit-Bench"
MINI = "gedit-mini"
#: The 11 task groups in the order Step1X-Edit's calculate_statistics.py averages them.
GROUPS: tuple[str, ...] = (
    "background_change", "color_alter", "material_alter", "motion_change", "ps_human",
    "style_change", "subject-add", "subject-remove", "subject-replace", "text_change",
    "tone_transfer",
)  # fmt: skip
LANGUAGES = ("en", "cn")
REQUIRED_COLUMNS = ("key", "task_type", "instruction", "instruction_language", "input_image",
                    "Intersection_exist")  # fmt: skip
#: Where an output is looked for, by layout.
LAYOUTS = ("step1x", "flat", "jsonl")


class EditBenchmarkError(ValueError):
    """A benchmark or a model's outputs cannot be used; the message names the row or path."""


@dataclass(frozen=True)
class GEditRow:
    index: int
    key: str
    task_type: str
    instruction: str
    language: str
    intersection: bool


@dataclass
class GEditBench:
    """GEdit-Bench's rows (both languages) and access to their ``input_image`` bytes."""

    source: str
    revision: str | None
    rows: list[GEditRow]
    fingerprint: str
    synthetic: bool
    _image: Callable[[int], bytes] = field(repr=False)
    _image_sha: dict[int, str] = field(repr=False, default_factory=dict)

    def rows_for(self, language: str) -> list[GEditRow]:
        if language not in LANGUAGES:
            hint = (
                " (Chinese is 'cn' in GEdit-Bench)"
                if language.lower() in {"zh", "zh-cn", "chinese"}
                else ""
            )
            raise EditBenchmarkError(
                f"language {language!r}: GEdit-Bench spells its languages "
                f"{' and '.join(LANGUAGES)}{hint}"
            )
        return [row for row in self.rows if row.language == language]

    def input_image(self, row: GEditRow) -> ImageRef:
        return ImageRef(
            f"input_image of row {row.index}",
            loader=lambda: self._image(row.index),
            known_sha=self._image_sha.get(row.index),
        )

    def describe(self) -> dict[str, Any]:
        return {
            "name": "GEdit-Bench",
            "source": self.source,
            "revision": self.revision,
            "fingerprint": self.fingerprint,
            "rows": len(self.rows),
            "synthetic": self.synthetic,
        }


def _open(source: str, revision: str | None, split: str | None) -> tuple[Any, Path | None, str]:
    from ..benchmark import BenchmarkError, _load_hub, _load_local, looks_like_path

    if source == MINI:
        from .synth import gedit_mini

        return gedit_mini(), None, MINI
    path = Path(source).expanduser()
    try:
        if path.exists():
            return (
                _load_local(path, split or _train_if_dict(path)),
                (path if path.is_dir() else path.parent),
                str(path),
            )
        if looks_like_path(source) or source.count("/") != 1:
            raise EditBenchmarkError(
                f"GEdit-Bench dataset {source}: no such file or folder; give a saved copy, "
                f"'{MINI}', or the hub id {HUB_ID}"
            )
        return _load_hub(source, revision, split or "train"), None, source
    except BenchmarkError as exc:
        raise EditBenchmarkError(str(exc).replace("--dataset mini", f"--dataset {MINI}")) from exc


def _train_if_dict(path: Path) -> str | None:
    """A saved ``DatasetDict`` is read at its ``train`` split (GEdit-Bench's only one)."""
    return "train" if (path / "dataset_dict.json").is_file() else None


def load_gedit(
    source: str | os.PathLike[str] = HUB_ID,
    revision: str | None = None,
    *,
    split: str | None = None,
) -> GEditBench:
    """Load GEdit-Bench (or a dataset in its schema) and check every row."""
    import datasets

    from ..benchmark import SYNTHETIC_TAG, _cell_bytes

    ds, base_dir, label = _open(os.fspath(source), revision, split)
    names = list(ds.column_names)
    if {"output_images", "dimension"} <= set(names):
        raise EditBenchmarkError(
            f"{label} is EditReward-Bench (pairs of edits), not GEdit-Bench; score it with `erb evaluate`"
        )
    missing = [c for c in REQUIRED_COLUMNS if c not in names]
    if missing:
        raise EditBenchmarkError(
            f"{label} is not in GEdit-Bench's schema: it lacks column(s) {missing} (it has {names})"
        )
    if not isinstance(ds.features["input_image"], datasets.Image):
        raise EditBenchmarkError(
            f"{label}: column 'input_image' must be an Image column, not {ds.features['input_image']}"
        )
    text = ds.select_columns([c for c in REQUIRED_COLUMNS if c != "input_image"]).to_list()
    images = ds.select_columns(["input_image"]).cast_column(
        "input_image", datasets.Image(decode=False)
    )

    def image(index: int) -> bytes:
        return _cell_bytes(images[index]["input_image"], base_dir)

    rows: list[GEditRow] = []
    seen: dict[tuple[str, str], int] = {}
    for i, cells in enumerate(text):
        rows.append(_check_row(label, i, cells, seen))
    digest = hashlib.sha256()
    shas: dict[int, str] = {}
    for row in rows:
        try:
            data = image(row.index)
        except Exception as exc:
            raise EditBenchmarkError(
                f"{label} row {row.index} (key {row.key!r}): input_image cannot be read ({exc})"
            ) from exc
        _check_image(label, row, data)
        shas[row.index] = hashlib.sha256(data).hexdigest()
        digest.update("\x1f".join((row.key, row.task_type, row.instruction, row.language,
                                   str(row.intersection), shas[row.index])).encode())  # fmt: skip
        digest.update(b"\x1e")
    description = str(getattr(getattr(ds, "info", None), "description", "") or "")
    return GEditBench(label, revision, rows, "sha256:" + digest.hexdigest(),
                      SYNTHETIC_TAG in description or label == MINI, image, shas)  # fmt: skip


def _check_row(
    label: str, i: int, cells: dict[str, Any], seen: dict[tuple[str, str], int]
) -> GEditRow:
    where = f"{label} row {i}"
    key = cells.get("key")
    if not isinstance(key, str) or not key.strip():
        raise EditBenchmarkError(f"{where}: 'key' must be a non-empty string, got {key!r}")
    where += f" (key {key!r})"
    task_type = cells.get("task_type")
    if task_type not in GROUPS:
        raise EditBenchmarkError(
            f"{where}: task_type {task_type!r} is not one of GEdit-Bench's 11 groups ({', '.join(GROUPS)})"
        )
    language = cells.get("instruction_language")
    if language not in LANGUAGES:
        raise EditBenchmarkError(
            f"{where}: instruction_language {language!r} is not one of {', '.join(LANGUAGES)}"
        )
    instruction = cells.get("instruction")
    if not isinstance(instruction, str) or not instruction.strip():
        raise EditBenchmarkError(
            f"{where}: 'instruction' must be a non-empty string, got {instruction!r}"
        )
    intersection = cells.get("Intersection_exist")
    if not isinstance(intersection, bool):
        raise EditBenchmarkError(
            f"{where}: 'Intersection_exist' must be true or false, got {intersection!r}"
        )
    if (key, language) in seen:
        raise EditBenchmarkError(
            f"{where}: the key is also row {seen[(key, language)]}'s ({language})"
        )
    seen[(key, language)] = i
    return GEditRow(i, key, str(task_type), instruction, str(language), intersection)


def _check_image(label: str, row: GEditRow, data: bytes) -> None:
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as img:
            img.size  # noqa: B018 - the header is enough to know it is an image
    except Exception as exc:
        raise EditBenchmarkError(
            f"{label} row {row.index} (key {row.key!r}): input_image is not a readable image ({exc})"
        ) from exc


# --------------------------------------------------------------------------- outputs


def detect_layout(outputs: Path) -> str:
    if outputs.is_file():
        if outputs.suffix != ".jsonl":
            raise EditBenchmarkError(f"--outputs {outputs}: a file must be a .jsonl list of paths")
        return "jsonl"
    if not outputs.is_dir():
        raise EditBenchmarkError(f"--outputs {outputs}: no such folder or file")
    return "step1x" if (outputs / "fullset").is_dir() else "flat"


def sample_name(key: str, sample: int) -> str:
    """Upstream's file names: ``<key>.png`` for the first sample, ``<key>_sample<t>.png`` after."""
    return f"{key}.png" if sample == 0 else f"{key}_sample{sample}.png"


def candidate_key(key: str, sample: int) -> str:
    return key if sample == 0 else f"{key}_sample{sample}"


def read_jsonl_paths(path: Path) -> dict[tuple[str, int], dict[str, Path]]:
    """``{(key, sample): {"path": ..., "source": ...}}`` from a JSONL list of outputs."""
    found: dict[tuple[str, int], dict[str, Path]] = {}
    base = path.parent
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise EditBenchmarkError(f"cannot read {path}: {exc}") from exc
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except ValueError as exc:
            raise EditBenchmarkError(f"{path}:{n}: not JSON ({exc})") from exc
        if (
            not isinstance(entry, dict)
            or not isinstance(entry.get("key"), str)
            or not isinstance(entry.get("path"), str)
        ):
            raise EditBenchmarkError(f'{path}:{n}: each line needs "key" and "path" strings')
        sample = entry.get("sample", 0)
        if not isinstance(sample, int) or isinstance(sample, bool) or sample < 0:
            raise EditBenchmarkError(
                f'{path}:{n}: "sample" must be a non-negative integer, got {sample!r}'
            )
        if (entry["key"], sample) in found:
            raise EditBenchmarkError(
                f"{path}:{n}: key {entry['key']!r} sample {sample} is listed twice"
            )
        paths = {"path": base / entry["path"]}
        if isinstance(entry.get("source"), str):
            paths["source"] = base / entry["source"]
        found[(entry["key"], sample)] = paths
    return found


def gedit_outputs(
    bench: GEditBench, rows: Sequence[GEditRow], outputs: Path, samples: int = 1
) -> tuple[list[EditItem | MissingOutput], str]:
    """Each row's first ``samples`` outputs (dataset order), found or missing; and the layout."""
    layout = detect_layout(outputs)
    listed = read_jsonl_paths(outputs) if layout == "jsonl" else {}
    found: list[EditItem | MissingOutput] = []
    for row in rows:
        folder = outputs / "fullset" / row.task_type / row.language
        for t in range(samples):
            source: ImageRef | None
            if layout == "step1x":
                edited_path = folder / sample_name(row.key, t)
                src = folder / f"{row.key}_SRCIMG.png"
                source = ImageRef(str(src), src) if src.is_file() else None
                no_source = f"no source image {src} (the image the model was given)"
            elif layout == "flat":
                edited_path = outputs / sample_name(row.key, t)
                source = bench.input_image(row)
            else:
                entry = listed.get((row.key, t))
                edited_path = (
                    entry["path"]
                    if entry
                    else outputs.parent / f"(no line for {row.key} sample {t})"
                )
                src_path = entry.get("source") if entry else None
                source = ImageRef(str(src_path), src_path) if src_path else bench.input_image(row)
                if src_path is not None and not src_path.is_file():
                    source, no_source = None, f"no source image {src_path}"
            common: dict[str, Any] = {"key": candidate_key(row.key, t), "item_key": row.key, "sample": t,
                      "group": row.task_type, "language": row.language,
                      "intersection": row.intersection}  # fmt: skip
            if not edited_path.is_file():
                found.append(MissingOutput(**common, why=f"no output at {edited_path}"))
            elif source is None:
                found.append(MissingOutput(**common, why=no_source))
            else:
                found.append(EditItem(**common, instruction=row.instruction, source=source,
                                      edited=ImageRef(str(edited_path), edited_path)))  # fmt: skip
    if rows and not any(isinstance(f, EditItem) for f in found):
        where = {
            "step1x": f"{outputs}/fullset/<task_type>/<lang>/<key>.png",
            "flat": f"{outputs}/<key>.png",
            "jsonl": f"the lines of {outputs}",
        }[layout]
        raise EditBenchmarkError(
            f"no output found for any of the {len(rows)} items (looked for {where}); "
            "check --outputs, --benchmark and --language"
        )
    return found, layout
