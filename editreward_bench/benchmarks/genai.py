"""``genai-bench-edit``: the image-editing part of GenAI-Bench (GenAI Arena, arXiv:2406.04485).

Hub dataset ``TIGER-Lab/GenAI-Bench``, config ``image_edition``, splits ``test`` and
``test_v1``: papers rarely say which, so the split is part of every result's identity
(run names, ``metrics.json``, leaderboard columns). One row is one human vote on two
edits of one source image. Columns erb reads (others are tolerated):

- ``instruct_prompt`` (the instruction), ``source_prompt`` and ``target_prompt`` (optional
  captions), ``source_image``, ``left_output_image``, ``right_output_image``;
- ``vote_type``: ``leftvote``, ``rightvote``, ``tievote`` or ``bothbad_vote``.

Authors' numbers:

- pairwise judges, as GenAI-Bench's ``inference.py`` (``parse_response``) counts them:
  a leftvote row is right for ``[[A>B]]`` (or ``[[A>>B]]``), a rightvote row for
  ``[[B>A]]``, a tievote row for ``[[A=B]]`` or ``[[A=B=Good]]``, a bothbad_vote row for
  ``[[A=B]]`` or ``[[A=B=Bad]]``; anything else, an unparsed answer included, is wrong;
  ``accuracy`` is the mean over rows;
- pointwise judges (reward models), as EditReward's ``eval_bench.py`` scores GenAI-Bench
  (assumed mapping of votes: left 1, right -1, tie and both-bad 0; a judge's difference is
  left minus right): ``accuracy_with_ties`` (``calc_accuracy_with_ties``: a tie threshold
  tuned on the test set) and ``accuracy_without_ties`` (the rows people did not tie).
"""

from __future__ import annotations

import math
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
    flip,
    image_struct,
    is_image_type,
    is_string_type,
)
from .synthetic import edit_png, source_png
from .tiecal import accuracy_with_ties_prefix, accuracy_without_ties

VOTES = {"leftvote": "first", "rightvote": "second", "tievote": "tie", "bothbad_vote": "tie"}
#: The human label as EditReward's eval_bench.py takes it (1: left, -1: right, 0: tie).
VOTE_SIGN = {"leftvote": 1, "rightvote": -1, "tievote": 0, "bothbad_vote": 0}
#: A verdict as the judge's answer GenAI-Bench's parser sees.
ANSWER = {
    "first": "[[A>B]]",
    "second": "[[B>A]]",
    "tie": "[[A=B]]",
    "tie-good": "[[A=B=Good]]",
    "tie-bad": "[[A=B=Bad]]",
}
#: parse_response: the answers that are right for each vote.
RIGHT = {
    "leftvote": ("[[A>>B]]", "[[A>B]]"),
    "rightvote": ("[[B>>A]]", "[[B>A]]"),
    "tievote": ("[[A=B]]", "[[A=B=Good]]"),
    "bothbad_vote": ("[[A=B]]", "[[A=B=Bad]]"),
}


def genai_correct(vote: str, answer: str | None) -> bool:
    """GenAI-Bench's ``parse_response`` verdict on one row."""
    return answer is not None and answer in RIGHT.get(vote, ())


class GenAIBenchEdit(BenchmarkAdapter):
    name = "genai-bench-edit"
    title = "GenAI-Bench (image editing)"
    hub_id = "TIGER-Lab/GenAI-Bench"
    config = "image_edition"
    splits = ("test", "test_v1")
    default_split = "test"
    licence = "see the dataset card (TIGER-Lab/GenAI-Bench)"
    size = "one row per vote; the size depends on the split (test, test_v1)"
    label_form = "vote_type: leftvote / rightvote / tievote / bothbad_vote"
    authors_metric = (
        "pairwise judges: GenAI-Bench inference.py accuracy (4-way votes); reward models: "
        "EditReward eval_bench.py accuracy with ties (threshold tuned on the test set)"
    )
    candidate_keys = "SPLIT/ROW/left and SPLIT/ROW/right (ROW: the row's position in the split)"
    paper = "Jiang et al., GenAI Arena, arXiv:2406.04485"

    def build(self, data: Table, split: str | None) -> PreferenceBenchmark:
        check_schema(
            data,
            self.title,
            {
                "instruct_prompt": (is_string_type, "a string (the editing instruction)"),
                "source_image": (is_image_type, "an Image"),
                "left_output_image": (is_image_type, "an Image"),
                "right_output_image": (is_image_type, "an Image"),
                "vote_type": (is_string_type, "a string: " + ", ".join(VOTES)),
                "source_prompt": (is_string_type, "a string"),
                "target_prompt": (is_string_type, "a string"),
            },
            optional=("source_prompt", "target_prompt"),
        )
        votes = data.column("vote_type")
        instructions = data.column("instruct_prompt")
        bad = [f"row {r}: vote_type={v!r}" for r, v in enumerate(votes) if v not in VOTES]
        if bad:
            raise _report(data.label, f"vote_type must be one of {list(VOTES)}", bad)
        missing = [f"row {r}" for r, s in enumerate(instructions) if not isinstance(s, str)]
        if missing:
            raise _report(data.label, "missing instruct_prompt", missing)
        refs = ImageRefs(data)
        images = [
            (
                refs.ref(r, "source_image"),
                refs.ref(r, "left_output_image"),
                refs.ref(r, "right_output_image"),
            )
            for r in range(len(votes))
        ]
        refs.check()
        book = CandidateBook(data)
        part = split or "default"
        comparisons = []
        for r, (source, left, right) in enumerate(images):
            assert source is not None and left is not None and right is not None
            keys = (
                book.add(instructions[r], source, left, f"{part}/{r}/left"),
                book.add(instructions[r], source, right, f"{part}/{r}/right"),
            )
            comparisons.append(
                Comparison(
                    index=r,
                    row=r,
                    row_id=str(r),
                    group=f"{part}/{r}",
                    stratum=part,
                    keys=keys,
                    label=VOTES[votes[r]],  # type: ignore[arg-type]
                    raw_label=votes[r],
                )
            )
        return finish(self, data, split, comparisons, book)

    def authors_pointwise(
        self, bench: PreferenceBenchmark, scores: Mapping[str, float | None]
    ) -> AuthorsResult:
        h: list[int] = []
        m: list[float] = []
        left_out = 0
        for c in bench.comparisons:
            left, right = scores.get(c.keys[0]), scores.get(c.keys[1])
            if left is None or right is None or math.isnan(left) or math.isnan(right):
                left_out += 1
                continue
            h.append(VOTE_SIGN[c.raw_label])
            m.append(left - right)
        metrics = {
            "samples": len(h),
            "accuracy_with_ties": accuracy_with_ties_prefix(h, m),
            "accuracy_without_ties": accuracy_without_ties(h, m),
        }
        notes = [
            "EditReward eval_bench.py on GenAI-Bench: accuracy_with_ties tunes a tie "
            "threshold on the test set (calc_accuracy_with_ties); votes mapped left 1, "
            "right -1, tie and both-bad 0 (erb's assumption)",
            f"split: {bench.split}",
        ]
        if left_out:
            notes.append(
                f"{left_out} row(s) with a failed candidate were left out; erb's strict view "
                "counts them wrong"
            )
        return AuthorsResult(
            metrics=metrics,
            headline=("accuracy_with_ties", metrics["accuracy_with_ties"]),
            derived={"rows_left_out": left_out},
            notes=notes,
        )

    def authors_pairwise(
        self, bench: PreferenceBenchmark, verdicts: Mapping[tuple[int, str], str | None]
    ) -> AuthorsResult:
        correct = total = swapped = 0
        for c in bench.comparisons:
            if (c.index, "forward") in verdicts:
                verdict = verdicts[(c.index, "forward")]
            elif (c.index, "reverse") in verdicts:
                swapped += 1
                verdict = flip(verdicts[(c.index, "reverse")])
            else:
                continue
            total += 1
            correct += genai_correct(c.raw_label, ANSWER.get(verdict or ""))
        metrics = {"accuracy": correct / total if total else None, "correct": correct,
                   "total": total}  # fmt: skip
        notes = [
            "GenAI-Bench inference.py parse_response: a tie answer is right for tievote and "
            "bothbad_vote alike; an unparsed (failed) answer is wrong",
            f"split: {bench.split}",
        ]
        if swapped:
            notes.append(
                f"{swapped} row(s) were judged only with the order swapped; their verdicts "
                "were mapped back (upstream shows the left image first)"
            )
        return AuthorsResult(metrics=metrics, headline=("accuracy", metrics["accuracy"]),
                             notes=notes)  # fmt: skip

    def synthetic_dataset(self, split: str | None = None) -> Any:
        import datasets

        from .tiger import _synthetic_info

        features = datasets.Features(
            {
                "source_prompt": datasets.Value("string"),
                "target_prompt": datasets.Value("string"),
                "instruct_prompt": datasets.Value("string"),
                "source_image": datasets.Image(),
                "left_output_image": datasets.Image(),
                "right_output_image": datasets.Image(),
                "left_model": datasets.Value("string"),
                "right_model": datasets.Value("string"),
                "vote_type": datasets.Value("string"),
            }
        )
        rows = synthetic_rows(split or self.default_split or "test")
        return datasets.Dataset.from_list(
            rows, features=features, info=_synthetic_info(self, features)
        )


#: (vote, left quality, right quality) of the synthetic rows; test_v1 keeps rows 0-5 and
#: adds its own, so the two splits share candidates but are different datasets.
_SYNTHETIC: dict[str, tuple[tuple[str, float, float], ...]] = {
    "test": (
        ("leftvote", 0.9, 0.3),
        ("rightvote", 0.2, 0.8),
        ("tievote", 0.6, 0.6),
        ("bothbad_vote", 0.1, 0.15),
        ("leftvote", 0.7, 0.4),
        ("rightvote", 0.3, 0.5),
        ("leftvote", 0.55, 0.5),
        ("tievote", 0.8, 0.75),
        ("rightvote", 0.4, 0.9),
        ("leftvote", 0.6, 0.2),
    ),
}
_SYNTHETIC["test_v1"] = (
    *_SYNTHETIC["test"][:6],
    ("bothbad_vote", 0.2, 0.1),
    ("leftvote", 0.95, 0.05),
)


def synthetic_rows(split: str) -> list[dict[str, Any]]:
    """erb's synthetic GenAI-Bench image-editing rows for ``split`` (hub schema).

    Row 0 is TIGER's synthetic 2-pair row 0 (same instruction and images), so a judge run on
    both synthetic benchmarks judges that edit once.
    """
    rows = []
    for r, (vote, ql, qr) in enumerate(_SYNTHETIC.get(split, _SYNTHETIC["test"])):
        if r == 0:
            scene, instruction, variants = "tiger-2pair-0", "Brighten 0.", ("A", "B")
        else:
            scene, instruction, variants = f"genai-{r}", f"Recolour the square ({r}).", ("L", "R")
        rows.append(
            {
                "source_prompt": "a square on a plain background",
                "target_prompt": "a recoloured square on a plain background",
                "instruct_prompt": instruction,
                "source_image": image_struct(source_png(scene)),
                "left_output_image": image_struct(edit_png(scene, ql, f"{scene}/{variants[0]}")),
                "right_output_image": image_struct(edit_png(scene, qr, f"{scene}/{variants[1]}")),
                "left_model": "model-left",
                "right_model": "model-right",
                "vote_type": vote,
            }
        )
    return rows
