"""The GEdit-Bench parity case: a dataset in GEdit-Bench's schema, a model's outputs in
Step1X-Edit's layout, and the judge's scripted answers.

``tests/snapshots/make_gedit_parity.py`` drives Step1X-Edit's own ``viescore`` code and
``calculate_statistics.py`` with this case against :class:`scripted_vlm.ScriptedVLM` and
prints the snapshot; ``tests/test_editing_gedit.py`` drives erb with the same case against
the same server and compares with ``==``. Everything here is deterministic.

Answers come in the formats judges write (plain, fenced, delimited, bare lists, a single
number, unquoted keys, floats, text around the JSON), and some items take upstream's
other paths: an answer asked again after one that does not parse, an answer without JSON
twice (upstream invents a score; erb fails the item), broken JSON three times, an answer
without ``score`` or with strings as scores (upstream retries the item), a dropped
connection and an HTTP 503 page (upstream retries the item; erb retries the request), a
content-filter refusal, out-of-range and negative scores, and missing files.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from random import Random
from typing import Any

from PIL import Image
from scripted_vlm import DROP, FILTER, HTML_503, marker, marker_of, message_parts

from editreward_bench.editing.gedit import GROUPS

PER_GROUP_EN = 3
MODEL = "parity-model"


@dataclass(frozen=True)
class CaseRow:
    number: int  # the item's marker (row order among rows with outputs)
    key: str
    task_type: str
    language: str
    instruction: str
    intersection: bool


def rows() -> list[CaseRow]:
    out = []
    number = 0
    for i in range(PER_GROUP_EN):
        for g in GROUPS:
            key = hashlib.sha256(f"parity/{g}/en/{i}".encode()).hexdigest()[:32]
            out.append(CaseRow(number, key, g, "en", f"Parity edit {number}: change the {g.replace('_', ' ')} (\"{i}\").",
                               number % 3 != 1))  # fmt: skip
            number += 1
    for g in GROUPS[:4]:
        key = hashlib.sha256(f"parity/{g}/cn/0".encode()).hexdigest()[:32]
        out.append(CaseRow(number, key, g, "cn", f"一致性测试 {number}：{g}", True))
        number += 1
    return out


def default_answer(number: int, kind: str, n: int) -> str:
    rng = Random(f"{number}/{kind}/{n}")
    low = 3 if kind == "sc" else 4
    a, b = rng.randint(low, 10), rng.randint(low, 10)
    return json.dumps({"score": [a, b], "reasoning": f"item {number} {kind} answer {n}"})


FENCED = '```json\n{\n  "score": [8, 6],\n  "reasoning": "fenced"\n}\n```'
DELIMITED = '||V^=^V||\n{"score": [5, 9], "reasoning": "delimited"}\n||V^=^V||'
#: Per item number: {kind: [answer of request 0, request 1, ...]} (the last one repeats).
SPECIAL: dict[int, dict[str, list[str]]] = {
    0: {"sc": [FENCED], "pq": [FENCED]},
    1: {
        "sc": ['Sure. {"score": [7, 7], "reasoning": "text around"} Hope this helps.'],
        "pq": ['Result:\n{"score": [9, 8], "reasoning": "text around"}\n'],
    },
    2: {"sc": [DELIMITED], "pq": [DELIMITED]},
    3: {"sc": ["[6, 9]"], "pq": ["[7,8]"]},
    4: {"pq": ["7"]},
    5: {
        "sc": ["{score: 8, reasoning: looks right}"],
        "pq": ["{'score': [7, 9], 'reasoning': 'single quotes'}"],
    },
    6: {
        "sc": ['{"score": [7.5, 8.25], "reasoning": "floats"}'],
        "pq": ['{"score": [6.5, 9], "reasoning": "floats"}'],
    },
    7: {"sc": ["The edit looks fine to me."]},
    8: {"sc": ["I can't tell.", "Still no idea."]},
    9: {
        "pq": ['{"score": [7, }', '{"score": [8, }', '{"score": [9, 8], "reasoning": "third time"}']
    },
    10: {"sc": ['{"rating": [7, 8], "reasoning": "no score key"}']},
    11: {"sc": [DROP]},
    12: {"sc": [HTML_503]},
    13: {"sc": ['{"score": [11, 9], "reasoning": "out of range"}']},
    14: {"sc": ['{"score": [6], "reasoning": "one score"}']},
    15: {"sc": ['{"score": ["7", "8"], "reasoning": "strings"}']},
    16: {"pq": [FILTER, FILTER]},
    25: {"pq": [FILTER]},
    17: {"sc": ['{"score": [-1, 5], "reasoning": "negative"}']},
    20: {"sc": ['Here you go:\n{\n"score": [5, 7],\n"reasoning": "line one"\n}\nThanks!']},
    21: {"sc": ['||V^=^V|| {"score": [6, 6], "reasoning": "one delimiter"}']},
    22: {"pq": ['{"score": 7, "reasoning": "scalar"}']},
    23: {"sc": ['{"score": [3, 4]} and {"score": [5, 6]}']},
    24: {"pq": ['{"Score": [7, 7], "reasoning": "capital S"}']},
    26: {"sc": ["rate_limit_exceeded"]},
}
#: Items whose output is not there, or whose source (``_SRCIMG``) is not.
NO_OUTPUT = {18}
NO_SOURCE = {19}
#: Items whose source the model saw is RGBA or palette (upstream opens it as it is).
SOURCE_MODE = {27: "RGBA", 28: "P"}
#: Items whose output is not at the source's size (the judge is sent it resized).
OUTPUT_SIZE = {2: (128, 96), 5: (128, 96), 6: (80, 40)}
SIZE = (64, 48)


def script(number: int, kind: str, n: int) -> str:
    answers = SPECIAL.get(number, {}).get(kind)
    if answers is None:
        return default_answer(number, kind, n)
    if n < len(answers):
        return answers[n]
    # After its scripted answers an item answers plainly (a new, parseable answer).
    return default_answer(number, kind, n)


def identify(body: dict[str, Any]) -> tuple[int, str]:
    _, urls = message_parts(body)
    return marker_of(urls[-1]), "sc" if len(urls) == 2 else "pq"


def _source(row: CaseRow) -> Image.Image:
    rng = Random(f"source/{row.key}")
    img = Image.new("RGB", SIZE, (rng.randrange(256), rng.randrange(256), rng.randrange(256)))
    for _ in range(6):
        x, y = rng.randrange(SIZE[0]), rng.randrange(SIZE[1])
        img.paste(
            (rng.randrange(256), rng.randrange(256), rng.randrange(256)), (x, y, x + 9, y + 7)
        )
    return img


def _edited(row: CaseRow) -> Image.Image:
    size = OUTPUT_SIZE.get(row.number, SIZE)
    scale = size[0] / SIZE[0]
    img = _source(row).resize(size)
    rng = Random(f"edit/{row.key}")
    for _ in range(4):
        x, y = rng.randrange(size[0]), rng.randrange(size[1])
        img.paste((rng.randrange(256), 40, 90), (x, y, x + 11, y + 5))
    block = round(32 * scale)
    img.paste(marker(row.number), (0, 0, block, block))
    return img


def dataset() -> Any:
    import datasets

    from editreward_bench.editing.synth import gedit_features

    columns: dict[str, list[Any]] = {name: [] for name in gedit_features()}
    for row in rows():
        png = _png(_source(row))
        columns["key"].append(row.key)
        columns["task_type"].append(row.task_type)
        columns["instruction"].append(row.instruction)
        columns["instruction_language"].append(row.language)
        columns["input_image"].append({"bytes": png, "path": None})
        columns["input_image_raw"].append({"bytes": png, "path": None})
        columns["Intersection_exist"].append(row.intersection)
    return datasets.Dataset.from_dict(columns, features=gedit_features())


def _png(img: Image.Image) -> bytes:
    from io import BytesIO

    buf = BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def write_outputs(results: Path) -> Path:
    """The model's outputs in Step1X-Edit's layout under ``results/<MODEL>``; returns that folder."""
    root = results / MODEL
    for row in rows():
        folder = root / "fullset" / row.task_type / row.language
        folder.mkdir(parents=True, exist_ok=True)
        if row.number not in NO_SOURCE:
            source = _source(row)
            if row.number in SOURCE_MODE:
                source = source.convert(SOURCE_MODE[row.number])
            source.save(folder / f"{row.key}_SRCIMG.png")
        if row.number not in NO_OUTPUT:
            _edited(row).save(folder / f"{row.key}.png")
    return root


def write_case(where: Path) -> tuple[Path, Path]:
    """The dataset saved to disk and the outputs: (dataset folder, outputs folder)."""
    data = where / "gedit-parity"
    dataset().save_to_disk(str(data))
    return data, write_outputs(where / "results")
