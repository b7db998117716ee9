"""Run TIGER's own evaluation code on erb's synthetic benchmarks and record what it prints.

    python tests/snapshots/make_tiger_parity.py UPSTREAM            # rewrite tiger_parity.json
    python tests/snapshots/make_tiger_parity.py UPSTREAM --check    # exit 1 if it differs

UPSTREAM is the folder of TIGER-AI-Lab/EditReward's ``EditReward/evaluate`` (MIT; commit
edb027e): ``eval_bench.py``, ``calc_accuracy.py`` and ``inference_{2,3,4}pair_hf.py``. In
this project's workspace that is ``../shared/upstream/editreward/EditReward/evaluate``.
Run it with erb importable (``PYTHONPATH=.``); it needs no GPU, no model and no network:
the modules those scripts import but never use here (torch, fire, the EditReward model, the
genaibench model wrappers) are replaced by stand-ins before the scripts are imported.

What it feeds TIGER's functions, built here independently of erb's adapter:

- the rows of erb's synthetic TIGER EditReward-Bench (hub schema), turned into
  ``eval_bench.py``'s JSON (one item per group, the full ranking rebuilt by counting each
  letter's wins; images named by their alias ``KIND/GROUP/LETTER``), and known scores per
  image (small integers, so ties happen); ``evaluate_edit_reward_bench`` then runs whole;
- the same rows, and a fake model that answers each comparison with a known verdict
  (``[[A>C]]``, a tie, or no verdict at all), through ``inference_{2,3,4}pair_hf.main``
  (the script as a whole: dataset loading and the model are the only stand-ins);
- GenAI-Bench's synthetic votes and known scores, through ``calc_accuracy_with_ties`` and
  ``calc_accuracy_without_ties`` (vote mapping: left 1, right -1, tie and both-bad 0);
- ``calc_accuracy.py``'s own worked example, and seeded random labels and differences
  (many equal |m|) through both tie-calibration variants and ``calc_accuracy_without_ties``.

``tests/test_benchmarks_tiger.py`` checks erb against this file with ``==``.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import io
import json
import sys
import tempfile
import types
from collections import Counter
from pathlib import Path
from typing import Any, ClassVar

SNAPSHOT = Path(__file__).with_name("tiger_parity.json")
UPSTREAM_FILES = (
    "eval_bench.py",
    "calc_accuracy.py",
    "inference_2pair_hf.py",
    "inference_3pair_hf.py",
    "inference_4pair_hf.py",
)


def noise(name: str, levels: int) -> int:
    return hashlib.sha256(name.encode()).digest()[0] % levels


def known_score(name: str) -> float:
    """A score per image: 0..4 from a hash, so equal scores (ties) occur."""
    return float(noise(name, 5))


def known_scores(items: dict[str, list[dict[str, Any]]]) -> dict[str, float]:
    """Scores per image that mostly follow the people's ranking (2 points per rank) plus
    0..3 points of noise, so some groups are ranked right, some wrong, some tied."""
    scores = {}
    for part in items.values():
        for item in part:
            ranking = item["human_vote"]["ranking"]
            classes = [c.split("=") for c in ranking.split(">")] if ">" in ranking else [["A", "B"]]
            for path in item["paths_generated"]:
                letter = path.rsplit("/", 1)[1]
                rank = next(i for i, c in enumerate(classes) if letter in c)
                scores[path] = float(2 * (len(classes) - rank) + noise(path, 4))
    return scores


def known_verdict(row: dict[str, Any], index: int) -> str | None:
    """A pairwise verdict per row: the people's, except every 9th row (from the 4th) reversed,
    every 13th (from the 7th) without a verdict, every 17th (from the 3rd) a tie."""
    x, y = row["comparison_type"].split("vs")
    rank = row["ranking"]
    truth = "first" if rank == f"{x}>{y}" else "second" if rank == f"{y}>{x}" else "tie"
    if index % 13 == 6:
        return None
    if index % 17 == 2:
        return "tie"
    if index % 9 == 3:
        return {"first": "second", "second": "first"}.get(truth, "first")
    return truth


def stand_ins() -> None:
    """Modules TIGER's scripts import at the top but never need here."""

    class NoGrad(contextlib.ContextDecorator):
        def __enter__(self) -> None:
            return None

        def __exit__(self, *exc: object) -> None:
            return None

    # Before the torch stand-in, which these would probe.
    import datasets  # noqa: F401
    import scipy.stats  # noqa: F401

    torch = types.ModuleType("torch")
    torch.Tensor = type("Tensor", (), {})  # type: ignore[attr-defined]
    torch.no_grad = NoGrad  # type: ignore[attr-defined]
    torch.cuda = types.SimpleNamespace(empty_cache=lambda: None)  # type: ignore[attr-defined]
    sys.modules["torch"] = torch
    fire = types.ModuleType("fire")
    fire.Fire = lambda *a, **k: None  # type: ignore[attr-defined]
    sys.modules["fire"] = fire
    editreward = types.ModuleType("EditReward")
    editreward.EditRewardInferencer = object  # type: ignore[attr-defined]
    sys.modules["EditReward"] = editreward
    genai = types.ModuleType("genaibench")
    tools = types.ModuleType("genaibench.mllm_tools")
    tools.MLLM_Models = None  # type: ignore[attr-defined]
    utils = types.ModuleType("genaibench.utils")
    utils.load_template = None  # type: ignore[attr-defined]
    sys.modules.update({"genaibench": genai, "genaibench.mllm_tools": tools,
                        "genaibench.utils": utils})  # fmt: skip


class Value:
    def __init__(self, value: float) -> None:
        self.value = value

    def item(self) -> float:
        return self.value


class Inferencer:
    """eval_bench.py's reward model, answering known scores by image name."""

    def __init__(self, scores: dict[str, float]) -> None:
        self.scores = scores

    def reward(self, prompts: list[str], image_src: list[str], image_paths: list[str]) -> Any:
        return [[Value(self.scores[image_paths[0]])]]


def group_items(rows: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """eval_bench.py's JSON from hub rows: rankings rebuilt by counting wins."""
    names = {"2pair": "2-Pair", "3pair": "3-Pair", "4pair": "4-Pair"}
    letters = {"2pair": "AB", "3pair": "ABC", "4pair": "ABCD"}
    groups: dict[tuple[str, str], list[tuple[int, dict[str, Any]]]] = {}
    for r, row in enumerate(rows):
        gid = str(r) if row["dataset"] == "2pair" else row["id"].split("_")[0]
        groups.setdefault((row["dataset"], gid), []).append((r, row))
    out: dict[str, list[dict[str, Any]]] = {}
    for (kind, gid), members in groups.items():
        row0 = members[0][1]
        if kind == "2pair":
            ranking = row0["ranking"]
            if ranking == "A=B":
                ranking = "A=B=Good"  # eval_bench.py's tie form
        else:
            wins: Counter[str] = Counter({x: 0 for x in letters[kind]})
            for _, row in members:
                x, y = row["comparison_type"].split("vs")
                rank = row["ranking"]
                if f"{x}>{y}" == rank:
                    wins[x] += 1
                elif f"{y}>{x}" == rank:
                    wins[y] += 1
            levels = sorted(set(wins.values()), reverse=True)
            ranking = ">".join(
                "=".join(sorted(x for x in wins if wins[x] == level)) for level in levels
            )
        out.setdefault(names[kind], []).append(
            {
                "prompt": row0["instruction"],
                "path_src": f"source:{kind}/{gid}",
                "paths_generated": [f"{kind}/{gid}/{x}" for x in letters[kind]],
                "human_vote": {"ranking": ranking},
            }
        )
    return out


def run_eval_bench(upstream: Path, items: dict[str, Any], scores: dict[str, float]) -> Any:
    eval_bench = importlib.import_module("eval_bench")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        files = {"2-Pair": "2pair", "3-Pair": "3pair", "4-Pair": "4pair"}
        for name, part in items.items():
            (folder / f"EditReward_Bench_{files[name]}.json").write_text(json.dumps(part))
        out = folder / "run_accuracy.json"
        with (folder / "log.txt").open("w") as log, contextlib.redirect_stdout(io.StringIO()), \
                contextlib.redirect_stderr(io.StringIO()):  # fmt: skip
            eval_bench.evaluate_edit_reward_bench(Inferencer(scores), log, str(out), str(folder))
        return json.loads(out.read_text())


class FakeModel:
    """inference_*pair_hf.py's model: answers each comparison with a known verdict."""

    answers: ClassVar[dict[tuple[str, str], str]] = {}

    def __call__(self, inputs: list[dict[str, Any]]) -> str:
        images = [part["content"] for part in inputs if part["type"] == "image"]
        return self.answers[(images[1], images[2])]


def run_inference(rows: list[dict[str, Any]], verdicts: dict[int, str | None]) -> dict[str, Any]:
    answers = {}
    named_rows = []
    for r, row in enumerate(rows):
        kind = row["dataset"]
        gid = str(r) if kind == "2pair" else row["id"].split("_")[0]
        x, y = row["comparison_type"].split("vs")
        first, second = f"{kind}/{gid}/{x}", f"{kind}/{gid}/{y}"
        verdict = verdicts[r]
        if verdict == "first":
            text = f"Edit {x} follows the instruction. [[{x}>{y}]]"
        elif verdict == "second":
            text = f"[[{y}>{x}]]"
        elif verdict == "tie":
            text = "[[A=B=Good]]" if kind == "2pair" and r % 2 else f"[[{x}={y}]]"
        else:
            text = "No verdict."
        answers[(first, second)] = text
        named_rows.append({**row, "source_image": f"{kind}/{gid}/source",
                           "candidate_1": first, "candidate_2": second})  # fmt: skip
    FakeModel.answers = answers
    out = {}
    template = "<instruct_prompt> <source_image> <left_output_image> <right_output_image> end"
    for kind in ("2pair", "3pair", "4pair"):
        module = importlib.import_module(f"inference_{kind}_hf")
        module.load_dataset = lambda name: {"train": named_rows}  # type: ignore[attr-defined]
        module.MLLM_Models = lambda name: FakeModel  # type: ignore[attr-defined]
        module.load_template = lambda task, name: template  # type: ignore[attr-defined]
        with tempfile.TemporaryDirectory() as tmp, contextlib.redirect_stdout(io.StringIO()):
            final = module.main(model_name="fake", results_dir=tmp, overwrite=True, max_workers=4)
        keep = ("total_examples", "correct_examples", "accuracy", "individual_accuracy",
                "total_groups", "correct_groups", "group_accuracy")  # fmt: skip
        out[kind] = {k: final[k] for k in keep if k in final}
    return out


def build(upstream: Path) -> dict[str, Any]:
    from editreward_bench.benchmarks import genai, tiger

    sys.path.insert(0, str(upstream))
    stand_ins()
    rows = tiger.synthetic_rows()
    items = group_items(rows)
    names = [p for part in items.values() for item in part for p in item["paths_generated"]]
    scores = known_scores(items)
    assert sorted(scores) == sorted(names)
    verdicts = {r: known_verdict(row, r) for r, row in enumerate(rows)}

    eval_bench = importlib.import_module("eval_bench")
    calc = importlib.import_module("calc_accuracy")
    genai_out: dict[str, Any] = {}
    for split in ("test", "test_v1"):
        votes = [row["vote_type"] for row in genai.synthetic_rows(split)]
        g_scores = {f"{split}/{r}/{side}": known_score(f"genai/{split}/{r}/{side}")
                    for r in range(len(votes)) for side in ("left", "right")}  # fmt: skip
        h = [{"leftvote": 1, "rightvote": -1}.get(v, 0) for v in votes]
        m = [
            g_scores[f"{split}/{r}/left"] - g_scores[f"{split}/{r}/right"]
            for r in range(len(votes))
        ]
        with contextlib.redirect_stdout(io.StringIO()):
            genai_out[split] = {
                "scores": g_scores,
                "samples": len(h),
                "accuracy_with_ties": eval_bench.calc_accuracy_with_ties(h, m),
                "accuracy_without_ties": eval_bench.calc_accuracy_without_ties(h, m),
            }
    import random

    rng = random.Random(0)
    threshold = eval_bench.calc_accuracy_with_ties_for_edit_reward_bench
    cases = []
    for n in [*list(range(1, 13)), 25, 40]:
        ch = [rng.choice((1, -1, 0)) for _ in range(n)]
        cm = [rng.choice((-1.5, -1.0, -0.5, 0.0, 0.5, 1.0, 1.5, 2.25)) for _ in range(n)]
        with contextlib.redirect_stdout(io.StringIO()):
            without = None if all(x == 0 for x in ch) else calc.calc_accuracy_without_ties(ch, cm)
            cases.append({"h": ch, "m": cm, "with_ties": calc.calc_accuracy_with_ties(ch, cm),
                          "threshold": list(threshold(ch, cm)), "without_ties": without})  # fmt: skip
    h = [1, -1, 0, 1, -1, 0, 1, -1, 0]
    a = [0.9, -0.7, 0.1, 0.8, -0.6, 0.2, 0.7, -0.5, 0.3]
    b = [0.1, -0.8, 0.5, 0.5, -0.3, 0.3, 0.4, -0.4, 0.4]
    m = [x - y for x, y in zip(a, b, strict=True)]
    return {
        "upstream": {
            "repository": "TIGER-AI-Lab/EditReward (EditReward/evaluate), commit edb027e",
            "sha256": {
                f: hashlib.sha256((upstream / f).read_bytes()).hexdigest() for f in UPSTREAM_FILES
            },
        },
        "scores": scores,
        "eval_bench_items": items,
        "eval_bench": run_eval_bench(upstream, items, scores),
        "verdicts": {str(r): v for r, v in verdicts.items()},
        "inference": run_inference(rows, verdicts),
        "genai": genai_out,
        "tie_calibration_cases": cases,
        "calc_accuracy_example": {
            "h": h,
            "m": m,
            "with_ties": calc.calc_accuracy_with_ties(h, m),
            "without_ties": calc.calc_accuracy_without_ties(h, m),
        },
    }


def main(argv: list[str]) -> int:
    args = [a for a in argv if not a.startswith("--")]
    if len(args) != 1:
        print(__doc__)
        return 2
    upstream = Path(args[0]).resolve()
    missing = [f for f in UPSTREAM_FILES if not (upstream / f).is_file()]
    if missing:
        print(f"{upstream}: missing {missing}")
        return 2
    text = json.dumps(build(upstream), indent=1, sort_keys=True) + "\n"
    if "--check" in argv:
        same = SNAPSHOT.read_text(encoding="utf-8") == text
        print("snapshot up to date" if same else f"{SNAPSHOT} differs from upstream's output")
        return 0 if same else 1
    SNAPSHOT.write_text(text, encoding="utf-8")
    print(f"wrote {SNAPSHOT}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
