"""erb never deletes or overwrites what it did not create, and checks outputs before any work.

Every refusal is one line on stderr, exit status 2, and leaves the file system as it was.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from conftest import REPO
from typer.testing import CliRunner

from editreward_bench.benchmark import load_benchmark
from editreward_bench.cli import app
from editreward_bench.outputs import (
    MARKER,
    OutputError,
    prepare_output_dir,
    read_marker,
)

runner = CliRunner()
EXAMPLE = REPO / "data" / "mini_predictions.jsonl"


def erb(*args: str) -> Any:
    return runner.invoke(app, list(args), catch_exceptions=False)


def refused(result: Any, *needles: str) -> str:
    """The result is a one-line error (exit 2, no traceback) mentioning every needle."""
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert lines[0].startswith("error: "), result.output
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def tree(root: Path) -> dict[str, bytes | None]:
    """Every path under root with its bytes (None for folders)."""
    return {
        str(p.relative_to(root)): (p.read_bytes() if p.is_file() else None)
        for p in sorted(root.rglob("*"))
    }


def synth(out: Path | str, *extra: str) -> Any:
    return erb("data", "synth", "--out", str(out), "--rows", "6", "--image-size", "16", *extra)


def predictions(out: Path | str | None, *extra: str, path: Path = EXAMPLE) -> Any:
    args = ["evaluate", "--predictions", str(path), "--dataset", "mini", "--bootstrap", "20"]
    return erb(*args, *(["--out", str(out)] if out is not None else []), *extra)


# --------------------------------------------------------------------------- data synth / make-mini


def test_synth_into_a_users_folder_keeps_it_and_exits_2(tmp_path: Path) -> None:
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "thesis.tex").write_text("years of work")
    before = tree(tmp_path)
    refused(synth(folder), str(folder), "not written by erb", "choose another --out")
    assert tree(tmp_path) == before


@pytest.mark.parametrize("where", [".", "home"])
def test_synth_out_dot_or_home_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    home = tmp_path / "home"
    (home / "Documents").mkdir(parents=True)
    (home / ".bashrc").write_text("export PATH")
    monkeypatch.chdir(home)
    before = tree(tmp_path)
    refused(synth("." if where == "." else home), "not written by erb")
    assert tree(tmp_path) == before


def test_synth_overwrite_replaces_only_erbs_files(tmp_path: Path) -> None:
    out = tmp_path / "synth"
    assert synth(out).exit_code == 0
    assert read_marker(out) is not None and read_marker(out).kind == "synthetic-benchmark"  # type: ignore[union-attr]
    assert len(load_benchmark(out)) == 6
    (out / "notes.txt").write_text("mine")
    # A file erb wrote earlier that the new output does not have: erb removes it.
    marker = json.loads((out / MARKER).read_text())
    marker["files"].append("data-00001-of-00002.arrow")
    (out / MARKER).write_text(json.dumps(marker))
    (out / "data-00001-of-00002.arrow").write_bytes(b"old shard")

    before = tree(tmp_path)
    refused(synth(out, "--seed", "1"), str(out), "--overwrite")
    assert tree(tmp_path) == before

    result = synth(out, "--seed", "1", "--overwrite")
    assert result.exit_code == 0, result.output
    assert (out / "notes.txt").read_text() == "mine"
    assert not (out / "data-00001-of-00002.arrow").exists()
    assert len(load_benchmark(out)) == 6
    assert "notes.txt" not in json.loads((out / MARKER).read_text())["files"]
    assert not [p for p in out.iterdir() if p.name.startswith(".erb-tmp-")]


def test_synth_into_an_empty_folder_or_a_new_one_works(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    assert synth(tmp_path / "empty").exit_code == 0
    assert synth(tmp_path / "new" / "deeper").exit_code == 0
    assert len(load_benchmark(tmp_path / "new" / "deeper")) == 6


def test_synth_refuses_erbs_other_outputs(tmp_path: Path) -> None:
    run = tmp_path / "run"
    assert predictions(run).exit_code == 0
    before = tree(tmp_path)
    refused(synth(run, "--overwrite"), "run folder", "not an erb synthetic benchmark")
    assert tree(tmp_path) == before


def test_synth_out_is_a_file_or_under_one(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    refused(synth(tmp_path / "file"), "is a file")
    refused(synth(tmp_path / "file" / "sub"), "not a folder")
    assert tree(tmp_path) == {"file": b"x"}


def test_bundled_mini_is_erbs_own_and_needs_overwrite(tmp_path: Path) -> None:
    mini = REPO / "data" / "mini"
    assert read_marker(mini) is not None and read_marker(mini).kind == "mini"  # type: ignore[union-attr]
    stamps = {p.name: p.stat().st_mtime_ns for p in mini.iterdir()}
    refused(erb("data", "make-mini"), str(mini), "--overwrite")
    assert {p.name: p.stat().st_mtime_ns for p in mini.iterdir()} == stamps


def test_make_mini_outside_a_checkout_writes_here_not_into_the_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import editreward_bench.resources as resources

    installed = tmp_path / "site-packages" / "data"  # stands in for the installed package's data
    installed.mkdir(parents=True)
    shutil.copytree(REPO / "data" / "mini", installed / "mini")
    monkeypatch.setattr(resources, "data_dir", lambda: installed)
    monkeypatch.setattr(resources, "checkout_data_dir", lambda: None)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    before = tree(installed)
    result = erb("data", "make-mini")
    assert result.exit_code == 0, result.output
    assert "not a source checkout" in result.output and "erb-mini" in result.output
    assert (work / "erb-mini" / MARKER).is_file()
    assert (work / "mini_predictions.jsonl").is_file()
    assert tree(installed) == before
    # Again: erb-mini is now erb's own, and the predictions file has no marker: --overwrite.
    refused(erb("data", "make-mini"), "--overwrite")


def test_make_mini_predictions_must_not_replace_a_file(tmp_path: Path) -> None:
    (tmp_path / "p.jsonl").write_text("mine\n")
    args = ["data", "make-mini", "--out", str(tmp_path / "m"), "--predictions"]
    refused(erb(*args, str(tmp_path / "p.jsonl")), "p.jsonl", "--overwrite")
    refused(erb(*args, str(tmp_path)), "is a folder", "--predictions")
    assert tree(tmp_path) == {"p.jsonl": b"mine\n"}


# --------------------------------------------------------------------------- evaluate


def test_evaluate_out_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "results.txt").write_text("keep")
    refused(predictions(tmp_path / "results.txt"), "results.txt", "is a file")
    assert tree(tmp_path) == {"results.txt": b"keep"}


def test_evaluate_out_under_a_file(tmp_path: Path) -> None:
    (tmp_path / "somefile").write_text("keep")
    refused(predictions(tmp_path / "somefile" / "sub"), "somefile", "--out")
    assert tree(tmp_path) == {"somefile": b"keep"}


@pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root ignores permissions"
)
def test_evaluate_out_in_a_read_only_folder(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        refused(predictions(locked / "run"), "cannot write")
        refused(predictions(locked), "cannot write")
        assert list(locked.iterdir()) == []
    finally:
        locked.chmod(0o755)


def test_evaluate_into_a_users_folder_is_refused(tmp_path: Path) -> None:
    (tmp_path / "notes.md").write_text("mine")
    refused(predictions(tmp_path), "not written by erb")
    assert tree(tmp_path) == {"notes.md": b"mine"}


@pytest.mark.parametrize("name", ["../../x", "..", "a/b", "ABSOLUTE"])
def test_run_names_cannot_leave_the_runs_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    work = tmp_path / "a" / "b"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    if name == "ABSOLUTE":  # inside tmp_path, so that even a regression writes nowhere else
        name = str(tmp_path / "x")
    refused(predictions(None, "--name", name), "--name", repr(name))
    assert tree(tmp_path) == {"a": None, "a/b": None}


def test_a_card_name_cannot_leave_the_runs_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    card = tmp_path / "card.toml"
    card.write_text('name = "../../evil"\nprotocol = "random"\nbackend = "none"\n')
    monkeypatch.chdir(tmp_path)
    result = erb("evaluate", "--judge", str(card), "--dataset", "mini", "--limit", "3")
    refused(result, "judge name", "../../evil", "--name")
    assert tree(tmp_path) == {"card.toml": card.read_bytes()}
    assert not (tmp_path.parent.parent / "evil").exists()


def test_the_same_predictions_run_again_reuses_its_folder(tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert predictions(out).exit_code == 0
    (out / "my-notes.txt").write_text("mine")
    result = predictions(out)
    assert result.exit_code == 0, result.output
    assert (out / "my-notes.txt").read_text() == "mine"
    assert sorted(read_marker(out).files) == sorted(  # type: ignore[union-attr]
        ["manifest.json", "metrics.json", "outcomes.parquet", "records.parquet"]
    )


def test_another_run_into_a_run_folder_needs_overwrite(tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert predictions(out).exit_code == 0
    (out / "my-notes.txt").write_text("mine")
    other = tmp_path / "other.jsonl"
    other.write_text("".join(EXAMPLE.read_text().splitlines(keepends=True)[:50]))
    before = tree(tmp_path)
    refused(predictions(out, path=other), str(out), "different run", "--overwrite")
    refused(predictions(out, "--limit", "9"), "dataset fingerprint", "--overwrite")
    assert tree(tmp_path) == before

    result = predictions(out, "--overwrite", path=other)
    assert result.exit_code == 0, result.output
    assert json.loads((out / "manifest.json").read_text())["judge"]["source"] == str(other)
    assert (out / "my-notes.txt").read_text() == "mine"


def test_a_run_folder_from_before_markers_is_still_erbs(tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert predictions(out).exit_code == 0
    (out / MARKER).unlink()
    assert predictions(out).exit_code == 0
    assert (out / MARKER).is_file()


def judge_run(out: Path, store: Path, *extra: str) -> Any:
    return erb(
        "evaluate", "--judge", "random", "--dataset", "mini", "--limit", "6", "--bootstrap", "20",
        "--store", str(store), "--out", str(out), *extra,
    )  # fmt: skip


def test_judge_runs_resume_and_refuse_other_runs_before_judging(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import editreward_bench.judges.baselines as baselines
    import editreward_bench.runner as runner_module

    out, store = tmp_path / "run", tmp_path / "passes.sqlite"
    assert judge_run(out, store).exit_code == 0
    assert judge_run(out, store).exit_code == 0  # the same command again: resumes, no --overwrite
    before = (out / "metrics.json").read_bytes()

    def no_judge_loading(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the judge was loaded")

    # Settings known from the command line: refused before the judge is even loaded.
    with monkeypatch.context() as patch:
        patch.setattr(runner_module, "load_judge", no_judge_loading)
        refused(judge_run(out, store, "--seed", "7"), "seed 42 there, 7 now", "--overwrite")
        refused(judge_run(out, store, "--k", "2"), "k 1 there, 2 now")
        (tmp_path / "file").write_text("x")
        refused(judge_run(tmp_path / "file", store), "is a file")

    # A different judge (its fingerprint): refused after loading it, before judging anything.
    def no_judging(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("judged")

    other = tmp_path / "other.toml"  # another random judge: another name, another fingerprint
    other.write_text('name = "random-other"\nprotocol = "random"\nbackend = "none"\n')
    with monkeypatch.context() as patch:
        patch.setattr(baselines.RandomJudge, "judge", no_judging)
        refused(
            erb("evaluate", "--judge", str(other), "--dataset", "mini", "--limit", "6",
                "--store", str(store), "--out", str(out)),
            "judge fingerprint", "--overwrite",
        )  # fmt: skip
    assert (out / "metrics.json").read_bytes() == before
    assert judge_run(out, store, "--seed", "7", "--overwrite").exit_code == 0


def test_a_stale_report_page_goes_with_the_run_it_described(tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert predictions(out).exit_code == 0
    assert erb("report", str(out)).exit_code == 0
    assert "report.html" in read_marker(out).files  # type: ignore[union-attr]
    assert predictions(out, "--limit", "9", "--overwrite").exit_code == 0
    assert not (out / "report.html").exists()


# --------------------------------------------------------------------------- leaderboard / report


@pytest.fixture(scope="module")
def a_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "run"
    assert predictions(out).exit_code == 0
    return out


@pytest.mark.parametrize("fmt", ["html", "md"])
def test_leaderboard_out_is_a_folder(a_run: Path, tmp_path: Path, fmt: str) -> None:
    result = runner.invoke(
        app, ["leaderboard", str(a_run), "--format", fmt, "--out", str(tmp_path)]
    )
    assert result.exception is None or isinstance(result.exception, SystemExit)
    refused(result, str(tmp_path), "is a folder", "leaderboard.")
    assert list(tmp_path.iterdir()) == []


def test_leaderboard_out_cannot_be_written(a_run: Path, tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    result = runner.invoke(
        app, ["leaderboard", str(a_run), "--out", str(tmp_path / "file" / "lb.html")]
    )
    refused(result, "not a folder")
    assert tree(tmp_path) == {"file": b"x"}


def test_report_out_is_a_folder(a_run: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["report", str(a_run), "--out", str(tmp_path)])
    refused(result, "is a folder", "report.html")


# --------------------------------------------------------------------------- the module


def test_prepare_leaves_no_trace(tmp_path: Path) -> None:
    prepare_output_dir(tmp_path / "a" / "b" / "c", "run")
    assert list(tmp_path.iterdir()) == []


def test_a_marker_naming_paths_outside_its_folder_is_not_trusted(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (tmp_path / "precious").write_text("keep")
    (out / MARKER).write_text(
        json.dumps({"kind": "synthetic-benchmark", "files": ["../precious", "state.json"]})
    )
    assert read_marker(out) is None
    with pytest.raises(OutputError, match="not written by erb"):
        prepare_output_dir(out, "synthetic-benchmark", overwrite=True)
    assert (tmp_path / "precious").read_text() == "keep"
