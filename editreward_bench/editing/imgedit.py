"""ImgEdit-Bench, basic suite: the user's copy, checked, and a model's outputs.

ImgEdit's repository has no licence, so erb ships none of it: ``--dataset DIR`` is the
user's folder holding ``basic_edit.json`` and ``prompts.json`` (from ImgEdit's
``Benchmark/Basic``) with the original images at ``DIR/<id>`` as extracted from
``Benchmark.tar`` of the HF dataset ``sysuyy/ImgEdit`` (``--images`` when they live
elsewhere). ``imgedit-mini`` is erb's synthetic version in the same shape, with made-up
rubrics.

``basic_edit.json`` maps each item's key (``"1082"``) to ``{"id": "<dir>/<file>.jpg",
"prompt": ..., "edit_type": ...}``: 737 items in 9 edit types. ``prompts.json`` maps each
edit type to its rubric, whose ``<edit_prompt>`` is replaced by the item's prompt. The
output of item KEY is ``OUTPUTS/KEY.png`` (later samples ``KEY_sample<t>.png``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..judges.imgedit import PLACEHOLDER
from .gedit import EditBenchmarkError, candidate_key, detect_layout, read_jsonl_paths, sample_name
from .items import ImageRef, MissingOutput, RubricItem

MINI = "imgedit-mini"
#: The 9 edit types of the basic suite.
TYPES: tuple[str, ...] = ("action", "add", "adjust", "background", "compose", "extract",
                          "remove", "replace", "style")  # fmt: skip


@dataclass(frozen=True)
class ImgEditRow:
    index: int
    key: str
    image_id: str
    prompt: str
    edit_type: str


@dataclass
class ImgEditBench:
    source: str
    rows: list[ImgEditRow]
    rubrics: dict[str, str]
    fingerprint: str
    synthetic: bool
    images_label: str
    _image: Callable[[str], bytes] = field(repr=False)
    _image_sha: dict[str, str] = field(repr=False, default_factory=dict)

    @property
    def types(self) -> list[str]:
        """Edit types in the order they first appear in ``basic_edit.json``."""
        return list(dict.fromkeys(row.edit_type for row in self.rows))

    def rubric_prompt(self, row: ImgEditRow) -> str:
        return self.rubrics[row.edit_type].replace(PLACEHOLDER, row.prompt)

    def original(self, row: ImgEditRow) -> ImageRef:
        return ImageRef(f"{self.images_label}/{row.image_id}", loader=lambda: self._image(row.image_id),
                        known_sha=self._image_sha.get(row.image_id))  # fmt: skip

    def describe(self) -> dict[str, Any]:
        return {
            "name": "ImgEdit-Bench (basic)",
            "source": self.source,
            "revision": None,
            "images": self.images_label,
            "fingerprint": self.fingerprint,
            "rows": len(self.rows),
            "synthetic": self.synthetic,
        }


def _read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise EditBenchmarkError(
            f"{path} is missing: --dataset must be the folder holding ImgEdit's {what} "
            "(from its Benchmark/Basic), or imgedit-mini"
        ) from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise EditBenchmarkError(f"cannot read {path}: {exc}") from exc


def load_imgedit(dataset: str | Path | None, images: Path | None = None) -> ImgEditBench:
    """Load the user's ImgEdit-Bench basic suite (or ``imgedit-mini``) and check every item."""
    if dataset is None:
        raise EditBenchmarkError(
            "ImgEdit-Bench is not on the hub in a form erb can load: pass --dataset DIR, the "
            "folder with basic_edit.json and prompts.json from ImgEdit's Benchmark/Basic (images "
            f"from Benchmark.tar of sysuyy/ImgEdit, --images if elsewhere), or --dataset {MINI}"
        )
    if str(dataset) == MINI:
        from .synth import imgedit_mini

        edits, rubrics, blobs = imgedit_mini()

        def from_memory(image_id: str) -> bytes:
            return blobs[image_id]

        return _build(
            MINI, edits, rubrics, from_memory, MINI, synthetic=True, exists=blobs.__contains__
        )
    folder = Path(dataset).expanduser()
    if not folder.is_dir():
        raise EditBenchmarkError(
            f"--dataset {folder}: no such folder (it must hold basic_edit.json and prompts.json)"
        )
    edits = _read_json(folder / "basic_edit.json", "basic_edit.json")
    rubrics = _read_json(folder / "prompts.json", "prompts.json")
    root = (images or folder).expanduser()

    def from_disk(image_id: str) -> bytes:
        return (root / image_id).read_bytes()

    return _build(str(folder), edits, rubrics, from_disk, str(root), synthetic=False,
                  exists=lambda image_id: (root / image_id).is_file())  # fmt: skip


def _build(label: str, edits: Any, rubrics: Any, image: Callable[[str], bytes], images_label: str,
           *, synthetic: bool, exists: Callable[[str], bool]) -> ImgEditBench:  # fmt: skip
    if not isinstance(edits, dict) or not edits:
        raise EditBenchmarkError(
            f"{label}/basic_edit.json must map item keys to edits, got {type(edits).__name__}"
        )
    if not isinstance(rubrics, dict) or not all(isinstance(v, str) for v in rubrics.values()):
        raise EditBenchmarkError(f"{label}/prompts.json must map each edit type to its rubric text")
    rows = []
    for i, (key, item) in enumerate(edits.items()):
        where = f"{label}/basic_edit.json item {key!r}"
        if not isinstance(item, dict):
            raise EditBenchmarkError(f"{where}: must be an object with id, prompt and edit_type")
        for name in ("id", "prompt", "edit_type"):
            if not isinstance(item.get(name), str) or not item[name].strip():
                raise EditBenchmarkError(
                    f"{where}: {name!r} must be a non-empty string, got {item.get(name)!r}"
                )
        if item["edit_type"] not in TYPES:
            raise EditBenchmarkError(
                f"{where}: edit_type {item['edit_type']!r} is not one of the basic suite's 9 ({', '.join(TYPES)})"
            )
        if item["edit_type"] not in rubrics:
            raise EditBenchmarkError(
                f"{where}: prompts.json has no rubric for edit type {item['edit_type']!r}"
            )
        rows.append(ImgEditRow(i, str(key), item["id"], item["prompt"], item["edit_type"]))
    absent = [row for row in rows if not exists(row.image_id)]
    if absent:
        raise EditBenchmarkError(
            f"{len(absent)} of {len(rows)} original images are missing, e.g. {images_label}/{absent[0].image_id} "
            f"(item {absent[0].key!r}); pass --images DIR, the folder extracted from ImgEdit's Benchmark.tar "
            "where the items' ids are relative paths"
        )
    digest = hashlib.sha256()
    for kind in sorted({row.edit_type for row in rows}):
        digest.update(f"{kind}\x1f{rubrics[kind]}\x1e".encode())
    shas: dict[str, str] = {}
    for row in rows:
        if row.image_id not in shas:
            shas[row.image_id] = hashlib.sha256(image(row.image_id)).hexdigest()
        digest.update("\x1f".join((row.key, row.image_id, row.prompt, row.edit_type,
                                   shas[row.image_id])).encode() + b"\x1e")  # fmt: skip
    return ImgEditBench(label, rows, dict(rubrics), "sha256:" + digest.hexdigest(), synthetic,
                        images_label, image, shas)  # fmt: skip


def rubrics_without_placeholder(bench: ImgEditBench) -> list[str]:
    """Edit types whose rubric has no ``<edit_prompt>`` (the instruction would not be sent)."""
    return [kind for kind in bench.types if PLACEHOLDER not in bench.rubrics[kind]]


def imgedit_outputs(
    bench: ImgEditBench, outputs: Path, samples: int = 1
) -> tuple[list[RubricItem | MissingOutput], str]:
    """Each item's first ``samples`` outputs (``basic_edit.json`` order), found or missing."""
    layout = detect_layout(outputs)
    if layout == "step1x":
        layout = "flat"  # ImgEdit's outputs are flat; a fullset/ folder there is someone else's
    listed = read_jsonl_paths(outputs) if layout == "jsonl" else {}
    found: list[RubricItem | MissingOutput] = []
    for row in bench.rows:
        for t in range(samples):
            if layout == "jsonl":
                entry = listed.get((row.key, t))
                path = entry["path"] if entry else None
            else:
                path = outputs / sample_name(row.key, t)
            common: dict[str, Any] = {"key": candidate_key(row.key, t), "item_key": row.key, "sample": t,
                      "group": row.edit_type}  # fmt: skip
            if path is None or not path.is_file():
                found.append(
                    MissingOutput(
                        **common, why=f"no output at {path or 'any line of ' + str(outputs)}"
                    )
                )
                continue
            found.append(RubricItem(**common, instruction=row.prompt, source=bench.original(row),
                                    edited=ImageRef(str(path), path),
                                    rubric_prompt=bench.rubric_prompt(row)))  # fmt: skip
    if not any(isinstance(f, RubricItem) for f in found):
        raise EditBenchmarkError(
            f"no output found for any of the {len(bench.rows)} items in {outputs} "
            "(looked for KEY.png); check --outputs and --benchmark"
        )
    return found, layout
