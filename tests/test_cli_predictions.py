"""`erb evaluate --predictions` end to end on the bundled benchmark."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from conftest import REPO
from typer.testing import CliRunner

from editreward_bench.cli import app
from editreward_bench.predictions import PredictionsError, read_predictions
from editreward_bench.taxonomy import DIMENSIONS, GROUPS, SUBTASKS

runner = CliRunner()
EXAMPLE = REPO / "data" / "mini_predictions.jsonl"


def invoke(*args: str) -> object:
    return runner.invoke(app, list(args), catch_exceptions=False)


def test_evaluate_predictions_writes_the_run_folder(tmp_path: Path, mini) -> None:
    out = tmp_path / "run"
    result = invoke(
        "evaluate",
        "--predictions",
        str(EXAMPLE),
        "--dataset",
        "mini",
        "--out",
        str(out),
        "--bootstrap",
        "200",
    )
    assert result.exit_code == 0, result.output
    assert "overall" in result.output and "PF" in result.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["schema_version"] == 1
    assert metrics["k"] == 1
    assert metrics["judge"]["name"] == "mini_predictions"
    assert metrics["dataset"] == {
        "source": "mini",
        "revision": None,
        "fingerprint": mini.fingerprint,
        "rows": len(mini),
        "synthetic": True,
    }
    assert set(metrics["accuracy"]["groups"]) == set(GROUPS)
    assert set(metrics["accuracy"]["subtasks"]) == set(SUBTASKS)
    for d in DIMENSIONS:
        value = metrics["accuracy"]["overall"][d]
        low, high = metrics["ci95"]["overall"][d]
        assert 0 <= low <= value <= high <= 1
        assert 0 <= metrics["tie_rate"][d] <= 1
    assert metrics["failures"] == 0

    records = pq.read_table(out / "records.parquet").to_pylist()
    assert len(records) == len(mini.candidates)
    assert {r["pass"] for r in records} == {0} and {r["status"] for r in records} == {"ok"}
    outcomes = pq.read_table(out / "outcomes.parquet").to_pylist()
    assert len(outcomes) == len(mini)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["dataset"]["fingerprint"] == mini.fingerprint
    assert "datasets" in manifest["versions"] and manifest["started"] <= manifest["finished"]

    # The accuracy recomputed by hand from the per-row outcomes matches metrics.json.
    by_cell: dict[tuple[str, str], list[int]] = {}
    for row in outcomes:
        by_cell.setdefault((row["subtask"], row["dimension"]), []).append(
            row["outcome"] == "correct"
        )
    for d in DIMENSIONS:
        macro = sum(sum(v) / len(v) for (s, dd), v in by_cell.items() if dd == d) / 13
        assert metrics["accuracy"]["overall"][d] == pytest.approx(macro)


def test_missing_and_unknown_keys(tmp_path: Path, mini) -> None:
    lines = EXAMPLE.read_text().splitlines()
    preds = tmp_path / "p.jsonl"
    extra = json.dumps(
        {"key": "not-in-dataset", "prompt_following": 1, "consistency": 1, "overall": 1}
    )
    preds.write_text("\n".join([*lines[:-5], extra]) + "\n")
    out = tmp_path / "run"
    result = invoke(
        "evaluate",
        "--predictions",
        str(preds),
        "--dataset",
        "mini",
        "--out",
        str(out),
        "--bootstrap",
        "50",
    )
    assert result.exit_code == 0
    assert "not-in-dataset" in result.output and "no prediction" in result.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["failures"] == 5
    statuses = [r["status"] for r in pq.read_table(out / "records.parquet").to_pylist()]
    assert statuses.count("failed") == 5


def test_limit_gives_null_cells_and_a_warning(tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = invoke(
        "evaluate",
        "--predictions",
        str(EXAMPLE),
        "--dataset",
        "mini",
        "--limit",
        "6",
        "--out",
        str(out),
        "--bootstrap",
        "50",
    )
    assert result.exit_code == 0
    assert "have no rows" in result.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["dataset"]["rows"] == 6
    assert metrics["accuracy"]["subtasks"]["compose"]["overall"] is None
    assert metrics["accuracy"]["overall"]["overall"] is not None


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            '{"key": "a", "prompt_following": 1, "consistency": 2, "overall": 3}\n{"key": "a", "prompt_following": 1, "consistency": 2, "overall": 3}\n',
            "2: duplicate key 'a'",
        ),
        (
            '{"key": "a", "prompt_following": "high", "consistency": 2, "overall": 3}\n',
            "1: prompt_following must be a number",
        ),
        ('{"key": "a", "prompt_following": 1, "overall": 3}\n', "missing score"),
        ("not json\n", "1: not valid JSON"),
        (
            '{"key": "a", "prompt_following": NaN, "consistency": 2, "overall": 3}\n',
            "must be finite",
        ),
    ],
)
def test_bad_predictions_name_the_line(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "p.jsonl"
    path.write_text(content)
    with pytest.raises(PredictionsError, match=message):
        read_predictions(path)
    result = runner.invoke(
        app,
        ["evaluate", "--predictions", str(path), "--dataset", "mini", "--out", str(tmp_path / "r")],
    )
    assert result.exit_code == 2
    assert message.split(": ")[-1] in result.output
    assert "Traceback" not in result.output


def test_non_utf8_predictions(tmp_path: Path) -> None:
    path = tmp_path / "p.jsonl"
    path.write_bytes(b'{"key": "\xff"}\n')
    with pytest.raises(PredictionsError, match="not valid UTF-8"):
        read_predictions(path)


def test_bad_dataset_gives_a_clear_error(tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["evaluate", "--predictions", str(EXAMPLE), "--dataset", str(tmp_path / "nope")]
    )
    assert result.exit_code == 2
    assert (
        "no such file or folder" in result.output and "hub cannot be reached" not in result.output
    )


def test_data_info(tmp_path: Path, mini) -> None:
    result = invoke("data", "info", "mini", "--json")
    assert result.exit_code == 0
    info = json.loads(result.output)
    assert info["rows"] == len(mini) and info["fingerprint"] == mini.fingerprint
    assert info["cells"]["extract"]["overall"] == mini.cells()[("extract", "overall")]
    result = invoke("data", "info", "mini")
    assert "fingerprint" in result.output
