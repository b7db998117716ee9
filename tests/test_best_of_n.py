"""Best-of-N end to end: picks, the tie rule, the three curves, stored scores reused, one folder per N.

A toy model's 4 samples per ``gedit-mini`` item carry a marker, so the scripted server
knows which (item, sample) a request is about and answers as the test's tables say:
the selector (``viescore-gpt-4.1``) and the evaluator (``viescore-qwen2.5-vl-72b``, the
same server asked for another model) score each sample v for SC and PQ (so O = v). The
expected picks and curves are worked out here from those tables.
"""

from __future__ import annotations

import json
from pathlib import Path
from random import Random
from typing import Any

import numpy as np
import pytest
from scripted_vlm import ScriptedVLM, marker, marker_of, message_parts

from editreward_bench.editing.best_of_n import (
    BestOfNRequest,
    best_index,
    curve_points,
    run_best_of_n,
)
from editreward_bench.editing.gedit import GROUPS, load_gedit
from editreward_bench.editing.model_eval import ModelEvalRequest, run_model_eval
from editreward_bench.editing.synth import gedit_items, toy_edit
from editreward_bench.runner import RunOptions

SAMPLES = 4
SELECTOR, EVALUATOR = "viescore-gpt-4.1", "viescore-qwen2.5-vl-72b"
EVALUATOR_MODEL = "Qwen/Qwen2.5-VL-72B-Instruct"
LISTED = ("gpt-4.1", EVALUATOR_MODEL)


def items() -> list[Any]:
    return [item for item in gedit_items() if item.language == "en"]


def selector_value(i: int, t: int) -> int:
    if i % 5 == 0:  # a tie between samples 1 and 3, both best: the earliest wins
        return {0: 4, 1: 9, 2: 6, 3: 9}[t]
    return Random(f"sel/{i}/{t}").randint(2, 10)


def evaluator_value(i: int, t: int) -> int:
    return Random(f"eval/{i}/{t}").randint(1, 10)


def write_samples(root: Path) -> None:
    for i, item in enumerate(items()):
        folder = root / "fullset" / item.group / "en"
        folder.mkdir(parents=True, exist_ok=True)
        source = toy_edit(item, "careful", 99).resize((64, 48))
        source.save(folder / f"{item.key}_SRCIMG.png")
        for t in range(SAMPLES):
            img = toy_edit(item, "sloppy", t).resize((64, 48)).convert("RGB")
            img.paste(marker(i * SAMPLES + t), (0, 0, 32, 32))
            img.save(folder / (f"{item.key}.png" if t == 0 else f"{item.key}_sample{t}.png"))


def identify(body: dict[str, Any]) -> tuple[int, str]:
    _, urls = message_parts(body)
    return marker_of(urls[-1]), f"{body['model']}/{'sc' if len(urls) == 2 else 'pq'}"


def script(m: int, kind: str, n: int) -> str:
    i, t = divmod(m, SAMPLES)
    v = evaluator_value(i, t) if kind.startswith(EVALUATOR_MODEL) else selector_value(i, t)
    return json.dumps({"score": [v, v], "reasoning": f"sample {t}"})


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    where = tmp_path_factory.mktemp("bon")
    write_samples(where / "outputs")
    return {"where": where, "outputs": where / "outputs", "store": where / "store.sqlite"}


def _run(setup: dict[str, Any], server: ScriptedVLM, out: str, **changes: Any) -> Any:
    request = BestOfNRequest("gedit", setup["outputs"], changes.pop("selector", SELECTOR),
                             changes.pop("evaluator", EVALUATOR), dataset="gedit-mini",
                             out=setup["where"] / out, **changes)  # fmt: skip
    options = RunOptions(
        store=setup["store"], progress=False, base_urls=[server.url], concurrency=4
    )
    return run_best_of_n(request, options)


def _headline(values: dict[int, float]) -> float:
    """GEdit's headline from per-item O: np.mean per group, then over the 11 groups."""
    groups = [item.group for item in items()]
    means = [np.mean([values[i] for i in range(len(groups)) if groups[i] == g]) for g in GROUPS]
    return float(np.mean(means))


def test_picks_curves_reuse_and_folders(setup: dict[str, Any]) -> None:
    n_items = len(items())
    with ScriptedVLM(identify, script, listed=LISTED) as server:
        first = _run(setup, server, "bon2", n=2)
        assert first.metrics["n"] == [1, 2]
        assert sum(server.counts.values()) == 2 * 2 * n_items * 2  # 2 samples, SC+PQ, 2 judges
        before = dict(server.counts)
        summary = _run(setup, server, "bon4")
        # A larger N judges only the new samples (2 and 3), with both judges.
        new = {key: n for key, n in server.counts.items() if n != before.get(key)}
        assert {m % SAMPLES for m, _ in new} == {2, 3}
        assert all(n == 1 for n in new.values())
        usage = json.loads((setup["where"] / "bon4" / "manifest.json").read_text())["usage"]
        assert usage["selector"]["passes_judged_now"] == 2 * n_items
        assert usage["selector"]["passes_reused"] == 2 * n_items
    metrics = summary.metrics
    assert metrics["n"] == [1, 2, 4]
    for n in (1, 2, 4):
        picks = metrics["picks"][str(n)]
        expected_picks = {}
        for i, item in enumerate(items()):
            scores = [selector_value(i, t) for t in range(n)]
            expected_picks[item.key] = max(range(n), key=lambda t: (scores[t], -t))
            assert picks[item.key] == expected_picks[item.key], (n, i)
        sel = {
            i: float(evaluator_value(i, expected_picks[item.key])) for i, item in enumerate(items())
        }
        oracle = {i: float(max(evaluator_value(i, t) for t in range(n))) for i in range(n_items)}
        rand = {i: sum(evaluator_value(i, t) for t in range(n)) / n for i in range(n_items)}
        for curve, values in (("selector", sel), ("oracle", oracle), ("random", rand)):
            point = metrics["curves"][curve][str(n)]
            assert point["headline"]["overall"] == _headline(values), (curve, n)
            low, high = point["ci95"]["headline"]["overall"]
            assert low <= point["headline"]["overall"] <= high
    # the tie rule: items 0, 5, 10... score samples 1 and 3 equally best: sample 1 is picked
    for i, item in enumerate(items()):
        if i % 5 == 0:
            assert metrics["picks"]["4"][item.key] == 1
    # one folder per N, in Step1X-Edit's layout, holding the picked samples' bytes
    for n in ("1", "2", "4"):
        for item in items():
            t = metrics["picks"][n][item.key]
            folder = setup["where"] / "bon4" / "picks" / f"best{n}" / "fullset" / item.group / "en"
            name = f"{item.key}.png" if t == 0 else f"{item.key}_sample{t}.png"
            src = setup["outputs"] / "fullset" / item.group / "en"
            assert (folder / f"{item.key}.png").read_bytes() == (src / name).read_bytes()
            assert (folder / f"{item.key}_SRCIMG.png").read_bytes() == (
                src / f"{item.key}_SRCIMG.png"
            ).read_bytes()


def test_n1_equals_the_evaluators_model_eval(setup: dict[str, Any]) -> None:
    with ScriptedVLM(identify, script, listed=LISTED) as server:
        bon = _run(setup, server, "bon-n1", n=4)
        single = run_model_eval(
            ModelEvalRequest("gedit", setup["outputs"], EVALUATOR, dataset="gedit-mini", out=setup["where"] / "me"),
            RunOptions(store=setup["store"], progress=False, base_urls=[server.url]),
        )  # fmt: skip
        assert sum(server.counts.values()) == 0  # everything came from the store
    for curve in ("selector", "oracle", "random"):
        assert bon.metrics["curves"][curve]["1"]["headline"] == single.metrics["headline"]


def test_a_second_selector_k_judges_only_the_new_passes(setup: dict[str, Any]) -> None:
    with ScriptedVLM(identify, script, listed=LISTED) as server:
        _run(setup, server, "bon-k2", selector_k=2)
        # pass 1 of every sample with the selector (SC + PQ), nothing for the evaluator
        assert sum(server.counts.values()) == 2 * SAMPLES * len(items())
        assert all(kind.startswith("gpt-4.1") for _, kind in server.counts)


def test_the_same_judge_for_both_is_warned(setup: dict[str, Any]) -> None:
    with ScriptedVLM(identify, script, listed=LISTED) as server:
        summary = _run(setup, server, "bon-same", evaluator=SELECTOR)
    assert any("same judge" in w for w in summary.warnings)
    assert summary.metrics["same_judge"] is True
    # the oracle is then the selector itself
    for n in ("1", "2", "4"):
        assert (
            summary.metrics["curves"]["selector"][n]["headline"]
            == summary.metrics["curves"]["oracle"][n]["headline"]
        )


def test_tie_rule_and_failures_rank_last() -> None:
    assert best_index([5, 7, 7, 2]) == 1
    assert best_index([None, 3, None]) == 1
    assert best_index([None, None]) == 0
    assert best_index([7.0, 7]) == 0
    assert curve_points(16) == [1, 2, 4, 8, 16]
    assert curve_points(6) == [1, 2, 4, 6]
    assert curve_points(1) == [1]


def test_gedit_mini_rows_are_what_the_test_uses() -> None:
    bench = load_gedit("gedit-mini")
    assert [r.key for r in bench.rows_for("en")] == [item.key for item in items()]


def test_the_picks_folder_chains_into_model_eval(setup: dict[str, Any]) -> None:
    """picks/best4 is a model's outputs in Step1X-Edit's layout: model-eval on it with the
    evaluator gives the selector curve's point at N = 4."""
    with ScriptedVLM(identify, script, listed=LISTED) as server:
        bon = _run(setup, server, "bon-chain")
        picked = setup["where"] / "bon-chain" / "picks" / "best4"
        single = run_model_eval(
            ModelEvalRequest("gedit", picked, EVALUATOR, dataset="gedit-mini", out=setup["where"] / "chained"),
            RunOptions(store=setup["store"], progress=False, base_urls=[server.url]),
        )  # fmt: skip
    assert single.metrics["headline"] == bon.metrics["curves"]["selector"]["4"]["headline"]
