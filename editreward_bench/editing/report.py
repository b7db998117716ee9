"""Editing-model runs in reports: verification, one run's page, and their own leaderboard.

- :func:`verify_model_run` recomputes a ``model-eval`` or ``best-of-n`` run's
  ``metrics.json`` from its ``records.parquet`` alone (every record carries its item's
  group and intersection flag) and names each difference.
- :func:`render_model_report` is one run's page: the per-group table, the authors'
  headline with what it hides, the published numbers of known models (labelled
  "reported", with their source), Best-of-N curves, the judge's identity, and a sample
  browser (source, edit, scores, the judge's reasoning).
- :func:`render_model_board` is the leaderboard of editing models, kept apart from the
  judges' leaderboard: one table per benchmark and judge, published rows beside, and
  paired comparisons of models judged on the same items.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..report.verify import Verification, _diff
from ..resources import data_dir
from .runs import BEST_OF_N, METRICS, MODEL_EVAL, RECORDS, judge_identity, read_records

PUBLISHED = "published_editing_models.csv"
#: The published tables by benchmark, and the run kind they compare with.
PUBLISHED_BENCHMARK = {"gedit": "gedit-bench-en", "imgedit": "imgedit-basic"}
SAMPLES = 40
MODEL_FIELDS = ("headline", "headline_intersection", "groups", "groups_intersection", "counts",
                "pooled", "failures_as_zero")  # fmt: skip


@dataclass(frozen=True)
class PublishedRow:
    benchmark: str
    model: str
    metric: str
    value: float
    judge: str
    source: str


def read_published_editing(path: Path | None = None) -> list[PublishedRow]:
    """Editing models' numbers as their authors report them (``data/published_editing_models.csv``)."""
    csv_path = path or data_dir() / PUBLISHED
    with csv_path.open(newline="", encoding="utf-8") as fh:
        return [
            PublishedRow(
                r["benchmark"], r["model"], r["metric"], float(r["value"]), r["judge"], r["source"]
            )
            for r in csv.DictReader(fh)
        ]


@dataclass
class ModelRun:
    path: Path
    metrics: dict[str, Any]
    manifest: dict[str, Any] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        return str(self.metrics.get("kind"))

    @property
    def judge(self) -> dict[str, Any]:
        return dict(self.metrics.get("judge") or self.metrics.get("evaluator") or {})


def load_model_run(path: Path) -> ModelRun:
    metrics = json.loads((path / METRICS).read_text(encoding="utf-8"))
    manifest_path = path / "manifest.json"
    manifest = (
        json.loads(manifest_path.read_text(encoding="utf-8")) if manifest_path.is_file() else {}
    )
    return ModelRun(path, metrics, manifest)


# --------------------------------------------------------------------------- verification


def verify_model_run(run: ModelRun) -> Verification:
    """Recompute a model run's metrics from its records; compare with ``metrics.json``."""
    from .best_of_n import compute_curves
    from .model_eval import model_metrics

    result = Verification(run.path)
    path = run.path / RECORDS
    if not path.is_file():
        result.error = f"{RECORDS} is missing from {run.path}; there is nothing to recompute from"
        return result
    try:
        records = read_records(path)
    except Exception as exc:
        result.error = f"cannot read {path}: {exc}"
        return result
    recorded = run.metrics
    boot = recorded.get("bootstrap") or {}
    resamples, seed = int(boot.get("resamples", 1000)), int(boot.get("seed", 0))
    try:
        if run.kind == MODEL_EVAL:
            numbers = model_metrics(
                records, recorded["benchmark"], int(recorded["k"]), resamples=resamples, seed=seed
            )
            compared = [name for name in MODEL_FIELDS if name in numbers]
            intervals = {"ci95": numbers["ci95"]}
            identity = {"judge_identity": judge_identity(recorded["judge"], records)}
        else:
            numbers = compute_curves(recorded["benchmark"], records, [int(n) for n in recorded["n"]],
                                     selector_k=int(recorded["selector_k"]),
                                     evaluator_k=int(recorded["evaluator_k"]), resamples=resamples, seed=seed)  # fmt: skip
            # The curves are compared apart from their intervals (whose draws depend on numpy).
            numbers["curves"], recomputed_ci = _split_intervals(numbers["curves"])
            recorded_curves, recorded_ci = _split_intervals(recorded.get("curves") or {})
            recorded = {**recorded, "curves": recorded_curves, "curves_ci95": recorded_ci}
            intervals = {"curves_ci95": recomputed_ci}
            compared = ["curves", "picks", "items_with_fewer_samples"]
            identity = {
                f"{role}_identity": judge_identity(
                    recorded[role], [r for r in records if r["role"] == role]
                )
                for role in ("selector", "evaluator")
            }
    except (KeyError, TypeError, ValueError) as exc:
        result.error = f"cannot recompute from {RECORDS}: {type(exc).__name__}: {exc}"
        return result
    for name in compared:
        before = len(result.mismatches)
        _diff(name, recorded.get(name), numbers[name], result.mismatches)
        if len(result.mismatches) == before:
            result.checked.append(name)
    for name, value in identity.items():
        before = len(result.mismatches)
        _diff(name, recorded.get(name), value, result.mismatches)
        if len(result.mismatches) == before:
            result.checked.append(name)
    for name, value in intervals.items():
        issues: list[str] = []
        _diff(name, recorded.get(name), value, issues)
        if not issues:
            result.checked.append(f"{name} ({resamples} resamples, seed {seed})")
        else:
            import numpy

            theirs = (recorded.get("versions") or {}).get("numpy")
            if theirs != numpy.__version__:
                result.notes.append(
                    f"{len(issues)} interval(s) differ, but the run used numpy {theirs}; not counted"
                )
            else:
                result.mismatches.extend(issues)
    result.notes.append(
        f"recomputed from {RECORDS} alone ({len(records)} records); the dataset was not reloaded"
    )
    return result


def _split_intervals(curves: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Curves without their intervals, and the intervals apart."""
    plain: dict[str, Any] = {}
    cis: dict[str, Any] = {}
    for name, points in curves.items():
        plain[name], cis[name] = {}, {}
        for n, point in points.items():
            plain[name][n] = {k: v for k, v in point.items() if k != "ci95"}
            cis[name][n] = point.get("ci95")
    return plain, cis


# --------------------------------------------------------------------------- pages


def _fmt(value: Any, digits: int = 3) -> str:
    return "–" if value is None else f"{float(value):.{digits}f}"


def _ci(value: Any) -> str:
    return "" if not value else f"[{value[0]:.3f}, {value[1]:.3f}]"


def _fields(metrics: Mapping[str, Any]) -> list[tuple[str, str]]:
    if metrics.get("benchmark") == "gedit":
        return [("semantics", "SC"), ("quality", "PQ"), ("overall", "O")]
    return [("overall", "score")]


@dataclass(frozen=True)
class _ImageSize:
    """What :class:`~editreward_bench.report.samples.Thumbnails` needs to know of an image."""

    sha: str
    width: int
    height: int


def _thumb(thumbs: Any, path: str | None) -> str | None:
    """The CSS class of a file's thumbnail (None when it is not a readable file)."""
    import hashlib
    import io

    from PIL import Image

    if not path or not Path(path).is_file():
        return None
    data = Path(path).read_bytes()
    try:
        with Image.open(io.BytesIO(data)) as img:
            width, height = img.size
    except Exception:
        return None
    css_class: str | None = thumbs.get(
        _ImageSize(hashlib.sha256(data).hexdigest(), width, height), lambda: data, 64_000_000
    )
    return css_class


def _samples(run: ModelRun, thumbs: Any, limit: int) -> list[dict[str, Any]]:
    """Items for the browser: failures first, then the lowest scores, then the highest."""
    try:
        records = read_records(run.path / RECORDS)
    except Exception:
        return []
    if run.kind == BEST_OF_N:
        records = [r for r in records if r.get("role") == "evaluator"]
    first = [r for r in records if int(r.get("pass") or 0) == 0]
    failed = [r for r in first if r["status"] != "ok"]
    scored = sorted((r for r in first if r["status"] == "ok"), key=lambda r: r["overall"])
    half = max(0, limit - len(failed[: limit // 2])) // 2
    chosen = (
        failed[: limit // 2] + scored[:half] + scored[len(scored) - half :]
        if scored
        else failed[:limit]
    )
    seen: set[str] = set()
    out = []
    for r in chosen:
        if r["key"] in seen:
            continue
        seen.add(r["key"])
        out.append({
            "key": r["key"], "group": r["task_type"], "status": r["status"], "error": r.get("error"),
            "scores": {name: r.get(name) for name, _ in _fields(run.metrics)},
            "source": _thumb(thumbs, r.get("source_path")), "edited": _thumb(thumbs, r.get("edited_path")),
            "reasoning_sc": _cut(r.get("reasoning_sc") or (r.get("raw_sc") if run.metrics.get("benchmark") == "imgedit" else None)),
            "reasoning_pq": _cut(r.get("reasoning_pq")),
        })  # fmt: skip
    return out


def _cut(text: Any, limit: int = 1200) -> str | None:
    if not text:
        return None
    text = str(text)
    return text if len(text) <= limit else text[:limit] + " …"


def curve_svg(metrics: Mapping[str, Any], field_name: str = "overall") -> dict[str, Any]:
    """A Best-of-N chart: the evaluator's headline against N for the three pick rules."""
    ns = [int(n) for n in metrics["n"]]
    colours = {"selector": "#0b5cad", "oracle": "#1b7a3d", "random": "#b3261e"}
    values = []
    for name in colours:
        for n in ns:
            point = metrics["curves"][name][str(n)]
            values += [v for v in [point["headline"].get(field_name)] if v is not None]
            values += [
                v for v in (point["ci95"]["headline"].get(field_name) or []) if v is not None
            ]
    lo, hi = (math.floor(min(values)), math.ceil(max(values))) if values else (0, 10)
    hi = hi if hi > lo else lo + 1
    width, height, left, right, top, bottom = 380, 240, 46, 96, 24, 34
    plot_w, plot_h = width - left - right, height - top - bottom

    def sx(i: int) -> float:
        return round(left + (0.5 if len(ns) == 1 else i / (len(ns) - 1)) * plot_w, 2)

    def sy(v: float) -> float:
        return round(top + (1 - (v - lo) / (hi - lo)) * plot_h, 2)

    lines = []
    for name, colour in colours.items():
        pts = []
        for i, n in enumerate(ns):
            point = metrics["curves"][name][str(n)]
            v = point["headline"].get(field_name)
            if v is None:
                continue
            ci = point["ci95"]["headline"].get(field_name)
            pts.append({"x": sx(i), "y": sy(v), "lo": sy(ci[0]) if ci else None, "hi": sy(ci[1]) if ci else None,
                        "title": f"{name}, N = {n}: {v:.3f}" + (f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "")})  # fmt: skip
        lines.append({"name": name, "colour": colour, "points": pts,
                      "path": " ".join(f"{p['x']},{p['y']}" for p in pts)})  # fmt: skip
    step = max(1, round((hi - lo) / 5))
    return {
        "width": width, "height": height, "left": left, "right": width - right, "top": top,
        "bottom": height - bottom, "lines": lines, "field": field_name,
        "xticks": [{"x": sx(i), "text": str(n)} for i, n in enumerate(ns)],
        "yticks": [{"y": sy(t), "text": str(t)} for t in range(lo, hi + 1, step)],
    }  # fmt: skip


def _published_for(metrics: Mapping[str, Any]) -> list[PublishedRow]:
    wanted = PUBLISHED_BENCHMARK.get(str(metrics.get("benchmark")))
    if metrics.get("benchmark") == "gedit" and (metrics.get("dataset") or {}).get(
        "language"
    ) not in (None, "en"):
        return []
    return [r for r in read_published_editing() if r.benchmark == wanted]


def _comparable(metrics: Mapping[str, Any]) -> str | None:
    """Why the published numbers are not comparable with this run, or None when they are."""
    if (metrics.get("dataset") or {}).get("synthetic"):
        return "this run is on synthetic data made by erb"
    judge = metrics.get("judge") or metrics.get("evaluator") or {}
    card = judge.get("card") or judge.get("name")
    wanted = {"gedit": "viescore-gpt-4.1", "imgedit": "imgedit-gpt-4.1"}.get(
        str(metrics.get("benchmark"))
    )
    if card != wanted or judge.get("replaced"):
        return f"the published numbers were judged by GPT-4.1 with the authors' protocol ({wanted}); this run's judge is {judge.get('name')}"
    return None


def model_report_context(run: ModelRun, *, samples: int = SAMPLES) -> dict[str, Any]:
    from .. import __version__
    from ..report.samples import Thumbnails
    from ..results import now_iso

    metrics = run.metrics
    thumbs = Thumbnails()
    verification = verify_model_run(run)
    fields = _fields(metrics)
    context: dict[str, Any] = {
        "title": f"{metrics.get('model')} on {metrics.get('title')}",
        "erb_version": __version__, "generated": now_iso(), "run": run, "m": metrics,
        "fields": fields, "verification": verification, "published": _published_for(metrics),
        "not_comparable": _comparable(metrics), "fmt": _fmt, "ci": _ci,
        "samples": _samples(run, thumbs, samples), "identities": [],
    }  # fmt: skip
    if run.kind == BEST_OF_N:
        context["identities"] = [("selector", metrics.get("selector_identity") or {}),
                                 ("evaluator", metrics.get("evaluator_identity") or {})]  # fmt: skip
        context["charts"] = [curve_svg(metrics, f) for f, _ in fields]
    else:
        context["identities"] = [("judge", metrics.get("judge_identity") or {})]
    context["thumbs"] = thumbs.uris
    return context


def render_model_report(run: ModelRun, *, samples: int = SAMPLES) -> str:
    from ..report.html import environment

    return (
        environment()
        .get_template("model_report.html.j2")
        .render(**model_report_context(run, samples=samples))
    )


def render_model_board(runs: Sequence[ModelRun]) -> str:
    """The editing models' leaderboard: one table per (benchmark, language, judge)."""
    from .. import __version__
    from ..report.html import environment
    from ..results import now_iso
    from .scores import item_results, paired_comparison

    boards: dict[tuple[str, str, str], list[ModelRun]] = {}
    for run in runs:
        if run.kind != MODEL_EVAL:
            continue
        m = run.metrics
        key = (
            str(m.get("title")),
            str((m.get("judge") or {}).get("name")),
            str((m.get("dataset") or {}).get("fingerprint")),
        )
        boards.setdefault(key, []).append(run)
    tables = []
    for (title, judge, _), members in boards.items():
        members.sort(key=lambda r: -(r.metrics["headline"].get("overall") or -math.inf))
        pairs = []
        loaded = {id(r): item_results(read_records(r.path / RECORDS), int(r.metrics["k"])) for r in members
                  if (r.path / RECORDS).is_file()}  # fmt: skip
        for i, a in enumerate(members):
            for b in members[i + 1 :]:
                if id(a) in loaded and id(b) in loaded:
                    types = list((a.metrics.get("groups") or {}).keys())
                    result = paired_comparison(
                        a.metrics["benchmark"], loaded[id(b)], loaded[id(a)], types
                    )
                    pairs.append(
                        {"a": a.metrics.get("model"), "b": b.metrics.get("model"), **result}
                    )
        first = members[0].metrics
        rows = []
        for r in members:
            check = verify_model_run(r)
            rows.append(
                {"m": r.metrics, "path": r.path, "status": check.status, "summary": check.summary()}
            )
        tables.append({
            "title": title, "judge": judge, "rows": rows, "fields": _fields(first),
            "published": _published_for(first), "not_comparable": _comparable(first), "pairs": pairs,
        })  # fmt: skip
    bon = [r for r in runs if r.kind == BEST_OF_N]
    charts = [(r, curve_svg(r.metrics)) for r in bon]
    return environment().get_template("model_board.html.j2").render(
        title="Editing models", erb_version=__version__, generated=now_iso(), tables=tables,
        best_of_n=charts, fmt=_fmt, ci=_ci, thumbs={},
    )  # fmt: skip
