"""Editing-model runs on the command line: verify, report pages, their own leaderboard, errors.

Runs here use the offline image-diff and random judges on the synthetic benchmarks, as
the README's "Scoring editing models" section does.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from editreward_bench.cli import app
from editreward_bench.editing.model_eval import _notes
from editreward_bench.editing.runs import CIRCULAR_NOTE, LoadedBenchmark, load_for_run
from editreward_bench.editing.synth import write_demo

runner = CliRunner()


def erb(*args: str) -> Any:
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    where = tmp_path_factory.mktemp("edit-runs")
    write_demo(where / "demo", samples=2)
    store = where / "store.sqlite"
    root = where / "runs"
    paths = {}
    for model in ("careful", "sloppy"):
        out = root / f"{model}-gedit"
        result = erb("model-eval", "--benchmark", "gedit", "--dataset", "gedit-mini", "--outputs",
                     where / "demo" / "gedit" / model, "--judge", "image-diff", "--store", store, "--out", out)  # fmt: skip
        assert result.exit_code == 0, result.output
        paths[model] = out
    out = root / "imgedit"
    result = erb("model-eval", "-b", "imgedit", "-d", where / "demo" / "imgedit" / "data", "--outputs",
                 where / "demo" / "imgedit" / "careful", "--judge", "image-diff", "--store", store, "--out", out)  # fmt: skip
    assert result.exit_code == 0, result.output
    paths["imgedit"] = out
    out = root / "bon"
    result = erb("best-of-n", "-b", "gedit", "-d", "gedit-mini", "--outputs", where / "demo" / "gedit" / "sloppy",
                 "--selector", "image-diff", "--evaluator", "random", "--store", store, "--out", out)  # fmt: skip
    assert result.exit_code == 0, result.output
    paths["bon"] = out
    out = root / "judge"
    result = erb(
        "evaluate", "--judge", "image-diff", "--dataset", "mini", "--store", store, "--out", out
    )
    assert result.exit_code == 0, result.output
    paths["judge"] = out
    paths["root"] = root
    paths["where"] = where
    return paths


def test_model_eval_prints_the_authors_table(runs: dict[str, Path]) -> None:
    metrics = json.loads((runs["careful"] / "metrics.json").read_text())
    assert metrics["kind"] == "model-eval"
    assert set(metrics["headline"]) == {"semantics", "quality", "overall"}
    assert set(metrics["groups"]) == set(metrics["groups_intersection"])
    imgedit = json.loads((runs["imgedit"] / "metrics.json").read_text())
    assert set(imgedit["headline"]) == {"overall"}
    assert len(imgedit["groups"]) == 9


@pytest.mark.parametrize("name", ["careful", "imgedit", "bon"])
def test_verify_recomputes_model_runs(runs: dict[str, Path], name: str) -> None:
    result = erb("verify", runs[name])
    assert result.exit_code == 0, result.output
    assert "verified" in result.output


def test_verify_names_a_tampered_number(runs: dict[str, Path], tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(runs["careful"], copy)
    metrics = json.loads((copy / "metrics.json").read_text())
    metrics["headline"]["overall"] += 0.01
    metrics["groups"]["text_change"]["failed"] = 3
    (copy / "metrics.json").write_text(json.dumps(metrics))
    result = erb("verify", copy)
    assert result.exit_code == 1
    assert "headline.overall: recorded" in result.output
    assert "groups.text_change.failed" in result.output
    bon = tmp_path / "bon"
    shutil.copytree(runs["bon"], bon)
    metrics = json.loads((bon / "metrics.json").read_text())
    first = next(iter(metrics["picks"]["2"]))
    metrics["picks"]["2"][first] = 1 - metrics["picks"]["2"][first]
    (bon / "metrics.json").write_text(json.dumps(metrics))
    result = erb("verify", bon)
    assert result.exit_code == 1
    assert f"picks.2.{first}" in result.output


def test_leaderboard_keeps_judges_and_editing_models_apart(
    runs: dict[str, Path], tmp_path: Path
) -> None:
    out = tmp_path / "board.html"
    result = erb("leaderboard", runs["root"], "--out", out)
    assert result.exit_code == 0, result.output
    judges, models = out.read_text(), (tmp_path / "board-models.html").read_text()
    assert "careful" not in judges and "sloppy" not in judges
    assert "image-diff" in judges
    assert "careful" in models and "sloppy" in models
    assert "GEdit-Bench-EN, judged by image-diff" in models
    assert "ImgEdit-Bench (basic), judged by image-diff" in models
    assert "reported" in models and "Qwen-Image-Edit" in models  # the authors' numbers, labelled
    assert "Paired comparisons" in models
    assert "Best-of-N" in models


def test_a_run_page_shows_groups_reported_numbers_and_samples(runs: dict[str, Path]) -> None:
    result = erb("report", runs["careful"])
    assert result.exit_code == 0, result.output
    page = (runs["careful"] / "report.html").read_text()
    for text in ("Per task group", "background_change", "Reported by the benchmark", "OmniGen2",
                 "Judge identity", "Sample browser", "Not comparable"):  # fmt: skip
        assert text in page, text
    result = erb("report", runs["bon"])
    assert result.exit_code == 0, result.output
    page = (runs["bon"] / "report.html").read_text()
    assert "Best-of-N: the evaluator" in page and "<svg" in page and "picks/best2" in page


def test_model_names_are_escaped(runs: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "x"
    result = erb("model-eval", "-b", "gedit", "-d", "gedit-mini", "--outputs", runs["where"] / "demo" / "gedit" / "careful",
                 "--judge", "random", "--store", runs["where"] / "store.sqlite", "--out", out,
                 "--model-name", "<script>alert(1)</script>")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert erb("report", out).exit_code == 0
    page = (out / "report.html").read_text()
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_an_editscore_judge_is_called_circular() -> None:
    bench = load_for_run("gedit", "gedit-mini")
    assert isinstance(bench, LoadedBenchmark)
    info = {
        "card": "editscore-7b",
        "name": "editscore-7b",
        "protocol": "editscore",
        "adapter": "EditScore/EditScore-7B",
    }
    assert CIRCULAR_NOTE in _notes(bench, info)
    assert CIRCULAR_NOTE not in _notes(bench, {"card": "viescore-gpt-4.1", "protocol": "viescore"})


# --------------------------------------------------------------------------- errors


def test_bad_input_is_one_line_and_touches_nothing(runs: dict[str, Path], tmp_path: Path) -> None:
    outputs = runs["where"] / "demo" / "gedit" / "careful"
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("my file")
    cases = [
        (["--judge", "no-such-judge"], "unknown judge"),
        (["--judge", "image-diff", "--out", mine], "was not written by erb"),
        (["--judge", "image-diff", "--language", "zh"], "Chinese is 'cn'"),
        (["--judge", "image-diff", "--dataset", tmp_path / "nowhere"], "no such file or folder"),
    ]
    for extra, message in cases:
        result = erb("model-eval", "-b", "gedit", "--outputs", outputs, "--store", tmp_path / "s.sqlite",
                     *(["-d", "gedit-mini"] if "--dataset" not in extra else []), *extra)  # fmt: skip
        assert result.exit_code == 2, (extra, result.output)
        assert message in result.output, (extra, result.output)
        assert "Traceback" not in result.output
    assert sorted(p.name for p in mine.iterdir()) == ["notes.txt"]


def test_synth_editing_refuses_a_users_folder(tmp_path: Path) -> None:
    (tmp_path / "mine.txt").write_text("x")
    result = erb("data", "synth-editing", "--out", tmp_path)
    assert result.exit_code == 2
    assert "not written by erb" in result.output
    assert [p.name for p in tmp_path.iterdir()] == ["mine.txt"]


def test_the_readme_commands_run_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The README's "Scoring editing models" block, command by command, in a fresh folder."""
    import shlex

    from conftest import REPO

    text = (REPO / "README.md").read_text(encoding="utf-8")
    block = text.split("<!-- readme:editing -->", 1)[1].split("```bash\n", 1)[1].split("```", 1)[0]
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ERB_STORE", str(tmp_path / "store.sqlite"))
    for line in block.strip().splitlines():
        command = line.split("#", 1)[0].replace("/tmp/erb-edit", str(tmp_path / "erb-edit"))
        argv = shlex.split(command)
        assert argv[0] == "erb"
        result = runner.invoke(app, argv[1:])
        assert result.exit_code == 0, (line, result.output)
    assert (tmp_path / "reports" / "leaderboard-models.html").is_file()
