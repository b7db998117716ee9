"""GEdit-Bench: erb's numbers equal Step1X-Edit's own code's, to the last digit.

``tests/snapshots/gedit_parity.json`` is what Step1X-Edit's ``viescore`` and
``calculate_statistics.py`` computed on the case of ``tests/gedit_parity_case.py``, driven
on the scripted judge server (``python tests/snapshots/make_gedit_parity.py
/path/to/Step1X-Edit``, see its docstring). Here erb judges the same outputs on the same
server: every item's SC, PQ and O, every group mean and both headlines are compared with
``==``, and the server's count of requests per item and prompt shows erb asked again
exactly where upstream did. The answers come in a dozen formats; some requests drop,
return an HTTP 503 page or are refused by the content filter; some files are missing.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import gedit_parity_case as case
import pytest
from scripted_vlm import ScriptedVLM

from editreward_bench.editing.gedit import EditBenchmarkError, load_gedit
from editreward_bench.editing.model_eval import ModelEvalRequest, run_model_eval
from editreward_bench.editing.runs import read_records
from editreward_bench.judges.viescore import GUESS, upstream_parse
from editreward_bench.runner import RunError, RunOptions

SNAPSHOT = json.loads((Path(__file__).parent / "snapshots" / "gedit_parity.json").read_text())
#: Upstream judges both languages and averages one; erb judges the language it averages.
EN = {row.key: row.number for row in case.rows() if row.language == "en"}


@pytest.fixture(scope="module")
def parity_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    where = tmp_path_factory.mktemp("gedit-parity")
    data, outputs = case.write_case(where)
    with ScriptedVLM(case.identify, case.script) as server:
        options = RunOptions(
            store=where / "store.sqlite", progress=False, concurrency=4, base_urls=[server.url],
            backend_options={"backoff": 0.01},
        )  # fmt: skip
        summary = run_model_eval(
            ModelEvalRequest(
                "gedit", outputs, "viescore-gpt-4.1", dataset=str(data), out=where / "run"
            ),
            options,
        )
        requests = {f"{item}/{kind}": n for (item, kind), n in sorted(server.counts.items())}
        bodies = list(server.log)
    records = read_records(where / "run" / "records.parquet")
    metrics = json.loads((where / "run" / "metrics.json").read_text())
    return {"summary": summary, "records": records, "metrics": metrics, "requests": requests,
            "bodies": bodies, "where": where, "data": data, "outputs": outputs}  # fmt: skip


def test_every_item_equals_upstreams(parity_run: dict[str, Any]) -> None:
    records = {r["key"]: r for r in parity_run["records"]}
    assert set(records) == set(EN)
    for key in EN:
        expected = SNAPSHOT["items"][key]
        got = records[key]
        if expected["status"] == "ok":
            assert got["status"] == "ok", (key, got["error"])
            assert (got["semantics"], got["quality"], got["overall"]) == (
                expected["semantics"], expected["quality"], expected["overall"],
            ), key  # fmt: skip
        elif expected["status"] == "invented":  # upstream made a score up: erb fails the item
            assert got["status"] == "failed", key
            assert "random score" in got["error"] or got["error"].startswith("content filter"), got[
                "error"
            ]
        else:
            assert got["status"] == "missing", key


def test_headlines_and_groups_equal_calculate_statistics(parity_run: dict[str, Any]) -> None:
    metrics = parity_run["metrics"]
    for block, ours in (("full", ""), ("intersection", "_intersection")):
        assert metrics["headline" + ours] == SNAPSHOT[block]["headline"], block
        for group, values in SNAPSHOT[block]["groups"].items():
            mine = metrics["groups" + ours][group]
            assert {f: mine[f] for f in values} == values, (block, group)


def test_erb_asks_again_exactly_where_upstream_does(parity_run: dict[str, Any]) -> None:
    """Per item and prompt, as many requests as upstream made: re-asked rounds, item retries
    and refused requests alike (a dropped connection and a 503 page cost one retry each)."""
    numbers = {str(n) for n in EN.values()}
    upstream = {k: n for k, n in SNAPSHOT["requests"].items() if k.split("/")[0] in numbers}
    assert parity_run["requests"] == upstream


def test_requests_carry_what_upstream_sends(parity_run: dict[str, Any]) -> None:
    for entry in parity_run["bodies"]:
        assert entry["body"] == {"model": "gpt-4.1", "max_tokens": 1400}, entry


def test_failures_are_counted_beside_the_headline(parity_run: dict[str, Any]) -> None:
    metrics = parity_run["metrics"]
    counts = metrics["counts"]
    assert (counts["items"], counts["scored"], counts["failed"], counts["missing"]) == (
        37 - 4,
        29,
        2,
        2,
    )
    assert counts["out_of_range"] == 1  # item 13's SC of 11, used as upstream uses it
    identity = metrics["judge_identity"]
    # every answer said which model answered; the three refused requests said none
    assert identity["models_answered"] == {"gpt-4.1-2025-04-14": identity["requests"] - 3}
    refusals = identity["content_filter"]
    assert refusals["refused_requests"] == 3  # item 16's PQ twice (it fails), item 25's once
    assert refusals["items_failed"] == 1
    assert refusals["share_of_requests"] == 3 / identity["requests"]
    assert identity["provider"] == "127.0.0.1"
    assert identity["images"]["encoding"].startswith("jpeg")
    assert metrics["failures_as_zero"]["macro"]["overall"] < metrics["headline"]["overall"]
    for name in ("headline", "headline_intersection", "pooled"):
        for low_high in metrics["ci95"][name].values():
            assert low_high[0] <= low_high[1]


def test_a_rerun_judges_nothing_and_writes_the_same_numbers(parity_run: dict[str, Any]) -> None:
    where = parity_run["where"]
    with ScriptedVLM(case.identify, case.script) as server:
        options = RunOptions(store=where / "store.sqlite", progress=False, base_urls=[server.url])
        summary = run_model_eval(
            ModelEvalRequest("gedit", parity_run["outputs"], "viescore-gpt-4.1",
                             dataset=str(parity_run["data"]), out=where / "run"),
            options,
        )  # fmt: skip
        asked = sum(server.counts.values())
    assert asked == 0  # every pass, failed ones included, came from the store
    assert summary.metrics["headline"] == parity_run["metrics"]["headline"]


# --------------------------------------------------------------------------- the parser


@pytest.mark.parametrize(
    ("text", "give_up", "expected"),
    [
        ('{"score": [7, 8], "reasoning": "x"}', False, [7, 8]),
        ('{"score": 7}', False, [7]),
        ("[6, 9]", False, [6, 9]),
        ("[6,9]", False, [6, 9]),
        ("[6, 9]", True, GUESS),  # from the second round on, a bare list is a guess upstream
        ("7", False, [7]),
        ("11", False, False),
        ("{score: 8, reasoning: fine}", False, [8]),
        ("no json at all", False, False),
        ("no json at all", True, GUESS),
        ('{"score": [7, }', True, False),
    ],
)
def test_upstream_parse(text: str, give_up: bool, expected: Any) -> None:
    parsed = upstream_parse(text, give_up)
    if isinstance(expected, list):
        assert parsed["score"] == expected
    else:
        assert parsed is expected


# --------------------------------------------------------------------------- the loader


def test_gedit_schema_errors_name_the_row(tmp_path: Path) -> None:
    ds = case.dataset()
    bad = ds.map(lambda row, i: {"task_type": "nonsense"} if i == 5 else {}, with_indices=True)
    bad.save_to_disk(str(tmp_path / "bad"))
    with pytest.raises(EditBenchmarkError, match=r"row 5 .*task_type 'nonsense'"):
        load_gedit(str(tmp_path / "bad"))
    ds.remove_columns(["Intersection_exist"]).save_to_disk(str(tmp_path / "short"))
    with pytest.raises(EditBenchmarkError, match="Intersection_exist"):
        load_gedit(str(tmp_path / "short"))


def test_a_datasetdict_is_read_at_its_train_split(tmp_path: Path) -> None:
    import datasets

    datasets.DatasetDict({"train": case.dataset()}).save_to_disk(str(tmp_path / "dd"))
    bench = load_gedit(str(tmp_path / "dd"))
    assert len(bench.rows) == len(case.rows())


def test_languages_are_spelled_as_the_data_spells_them() -> None:
    bench = load_gedit("gedit-mini")
    with pytest.raises(EditBenchmarkError, match="Chinese is 'cn'"):
        bench.rows_for("zh")
    assert {r.language for r in bench.rows_for("cn")} == {"cn"}


def test_no_outputs_at_all_is_one_line_before_judging(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(RunError, match="no output found for any of the 33 items"):
        run_model_eval(
            ModelEvalRequest("gedit", tmp_path / "empty", "image-diff", dataset="gedit-mini",
                             out=tmp_path / "run"),
            RunOptions(store=tmp_path / "s.sqlite", progress=False),
        )  # fmt: skip
    assert not (tmp_path / "run").exists()


def test_flat_and_jsonl_outputs_are_judged_against_the_datasets_input_image(tmp_path: Path) -> None:
    from editreward_bench.editing.synth import gedit_items, toy_edit

    flat = tmp_path / "flat"
    flat.mkdir()
    lines = []
    for item in gedit_items():
        if item.language == "en":
            toy_edit(item, "careful", 0).save(flat / f"{item.key}.png")
            lines.append(json.dumps({"key": item.key, "path": f"flat/{item.key}.png"}))
    (tmp_path / "outputs.jsonl").write_text("\n".join(lines) + "\n")
    results = []
    for outputs in (flat, tmp_path / "outputs.jsonl"):
        summary = run_model_eval(
            ModelEvalRequest(
                "gedit",
                outputs,
                "image-diff",
                dataset="gedit-mini",
                out=tmp_path / f"run-{outputs.stem}",
            ),
            RunOptions(store=tmp_path / "s.sqlite", progress=False),
        )
        assert summary.metrics["counts"]["scored"] == 33
        results.append(summary.metrics)
    assert [m["outputs"]["layout"] for m in results] == ["flat", "jsonl"]
    assert results[0]["headline"] == results[1]["headline"]
    records = read_records(tmp_path / "run-flat" / "records.parquet")
    assert all(r["source_path"].startswith("input_image of row") for r in records)
