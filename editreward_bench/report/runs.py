"""Run folders for reports: finding them, reading them, choosing which to show.

A leaderboard compares runs on one dataset: :func:`check_same_dataset` refuses
runs whose ``metrics.json`` dataset fingerprints differ (unless mixing is
allowed), and :func:`latest_per_judge` keeps the newest run of each
(judge name, k). The paper's published numbers are reference rows, never
runs (:mod:`editreward_bench.published`).
"""

from __future__ import annotations

import datetime as _dt
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..results import MANIFEST, METRICS, OUTCOMES, RECORDS, read_metrics
from ..taxonomy import OVERALL_BLOCK, SUBSCORES

#: Where ``erb evaluate`` writes runs by default, and where the leaderboard looks.
DEFAULT_RUNS_ROOT = Path("reports") / "runs"

_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)


class RunFolderError(ValueError):
    """A path is not a readable run folder; the message names it."""


class MixedDatasetsError(ValueError):
    """Runs on different datasets (fingerprints) were given together."""


@dataclass(frozen=True)
class Run:
    """One run folder's metrics and manifest (the parquet files are read on demand)."""

    path: Path
    metrics: dict[str, Any]
    manifest: dict[str, Any] = field(default_factory=dict)

    @property
    def judge(self) -> dict[str, Any]:
        return dict(self.metrics.get("judge") or {})

    @property
    def name(self) -> str:
        """The judge's name (the predictions file's stem for scored predictions)."""
        return str(self.judge.get("name") or self.path.name)

    @property
    def k(self) -> int:
        return int(self.metrics.get("k") or 1)

    @property
    def run_id(self) -> str:
        """The run folder's name."""
        return self.path.name

    @property
    def label(self) -> str:
        return f"{self.name} (k={self.k})"

    @property
    def dataset(self) -> dict[str, Any]:
        return dict(self.metrics.get("dataset") or {})

    @property
    def fingerprint(self) -> str | None:
        value = self.dataset.get("fingerprint")
        return None if value is None else str(value)

    @property
    def created(self) -> _dt.datetime:
        """When the metrics were computed (``metrics.json`` ``created``), timezone-aware."""
        return parse_time(self.metrics.get("created"))

    def has(self, filename: str) -> bool:
        return (self.path / filename).is_file()

    @property
    def records_path(self) -> Path:
        return self.path / RECORDS

    @property
    def outcomes_path(self) -> Path:
        return self.path / OUTCOMES


@dataclass
class RunData:
    """A run's parquet files, read once and shared by verification, tests and samples."""

    #: outcomes.parquet as columns ({name: values}), None when it is missing or unreadable.
    outcomes: dict[str, list[Any]] | None
    outcomes_error: str | None
    #: records.parquet as rows, None when it is missing or unreadable.
    records: list[dict[str, Any]] | None
    records_error: str | None


def read_run_data(run: Run) -> RunData:
    """Read ``outcomes.parquet`` and ``records.parquet``; a problem is recorded, not raised."""
    outcomes, outcomes_error = _read_parquet(run.outcomes_path)
    records, records_error = _read_parquet(run.records_path)
    if records is not None:  # raw outputs and token counts are not needed here
        records = records.select([c for c in records.column_names if c in _RECORD_FIELDS])
    return RunData(
        outcomes=outcomes.to_pydict() if outcomes is not None else None,
        outcomes_error=outcomes_error,
        records=records.to_pylist() if records is not None else None,
        records_error=records_error,
    )


#: records.parquet columns that verification and the sample browser read.
_RECORD_FIELDS = frozenset(
    ("key", "pass", "status", "error", "reasoning_sc", "reasoning_pq", *SUBSCORES)
)


def _read_parquet(path: Path) -> tuple[Any, str | None]:
    if not path.is_file():
        return None, f"{path.name} is missing from {path.parent}"
    import pyarrow.parquet as pq

    try:
        return pq.read_table(path, use_threads=False), None  # small files: threads cost more
    except Exception as exc:  # pyarrow raises several types for unreadable files
        return None, f"cannot read {path}: {exc}"


def parse_time(value: Any) -> _dt.datetime:
    """An ISO-8601 time as an aware datetime (naive means UTC); the epoch when unreadable."""
    if not isinstance(value, str):
        return _EPOCH
    try:
        parsed = _dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return _EPOCH
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=_dt.timezone.utc)


def find_run_folders(paths: Sequence[Path], default_root: Path = DEFAULT_RUNS_ROOT) -> list[Path]:
    """Run folders named by ``paths`` (a run folder, or a folder holding run folders).

    With no paths, every folder under ``default_root`` that has a ``metrics.json``.
    Raises :class:`RunFolderError` when a path is neither, or when nothing is found.
    """
    found: list[Path] = []
    if not paths:
        if not default_root.is_dir():
            raise RunFolderError(
                f"no run folders given and {default_root} does not exist; write runs there with "
                f"`erb evaluate ...` or name run folders on the command line"
            )
        found = _runs_under(default_root)
        if not found:
            raise RunFolderError(f"no run folders (folders with a {METRICS}) under {default_root}")
    for path in paths:
        if (path / METRICS).is_file():
            found.append(path)
        elif path.is_dir():
            inside = _runs_under(path)
            if not inside:
                raise RunFolderError(
                    f"{path} is not a run folder: it has no {METRICS}, nor any folder that has one"
                )
            found.extend(inside)
        elif path.exists():
            raise RunFolderError(f"{path} is a file, not a run folder")
        else:
            raise RunFolderError(f"{path} does not exist (expected a run folder)")
    unique: dict[Path, Path] = {}
    for path in found:
        unique.setdefault(path.resolve(), path)
    return list(unique.values())


def _runs_under(root: Path) -> list[Path]:
    return sorted(
        p.parent
        for p in root.rglob(METRICS)
        if not any(part.startswith(".") for part in p.relative_to(root).parts)
    )


def load_run(path: Path) -> Run:
    """Read one run folder's ``metrics.json`` (required) and ``manifest.json`` (optional)."""
    try:
        metrics = read_metrics(path)
    except FileNotFoundError as exc:
        raise RunFolderError(str(exc)) from exc
    except (ValueError, OSError) as exc:  # bad JSON, unsupported schema
        raise RunFolderError(f"{path / METRICS}: {exc}") from exc
    if not isinstance(metrics.get("accuracy"), dict):
        raise RunFolderError(f"{path / METRICS}: no accuracy table")
    manifest: dict[str, Any] = {}
    manifest_path = path / MANIFEST
    if manifest_path.is_file():
        try:
            loaded = json.loads(manifest_path.read_text(encoding="utf-8"))
        except (ValueError, OSError) as exc:
            raise RunFolderError(f"{manifest_path}: {exc}") from exc
        if isinstance(loaded, dict):
            manifest = loaded
    return Run(path=path, metrics=metrics, manifest=manifest)


def load_runs(paths: Iterable[Path]) -> list[Run]:
    return [load_run(p) for p in paths]


def latest_per_judge(runs: Sequence[Run]) -> tuple[list[Run], list[tuple[Run, Run]]]:
    """The newest run (``created``) of each (judge name, k), in first-seen order.

    Returns (kept runs, [(dropped run, the run kept instead), ...]).
    Equal times are broken by the folder path, so the choice never depends on argument order.
    """
    best: dict[tuple[str, int], Run] = {}
    order: list[tuple[str, int]] = []
    for run in runs:
        key = (run.name, run.k)
        current = best.get(key)
        if current is None:
            best[key] = run
            order.append(key)
        elif (run.created, str(run.path)) > (current.created, str(current.path)):
            best[key] = run
    kept = [best[key] for key in order]
    kept_ids = {id(r) for r in kept}
    dropped = [(run, best[(run.name, run.k)]) for run in runs if id(run) not in kept_ids]
    return kept, dropped


def check_same_dataset(runs: Sequence[Run], allow_mixed: bool = False) -> list[str]:
    """The distinct dataset fingerprints of ``runs``, in first-seen order.

    Raises :class:`MixedDatasetsError` when there are several and ``allow_mixed`` is false:
    accuracies on different rows are not comparable.
    """
    groups: dict[str, list[Run]] = {}
    for run in runs:
        groups.setdefault(run.fingerprint or "(no fingerprint)", []).append(run)
    if len(groups) > 1 and not allow_mixed:
        lines = []
        for fp, members in groups.items():
            source = members[0].dataset.get("source", "?")
            names = ", ".join(str(m.path) for m in members[:4])
            more = f" and {len(members) - 4} more" if len(members) > 4 else ""
            lines.append(
                f"  {fp} ({source}, {members[0].dataset.get('rows', '?')} rows): {names}{more}"
            )
        raise MixedDatasetsError(
            f"the runs are on {len(groups)} different datasets (metrics.json dataset.fingerprint):\n"
            + "\n".join(lines)
            + "\nname runs on one dataset only, or pass --allow-mixed to show them together anyway"
        )
    return list(groups)


def block_cells(table: Mapping[str, Any], block: str) -> dict[str, Any]:
    """One block (``overall`` or a group) of an accuracy-shaped table: {dimension: value}."""
    if block == OVERALL_BLOCK:
        return dict(table.get(OVERALL_BLOCK) or {})
    return dict((table.get("groups") or {}).get(block) or {})
