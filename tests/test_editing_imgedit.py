"""ImgEdit-Bench: the request ``basic_bench.py`` sends, and the scores of its step 1 and step 2.

ImgEdit's code has no licence, so it can be neither copied nor run here: erb implements its
scripts from the facts about them (one request per item with the rubric, the original and
the edited image as raw bytes labelled image/png; step 1: the mean of the digit-only ``N``
of ``Name: N`` lines, rounded to 2 decimals; step 2: the rounded mean per edit type; the
leaderboard: the mean of the type scores). The expected numbers below are worked out by
hand from the answers, not by calling erb's functions.
"""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from random import Random
from typing import Any

import pytest
from scripted_vlm import DROP, FILTER, ScriptedVLM, message_parts

from editreward_bench.editing.gedit import EditBenchmarkError
from editreward_bench.editing.imgedit import load_imgedit
from editreward_bench.editing.model_eval import ModelEvalRequest, run_model_eval
from editreward_bench.editing.runs import read_records
from editreward_bench.editing.scores import ItemResult, imgedit_block
from editreward_bench.editing.synth import write_imgedit, write_imgedit_outputs
from editreward_bench.judges.imgedit import item_score, rubric_scores
from editreward_bench.runner import RunError, RunOptions


@pytest.mark.parametrize(
    ("answer", "scores", "score"),
    [
        ("Request Match: 4\nVisual Quality: 5\nRest Unchanged: 3\nWell done.", [4, 5, 3], 4.0),
        ("Request Match: 4\nVisual Quality: 4\nRest Unchanged: 5", [4, 4, 5], 4.33),  # 13/3
        ("A: 3\nB: 4\nC: 4", [3, 4, 4], 3.67),  # 11/3 = 3.666..
        ("A: 2\nB: 2\nC: 3", [2, 2, 3], 2.33),
        ("**Request Match**: 4\n  Visual Quality: 5  ", [4, 5], 4.5),  # markdown and spaces
        ("Score: 4/5\nNote: good", [], None),  # not digits: no score
        ("Overall: 3\nDetail: x: 4", [3], 3.0),  # three parts: not a Name: N line
        ("Name:4\nOther : 2", [2], 2.0),  # no space after the colon: not split
        ("Quality: 7\nFit: 10", [7, 10], 8.5),  # whatever the values
        ("I cannot judge these images.", [], None),
    ],
)
def test_step1_reads_name_n_lines(answer: str, scores: list[int], score: float | None) -> None:
    assert rubric_scores(answer) == scores
    assert item_score(scores) == score


def _items(kind_scores: dict[str, list[float | None]]) -> list[ItemResult]:
    items = []
    for kind, values in kind_scores.items():
        for i, v in enumerate(values):
            status = "ok" if v is not None else "failed"
            items.append(
                ItemResult(
                    f"{kind}{i}", kind, None, status, {"overall": v} if v is not None else {}
                )
            )
    return items


def test_step2_rounds_each_type_and_the_leaderboard_averages_the_rounded_scores() -> None:
    items = _items({
        "add": [4.33, 3.67, 5.0],   # 13.0 / 3 = 4.333.. -> 4.33
        "remove": [2.5, 3.0],       # 2.75 -> 2.75
        "style": [1.33, 2.0, None], # the failed item is left out
    })  # fmt: skip
    types, headline = imgedit_block(items, ["add", "remove", "style"])
    assert types["add"]["overall"] == 4.33
    assert types["remove"]["overall"] == 2.75
    # (1.33 + 2.0) / 2 is 1.66500000000000003552... in binary: Python's round gives 1.67
    assert types["style"]["overall"] == 1.67
    assert (types["style"]["scored"], types["style"]["failed"]) == (2, 1)
    assert headline["overall"] == (4.33 + 2.75 + 1.67) / 3


# --------------------------------------------------------------------------- end to end


def _answer(index: int, n: int) -> str:
    rng = Random(f"imgedit/{index}/{n}")
    a, b, c = rng.randint(1, 5), rng.randint(1, 5), rng.randint(1, 5)
    return f"Request Match: {a}\nVisual Quality: {b}\nRest Unchanged: {c}\nShort explanation."


SPECIAL = {
    0: ["I cannot rate this."],
    2: ["Request Match: 7\nVisual Quality: 5"],
    3: [DROP],
    4: [FILTER],
}
MISSING = 5


@pytest.fixture(scope="module")
def imgedit_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    where = tmp_path_factory.mktemp("imgedit")
    write_imgedit(where / "data")
    write_imgedit_outputs(where / "outputs", "careful")
    bench = load_imgedit(where / "data")
    (where / "outputs" / f"{bench.rows[MISSING].key}.png").unlink()
    by_sha = {hashlib.sha256((where / "outputs" / f"{r.key}.png").read_bytes()).hexdigest(): i
              for i, r in enumerate(bench.rows) if i != MISSING}  # fmt: skip

    def identify(body: dict[str, Any]) -> tuple[int, str]:
        _, urls = message_parts(body)
        return by_sha[
            hashlib.sha256(base64.b64decode(urls[1].split(",", 1)[1])).hexdigest()
        ], "rubric"

    def script(index: int, kind: str, n: int) -> str:
        answers = SPECIAL.get(index, [])
        return answers[n] if n < len(answers) else _answer(index, n)

    with ScriptedVLM(identify, script) as server:
        options = RunOptions(store=where / "store.sqlite", progress=False, base_urls=[server.url],
                             backend_options={"backoff": 0.01})  # fmt: skip
        summary = run_model_eval(
            ModelEvalRequest("imgedit", where / "outputs", "imgedit-gpt-4.1", dataset=str(where / "data"),
                             out=where / "run"),
            options,
        )  # fmt: skip
        log = list(server.log)
    return {"summary": summary, "bench": bench, "where": where, "log": log,
            "metrics": json.loads((where / "run" / "metrics.json").read_text()),
            "records": read_records(where / "run" / "records.parquet")}  # fmt: skip


def test_one_request_per_item_as_basic_bench_sends_it(imgedit_run: dict[str, Any]) -> None:
    assert all(
        entry["body"] == {"model": "gpt-4.1"} for entry in imgedit_run["log"]
    )  # no sampling, no seed


def test_images_go_as_their_raw_bytes_labelled_png(tmp_path: Path) -> None:
    write_imgedit(tmp_path / "data")
    write_imgedit_outputs(tmp_path / "outputs", "careful")
    bench = load_imgedit(tmp_path / "data")
    row = bench.rows[0]
    seen: list[dict[str, Any]] = []

    def identify(body: dict[str, Any]) -> tuple[int, str]:
        seen.append(body)
        return 0, "rubric"

    with ScriptedVLM(identify, lambda i, k, n: "A: 3") as server:
        run_model_eval(
            ModelEvalRequest("imgedit", tmp_path / "outputs", "imgedit-gpt-4.1", dataset=str(tmp_path / "data"),
                             out=tmp_path / "run"),
            RunOptions(store=tmp_path / "s.sqlite", progress=False, base_urls=[server.url], concurrency=1),
        )  # fmt: skip
    first = next(b for b in seen if bench.rubric_prompt(row) == message_parts(b)[0])
    content = first["messages"][0]["content"]
    assert [p["type"] for p in content] == ["text", "image_url", "image_url"]
    assert content[0]["text"] == bench.rubric_prompt(row)
    for part, path in zip(
        content[1:],
        (tmp_path / "data" / row.image_id, tmp_path / "outputs" / f"{row.key}.png"),
        strict=True,
    ):
        url = part["image_url"]["url"]
        assert url.startswith("data:image/png;base64,")  # even for the JPEG original
        assert base64.b64decode(url.split(",", 1)[1]) == path.read_bytes()


def test_type_scores_and_overall_as_step2_and_the_leaderboard(imgedit_run: dict[str, Any]) -> None:
    bench, metrics = imgedit_run["bench"], imgedit_run["metrics"]
    per_type: dict[str, list[float]] = {}
    for i, row in enumerate(bench.rows):
        if i in (0, 4, MISSING):  # no Name: N line; refused; no output
            continue
        answer = "Request Match: 7\nVisual Quality: 5" if i == 2 else _answer(i, 1 if i == 3 else 0)
        numbers = [
            int(line.split(": ")[1])
            for line in answer.splitlines()
            if ": " in line and line.split(": ")[1].isdigit()
        ]
        per_type.setdefault(row.edit_type, []).append(round(sum(numbers) / len(numbers), 2))
    expected = {t: round(sum(v) / len(v), 2) for t, v in per_type.items()}
    assert {t: metrics["groups"][t]["overall"] for t in expected} == expected
    assert metrics["headline"]["overall"] == sum(expected[t] for t in bench.types) / 9
    counts = metrics["counts"]
    assert (counts["scored"], counts["failed"], counts["missing"]) == (24, 2, 1)
    assert counts["out_of_range"] == 1
    assert metrics["judge_identity"]["content_filter"]["refused_requests"] == 1
    assert metrics["judge_identity"]["images"]["encoding"] == "raw file bytes, labelled image/png"
    failed = {r["key"]: r["error"] for r in imgedit_run["records"] if r["status"] == "failed"}
    assert "no 'Name: N' line" in failed[bench.rows[0].key]
    assert failed[bench.rows[4].key].startswith("content filter")


def test_imgedit_needs_the_users_copy(tmp_path: Path) -> None:
    with pytest.raises(EditBenchmarkError, match="pass --dataset DIR"):
        load_imgedit(None)
    write_imgedit(tmp_path / "data")
    (tmp_path / "data" / "prompts.json").unlink()
    with pytest.raises(EditBenchmarkError, match=r"prompts\.json is missing"):
        load_imgedit(tmp_path / "data")


def test_imgedit_schema_errors_name_the_item(tmp_path: Path) -> None:
    write_imgedit(tmp_path / "data")
    edits_path = tmp_path / "data" / "basic_edit.json"
    edits = json.loads(edits_path.read_text())
    first = next(iter(edits))
    edits[first]["edit_type"] = "warp"
    edits_path.write_text(json.dumps(edits))
    with pytest.raises(EditBenchmarkError, match=f"item '{first}': edit_type 'warp'"):
        load_imgedit(tmp_path / "data")
    edits[first]["edit_type"] = "add"
    edits_path.write_text(json.dumps(edits))
    with pytest.raises(EditBenchmarkError, match=r"original images are missing.*--images"):
        load_imgedit(tmp_path / "data", images=tmp_path / "elsewhere")


def test_the_rubric_protocol_refuses_gedit(tmp_path: Path) -> None:
    from editreward_bench.editing.synth import write_gedit_outputs

    write_gedit_outputs(tmp_path / "out", "careful")
    with pytest.raises(RunError, match="ImgEdit's rubric protocol"):
        run_model_eval(
            ModelEvalRequest("gedit", tmp_path / "out", "imgedit-gpt-4.1", dataset="gedit-mini", out=tmp_path / "run"),
            RunOptions(store=tmp_path / "s.sqlite", progress=False, base_urls=["http://127.0.0.1:9/v1"]),
        )  # fmt: skip


def test_images_elsewhere_are_found_with_images(tmp_path: Path) -> None:
    import shutil

    write_imgedit(tmp_path / "data")
    shutil.move(str(tmp_path / "data" / "synthetic"), str(tmp_path / "singleturn"))
    (tmp_path / "singleturn").rename(tmp_path / "extracted")
    (tmp_path / "root").mkdir()
    shutil.move(str(tmp_path / "extracted"), str(tmp_path / "root" / "synthetic"))
    bench = load_imgedit(tmp_path / "data", images=tmp_path / "root")
    assert bench.original(bench.rows[0]).read()[:2] == b"\xff\xd8"  # the JPEG original, as it is
