"""Loading EditReward-Bench and rejecting what is not it."""

from __future__ import annotations

import filecmp
from pathlib import Path

import pytest
from conftest import REPO, make_row, png

from editreward_bench.benchmark import (
    HUB_ID,
    BenchmarkError,
    CandidateImageError,
    load_benchmark,
)
from editreward_bench.taxonomy import DIMENSIONS, SUBTASKS


def test_mini_covers_every_cell_with_unequal_sizes(mini) -> None:
    cells = mini.cells()
    assert set(cells) == {(s, d) for s in SUBTASKS for d in DIMENSIONS}
    assert len(set(cells.values())) > 1
    assert mini.source == "mini"
    assert mini.fingerprint.startswith("sha256:")
    # keys recur across rows and dimensions: fewer candidates than row slots
    assert len(mini.candidates) < 2 * len(mini)


def test_candidates_are_deduplicated_and_decoded_lazily(mini) -> None:
    pair = mini.pairs[0]
    candidate = mini.candidates[pair.keys[0]]
    assert candidate.instruction == pair.instruction
    source, edited = candidate.load_images()
    assert source.size == edited.size and source.mode == "RGB"
    assert candidate.source.sha == pair.source_id


def test_edited_image_is_resized_to_the_source_size(parquet_bench) -> None:
    row = make_row(("a", "b"), source=png(size=40), edited=(png(size=20), png(size=64)))
    bench = load_benchmark(parquet_bench([row]))
    for key in ("a", "b"):
        source, edited = bench.candidates[key].load_images()
        assert edited.size == source.size == (40, 40)


def test_parquet_folder_and_save_to_disk_give_the_same_fingerprint(tmp_path: Path, mini) -> None:
    import datasets

    ds = datasets.load_from_disk(str(REPO / "data" / "mini"))
    folder = tmp_path / "pq"
    folder.mkdir()
    ds.to_parquet(str(folder / "part-0.parquet"))
    assert load_benchmark(folder).fingerprint == mini.fingerprint


def test_fingerprint_changes_with_the_label_order(parquet_bench) -> None:
    a = load_benchmark(parquet_bench([make_row(("a", "b"))]))
    swapped = make_row(("b", "a"), edited=(png((0, 200, 0)), png((200, 0, 0))))
    b = load_benchmark(parquet_bench([swapped]))
    assert a.fingerprint != b.fingerprint


def test_missing_columns_are_named(parquet_bench) -> None:
    import datasets

    row = make_row(("a", "b"))
    del row["dimension"]
    features = datasets.Features(
        {
            k: v
            for k, v in __import__("editreward_bench.synth").synth.features().items()
            if k != "dimension"
        }
    )
    with pytest.raises(BenchmarkError, match=r"missing column\(s\) \['dimension'\]"):
        load_benchmark(parquet_bench([row], features))


def test_tiger_lab_dataset_is_recognised(tmp_path: Path) -> None:
    import datasets

    ds = datasets.Dataset.from_list(
        [
            {
                "id": "1",
                "instruction": "x",
                "source_image": png(),
                "candidate_1": png(),
                "candidate_2": png(),
                "ranking": "A>B",
                "dataset": "2pair",
            }
        ]
    )
    path = tmp_path / "tiger.parquet"
    ds.to_parquet(str(path))
    with pytest.raises(BenchmarkError, match="TIGER-Lab/EditReward-Bench"):
        load_benchmark(path)
    with pytest.raises(BenchmarkError, match="TIGER-Lab/EditReward-Bench"):
        load_benchmark("TIGER-Lab/EditReward-Bench")


def test_wrong_types_unknown_values_and_bad_rows(parquet_bench) -> None:
    with pytest.raises(BenchmarkError, match=r"unknown dimension value.*'quality'"):
        load_benchmark(parquet_bench([make_row(("a", "b"), dimension="quality")]))
    with pytest.raises(BenchmarkError, match=r"unknown task_type value.*'subject_add'"):
        load_benchmark(parquet_bench([make_row(("a", "b"), subtask="subject_add")]))
    with pytest.raises(BenchmarkError, match="two distinct, non-empty keys"):
        load_benchmark(parquet_bench([make_row(("a", "a"))]))
    row = make_row(("a", "b"))
    row["output_images"] = row["output_images"][:1]
    with pytest.raises(BenchmarkError, match="exactly two output_images"):
        load_benchmark(parquet_bench([row]))


def test_wrong_column_type_is_named(tmp_path: Path) -> None:
    import datasets

    row = make_row(("a", "b"))
    row["instruction"] = 5
    ds = datasets.Dataset.from_list([row])
    path = tmp_path / "x.parquet"
    ds.to_parquet(str(path))
    with pytest.raises(BenchmarkError, match="'instruction' must be a string"):
        load_benchmark(path)


def test_corrupt_image_bytes_are_rejected_with_the_row(parquet_bench) -> None:
    row = make_row(("a", "b"), edited=(png(), b"\x89PNG\r\n\x1a\n this is not an image"))
    with pytest.raises(
        BenchmarkError, match=r"unreadable image bytes.*row 0 output_images\[1\].*'b'"
    ):
        load_benchmark(parquet_bench([row]))


def test_truncated_image_fails_one_candidate_at_decode(parquet_bench) -> None:
    from io import BytesIO

    from PIL import Image

    buf = BytesIO()
    Image.effect_noise((64, 64), 50).convert("RGB").save(buf, format="PNG")
    truncated = buf.getvalue()[: len(buf.getvalue()) // 2]
    bench = load_benchmark(parquet_bench([make_row(("a", "b"), edited=(png(), truncated))]))
    bench.candidates["a"].load_images()
    with pytest.raises(CandidateImageError, match="'b'"):
        bench.candidates["b"].load_images()


def test_oversized_images_are_refused_at_decode(parquet_bench) -> None:
    bench = load_benchmark(parquet_bench([make_row(("a", "b"))]), max_image_pixels=100)
    with pytest.raises(CandidateImageError, match="over the limit"):
        bench.candidates["a"].load_images()


def test_same_key_with_different_content_is_an_error(parquet_bench) -> None:
    rows = [
        make_row(("a", "b")),
        make_row(("a", "c"), instruction="Remove the cat.", dimension="consistency"),
    ]
    with pytest.raises(BenchmarkError, match=r"key 'a'.*different instruction"):
        load_benchmark(parquet_bench(rows))


def test_empty_dataset_is_an_error(parquet_bench) -> None:
    with pytest.raises(BenchmarkError, match="no rows"):
        load_benchmark(parquet_bench([]))


def test_offline_hub_miss_fails_fast_with_a_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("offline, yet a connection was attempted")

    # Fast because nothing is tried: no connection is even attempted (an event, not a timing).
    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    with pytest.raises(BenchmarkError, match=r"offline.*--dataset mini"):
        load_benchmark(HUB_ID, revision="0123456789abcdef")


def test_subset_keeps_only_needed_candidates(mini) -> None:
    sub = mini.subset(4)
    assert len(sub) == 4
    assert set(sub.candidates) == {k for p in sub.pairs for k in p.keys}
    assert sub.fingerprint != mini.fingerprint


def test_mini_regenerates_byte_identically(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from editreward_bench.cli import app

    result = CliRunner().invoke(
        app,
        [
            "data",
            "make-mini",
            "--out",
            str(tmp_path / "mini"),
            "--predictions",
            str(tmp_path / "p.jsonl"),
        ],
    )
    assert result.exit_code == 0, result.output
    committed = REPO / "data" / "mini"
    names = sorted(p.name for p in committed.iterdir())
    assert names == sorted(p.name for p in (tmp_path / "mini").iterdir())
    _match, mismatch, errors = filecmp.cmpfiles(committed, tmp_path / "mini", names, shallow=False)
    assert mismatch == [] and errors == []
    assert (tmp_path / "p.jsonl").read_bytes() == (
        REPO / "data" / "mini_predictions.jsonl"
    ).read_bytes()


def test_synth_writes_any_size(tmp_path: Path) -> None:
    from editreward_bench.synth import make_synthetic

    make_synthetic(tmp_path / "s", n_rows=40, image_size=128, seed=1)
    bench = load_benchmark(tmp_path / "s")
    assert len(bench) == 40
    assert bench.image_stats["max_size"] == (128, 128)


def test_exif_rotated_source_sets_the_size_edits_are_resized_to(parquet_bench) -> None:
    from io import BytesIO

    from PIL import Image

    img = Image.new("RGB", (40, 20), (10, 200, 10))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees on display
    buf = BytesIO()
    img.save(buf, format="JPEG", exif=exif.tobytes())
    bench = load_benchmark(
        parquet_bench(
            [make_row(("a", "b"), source=buf.getvalue(), edited=(png(size=10), png(size=10)))]
        )
    )
    source, edited = bench.candidates["a"].load_images()
    assert source.size == (20, 40) and edited.size == (20, 40)
