from __future__ import annotations

import os

# Never touch the network from tests: a hub miss must fail at once.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from collections.abc import Callable
from io import BytesIO
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent


def png(colour: tuple[int, int, int] = (200, 30, 30), size: int = 32) -> bytes:
    from PIL import Image

    buf = BytesIO()
    Image.new("RGB", (size, size), colour).save(buf, format="PNG")
    return buf.getvalue()


def make_row(
    keys: tuple[str, str],
    subtask: str = "subject-add",
    dimension: str = "overall",
    instruction: str = "Add a cat.",
    source: bytes | None = None,
    edited: tuple[bytes, bytes] | None = None,
) -> dict[str, Any]:
    source = source if source is not None else png((10, 10, 10))
    edited = edited if edited is not None else (png((200, 0, 0)), png((0, 200, 0)))
    return {
        "key": list(keys),
        "instruction": instruction,
        "input_image": {"bytes": source, "path": None},
        "output_images": [{"bytes": edited[0], "path": None}, {"bytes": edited[1], "path": None}],
        "task_type": subtask,
        "dimension": dimension,
    }


def write_parquet(path: Path, rows: list[dict[str, Any]], features: Any = None) -> Path:
    """Rows in the EditReward-Bench schema, written through `datasets` to parquet."""
    import datasets

    from editreward_bench.synth import features as bench_features

    features = features or bench_features()
    if rows:
        ds = datasets.Dataset.from_list(rows, features=features)
    else:
        ds = datasets.Dataset.from_dict({name: [] for name in features}, features=features)
    ds.to_parquet(str(path))
    return path


@pytest.fixture
def parquet_bench(tmp_path: Path) -> Callable[[list[dict[str, Any]]], Path]:
    counter = iter(range(10**6))

    def build(rows: list[dict[str, Any]], features: Any = None) -> Path:
        return write_parquet(tmp_path / f"bench{next(counter)}.parquet", rows, features)

    return build


@pytest.fixture(scope="session")
def mini() -> Any:
    from editreward_bench.benchmark import load_benchmark

    return load_benchmark("mini")
