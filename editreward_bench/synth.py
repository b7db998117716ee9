"""Synthetic benchmarks in the exact EditReward-Bench schema.

Every scene is a few flat shapes on a coloured background, so the correct
ordering of two edits is known by construction. For each source image and
instruction three edits are drawn:

- ``A``: follows the instruction with a minimal change;
- ``B``: fails it (leaves the image unchanged, or makes the wrong change);
- ``C``: follows it but overedits (the whole picture changes too).

Rows compare them as people would: prompt following ``(A, B)`` or ``(C, B)``,
consistency ``(A, C)``, overall ``(A, B)``. Candidate keys recur across rows
and dimensions, as in the real benchmark.

The generator is deterministic: ``erb data make-mini`` rewrites ``data/mini``
byte for byte (erb's marker ``.erb-output.json`` included). Output folders
follow the rule in outputs.py: erb writes only into a missing or empty folder or
its own earlier output (replaced with ``overwrite``), and replaces only its files.
"""

from __future__ import annotations

import hashlib
import tempfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from io import BytesIO
from pathlib import Path
from random import Random
from typing import Any

from PIL import Image, ImageDraw, ImageFilter, ImageOps

from .benchmark import SYNTHETIC_TAG
from .outputs import MINI, SYNTHETIC, prepare_output_dir, staged_output_dir
from .taxonomy import SUBTASKS

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40),
    "green": (40, 170, 70),
    "blue": (40, 80, 220),
    "yellow": (235, 205, 40),
    "purple": (140, 60, 190),
    "orange": (240, 140, 30),
}
BACKGROUNDS: dict[str, tuple[int, int, int]] = {
    "grey": (200, 200, 200),
    "cream": (245, 235, 210),
    "teal": (120, 190, 190),
    "pink": (240, 200, 210),
}
SHAPES = ("circle", "square", "triangle")


@dataclass(frozen=True)
class Shape:
    kind: str  # circle | square | triangle | person | text
    colour: str
    box: tuple[float, float, float, float]  # relative (x0, y0, x1, y1)
    texture: str = "flat"  # flat | stripes
    pose: str = "neutral"  # person: neutral | smile | arms_up ; text: the word


@dataclass(frozen=True)
class Scene:
    background: str
    shapes: tuple[Shape, ...]
    style: str = "photo"  # photo | sketch | warm
    overedit: bool = False  # a global change on top of whatever else was asked

    def with_shapes(self, shapes: tuple[Shape, ...]) -> Scene:
        return replace(self, shapes=shapes)


# --------------------------------------------------------------------------- drawing


def render(scene: Scene, size: int) -> Image.Image:
    bg = BACKGROUNDS.get(scene.background, COLOURS.get(scene.background, (255, 255, 255)))
    img = Image.new("RGB", (size, size), bg)
    draw = ImageDraw.Draw(img)
    for shape in scene.shapes:
        _draw_shape(draw, shape, size)
    if scene.style == "sketch":
        img = ImageOps.grayscale(img).filter(ImageFilter.CONTOUR).convert("RGB")
    elif scene.style == "warm":
        r, g, b = img.split()
        img = Image.merge(
            "RGB", (r.point(lambda v: min(255, v + 40)), g, b.point(lambda v: v * 7 // 10))
        )
    if scene.overedit:
        # A smooth diagonal wash over the whole picture.
        wash = Image.linear_gradient("L").resize((size, size)).rotate(45)
        img = Image.composite(img, Image.new("RGB", (size, size), (60, 20, 90)), wash)
    return img


def _draw_shape(draw: ImageDraw.ImageDraw, shape: Shape, size: int) -> None:
    x0, y0, x1, y1 = (round(v * size) for v in shape.box)
    colour = COLOURS.get(shape.colour, (0, 0, 0))
    if shape.kind == "circle":
        draw.ellipse((x0, y0, x1, y1), fill=colour)
    elif shape.kind == "square":
        draw.rectangle((x0, y0, x1, y1), fill=colour)
    elif shape.kind == "triangle":
        draw.polygon([((x0 + x1) // 2, y0), (x1, y1), (x0, y1)], fill=colour)
    elif shape.kind == "person":
        _draw_person(draw, shape, (x0, y0, x1, y1), colour)
    elif shape.kind == "text":
        height = max(8, (y1 - y0))
        draw.rectangle((x0, y0, x1, y1), fill=(250, 250, 250))
        _draw_word(draw, shape.pose, (x0 + height // 6, y0 + height // 6), height * 2 // 3, colour)
    if shape.texture == "stripes":
        step = max(2, (x1 - x0) // 6)
        for x in range(x0, x1, step * 2):
            draw.rectangle((x, y0, min(x + step - 1, x1), y1), fill=(120, 80, 40))


def _draw_person(
    draw: ImageDraw.ImageDraw, shape: Shape, box: tuple[int, ...], colour: tuple[int, int, int]
) -> None:
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    cx = x0 + w // 2
    head = w // 4
    width = max(1, w // 16)
    draw.ellipse((cx - head, y0, cx + head, y0 + 2 * head), fill=(235, 200, 170))
    eye = max(1, head // 5)
    for ex in (cx - head // 2, cx + head // 2):
        draw.ellipse((ex - eye, y0 + head - eye, ex + eye, y0 + head + eye), fill=(20, 20, 20))
    mouth_y = y0 + head * 3 // 2
    if shape.pose == "smile":
        draw.arc(
            (cx - head // 2, mouth_y - head // 3, cx + head // 2, mouth_y + head // 3),
            0,
            180,
            fill=(150, 0, 0),
            width=width,
        )
    else:
        draw.line((cx - head // 2, mouth_y, cx + head // 2, mouth_y), fill=(150, 0, 0), width=width)
    body_top, body_bottom = y0 + 2 * head, y0 + h * 3 // 4
    draw.rectangle((cx - head, body_top, cx + head, body_bottom), fill=colour)
    arm_y = body_top + head // 2
    if shape.pose == "arms_up":
        draw.line((cx - head, arm_y, x0, y0), fill=colour, width=width * 2)
        draw.line((cx + head, arm_y, x1, y0), fill=colour, width=width * 2)
    else:
        draw.line((cx - head, arm_y, x0, body_bottom), fill=colour, width=width * 2)
        draw.line((cx + head, arm_y, x1, body_bottom), fill=colour, width=width * 2)
    draw.line((cx - head // 2, body_bottom, cx - head, y1), fill=colour, width=width * 2)
    draw.line((cx + head // 2, body_bottom, cx + head, y1), fill=colour, width=width * 2)


# A 3x5 block font, so text rendering does not depend on installed fonts.
_GLYPHS = {
    "A": "010101111101101",
    "C": "111100100100111",
    "D": "110101101101110",
    "G": "111100101101111",
    "O": "111101101101111",
    "T": "111010010010010",
    "S": "111100111001111",
    "U": "101101101101111",
    "N": "101111111111101",
    "R": "110101110101101",
    "E": "111100111100111",
    "B": "110101110101110",
}


def _draw_word(
    draw: ImageDraw.ImageDraw,
    word: str,
    origin: tuple[int, int],
    height: int,
    colour: tuple[int, int, int],
) -> None:
    cell = max(1, height // 5)
    x, y = origin
    for char in word:
        bits = _GLYPHS.get(char, "0" * 15)
        for i, bit in enumerate(bits):
            if bit == "1":
                cx, cy = x + (i % 3) * cell, y + (i // 3) * cell
                draw.rectangle((cx, cy, cx + cell - 1, cy + cell - 1), fill=colour)
        x += 4 * cell


# --------------------------------------------------------------------------- tasks

Edit = Callable[[Scene], Scene]


@dataclass(frozen=True)
class Task:
    instruction: str
    source: Scene
    follow: Edit  # the requested edit
    wrong: Edit  # a plausible but wrong edit


def _swap(scene: Scene, index: int, **changes: Any) -> Scene:
    shapes = list(scene.shapes)
    shapes[index] = replace(shapes[index], **changes)
    return scene.with_shapes(tuple(shapes))


def _base_scene(rng: Random) -> tuple[Scene, Shape]:
    bg = rng.choice(sorted(BACKGROUNDS))
    kind = rng.choice(SHAPES)
    colour = rng.choice(sorted(COLOURS))
    x = rng.uniform(0.12, 0.3)
    y = rng.uniform(0.2, 0.4)
    main = Shape(kind, colour, (x, y, x + 0.35, y + 0.35))
    return Scene(bg, (main,)), main


def _other(rng: Random, options: tuple[str, ...] | list[str], exclude: str) -> str:
    return rng.choice([o for o in sorted(options) if o != exclude])


def make_task(subtask: str, rng: Random) -> Task:
    """One instruction with its source scene and its right and wrong edits."""
    scene, main = _base_scene(rng)
    new_colour = _other(rng, list(COLOURS), main.colour)
    new_kind = _other(rng, SHAPES, main.kind)
    wrong_colour = _other(rng, [c for c in COLOURS if c != new_colour], main.colour)
    add_box = (0.6, 0.55, 0.85, 0.8)
    if subtask == "subject-add":
        added = Shape(new_kind, new_colour, add_box)
        return Task(
            f"Add a {new_colour} {new_kind} in the lower right corner.",
            scene,
            lambda s: s.with_shapes((*s.shapes, added)),
            lambda s: s.with_shapes(
                (*s.shapes, replace(added, colour=wrong_colour, box=(0.05, 0.05, 0.2, 0.2)))
            ),
        )
    if subtask == "subject-remove":
        extra = Shape(new_kind, new_colour, add_box)
        src = scene.with_shapes((main, extra))
        return Task(
            f"Remove the {new_colour} {new_kind}.",
            src,
            lambda s: s.with_shapes((s.shapes[0],)),
            lambda s: s.with_shapes((s.shapes[1],)),
        )
    if subtask == "subject-replace":
        return Task(
            f"Replace the {main.colour} {main.kind} with a {main.colour} {new_kind}.",
            scene,
            lambda s: _swap(s, 0, kind=new_kind),
            lambda s: _swap(s, 0, colour=wrong_colour),
        )
    if subtask == "color_alter":
        return Task(
            f"Change the colour of the {main.kind} to {new_colour}.",
            scene,
            lambda s: _swap(s, 0, colour=new_colour),
            lambda s: _swap(s, 0, colour=wrong_colour),
        )
    if subtask == "material_alter":
        return Task(
            f"Make the {main.kind} look like it is made of striped wood.",
            scene,
            lambda s: _swap(s, 0, texture="stripes"),
            lambda s: _swap(s, 0, colour=wrong_colour),
        )
    if subtask == "style_change":
        return Task(
            "Turn the picture into a pencil sketch.",
            scene,
            lambda s: replace(s, style="sketch"),
            lambda s: replace(s, style="warm"),
        )
    if subtask == "tone_transfer":
        return Task(
            "Give the whole image a warm sunset tone.",
            scene,
            lambda s: replace(s, style="warm"),
            lambda s: replace(s, style="sketch"),
        )
    if subtask == "background_change":
        new_bg = _other(rng, list(BACKGROUNDS), scene.background)
        return Task(
            f"Change the background to {new_bg}.",
            scene,
            lambda s: replace(s, background=new_bg),
            lambda s: _swap(s, 0, colour=wrong_colour),
        )
    if subtask == "extract":
        return Task(
            f"Extract the {main.colour} {main.kind} and place it on a plain white background.",
            scene,
            lambda s: replace(s, background="white"),
            lambda s: s.with_shapes(()),
        )
    if subtask in ("ps_human", "motion_change"):
        person = Shape("person", main.colour, (0.3, 0.15, 0.7, 0.9))
        src = Scene(scene.background, (person,))
        if subtask == "ps_human":
            return Task(
                "Make the person smile.",
                src,
                lambda s: _swap(s, 0, pose="smile"),
                lambda s: _swap(s, 0, colour=wrong_colour),
            )
        return Task(
            "Make the person raise both arms.",
            src,
            lambda s: _swap(s, 0, pose="arms_up"),
            lambda s: _swap(s, 0, pose="smile"),
        )
    if subtask == "text_change":
        old, new = rng.choice((("CAT", "DOG"), ("SUN", "RED"), ("BED", "COT")))
        sign = Shape("text", "blue", (0.15, 0.35, 0.85, 0.6), pose=old)
        src = Scene(scene.background, (sign,))
        return Task(
            f"Change the text '{old}' to '{new}'.",
            src,
            lambda s: _swap(s, 0, pose=new),
            lambda s: _swap(s, 0, colour="red"),
        )
    if subtask == "compose":
        companion = Shape(new_kind, new_colour, (0.58, 0.2, 0.88, 0.5))
        return Task(
            f"Place a {new_colour} {new_kind} next to the {main.colour} {main.kind}, at the same height.",
            scene,
            lambda s: s.with_shapes((*s.shapes, companion)),
            lambda s: s.with_shapes(
                (*s.shapes, replace(companion, box=(0.55, 0.75, 0.7, 0.9), colour=wrong_colour))
            ),
        )
    raise ValueError(f"unknown subtask {subtask!r}")


# --------------------------------------------------------------------------- rows


def _png(img: Image.Image) -> bytes:
    buf = BytesIO()
    img.save(buf, format="PNG", optimize=False, compress_level=6)
    return buf.getvalue()


def _item_rng(subtask: str, index: int, seed: int) -> Random:
    return Random(zlib.crc32(f"{seed}/{subtask}/{index}".encode()))


def generate_rows(
    n_rows: int, image_size: int, seed: int = 0, per_subtask: tuple[int, ...] | None = None
) -> Iterator[dict[str, Any]]:
    """Yield benchmark rows; three rows (PF, C, O) per source image.

    ``per_subtask`` gives the number of source images for each subtask (cells of
    unequal size); without it sources cycle over the subtasks until ``n_rows``.
    """
    emitted = 0
    plan: list[tuple[str, int]] = []
    if per_subtask is not None:
        plan = [(s, i) for s, n in zip(SUBTASKS, per_subtask, strict=True) for i in range(n)]
    index = 0
    while emitted < n_rows:
        if per_subtask is not None:
            if index >= len(plan):
                return
            subtask, item = plan[index]
        else:
            subtask, item = SUBTASKS[index % len(SUBTASKS)], index // len(SUBTASKS)
        index += 1
        rng = _item_rng(subtask, item, seed)
        task = make_task(subtask, rng)
        followed = task.follow(task.source)
        edits = {
            "A": followed,
            # B: half the failures leave the image unchanged, half make the wrong edit.
            "B": task.source if item % 2 == 0 else task.wrong(task.source),
            "C": replace(followed, overedit=True),
        }
        source_png = _png(render(task.source, image_size))
        pngs = {name: _png(render(scene, image_size)) for name, scene in edits.items()}
        keys = {name: f"{subtask}/{item:05d}/{name}" for name in edits}
        pf_first = "A" if item % 3 else "C"
        for dimension, (good, bad) in (
            ("prompt_following", (pf_first, "B")),
            ("consistency", ("A", "C")),
            ("overall", ("A", "B")),
        ):
            if emitted >= n_rows:
                return
            yield {
                "key": [keys[good], keys[bad]],
                "instruction": task.instruction,
                "input_image": {"bytes": source_png, "path": None},
                "output_images": [
                    {"bytes": pngs[good], "path": None},
                    {"bytes": pngs[bad], "path": None},
                ],
                "task_type": subtask,
                "dimension": dimension,
            }
            emitted += 1


def features() -> Any:
    from datasets import Features, Image, List, Value

    return Features(
        {
            "key": List(Value("string")),
            "instruction": Value("string"),
            "input_image": Image(),
            "output_images": List(Image()),
            "task_type": Value("string"),
            "dimension": Value("string"),
        }
    )


def write_benchmark(
    out: Path,
    description: str,
    *,
    kind: str = SYNTHETIC,
    overwrite: bool = False,
    **rows_spec: Any,
) -> Path:
    """Write :func:`generate_rows` output as a ``save_to_disk`` folder (the hub's layout).

    Rows stream to disk in small batches, so benchmarks of any size fit in memory.
    ``out`` must be missing, empty, or erb's own ``kind`` output (replaced only with
    ``overwrite``, and then only the files erb wrote); else OutputError, before any work.
    """
    import datasets

    out = Path(out)
    prepare_output_dir(out, kind, overwrite=overwrite)  # before generating anything
    info = datasets.DatasetInfo(description=description, features=features(), license="apache-2.0")
    with tempfile.TemporaryDirectory(prefix="erb-synth-") as tmp:
        staged = datasets.Dataset.from_generator(
            generate_rows,
            gen_kwargs=rows_spec,
            features=features(),
            cache_dir=tmp,
            writer_batch_size=64,
        )
        # A content-derived fingerprint keeps state.json deterministic.
        fingerprint = hashlib.sha256(
            staged.data.table.column("key").to_string().encode()
        ).hexdigest()[:16]
        ds = datasets.Dataset(
            staged.data, info=info, split=datasets.NamedSplit("test"), fingerprint=fingerprint
        )
        with staged_output_dir(out, kind, overwrite=overwrite) as stage:
            ds.save_to_disk(str(stage))
    return out


#: Sources per subtask in the bundled benchmark: unequal cells, 3 rows per source.
MINI_SOURCES = (4, 3, 5, 4, 3, 4, 5, 3, 4, 5, 3, 4, 4)
MINI_IMAGE_SIZE = 96


def make_mini(out: Path, *, overwrite: bool = False) -> Path:
    return write_benchmark(
        out,
        f"{SYNTHETIC_TAG} erb bundled mini benchmark (synthetic, EditReward-Bench schema)",
        kind=MINI,
        overwrite=overwrite,
        n_rows=10**9,
        image_size=MINI_IMAGE_SIZE,
        seed=0,
        per_subtask=MINI_SOURCES,
    )


def make_synthetic(
    out: Path, n_rows: int, image_size: int, seed: int = 0, *, overwrite: bool = False
) -> Path:
    return write_benchmark(
        out,
        f"{SYNTHETIC_TAG} erb synthetic benchmark: {n_rows} rows at {image_size}px, seed {seed}",
        kind=SYNTHETIC,
        overwrite=overwrite,
        n_rows=n_rows,
        image_size=image_size,
        seed=seed,
        per_subtask=None,
    )
