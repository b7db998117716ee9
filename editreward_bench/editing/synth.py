"""Synthetic GEdit-Bench and ImgEdit-Bench, and toy editing models' outputs for them.

Both benchmarks come in their authors' schema, built in memory from code (nothing is
downloaded, nothing bundled as binary): ``gedit-mini`` has the GEdit-Bench columns, 11
task groups, English and Chinese rows and an ``Intersection_exist`` flag; ``imgedit-mini``
has ImgEdit's ``basic_edit.json`` and ``prompts.json`` shapes, 9 edit types, and rubrics
made up for it (ImgEdit's own rubric texts cannot ship with erb). Scenes and instructions
come from erb's EditReward-Bench generator, so an edit that follows the instruction is
known by construction.

Toy editing models write outputs the way real ones are laid out (Step1X-Edit's
``fullset/<task_type>/<lang>/<key>.png`` with ``<key>_SRCIMG.png``, or ImgEdit's flat
``<key>.png``), with ``<key>_sample<t>.png`` for the extra samples Best-of-N picks from:

- ``careful``: mostly follows the instruction, sometimes with noise, rarely wrong;
- ``sloppy``: often leaves the image unchanged, makes the wrong change or overedits.
"""

from __future__ import annotations

import hashlib
import json
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, replace
from io import BytesIO
from pathlib import Path
from random import Random
from typing import Any

from PIL import Image, ImageFilter

from ..benchmark import SYNTHETIC_TAG
from ..synth import Task, make_task, render
from .gedit import GROUPS, sample_name

GEDIT_MINI = "gedit-mini"
IMGEDIT_MINI = "imgedit-mini"
#: ImgEdit's 9 edit types, each drawn like the EditReward-Bench subtask that matches it.
IMGEDIT_TYPES: dict[str, str] = {
    "add": "subject-add", "remove": "subject-remove", "replace": "subject-replace",
    "adjust": "color_alter", "style": "style_change", "background": "background_change",
    "extract": "extract", "action": "motion_change", "compose": "compose",
}  # fmt: skip
MODELS = ("careful", "sloppy")
SIZE = 64


def _png(img: Image.Image) -> bytes:
    buf = BytesIO()
    img.save(buf, format="PNG", compress_level=6)
    return buf.getvalue()


def _jpeg(img: Image.Image) -> bytes:
    buf = BytesIO()
    img.save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def _rng(*parts: object) -> Random:
    return Random(zlib.crc32("/".join(map(str, parts)).encode()))


def _key(*parts: object) -> str:
    return hashlib.sha256("/".join(map(str, parts)).encode()).hexdigest()[:32]


@dataclass(frozen=True)
class SynthItem:
    key: str
    group: str
    language: str
    instruction: str
    intersection: bool
    task: Task


def gedit_items(per_group: int = 3, cn_per_group: int = 1, seed: int = 0) -> list[SynthItem]:
    """The rows of ``gedit-mini``: ``per_group`` English and ``cn_per_group`` Chinese per group."""
    items = []
    for group in GROUPS:
        for lang, count in (("en", per_group), ("cn", cn_per_group)):
            for i in range(count):
                task = make_task(group, _rng(seed, "gedit", group, lang, i))
                instruction = task.instruction if lang == "en" else f"（中文）{task.instruction}"
                items.append(SynthItem(_key(seed, group, lang, i), group, lang, instruction,
                                       i % 3 != 2, task))  # fmt: skip
    return items


def gedit_mini(seed: int = 0) -> Any:
    """``gedit-mini`` as a ``datasets.Dataset`` in GEdit-Bench's schema (marked synthetic)."""
    import datasets

    items = gedit_items(seed=seed)
    columns: dict[str, list[Any]] = {name: [] for name in FEATURES}
    for item in items:
        source = render(item.task.source, SIZE)
        columns["key"].append(item.key)
        columns["task_type"].append(item.group)
        columns["instruction"].append(item.instruction)
        columns["instruction_language"].append(item.language)
        columns["input_image"].append({"bytes": _png(source), "path": None})
        columns["input_image_raw"].append({"bytes": _png(render(item.task.source, SIZE * 2)),
                                           "path": None})  # fmt: skip
        columns["Intersection_exist"].append(item.intersection)
    features = gedit_features()
    info = datasets.DatasetInfo(
        description=f"{SYNTHETIC_TAG} erb's synthetic GEdit-Bench", features=features
    )
    return datasets.Dataset.from_dict(columns, features=features, info=info)


FEATURES = ("key", "task_type", "instruction", "instruction_language", "input_image",
            "input_image_raw", "Intersection_exist")  # fmt: skip


def gedit_features() -> Any:
    import datasets

    text = datasets.Value("string")
    return datasets.Features({
        "key": text, "task_type": text, "instruction": text, "instruction_language": text,
        "input_image": datasets.Image(), "input_image_raw": datasets.Image(),
        "Intersection_exist": datasets.Value("bool"),
    })  # fmt: skip


# --------------------------------------------------------------------------- ImgEdit


#: Made-up rubrics in the shape of ImgEdit's prompts.json: one text per edit type, the
#: instruction at ``<edit_prompt>``, answers as ``Name: N`` lines on 1..5.
_RUBRIC = (
    "You are checking an image edit of the kind '{kind}'. The first image is the original, "
    "the second the edited result. The requested edit: <edit_prompt>\n"
    "Rate each criterion from 1 (poor) to 5 (excellent), one per line, exactly as shown:\n"
    "Request Match: N\nVisual Quality: N\nRest Unchanged: N\n"
    "Then explain your ratings in one short paragraph."
)


def imgedit_rubrics() -> dict[str, str]:
    return {kind: _RUBRIC.format(kind=kind) for kind in IMGEDIT_TYPES}


def imgedit_items(per_type: int = 3, seed: int = 0) -> list[SynthItem]:
    items = []
    number = 100
    for kind, subtask in IMGEDIT_TYPES.items():
        for i in range(per_type):
            task = make_task(subtask, _rng(seed, "imgedit", kind, i))
            items.append(SynthItem(str(number), kind, "en", task.instruction, True, task))
            number += 1
    return items


def imgedit_mini(seed: int = 0) -> tuple[dict[str, Any], dict[str, str], dict[str, bytes]]:
    """``imgedit-mini``: (basic_edit.json, prompts.json, {image id: JPEG bytes})."""
    edits: dict[str, Any] = {}
    images: dict[str, bytes] = {}
    for item in imgedit_items(seed=seed):
        image_id = f"synthetic/{item.key}.jpg"
        edits[item.key] = {"id": image_id, "prompt": item.instruction, "edit_type": item.group}
        images[image_id] = _jpeg(render(item.task.source, SIZE))
    return edits, imgedit_rubrics(), images


def write_imgedit(out: Path, seed: int = 0) -> None:
    """Write ``imgedit-mini`` as ImgEdit lays it out: the two JSON files and the images."""
    edits, rubrics, images = imgedit_mini(seed)
    out.mkdir(parents=True, exist_ok=True)
    (out / "basic_edit.json").write_text(json.dumps(edits, indent=2) + "\n", encoding="utf-8")
    (out / "prompts.json").write_text(json.dumps(rubrics, indent=2) + "\n", encoding="utf-8")
    for image_id, data in images.items():
        path = out / image_id
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


# --------------------------------------------------------------------------- toy models


def toy_edit(item: SynthItem, model: str, sample: int, size: int = SIZE) -> Image.Image:
    """What the toy ``model`` outputs for ``item`` as its sample ``sample``."""
    rng = _rng(model, item.key, sample)
    draw = rng.random()
    task = item.task
    if model == "careful":
        kind = "follow" if draw < 0.6 else "noisy" if draw < 0.85 else "wrong"
    elif model == "sloppy":
        kind = (
            "follow"
            if draw < 0.3
            else "unchanged"
            if draw < 0.55
            else "wrong"
            if draw < 0.8
            else "overedit"
        )
    else:
        raise ValueError(f"unknown toy model {model!r}; known: {', '.join(MODELS)}")
    if kind in ("follow", "noisy"):
        scene = task.follow(task.source)
    elif kind == "wrong":
        scene = task.wrong(task.source)
    elif kind == "overedit":
        scene = replace(task.follow(task.source), overedit=True)
    else:
        scene = task.source
    img = render(scene, size)
    if kind == "noisy":
        img = img.filter(ImageFilter.GaussianBlur(radius=1 + rng.random() * 2))
    return img


def gedit_outputs(seed: int = 0) -> Iterator[tuple[SynthItem, Image.Image]]:
    """(row, source as the model saw it) of every ``gedit-mini`` row."""
    for item in gedit_items(seed=seed):
        yield item, render(item.task.source, SIZE)


def write_gedit_outputs(out: Path, model: str, samples: int = 1, seed: int = 0) -> int:
    """A toy model's outputs for ``gedit-mini`` in Step1X-Edit's layout; returns files written."""
    written = 0
    for item, source in gedit_outputs(seed):
        folder = out / "fullset" / item.group / item.language
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{item.key}_SRCIMG.png").write_bytes(_png(source))
        for t in range(samples):
            (folder / sample_name(item.key, t)).write_bytes(_png(toy_edit(item, model, t)))
            written += 1
    return written


def write_imgedit_outputs(out: Path, model: str, samples: int = 1, seed: int = 0) -> int:
    """A toy model's outputs for ``imgedit-mini``, flat as ImgEdit expects them."""
    out.mkdir(parents=True, exist_ok=True)
    written = 0
    for item in imgedit_items(seed=seed):
        for t in range(samples):
            (out / sample_name(item.key, t)).write_bytes(_png(toy_edit(item, model, t)))
            written += 1
    return written


DEMO = "editing-demo"
DEMO_FOLDERS = ("gedit", "imgedit")


def write_demo(out: Path, *, samples: int = 4, overwrite: bool = False) -> list[str]:
    """Both toy models' outputs for ``gedit-mini`` and ``imgedit-mini`` (``samples`` each), and
    ``imgedit-mini`` as files, under ``out``; returns what was written, one line each.

    ``out`` must be new, empty, or erb's own demo (replaced with ``overwrite``: only the
    folders its marker lists are removed).
    """
    import shutil

    from ..outputs import prepare_output_dir, read_marker, write_marker

    claim = prepare_output_dir(out, DEMO, overwrite=overwrite)
    if claim is not None:
        for name in set(claim.files) & set(DEMO_FOLDERS):
            shutil.rmtree(out / name, ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    if read_marker(out) is None:
        write_marker(out, DEMO, DEMO_FOLDERS)
    lines = []
    write_imgedit(out / "imgedit" / "data")
    lines.append(f"{out / 'imgedit' / 'data'}: imgedit-mini as ImgEdit lays it out (--dataset)")
    for model in MODELS:
        n = write_gedit_outputs(out / "gedit" / model, model, samples)
        lines.append(
            f"{out / 'gedit' / model}: {n} outputs of the toy model '{model}' for gedit-mini"
        )
        n = write_imgedit_outputs(out / "imgedit" / model, model, samples)
        lines.append(
            f"{out / 'imgedit' / model}: {n} outputs of the toy model '{model}' for imgedit-mini"
        )
    write_marker(out, DEMO, DEMO_FOLDERS)
    return lines
