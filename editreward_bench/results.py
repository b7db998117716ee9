"""The run folder: what every evaluation writes, and what reports and verification read.

Layout (fixed; the leaderboard and ``erb verify`` depend on it)::

    RUN/
      metrics.json     accuracies, intervals, tie and failure counts (schema_version 1)
      records.parquet  one flat row per candidate and pass (sub-scores, status, raw outputs)
      outcomes.parquet one row per benchmark row (both candidates' scores, the outcome)
      manifest.json    versions, git revision, dataset fingerprint, command line, times, tokens

Files are written whole and atomically (temp file + rename): a rerun replaces
them, never appends, and a crash never leaves half a file. The folder carries
erb's marker (see outputs.py) listing these files; nothing else in it is touched.
"""

from __future__ import annotations

import datetime as _dt
import functools
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from . import __version__
from .benchmark import Benchmark
from .metrics import (
    PassScores,
    RowOutcome,
    accuracy,
    avg_at_k,
    bootstrap_ci,
    compare_pairs,
    missing_cells,
    pooled_accuracy,
    tie_rate,
)
from .outputs import RUN, RUN_FILES, atomic_write, claim_output_dir
from .redact import redact_text
from .taxonomy import SUBSCORES

SCHEMA_VERSION = 1
METRICS = "metrics.json"
RECORDS = "records.parquet"
OUTCOMES = "outcomes.parquet"
MANIFEST = "manifest.json"

#: Columns of records.parquet, in order. Model judges fill the raw/reasoning/token columns.
RECORD_COLUMNS: tuple[str, ...] = (
    "key",
    "pass",
    "seed",
    "status",
    "error",
    *SUBSCORES,
    "raw_sc",
    "raw_pq",
    "reasoning_sc",
    "reasoning_pq",
    "prompt_tokens",
    "completion_tokens",
    "attempts",
    "extra",
)

_VERSIONED_PACKAGES = (
    "datasets", "numpy", "pandas", "pyarrow", "pillow", "scipy", "jinja2", "typer",
    "torch", "transformers", "peft", "openai",
)  # fmt: skip


def now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


@functools.cache
def _installed_versions() -> tuple[tuple[str, str], ...]:
    found = []
    for name in _VERSIONED_PACKAGES:
        try:
            found.append((name, metadata.version(name)))
        except metadata.PackageNotFoundError:
            continue
    return tuple(found)


def package_versions() -> dict[str, str]:
    return {"erb": __version__, "python": sys.version.split()[0], **dict(_installed_versions())}


def git_revision() -> str | None:
    """The erb source checkout's commit (with '-dirty'), when it is one."""
    root = Path(__file__).resolve().parent.parent
    if not (root / ".git").exists():
        return None
    try:
        rev = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, timeout=5, check=True,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    return rev + ("-dirty" if dirty else "")


def write_json(path: Path, obj: Any) -> None:
    atomic_write(
        path, (json.dumps(obj, indent=2, ensure_ascii=False, allow_nan=False) + "\n").encode()
    )


def _write_parquet(path: Path, table: Any) -> None:
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        pq.write_table(table, tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def records_table(records: Iterable[Mapping[str, Any]]) -> Any:
    """Pass records as an Arrow table with the fixed column order and types."""
    import pyarrow as pa

    rows = list(records)
    types = {
        "key": pa.string(), "pass": pa.int32(), "seed": pa.int64(), "status": pa.string(),
        "error": pa.string(), "raw_sc": pa.string(), "raw_pq": pa.string(),
        "reasoning_sc": pa.string(), "reasoning_pq": pa.string(), "prompt_tokens": pa.int64(),
        "completion_tokens": pa.int64(), "attempts": pa.int32(), "extra": pa.string(),
        **{name: pa.float64() for name in SUBSCORES},
    }  # fmt: skip
    columns = {}
    for name in RECORD_COLUMNS:
        values = [row.get(name) for row in rows]
        if name == "extra":
            values = [
                None
                if v in (None, {})
                else (v if isinstance(v, str) else json.dumps(v, sort_keys=True))
                for v in values
            ]
        columns[name] = pa.array(values, type=types[name])
    return pa.table(columns)


def outcomes_table(outcomes: Sequence[RowOutcome]) -> Any:
    import pyarrow as pa

    return pa.table(
        {
            "index": pa.array([o.index for o in outcomes], pa.int64()),
            "subtask": [o.subtask for o in outcomes],
            "dimension": [o.dimension for o in outcomes],
            "source_id": [o.source_id for o in outcomes],
            "key0": [o.keys[0] for o in outcomes],
            "key1": [o.keys[1] for o in outcomes],
            "score0": pa.array([o.score0 for o in outcomes], pa.float64()),
            "score1": pa.array([o.score1 for o in outcomes], pa.float64()),
            "outcome": [o.outcome for o in outcomes],
        }
    )


@dataclass
class RunSummary:
    """What an evaluation produced, for the CLI to print."""

    path: Path
    metrics: dict[str, Any]
    warnings: list[str]
    #: The paper's published table for this judge, when the dataset is the hub's.
    reference: dict[str, Any] | None = None
    #: What the run did, for people: passes reused from the store and with which settings.
    notes: list[str] = field(default_factory=list)


def score_run(
    bench: Benchmark, records: Iterable[Mapping[str, Any] | PassScores], k: int
) -> tuple[dict[str, Any], list[RowOutcome]]:
    """Everything in metrics.json that follows from the records alone (no bootstrap).

    Avg@k scores per candidate, then the paper's accuracy and the extra statistics.
    Returns (those metrics, per-row outcomes). ``erb verify`` recomputes runs with it.
    """
    passes = [r if isinstance(r, PassScores) else PassScores.of(r) for r in records]
    scores, ok_passes = avg_at_k(passes, k)
    # Candidates with no record at all (missing predictions) are failures too.
    for key in bench.candidates:
        scores.setdefault(key, None)
    outcomes = compare_pairs(bench.pairs, scores)
    curve = {}
    for kk in range(1, k + 1):
        kk_scores = scores if kk == k else avg_at_k(passes, kk)[0]
        for key in bench.candidates:
            kk_scores.setdefault(key, None)
        curve[str(kk)] = accuracy(compare_pairs(bench.pairs, kk_scores))
    metrics = {
        "accuracy": accuracy(outcomes),
        "tie_rate": tie_rate(outcomes),
        "failures": sum(1 for key in bench.candidates if scores[key] is None),
        "partial": sum(1 for key in bench.candidates if 0 < ok_passes.get(key, 0) < k),
        "candidates": len(bench.candidates),
        "accuracy_ties_half": accuracy(outcomes, credit="half"),
        "accuracy_pooled": pooled_accuracy(outcomes),
        "avg_at_k": curve,
        "missing_cells": missing_cells(outcomes),
    }
    return metrics, outcomes


def compute_metrics(
    bench: Benchmark,
    records: Iterable[Mapping[str, Any] | PassScores],
    *,
    judge: Mapping[str, Any],
    k: int,
    n_bootstrap: int = 1000,
    bootstrap_seed: int = 0,
) -> tuple[dict[str, Any], list[RowOutcome], list[str]]:
    """metrics.json for a run from its pass records: :func:`score_run` plus intervals and provenance.

    Returns (metrics.json content, per-row outcomes, warnings).
    """
    scored, outcomes = score_run(bench, records, k)
    warnings = []
    missing = scored["missing_cells"]
    if missing:
        shown = ", ".join(missing[:6]) + (
            f" and {len(missing) - 6} more" if len(missing) > 6 else ""
        )
        warnings.append(
            f"{len(missing)} subtask x dimension cell(s) have no rows ({shown}); "
            "they are null and macro means use the cells present"
        )
    dataset = bench.describe()
    metrics = {
        "schema_version": SCHEMA_VERSION,
        "judge": dict(judge),
        "k": k,
        "dataset": {
            key: dataset[key] for key in ("source", "revision", "fingerprint", "rows", "synthetic")
        },
        "accuracy": scored["accuracy"],
        "ci95": bootstrap_ci(outcomes, n_resamples=n_bootstrap, seed=bootstrap_seed),
        **{key: value for key, value in scored.items() if key != "accuracy"},
        "bootstrap": {
            "resamples": n_bootstrap,
            "seed": bootstrap_seed,
            "unit": "source_image",
            "level": 0.95,
        },
        "created": now_iso(),
        "versions": package_versions(),
    }
    return metrics, outcomes, warnings


def write_records(path: Path, records: Iterable[Mapping[str, Any]], chunk: int = 4096) -> None:
    """Write records.parquet atomically, a chunk at a time (records may be a generator)."""
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        schema = records_table([]).schema
        with pq.ParquetWriter(tmp, schema) as writer:
            batch: list[Mapping[str, Any]] = []
            for record in records:
                batch.append(record)
                if len(batch) >= chunk:
                    writer.write_table(records_table(batch))
                    batch = []
            writer.write_table(records_table(batch))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def start_run_folder(out: Path) -> None:
    """Claim a run folder before writing into it: erb's marker first (a folder holding
    anything else is refused), erb's stale files from an earlier run removed, and no
    metrics.json until the new run is whole."""
    claim_output_dir(out, RUN, RUN_FILES)
    (out / METRICS).unlink(missing_ok=True)


def write_run(
    out: Path,
    *,
    metrics: Mapping[str, Any],
    records: Iterable[Mapping[str, Any]] | None,
    outcomes: Sequence[RowOutcome],
    manifest: Mapping[str, Any],
) -> None:
    """Write (replace) the four files of a run folder.

    ``records=None`` means records.parquet was already written with :func:`write_records`
    (after :func:`start_run_folder`). Callers check the folder first
    (:func:`editreward_bench.outputs.check_run_dir`).
    """
    start_run_folder(out)
    if records is not None:
        write_records(out / RECORDS, records)
    _write_parquet(out / OUTCOMES, outcomes_table(outcomes))
    write_json(out / MANIFEST, manifest)
    # metrics.json last: its presence marks a complete run folder.
    write_json(out / METRICS, metrics)


def build_manifest(
    bench: Benchmark,
    *,
    started: str,
    judge: Mapping[str, Any],
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "schema_version": SCHEMA_VERSION,
        "erb_version": __version__,
        "git_revision": git_revision(),
        "versions": package_versions(),
        "dataset": bench.describe(),
        "judge": dict(judge),
        "command": [redact_text(arg) for arg in sys.argv],
        "started": started,
        "finished": now_iso(),
        **(dict(extra) if extra else {}),
    }


def read_metrics(run: Path) -> dict[str, Any]:
    path = Path(run) / METRICS
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise FileNotFoundError(
            f"{run} is not a complete run folder: {METRICS} is missing"
        ) from exc
    if data.get("schema_version") != SCHEMA_VERSION:
        raise ValueError(f"{path}: unsupported schema_version {data.get('schema_version')!r}")
    return dict(data)
