"""The paper's published numbers (``data/published_results.csv``): reference rows, never runs."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .resources import published_results_csv
from .taxonomy import BLOCKS, DIMENSIONS


@dataclass(frozen=True)
class ReferenceRow:
    """A judge's numbers as published (``data/published_results.csv``), not measured here."""

    judge: str
    k: int
    source: str
    #: {block: {dimension: accuracy}} for the blocks of the paper's table.
    accuracy: dict[str, dict[str, float | None]]

    @property
    def label(self) -> str:
        return f"{self.judge} (k={self.k})"


def read_published(path: Path | None = None) -> list[ReferenceRow]:
    """The paper's table, one :class:`ReferenceRow` per (judge, k), in file order."""
    csv_path = path or published_results_csv()
    rows: dict[tuple[str, int], dict[str, Any]] = {}
    with csv_path.open(newline="", encoding="utf-8") as fh:
        for line_no, row in enumerate(csv.DictReader(fh), start=2):
            block, dimension = row.get("block"), row.get("dimension")
            if block not in BLOCKS or dimension not in DIMENSIONS:
                raise ValueError(
                    f"{csv_path}:{line_no}: unknown block {block!r} or dimension {dimension!r}"
                )
            key = (row["judge"], int(row["k"]))
            entry = rows.setdefault(
                key,
                {
                    "source": row.get("source") or "",
                    "acc": {b: dict.fromkeys(DIMENSIONS) for b in BLOCKS},
                },
            )
            entry["acc"][block][dimension] = float(row["accuracy"])
    return [
        ReferenceRow(judge=judge, k=k, source=entry["source"], accuracy=entry["acc"])
        for (judge, k), entry in rows.items()
    ]


def paper_row(judge: str | None, k: int) -> dict[str, dict[str, float | None]] | None:
    """The published blocks of one judge at k, or None when the paper has no such row."""
    if not judge:
        return None
    return next(
        (row.accuracy for row in read_published() if row.judge == judge and row.k == k), None
    )
