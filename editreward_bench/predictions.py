"""Reading a judge's predictions file (JSONL, one line per candidate).

Each line is ``{"key": str, "prompt_following": float, "consistency": float,
"overall": float}``; ``perceptual_quality`` is optional and extra fields are kept.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .taxonomy import DIMENSIONS

if TYPE_CHECKING:
    from .benchmark import Benchmark
    from .results import RunSummary


class PredictionsError(ValueError):
    """The predictions file is malformed; the message names the line."""


@dataclass
class Predictions:
    path: Path
    scores: dict[str, dict[str, float]]
    extras: dict[str, dict[str, Any]] = field(default_factory=dict)
    sha256: str = ""


#: Integers with more digits than this are not converted: no float holds them (10**309
#: overflows), and converting very long ones is slow (Python refuses past 4300 digits).
MAX_INT_DIGITS = 300


class _HugeInt:
    """An integer literal too long to hold: kept as its digit count, refused where it is used."""

    def __init__(self, digits: int) -> None:
        self.digits = digits

    def __repr__(self) -> str:
        return f"a {self.digits}-digit number"


def _parse_int(text: str) -> int | _HugeInt:
    digits = len(text.lstrip("-"))
    return int(text) if digits <= MAX_INT_DIGITS else _HugeInt(digits)


def _find_huge(value: Any, path: str) -> str | None:
    """Where a :class:`_HugeInt` sits inside ``value`` (a field name and index path), if anywhere."""
    if isinstance(value, _HugeInt):
        return path
    if isinstance(value, dict):
        items: Any = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        return None
    for k, v in items:
        found = _find_huge(v, f"{path}[{k!r}]" if path else repr(k))
        if found is not None:
            return found
    return None


def _show(value: Any, limit: int = 80) -> str:
    """A value for an error message: its repr, shortened to keep the message one short line."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _number(value: Any, name: str, where: str) -> float:
    if isinstance(value, _HugeInt):
        raise PredictionsError(f"{where}: {name} is out of range, got {value!r}")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise PredictionsError(f"{where}: {name} must be a number, got {_show(value)}")
    try:
        number = float(value)
    except OverflowError:
        digits = len(str(abs(int(value))))
        raise PredictionsError(
            f"{where}: {name} is out of range, got a {digits}-digit number"
        ) from None
    if not math.isfinite(number):
        raise PredictionsError(f"{where}: {name} must be finite, got {value!r}")
    return number


def read_predictions(path: str | Path, required: Sequence[str] = DIMENSIONS) -> Predictions:
    """Parse and validate a predictions file; errors name the offending line.

    ``required`` are the scores every line must have (the other benchmarks need only
    ``overall``); the other sub-scores are kept when present.
    """
    import hashlib

    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise PredictionsError(f"cannot read predictions file {path}: {exc.strerror}") from exc
    scores: dict[str, dict[str, float]] = {}
    extras: dict[str, dict[str, Any]] = {}
    first_line: dict[str, int] = {}
    for number, line_bytes in enumerate(raw.splitlines(), start=1):
        where = f"{path}:{number}"
        try:
            line = line_bytes.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise PredictionsError(f"{where}: not valid UTF-8 ({exc.reason})") from exc
        if not line.strip():
            continue
        try:
            obj = json.loads(line, parse_int=_parse_int)
        except json.JSONDecodeError as exc:
            raise PredictionsError(f"{where}: not valid JSON ({exc.msg})") from exc
        except RecursionError:
            raise PredictionsError(f"{where}: JSON nested too deeply") from None
        if not isinstance(obj, dict):
            raise PredictionsError(f"{where}: expected a JSON object, got {type(obj).__name__}")
        key = obj.get("key")
        if not isinstance(key, str) or not key:
            raise PredictionsError(f"{where}: 'key' must be a non-empty string, got {_show(key)}")
        if key in first_line:
            raise PredictionsError(
                f"{where}: duplicate key {_show(key)} (first on line {first_line[key]})"
            )
        first_line[key] = number
        missing = [d for d in required if d not in obj]
        if missing:
            raise PredictionsError(f"{where}: missing score(s) {missing} for key {_show(key)}")
        entry = {d: _number(obj[d], d, where) for d in DIMENSIONS if d in required or d in obj}
        if obj.get("perceptual_quality") is not None:
            entry["perceptual_quality"] = _number(
                obj["perceptual_quality"], "perceptual_quality", where
            )
        scores[key] = entry
        rest = {k: v for k, v in obj.items() if k not in entry and k != "key"}
        huge = _find_huge(rest, "")
        if huge is not None:
            raise PredictionsError(f"{where}: {huge} holds a number out of range")
        if rest:
            extras[key] = rest
    if not scores:
        raise PredictionsError(f"{path}: no predictions found")
    return Predictions(path, scores, extras, "sha256:" + hashlib.sha256(raw).hexdigest())


def score_predictions(
    bench: Benchmark,
    path: Path,
    run_dir: Path,
    *,
    name: str | None = None,
    n_bootstrap: int = 1000,
    overwrite: bool = False,
) -> RunSummary:
    """Score a predictions file on ``bench`` and write the run folder ``run_dir``.

    Candidates without a line count as failures; keys not in the dataset are reported
    and ignored. A file that matches no candidate is a :class:`PredictionsError`, and a
    run folder holding another run is an ``OutputError`` (unless ``overwrite``), both
    raised before anything is written.
    """
    from .outputs import check_run_dir
    from .results import RunSummary, build_manifest, compute_metrics, now_iso, write_run

    started = now_iso()
    preds = read_predictions(path)
    run_name = name or path.stem
    expected = {"kind": "predictions", "predictions": preds.sha256, "dataset": bench.fingerprint}
    check_run_dir(run_dir, expected, overwrite=overwrite)
    judge_info = {
        "name": run_name,
        "kind": "predictions",
        "source": str(path),
        "sha256": preds.sha256,
    }
    warnings = []
    unknown = sorted(set(preds.scores) - set(bench.candidates))
    if unknown:
        shown = ", ".join(repr(k) for k in unknown[:5]) + (" ..." if len(unknown) > 5 else "")
        warnings.append(
            f"{len(unknown)} key(s) in {path} are not in the dataset and were ignored: {shown}"
        )
    records = []
    for key in bench.candidates:
        entry = preds.scores.get(key)
        base = {"key": key, "pass": 0, "seed": None, "extra": preds.extras.get(key)}
        if entry is None:
            records.append({**base, "status": "failed", "error": "missing from predictions"})
            continue
        records.append({**base, "status": "ok", **entry})
    missing = sum(r["status"] == "failed" for r in records)
    if missing == len(records):
        raise PredictionsError(
            f"none of the {len(records)} candidates of the dataset has a prediction in {path} "
            "(are the keys from another dataset?)"
        )
    if missing:
        warnings.append(
            f"{missing} of {len(bench.candidates)} candidate(s) have no prediction; "
            "they count as failures"
        )
    metrics, outcomes, metric_warnings = compute_metrics(
        bench, records, judge=judge_info, k=1, n_bootstrap=n_bootstrap
    )
    manifest = build_manifest(bench, started=started, judge=judge_info)
    write_run(run_dir, metrics=metrics, records=records, outcomes=outcomes, manifest=manifest)
    return RunSummary(run_dir, metrics, warnings + metric_warnings, None)
