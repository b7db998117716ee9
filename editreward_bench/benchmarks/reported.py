"""The authors' published numbers for the preference benchmarks (``data/reported_benchmarks.csv``).

Reference rows, never runs: each number is the benchmark's authors' metric as printed in
their table, with its source. EditScore's EditReward-Bench keeps its own table
(:mod:`editreward_bench.published`).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from ..resources import data_dir

#: The published metric a leaderboard cell shows, per benchmark.
HEADLINE = {"tiger-editreward": "Overall", "genai-bench-edit": "accuracy", "mmrb2-edit": "accuracy"}
COLUMNS = ("benchmark", "split", "judge", "judge_kind", "metric", "value", "source", "note")


@dataclass(frozen=True)
class ReportedNumber:
    """One published number: a judge's score on a benchmark, by the authors' metric."""

    benchmark: str
    #: The split the source names ('' when it names none).
    split: str
    judge: str
    #: pointwise, pairwise, or '' (a random baseline).
    judge_kind: str
    metric: str
    value: float
    source: str
    note: str


def reported_csv() -> Path:
    return data_dir() / "reported_benchmarks.csv"


def read_reported(path: Path | None = None) -> list[ReportedNumber]:
    """Every published number, in file order; a malformed line is a ValueError naming it."""
    csv_path = path or reported_csv()
    out = []
    with csv_path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        if tuple(reader.fieldnames or ()) != COLUMNS:
            raise ValueError(f"{csv_path}: columns must be {list(COLUMNS)}")
        for line, row in enumerate(reader, start=2):
            try:
                value = float(row["value"])
            except ValueError:
                raise ValueError(
                    f"{csv_path}:{line}: value {row['value']!r} is not a number"
                ) from None
            if not 0 <= value <= 1:
                raise ValueError(f"{csv_path}:{line}: value {value} is not a share in 0..1")
            out.append(ReportedNumber(**{**row, "value": value}))  # type: ignore[arg-type]
    return out


def headline_numbers(path: Path | None = None) -> list[ReportedNumber]:
    """The numbers a leaderboard shows: each benchmark's headline metric."""
    return [r for r in read_reported(path) if HEADLINE.get(r.benchmark) == r.metric]
