"""Runs on erb's own synthetic benchmarks are labelled so everywhere, never passed off as results."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from editreward_bench.benchmark import KNOWN_SYNTHETIC, SYNTHETIC_TAG, is_synthetic, load_benchmark
from editreward_bench.cli import app

runner = CliRunner()


def test_the_mark_is_in_the_metadata_and_not_in_the_fingerprint(mini, tmp_path: Path) -> None:
    assert mini.synthetic and mini.describe()["synthetic"] is True
    info = json.loads((Path(__file__).parent.parent / "data/mini/dataset_info.json").read_text())
    assert info["description"].startswith(SYNTHETIC_TAG)
    # The fingerprint hashes rows only: the same rows without the mark have the same one,
    # so run folders made before the mark still verify.
    import datasets

    ds = datasets.load_from_disk(str(Path(__file__).parent.parent / "data/mini"))
    ds.to_parquet(str(tmp_path / "copy.parquet"))  # a parquet copy loses the description
    copy = load_benchmark(tmp_path / "copy.parquet")
    assert copy.fingerprint == mini.fingerprint in KNOWN_SYNTHETIC
    assert copy.synthetic  # recognised by its fingerprint
    synth = tmp_path / "synth"
    assert runner.invoke(app, ["data", "synth", "--rows", "13", "--image-size", "32",
                               "--out", str(synth)]).exit_code == 0  # fmt: skip
    assert load_benchmark(synth).synthetic
    # Other rows in the same schema (a local copy of the real benchmark, say) are not.
    other = load_benchmark(synth).subset(5)
    assert other.synthetic  # a subset keeps the mark
    assert not is_synthetic({"source": "EditScore/EditReward-Bench", "fingerprint": "sha256:x"})


def test_cli_table_and_data_info_say_synthetic(tmp_path: Path) -> None:
    info = runner.invoke(app, ["data", "info", "mini"])
    assert (
        info.exit_code == 0
        and "synthetic: yes" in info.output
        and "mini (synthetic)" in info.output
    )
    assert json.loads(runner.invoke(app, ["data", "info", "mini", "--json"]).output)["synthetic"]
    result = runner.invoke(app, ["evaluate", "--judge", "image-diff", "--dataset", "mini",
                                 "--bootstrap", "0", "--out", str(tmp_path / "run"),
                                 "--store", str(tmp_path / "s.sqlite")])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "[SYNTHETIC data, not EditReward-Bench]" in " ".join(result.output.split())
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["dataset"]["synthetic"] is True


def test_old_run_folders_are_labelled_and_still_verify(tmp_path: Path) -> None:
    run = tmp_path / "run"
    args = ["evaluate", "--predictions", "data/mini_predictions.jsonl", "--dataset", "mini",
            "--bootstrap", "0", "--out", str(run)]  # fmt: skip
    root = Path(__file__).parent.parent
    args[2] = str(root / "data" / "mini_predictions.jsonl")
    assert runner.invoke(app, args).exit_code == 0
    metrics_path = run / "metrics.json"
    metrics = json.loads(metrics_path.read_text())
    del metrics["dataset"]["synthetic"]  # as erb wrote it before the mark
    metrics_path.write_text(json.dumps(metrics))
    assert is_synthetic(metrics["dataset"])
    verified = runner.invoke(app, ["verify", str(run)])
    assert verified.exit_code == 0, verified.output
