"""``mmrb2-edit``: the image-editing task of Multimodal RewardBench 2 (arXiv:2512.16899).

Licence: CC BY-NC 4.0, released for benchmarking only (not for training). erb says so
whenever it loads the benchmark and in every report of it.

Hub dataset ``rl-research/multimodal-rewardbench-2``, config ``edit``, split ``test`` (the
layout its ``benchmark/build_from_hf.py`` reads; 1,000 expert-annotated pairs). Columns
erb reads (others are tolerated):

- ``pair_id``; ``prompt_text`` (the instruction, with ``<image_N>`` placeholders) and
  ``prompt_images`` (the source image first); ``response_a_images`` and
  ``response_b_images`` (the edit is each list's first image);
- ``chosen``: ``A`` or ``B`` (upper-cased, as upstream does); there are no ties.

Authors' number, as ``evaluate/compute_scores/compute_accuracy.py`` counts it: every pair
is judged in both presentation orders (``forward``: A shown first; ``reverse``: swapped,
whose answer is flipped back) and each judgment that exists counts once:
accuracy = correct judgments / judgments made; a pair without a prediction is "missing".
For a pointwise judge (erb's assumption: upstream scores pairwise judges only) each order
gives the same judgment, A when A's score is higher, B when lower, and ``tie`` when equal
(counted, and wrong); a failed candidate leaves the pair missing.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from ..benchmark import _report
from .base import (
    AuthorsResult,
    BenchmarkAdapter,
    CandidateBook,
    Comparison,
    ImageRefs,
    PreferenceBenchmark,
    Table,
    check_schema,
    finish,
    image_struct,
    is_image_list_type,
    is_string_type,
)
from .synthetic import edit_png, source_png

LICENCE_NOTE = (
    "MMRB2 is licensed CC BY-NC 4.0 and released for benchmarking only: non-commercial, "
    "evaluation-only use (never for training); some responses also carry their generators' "
    "licences (e.g. FLUX.1 [dev], non-commercial)"
)
_LETTER = {"first": "A", "second": "B", "tie": "tie", "tie-good": "tie", "tie-bad": "tie"}


def flip_judgement(judgement: str | None) -> str | None:
    """compute_accuracy.py's ``flip_judgement``: A <-> B, anything else unchanged."""
    return {"A": "B", "B": "A"}.get(judgement or "", judgement)


def task_accuracy(
    chosen: Mapping[str, str], predictions: Mapping[str, dict[str, str | None]]
) -> dict[str, Any]:
    """compute_accuracy.py's ``compute_task_accuracy`` for the edit task.

    ``chosen[pair_id]`` is ``A`` or ``B``; ``predictions[pair_id]`` holds the ``forward``
    and ``reverse`` judgements as the judge answered them (A: the image shown first),
    None where it gave none. Returns the ``TaskResult`` fields.
    """
    evaluated = missing = correct = judged = 0
    for pair_id, truth in chosen.items():
        if pair_id not in predictions:
            missing += 1
            continue
        evaluated += 1
        pred = predictions[pair_id]
        forward = pred.get("forward")
        if forward:
            judged += 1
            correct += forward == truth
        reverse = pred.get("reverse")
        if reverse:
            judged += 1
            correct += flip_judgement(reverse) == truth
    return {
        "task_name": "edit",
        "total_pairs": len(chosen),
        "evaluated_pairs": evaluated,
        "missing_pairs": missing,
        "total_correct": correct,
        "total_evaluated": judged,
        "accuracy": correct / judged if judged > 0 else 0.0,
    }


class MMRB2Edit(BenchmarkAdapter):
    name = "mmrb2-edit"
    title = "MMRB2 (image editing)"
    hub_id = "rl-research/multimodal-rewardbench-2"
    config = "edit"
    splits = ("test",)
    default_split = "test"
    licence = "CC BY-NC 4.0 (benchmarking only)"
    licence_note = LICENCE_NOTE
    size = "1,000 pairs"
    label_form = "chosen: A or B (no ties)"
    authors_metric = (
        "compute_accuracy.py: accuracy over both presentation orders (each judgment counted)"
    )
    candidate_keys = "PAIR_ID/a and PAIR_ID/b"
    paper = "Hu et al., Multimodal RewardBench 2, arXiv:2512.16899"

    def build(self, data: Table, split: str | None) -> PreferenceBenchmark:
        check_schema(
            data,
            self.title,
            {
                "pair_id": (is_string_type, "a string"),
                "prompt_text": (is_string_type, "a string (the instruction)"),
                "prompt_images": (is_image_list_type, "a list of Images (the source first)"),
                "response_a_images": (is_image_list_type, "a list of Images"),
                "response_b_images": (is_image_list_type, "a list of Images"),
                "chosen": (is_string_type, "a string: A or B"),
            },
        )
        ids = data.column("pair_id")
        texts = data.column("prompt_text")
        chosen = [str(c or "").upper() for c in data.column("chosen")]
        n = len(ids)
        raw = data.column("chosen")
        bad = [
            f"row {r} ({ids[r]!r}): chosen={raw[r]!r}"
            for r, c in enumerate(chosen)
            if c not in ("A", "B")
        ]
        if bad:
            raise _report(data.label, "chosen must be A or B", bad)
        empty = []
        for column in ("prompt_images", "response_a_images", "response_b_images"):
            cells = data.table.column(column)
            empty += [
                f"row {r} ({ids[r]!r}): {column} is empty"
                for r in range(n)
                if not cells[r].is_valid or len(cells[r]) == 0
            ]
        if empty:
            raise _report(
                data.label,
                "every pair needs a source image and an edited image per response",
                empty,
            )
        seen: dict[str, int] = {}
        dup = []
        for r, pid in enumerate(ids):
            if pid in seen:
                dup.append(f"{pid!r} (rows {seen[pid]} and {r})")
            seen.setdefault(pid, r)
        if dup:
            raise _report(data.label, "pair_id must be unique", dup)
        refs = ImageRefs(data)
        images = [
            (
                refs.ref(r, "prompt_images", 0),
                refs.ref(r, "response_a_images", 0),
                refs.ref(r, "response_b_images", 0),
            )
            for r in range(n)
        ]
        refs.check()
        book = CandidateBook(data)
        part = split or "test"
        comparisons = []
        multi = 0
        for r, (source, a, b) in enumerate(images):
            assert source is not None and a is not None and b is not None
            instruction = " ".join(re.sub(r"<image_\d+>", " ", texts[r] or "").split())
            multi += len(data.table.column("prompt_images")[r]) > 1
            keys = (
                book.add(instruction, source, a, f"{ids[r]}/a"),
                book.add(instruction, source, b, f"{ids[r]}/b"),
            )
            comparisons.append(
                Comparison(
                    index=r,
                    row=r,
                    row_id=ids[r],
                    group=ids[r],
                    stratum=part,
                    keys=keys,
                    label="first" if chosen[r] == "A" else "second",
                    raw_label=chosen[r],
                )
            )
        return finish(self, data, split, comparisons, book, {"multi_image_prompts": multi})

    def authors_pointwise(
        self, bench: PreferenceBenchmark, scores: Mapping[str, float | None]
    ) -> AuthorsResult:
        chosen = {c.row_id: c.raw_label for c in bench.comparisons}
        predictions: dict[str, dict[str, str | None]] = {}
        for c in bench.comparisons:
            a, b = scores.get(c.keys[0]), scores.get(c.keys[1])
            if a is None or b is None or math.isnan(a) or math.isnan(b):
                continue
            forward = "A" if a > b else "B" if a < b else "tie"
            # Shown swapped, the same scores answer the mirror image; flipped back it agrees.
            reverse = flip_judgement(forward)
            predictions[c.row_id] = {"forward": forward, "reverse": reverse}
        metrics = task_accuracy(chosen, predictions)
        return AuthorsResult(
            metrics=metrics,
            headline=("accuracy", metrics["accuracy"]),
            notes=[
                "compute_accuracy.py: both orders counted; for a pointwise judge both give the "
                "same judgment (equal scores answer 'tie', counted wrong; erb's assumption)",
                LICENCE_NOTE,
            ],
        )

    def authors_pairwise(
        self, bench: PreferenceBenchmark, verdicts: Mapping[tuple[int, str], str | None]
    ) -> AuthorsResult:
        chosen = {c.row_id: c.raw_label for c in bench.comparisons}
        predictions: dict[str, dict[str, str | None]] = {}
        for c in bench.comparisons:
            pred: dict[str, str | None] = {}
            for order in ("forward", "reverse"):
                if (c.index, order) in verdicts:
                    pred[order] = _LETTER.get(verdicts[(c.index, order)] or "")
            if pred:
                predictions[c.row_id] = pred
        metrics = task_accuracy(chosen, predictions)
        return AuthorsResult(
            metrics=metrics,
            headline=("accuracy", metrics["accuracy"]),
            notes=[
                "compute_accuracy.py: each order's judgment counts once; a failed verdict is "
                "no judgment (left out of total_evaluated); a tie verdict is counted wrong",
                LICENCE_NOTE,
            ],
        )

    def synthetic_dataset(self, split: str | None = None) -> Any:
        import datasets

        from .tiger import _synthetic_info

        features = datasets.Features(
            {
                "pair_id": datasets.Value("string"),
                "prompt_source": datasets.Value("string"),
                "prompt_text": datasets.Value("string"),
                "prompt_images": datasets.Sequence(datasets.Image()),
                "response_a_text": datasets.Value("string"),
                "response_a_images": datasets.Sequence(datasets.Image()),
                "response_a_model": datasets.Value("string"),
                "response_b_text": datasets.Value("string"),
                "response_b_images": datasets.Sequence(datasets.Image()),
                "response_b_model": datasets.Value("string"),
                "chosen": datasets.Value("string"),
                "prompt_metadata": datasets.Value("string"),
                "human_annotations": datasets.Value("string"),
            }
        )
        return datasets.Dataset.from_list(synthetic_rows(), features=features,
                                          info=_synthetic_info(self, features))  # fmt: skip


_SYNTHETIC = (
    ("A", 0.9, 0.2),
    ("B", 0.3, 0.7),
    ("A", 0.6, 0.5),
    ("B", 0.1, 0.9),
    ("a", 0.8, 0.4),
    ("B", 0.5, 0.55),
    ("A", 0.7, 0.3),
    ("B", 0.35, 0.6),
)


def synthetic_rows() -> list[dict[str, Any]]:
    """erb's synthetic MMRB2 edit pairs (hub schema; one ``chosen`` is lower-case)."""
    rows = []
    for r, (chosen, qa, qb) in enumerate(_SYNTHETIC):
        scene = f"mmrb2-{r}"
        rows.append(
            {
                "pair_id": f"synthetic_edit_{r}_model-a_model-b",
                "prompt_source": "synthetic",
                "prompt_text": f"<image_0> Make the square brighter ({r}).",
                "prompt_images": [image_struct(source_png(scene))],
                "response_a_text": "",
                "response_a_images": [image_struct(edit_png(scene, qa, f"{scene}/a"))],
                "response_a_model": "model-a",
                "response_b_text": "",
                "response_b_images": [image_struct(edit_png(scene, qb, f"{scene}/b"))],
                "response_b_model": "model-b",
                "chosen": chosen,
                "prompt_metadata": "{}",
                "human_annotations": "[]",
            }
        )
    return rows
