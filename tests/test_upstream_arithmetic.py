"""Every sub-score and every Avg@k mean is the float upstream's own code computes.

Upstream's ``EditScore.evaluate`` (the ``editscore`` 0.2 wheel from PyPI, which the README's
test command installs without its dependencies) is driven without a model: a
scripted model hands it answer strings, and the same strings reach ``erb`` through a
scripted backend. Per-pass sub-scores and Avg@k means are compared with ``==`` (and
``repr``), never a tolerance: a last-bit difference decides ties, and ties count as
wrong. Only answers both accept are in scope (upstream replaces the ones it cannot
parse with random scores; ``erb`` rejects them).
"""

from __future__ import annotations

import asyncio
import importlib
import json
import math
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np
import pytest
from PIL import Image

from editreward_bench.judges import Backend, GenRequest, GenResponse, JudgeTask, resolve_card
from editreward_bench.judges.editscore import SCORE_RANGE, EditScoreJudge, combine
from editreward_bench.judges.options import parse_config
from editreward_bench.metrics import PassScores, avg_at_k
from editreward_bench.taxonomy import SUBSCORES

SEED = 42

#: Answer formats both parsers accept; ``{a}`` and ``{b}`` are the two scores.
FORMATS = (
    '{{"reasoning": "The edit follows the instruction.", "score": [{a}, {b}]}}',
    '```json\n{{\n"reasoning" : "Mostly right.",\n"score" : [{a}, {b}]\n}}\n```',
    'Here is my evaluation:\n{{"reasoning": "ok", "score": [{a}, {b}]}}\nHope this helps.',
    '{{"score": [{a}, {b}], "reasoning": "Reasoning after the score."}}',
    '{{\n  "reasoning": "Spread over\nlines.",\n  "score": [\n    {a},\n    {b}\n  ]\n}}',
    '{{"reasoning":"compact","score":[{a},{b}]}}',
    "{{'reasoning': 'single quotes', 'score': [{a}, {b}]}}",
    "{{\u201creasoning\u201d: \u201csmart quotes\u201d, \u201cscore\u201d: [{a}, {b}]}}",
    '{{reasoning: "unquoted keys", score: [{a}, {b}]}}',
    '{{"reasoning": "The sign reads "OPEN" now.", "score": [{a}, {b}]}}',
    '{{"reasoning": "trailing comma", "score": [{a}, {b}],}}',
    "[{a}, {b}]",
    "Scores: [{a},{b}]",
)


# --------------------------------------------------------------------------- upstream


def _import_upstream() -> ModuleType:
    """Upstream's own package: the PyPI wheel the README's test command installs
    (``pip install --no-deps editscore==0.2``)."""
    from importlib import metadata

    try:
        installed = metadata.version("editscore")
    except metadata.PackageNotFoundError:
        pytest.fail(
            "upstream editscore 0.2 is needed: pip install --no-deps editscore==0.2 "
            "(a skip would prove nothing)"
        )
    assert installed == "0.2", f"editscore {installed} is installed; these tests need 0.2"
    return importlib.import_module("editscore")


@pytest.fixture(scope="module")
def upstream() -> ModuleType:
    return _import_upstream()


class ScriptedModel:
    """Upstream's model interface: answers by prompt kind, pass i at ``seed + i``; records calls."""

    def __init__(self, sc: Sequence[str], pq: Sequence[str], seed: int) -> None:
        self.answers = {"sc": list(sc), "pq": list(pq)}
        self.seed = seed
        self.calls: list[tuple[str, int]] = []

    def prepare_input(self, images: Any, text: str) -> str:
        # SC gets [source, edited], PQ the edited image alone.
        return "sc" if isinstance(images, list) else "pq"

    def inference(self, prompt: str, seed: int) -> str:
        self.calls.append((prompt, seed))
        return self.answers[prompt][seed - self.seed]


def upstream_evaluate(
    module: ModuleType, sc: Sequence[str], pq: Sequence[str], *, seed: int = SEED
) -> dict[str, float]:
    """Upstream's ``EditScore.evaluate`` on scripted answers: Avg@len(sc), as upstream runs it."""
    vie = module.vie_prompts
    scorer = module.EditScore.__new__(module.EditScore)
    scorer.backbone = "qwen25vl"
    scorer.score_range = SCORE_RANGE
    scorer.seed = seed
    scorer.num_pass = len(sc)
    scorer.reduction = "average_last"
    scorer.SC_prompt = "\n".join([
        vie._context_no_delimit_reasoning_first,
        vie._prompts_0shot_two_image_edit_rule,
        vie._prompts_0shot_tie_rule_SC.replace("10", str(SCORE_RANGE)),
    ])  # fmt: skip
    scorer.PQ_prompt = "\n".join([
        vie._context_no_delimit_reasoning_first,
        vie._prompts_0shot_rule_PQ.replace("10", str(SCORE_RANGE)),
    ])  # fmt: skip
    model = ScriptedModel(sc, pq, seed)
    scorer.model = model
    out = scorer.evaluate(["source.png", "edited.png"], "Add a cat.")
    # Each answer parsed on the first try: no retry, so no random score stood in for one.
    expected = [(kind, seed + i) for i in range(len(sc)) for kind in ("sc", "pq")]
    assert model.calls == expected, "upstream did not accept an answer in scope"
    return {name: out[name] for name in SUBSCORES}


def upstream_per_pass(
    module: ModuleType, sc: Sequence[str], pq: Sequence[str]
) -> list[dict[str, float]]:
    """Pass i's sub-scores: upstream with one pass at seed 42 + i (a mean of one is exact)."""
    return [upstream_evaluate(module, [sc[i]], [pq[i]], seed=SEED + i) for i in range(len(sc))]


# --------------------------------------------------------------------------- erb


class ScriptedBackend(Backend):
    """Answers by (edited image's colour, prompt kind), pass i from seed 42 + i."""

    def __init__(self, script: dict[tuple[Any, str], list[str]], supports_n: bool) -> None:
        self.script = script
        self.supports_n = supports_n

    def describe(self) -> dict[str, Any]:
        return {"backend": "scripted"}

    def prepare_images(self, images: Sequence[Image.Image]) -> tuple[Any, ...]:
        return tuple(img.getpixel((0, 0)) for img in images)

    async def generate(self, requests: Sequence[GenRequest]) -> list[GenResponse]:
        out = []
        for r in requests:
            kind = "sc" if len(r.images) == 2 else "pq"
            answers = self.script[(r.images[-1], kind)]
            first = r.seed - SEED  # a retry's seed is far beyond: no answer, the pass fails
            texts = answers[first : first + r.n] if 0 <= first < len(answers) else []
            out.append(GenResponse(texts))
        return out


def colour(i: int) -> tuple[int, int, int]:
    return (i % 256, i // 256 % 256, 200)


@dataclass(frozen=True)
class Edit:
    key: str
    instruction: str
    index: int

    def load_images(self) -> tuple[Image.Image, Image.Image]:
        return Image.new("RGB", (1, 1), (0, 0, 0)), Image.new("RGB", (1, 1), colour(self.index))


@dataclass(frozen=True)
class Case:
    """One candidate: its SC and PQ answer per pass."""

    sc: tuple[str, ...]
    pq: tuple[str, ...]


def judge_for(cases: Sequence[Case], supports_n: bool) -> EditScoreJudge:
    card = resolve_card("editscore-7b").card
    assert card is not None
    script: dict[tuple[Any, str], list[str]] = {}
    for i, case in enumerate(cases):
        script[(colour(i), "sc")] = list(case.sc)
        script[(colour(i), "pq")] = list(case.pq)
    return EditScoreJudge(
        parse_config(card, {"max_retries": 0}), ScriptedBackend(script, supports_n)
    )


def erb_run(
    cases: Sequence[Case], supports_n: bool, rng: random.Random
) -> tuple[list[list[dict[str, Any]]], dict[str, dict[str, float] | None]]:
    """As a run computes them: per-pass records, then avg_at_k over the records in any order."""
    k = len(cases[0].sc)
    judge = judge_for(cases, supports_n)
    tasks = [
        JudgeTask(
            Edit(f"c{i}", "Add a cat.", i), tuple(range(k)), tuple(SEED + p for p in range(k))
        )
        for i in range(len(cases))
    ]
    results = asyncio.run(judge.ajudge(tasks))
    records = [r.check().to_record() for r in results]
    assert all(r["status"] == "ok" for r in records), [r["error"] for r in records]
    per_case: list[list[dict[str, Any]]] = [[] for _ in cases]
    for rec in records:
        per_case[int(rec["key"][1:])].append(rec)
    for recs in per_case:
        recs.sort(key=lambda r: r["pass"])
    # The store hands records back in no particular order.
    shuffled = list(records)
    rng.shuffle(shuffled)
    scores, ok_passes = avg_at_k((PassScores.of(r) for r in shuffled), k)
    assert set(ok_passes.values()) == {k}
    return per_case, scores


# --------------------------------------------------------------------------- helpers


def assert_same(erb: float | None, reference: Any, where: str) -> None:
    assert erb is not None, where
    assert type(erb) is float, (where, type(erb))
    ref = float(reference)
    assert erb == ref and repr(erb) == repr(ref), f"{where}: erb {erb!r} != upstream {ref!r}"


def answer(a: int, b: int, rng: random.Random | None = None) -> str:
    fmt = rng.choice(FORMATS) if rng is not None else FORMATS[0]
    return fmt.format(a=a, b=b)


def random_cases(rng: random.Random, n: int, k: int) -> list[Case]:
    def one() -> str:
        return answer(rng.randint(0, SCORE_RANGE), rng.randint(0, SCORE_RANGE), rng)

    return [Case(tuple(one() for _ in range(k)), tuple(one() for _ in range(k))) for _ in range(n)]


def compare_with_upstream(
    upstream: ModuleType, cases: Sequence[Case], supports_n: bool, seed: int
) -> None:
    per_case, scores = erb_run(cases, supports_n, random.Random(seed))
    for i, case in enumerate(cases):
        for p, expected in enumerate(upstream_per_pass(upstream, case.sc, case.pq)):
            for name in SUBSCORES:
                assert_same(per_case[i][p][name], expected[name], f"c{i} pass {p} {name}")
        expected_mean = upstream_evaluate(upstream, case.sc, case.pq)
        got = scores[f"c{i}"]
        assert got is not None
        for name in SUBSCORES:
            assert_same(got[name], expected_mean[name], f"c{i} Avg@{len(case.sc)} {name}")


def all_pairs() -> Iterator[tuple[int, int]]:
    return ((a, b) for a in range(SCORE_RANGE + 1) for b in range(SCORE_RANGE + 1))


# --------------------------------------------------------------------------- tests


def test_the_old_rescaling_differs_from_upstreams() -> None:
    """Multiplying by 10/R is not dividing by R/10: the test below is not vacuous."""
    differ = [s for s in range(SCORE_RANGE + 1) if s * (10 / SCORE_RANGE) != s / (SCORE_RANGE / 10)]
    assert 7 in differ and 7 * 0.4 != 7 / 2.5
    got = combine((7, 7), (7, 7))
    assert got["prompt_following"] == 7 / 2.5 == 2.8
    assert got["consistency"] == got["perceptual_quality"] == 2.8
    assert got["overall"] == math.sqrt(2.8 * 2.8)


def test_every_sc_and_pq_pair_at_k1_matches_upstream(upstream: ModuleType) -> None:
    """All 676 SC pairs and all 676 PQ pairs, and every (min SC, min PQ) for overall."""
    cases = [Case((answer(a, b),), (answer(b, a),)) for a, b in all_pairs()]
    cases += [Case((answer(x, SCORE_RANGE),), (answer(SCORE_RANGE, y),)) for x, y in all_pairs()]
    compare_with_upstream(upstream, cases, supports_n=False, seed=0)


def test_combine_matches_upstream_for_every_integer_pair(upstream: ModuleType) -> None:
    """combine alone on the integers: every SC pair, every PQ pair, every (min SC, min PQ)."""
    for a, b in all_pairs():
        for sc, pq in (((a, b), (b, a)), ((a, SCORE_RANGE), (SCORE_RANGE, b))):
            expected = upstream_evaluate(upstream, [answer(*sc)], [answer(*pq)])
            got = combine(sc, pq)
            for name in SUBSCORES:
                assert_same(got[name], expected[name], f"SC {sc} PQ {pq} {name}")


@pytest.mark.parametrize("supports_n", [False, True], ids=["one-request-per-pass", "n-samples"])
@pytest.mark.parametrize("k", [1, 4, 8, 12])
def test_random_answers_match_upstream(upstream: ModuleType, k: int, supports_n: bool) -> None:
    cases = random_cases(random.Random(1000 + k), 60, k)
    compare_with_upstream(upstream, cases, supports_n, seed=k)


def test_every_answer_format_matches_upstream(upstream: ModuleType) -> None:
    rng = random.Random(7)
    cases = [
        Case(
            tuple(fmt.format(a=rng.randint(0, 25), b=rng.randint(0, 25)) for _ in range(4)),
            tuple(FORMATS[(j + p) % len(FORMATS)].format(a=p * 6 + 1, b=25 - p) for p in range(4)),
        )
        for j, fmt in enumerate(FORMATS)
    ]
    compare_with_upstream(upstream, cases, supports_n=False, seed=1)


def test_pass_order_and_pairwise_summation_are_upstreams(upstream: ModuleType) -> None:
    """At k = 12 a running sum, or the records' arrival order, changes the last bit."""
    cases = random_cases(random.Random(12), 60, 12)
    _, scores = erb_run(cases, supports_n=False, rng=random.Random(3))
    running_sum_differs = 0
    for i, case in enumerate(cases):
        per_pass = upstream_per_pass(upstream, case.sc, case.pq)
        expected = upstream_evaluate(upstream, case.sc, case.pq)
        got = scores[f"c{i}"]
        assert got is not None
        for name in SUBSCORES:
            values = [float(p[name]) for p in per_pass]
            running_sum_differs += sum(values) / len(values) != float(np.mean(values))
            assert_same(got[name], expected[name], f"c{i} {name}")
    assert running_sum_differs > 0  # the comparison above could tell the two apart


@pytest.mark.parametrize("k", [1, 4, 8, 12])
def test_judge_score_summary_matches_upstream(upstream: ModuleType, k: int) -> None:
    """``erb score`` (Judge.score): its Avg@k summary is upstream's evaluate output."""
    for case in random_cases(random.Random(2000 + k), 8, k):
        judge = judge_for([case], supports_n=False)
        image = Image.new("RGB", (1, 1), colour(0))
        summary = judge.score("Add a cat.", Image.new("RGB", (1, 1)), image, k=k)
        assert summary["passes_ok"] == k
        expected = upstream_evaluate(upstream, case.sc, case.pq)
        for name in SUBSCORES:
            assert_same(summary[name], expected[name], f"score {name}")
        for rec, per_pass in zip(
            summary["passes"], upstream_per_pass(upstream, case.sc, case.pq), strict=True
        ):
            for name in SUBSCORES:
                assert_same(rec[name], per_pass[name], f"pass {rec['pass']} {name}")


def test_avg_at_k_skips_missing_subscores_and_failed_passes() -> None:
    """Predictions without perceptual quality: that mean is over the passes that have it."""
    records = [
        {"key": "a", "pass": 2, "status": "ok", "prompt_following": 0.3, "consistency": 1.0,
         "perceptual_quality": None, "overall": 0.2},
        {"key": "a", "pass": 0, "status": "ok", "prompt_following": 0.1, "consistency": 1.0,
         "perceptual_quality": 0.7, "overall": 0.1},
        {"key": "a", "pass": 1, "status": "failed", "prompt_following": None,
         "consistency": None, "perceptual_quality": None, "overall": None},
        {"key": "b", "pass": 0, "status": "failed"},
    ]  # fmt: skip
    scores, ok = avg_at_k((PassScores.of(r) for r in records), 3)
    assert scores["b"] is None and ok == {"a": 2}
    assert scores["a"] == {
        "prompt_following": float(np.mean([0.1, 0.3])),
        "consistency": 1.0,
        "perceptual_quality": 0.7,
        "overall": float(np.mean([0.1, 0.2])),
    }
    assert json.dumps(scores["a"])  # plain floats, not numpy scalars
