"""Self-contained HTML pages: the leaderboard and one run's report.

Everything a page needs is inside the file: CSS and a little JavaScript inline,
charts as inline SVG, thumbnails as data: URIs. Nothing is fetched when it
opens. Templates (``templates/*.html.j2``) render with Jinja2 autoescaping on,
so any text from a dataset, a judge card or a judge's reasoning shows as text.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import __version__
from ..benchmark import HUB_ID, is_synthetic
from ..published import ReferenceRow
from ..results import now_iso
from ..taxonomy import (
    BLOCKS,
    DIMENSION_ABBREV,
    DIMENSIONS,
    GROUPS,
    OVERALL_BLOCK,
    SUBTASK_GROUP,
    SUBTASKS,
)
from . import charts
from .runs import Run, block_cells, read_run_data
from .samples import SampleSet, Thumbnails, wrong_samples
from .significance import PairTest, RowResults, paired_tests, row_results
from .tables import COLUMNS, TableRow, best_values, block_title, cell_view, column_id, measured_rows
from .verify import BenchmarkCache, Verification, verify_run

if TYPE_CHECKING:
    import jinja2

TEMPLATES = Path(__file__).resolve().parent / "templates"
HUB_SOURCES = {HUB_ID.lower()}

#: Package versions shown first in the provenance, in this order.
_VERSION_ORDER = (
    "erb",
    "python",
    "datasets",
    "numpy",
    "pyarrow",
    "pillow",
    "torch",
    "transformers",
)


def environment() -> jinja2.Environment:
    """The Jinja2 environment of the report templates (autoescape on, strict undefined)."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["fmt3"] = _fmt3
    env.filters["pct"] = _pct
    env.filters["pval"] = _pval
    env.filters["signed"] = _signed
    env.filters["short_fp"] = _short_fp
    return env


def _fmt3(value: Any) -> str:
    return "–" if value is None else f"{float(value):.3f}"


def _pct(value: Any) -> str:
    return "–" if value is None else f"{100 * float(value):.1f}%"


def _pval(value: Any) -> str:
    """``< 0.001`` or ``= 0.0499`` (3 significant digits), to follow a "p"."""
    if value is None:
        return "–"
    return "< 0.001" if value < 0.001 else f"= {value:.3g}"


def _signed(value: Any) -> str:
    return "–" if value is None else f"{float(value):+.3f}"


def _short_fp(value: Any) -> str:
    if not value:
        return "–"
    text = str(value)
    head, _, digest = text.partition(":")
    return f"{head}:{digest[:12]}…" if digest else text[:16] + "…"


# --------------------------------------------------------------------------- views


@dataclass
class RunView:
    """Everything a page shows about one run."""

    key: str
    row: TableRow
    colour: str
    verification: Verification
    samples: SampleSet
    heatmap: list[dict[str, Any]]
    details: dict[str, Any]
    provenance: dict[str, Any]
    cells: list[dict[str, Any]] = field(default_factory=list)

    @property
    def run(self) -> Run:
        return self.row.run

    @property
    def label(self) -> str:
        return self.row.label

    @property
    def synthetic(self) -> bool:
        return is_synthetic(self.run.dataset)


def _cell_counts(results: RowResults | None) -> dict[tuple[str, str], tuple[int, int]]:
    counts: dict[tuple[str, str], list[int]] = {}
    if results is None:
        return {}
    for s, d, ok in zip(results.subtask, results.dimension, results.correct, strict=True):
        c = counts.setdefault((s, d), [0, 0])
        c[0] += int(ok)
        c[1] += 1
    return {cell: (c[0], c[1]) for cell, c in counts.items()}


def _heatmap(run: Run, counts: Mapping[tuple[str, str], tuple[int, int]]) -> list[dict[str, Any]]:
    acc = (run.metrics.get("accuracy") or {}).get("subtasks") or {}
    ci = (run.metrics.get("ci95") or {}).get("subtasks") or {}
    rows = []
    for subtask in SUBTASKS:
        cells = []
        for dim in DIMENSIONS:
            value = (acc.get(subtask) or {}).get(dim)
            interval = (ci.get(subtask) or {}).get(dim)
            title = f"{subtask} / {DIMENSION_ABBREV[dim]}: {_fmt3(value)}"
            if (subtask, dim) in counts:
                right, total = counts[(subtask, dim)]
                title += f" ({right} of {total} rows correct)"
            if interval:
                title += f"; 95% interval {interval[0]:.3f}–{interval[1]:.3f}"
            cells.append(
                {
                    "dim": DIMENSION_ABBREV[dim],
                    "text": "–" if value is None else f"{value:.2f}",
                    "bg": charts.heat_colour(value),
                    "title": title,
                }
            )
        rows.append({"subtask": subtask, "group": SUBTASK_GROUP[subtask], "cells": cells})
    return rows


def _details(run: Run) -> dict[str, Any]:
    m, man = run.metrics, run.manifest
    tokens = man.get("tokens") if isinstance(man.get("tokens"), dict) else None
    tie = m.get("tie_rate") or {}
    return {
        "tie_rate": [(DIMENSION_ABBREV[d], tie.get(d)) for d in DIMENSIONS],
        "failures": m.get("failures"),
        "partial": m.get("partial"),
        "candidates": m.get("candidates"),
        "prompt_tokens": None if tokens is None else tokens.get("prompt"),
        "completion_tokens": None if tokens is None else tokens.get("completion"),
        "cost_usd": man.get("cost_usd"),
        "judging_seconds": man.get("judging_seconds"),
        "passes_total": man.get("passes_total"),
        "passes_reused": man.get("passes_reused"),
        "pooled_o": (m.get("accuracy_pooled") or {}).get("overall"),
        "half_o": block_cells(m.get("accuracy_ties_half") or {}, OVERALL_BLOCK).get("overall"),
    }


def _provenance(run: Run) -> dict[str, Any]:
    judge, man = run.judge, run.manifest
    versions = dict(run.metrics.get("versions") or man.get("versions") or {})
    ordered = [(n, versions.pop(n)) for n in _VERSION_ORDER if n in versions]
    ordered += sorted(versions.items())
    if judge.get("fingerprint"):
        fp_label, fp = "judge card fingerprint", judge.get("fingerprint")
    elif judge.get("sha256"):
        fp_label, fp = "predictions file sha256", judge.get("sha256")
    else:
        fp_label, fp = "judge fingerprint", None
    command = man.get("command")
    return {
        "path": str(run.path),
        "created": run.metrics.get("created"),
        "started": man.get("started"),
        "finished": man.get("finished"),
        "dataset": _dataset_fields(run),
        "judge_description": judge.get("description"),
        "judge_kind": judge.get("protocol") or judge.get("kind"),
        "judge_backend": judge.get("backend"),
        "judge_model": judge.get("model"),
        "judge_adapter": judge.get("adapter"),
        "judge_source": judge.get("source"),
        "fingerprint_label": fp_label,
        "fingerprint": fp,
        "git_revision": man.get("git_revision"),
        "versions": ordered,
        "command": " ".join(str(c) for c in command) if isinstance(command, list) else command,
    }


def _views(
    rows: Sequence[TableRow],
    cache: BenchmarkCache,
    *,
    intervals: bool,
    dataset: str | None = None,
    revision: str | None = None,
    sample_limit: int,
) -> tuple[list[RunView], dict[str, RowResults], Thumbnails]:
    thumbs = Thumbnails()
    checked = []
    for row in rows:
        run = row.run
        data = read_run_data(run)
        bench, note = cache.for_run(run, dataset, revision)
        verification = verify_run(run, bench, intervals=intervals, dataset_note=note, data=data)
        checked.append((run, data, bench, note, verification))
    # Rank with the verdicts: a run whose metrics do not follow from its records is last, never best.
    verdicts = {run.path: v.status for run, _, _, _, v in checked}
    by_path = {run.path: (data, bench, note, v) for run, data, bench, note, v in checked}
    rows = measured_rows([row.run for row in rows], verdicts)
    best = best_values(rows)
    views = []
    results: dict[str, RowResults] = {}
    for i, row in enumerate(rows):
        key = f"r{i}"
        run = row.run
        data, bench, note, verification = by_path[run.path]
        res = None if data.outcomes is None else row_results(key, run.fingerprint, data.outcomes)
        if res is not None:
            results[key] = res
        samples = wrong_samples(
            key, run.fingerprint, data, bench, thumbs, dataset_note=note, limit=sample_limit
        )
        views.append(
            RunView(
                key=key,
                row=row,
                colour=charts.colour(i),
                verification=verification,
                samples=samples,
                heatmap=_heatmap(run, _cell_counts(res)),
                details=_details(run),
                provenance=_provenance(run),
                cells=[cell_view(row, col, best) for col in COLUMNS],
            )
        )
    return views, results, thumbs


def _columns() -> list[dict[str, Any]]:
    return [
        {
            "title": block_title(b),
            "block": b,
            "dims": [
                {"id": column_id(b, d), "abbrev": DIMENSION_ABBREV[d], "name": d}
                for d in DIMENSIONS
            ],
        }
        for b in BLOCKS
    ]


def _reference_view(reference: Sequence[ReferenceRow]) -> list[dict[str, Any]]:
    return [
        {
            "label": ref.judge,
            "k": ref.k,
            "source": ref.source,
            "cells": [
                {"col": column_id(b, d), "text": _fmt3(ref.accuracy.get(b, {}).get(d))}
                for b, d in COLUMNS
            ],
        }
        for ref in reference
    ]


def _interval_plot(views: Sequence[RunView]) -> dict[str, Any]:
    rows = []
    for v in views:
        acc = block_cells(v.run.metrics.get("accuracy") or {}, OVERALL_BLOCK)
        ci = block_cells(v.run.metrics.get("ci95") or {}, OVERALL_BLOCK)
        rows.append((f"{v.label} (k={v.row.k})", {d: (acc.get(d), ci.get(d)) for d in DIMENSIONS}))
    return charts.interval_plot(rows, [(d, f"Overall {DIMENSION_ABBREV[d]}") for d in DIMENSIONS])


def _curves(views: Sequence[RunView]) -> list[dict[str, Any]]:
    multi = [v for v in views if v.row.k > 1 and isinstance(v.run.metrics.get("avg_at_k"), dict)]
    if not multi:
        return []
    plots = []
    for dim in DIMENSIONS:
        series = []
        for v in multi:
            curve: dict[int, float | None] = {}
            for k_text, table in v.run.metrics["avg_at_k"].items():
                try:
                    curve[int(k_text)] = block_cells(table, OVERALL_BLOCK).get(dim)
                except (TypeError, ValueError, AttributeError):
                    continue
            series.append((f"{v.label} (k={v.row.k})", v.colour, curve))
        plots.append(charts.curve_plot(series, f"Overall {DIMENSION_ABBREV[dim]} vs k"))
    return plots


def _pairs_view(tests: Sequence[PairTest], views: Sequence[RunView]) -> list[dict[str, Any]]:
    labels = {v.key: f"{v.label} (k={v.row.k})" for v in views}
    out = []
    for t in tests:
        dims = []
        for d in DIMENSIONS:
            test = t.tests[d]
            p = test.p_bootstrap
            text = _signed(test.diff)
            if test.ci is not None:
                text += f" [{_signed(test.ci[0])}, {_signed(test.ci[1])}]"
            dims.append(
                {
                    "text": text,
                    "detail": f"p {_pval(p)} (bootstrap); McNemar {test.only_a}/{test.only_b}, "
                    f"p {_pval(test.p_mcnemar)}",
                    "significant": p is not None and p < 0.05,
                }
            )
        out.append(
            {
                "a": t.a,
                "b": t.b,
                "a_label": labels[t.a],
                "b_label": labels[t.b],
                "rows": t.rows,
                "dims": dims,
            }
        )
    return out


def _dataset_fields(run: Run) -> dict[str, Any]:
    fields_ = {
        name: run.dataset.get(name) for name in ("source", "revision", "fingerprint", "rows")
    }
    return {**fields_, "synthetic": is_synthetic(run.dataset)}


def _datasets(runs: Sequence[Run]) -> list[dict[str, Any]]:
    seen: dict[str | None, dict[str, Any]] = {}
    for run in runs:
        entry = seen.setdefault(run.fingerprint, {**_dataset_fields(run), "runs": 0})
        entry["runs"] += 1
    return list(seen.values())


def _common(views: Sequence[RunView], thumbs: Thumbnails) -> dict[str, Any]:
    return {
        "erb_version": __version__,
        "generated": now_iso(),
        "columns": _columns(),
        "dimensions": [{"name": d, "abbrev": DIMENSION_ABBREV[d]} for d in DIMENSIONS],
        "subtasks": list(SUBTASKS),
        "groups": list(GROUPS),
        "views": views,
        "interval_plot": _interval_plot(views),
        "curves": _curves(views),
        "thumbs": thumbs.uris,
        "palette": charts.PALETTE,
    }


def leaderboard_context(
    runs: Sequence[Run],
    *,
    reference: Sequence[ReferenceRow],
    cache: BenchmarkCache | None = None,
    notes: Sequence[str] = (),
    sample_limit: int = 50,
) -> dict[str, Any]:
    """Everything the leaderboard template shows, computed from the runs."""
    cache = cache or BenchmarkCache()
    rows = measured_rows(runs)
    views, results, thumbs = _views(rows, cache, intervals=False, sample_limit=sample_limit)
    tests, sig_notes = paired_tests([results[v.key] for v in views if v.key in results])
    datasets = _datasets(runs)
    comparable = any(str(d.get("source", "")).lower() in HUB_SOURCES for d in datasets)
    missing_outcomes = [v.label for v in views if v.key not in results]
    all_notes = list(notes) + sig_notes
    if missing_outcomes:
        all_notes.append(
            "no outcomes.parquet (so no paired tests) for: " + ", ".join(missing_outcomes)
        )
    return {
        **_common(views, thumbs),
        "title": "EditReward-Bench leaderboard",
        "datasets": datasets,
        "mixed": len(datasets) > 1,
        "notes": all_notes,
        "reference": _reference_view(reference),
        "reference_source": reference[0].source if reference else "",
        "reference_comparable": comparable,
        "pairs": _pairs_view(tests, views),
        "verified_count": sum(v.verification.status == "verified" for v in views),
    }


def render_leaderboard(runs: Sequence[Run], **kwargs: Any) -> str:
    """The leaderboard page (see :func:`leaderboard_context` for the arguments)."""
    return (
        environment()
        .get_template("leaderboard.html.j2")
        .render(**leaderboard_context(runs, **kwargs))
    )


def report_context(
    run: Run,
    *,
    reference: Sequence[ReferenceRow] = (),
    cache: BenchmarkCache | None = None,
    sample_limit: int = 50,
) -> dict[str, Any]:
    """Everything one run's page shows; ``reference`` rows are those of its judge in the paper."""
    cache = cache or BenchmarkCache()
    rows = measured_rows([run])
    views, _, thumbs = _views(rows, cache, intervals=True, sample_limit=sample_limit)
    return {
        **_common(views, thumbs),
        "title": f"{run.label}: EditReward-Bench report",
        "datasets": _datasets([run]),
        "mixed": False,
        "notes": [],
        "reference": _reference_view(reference),
        "reference_source": reference[0].source if reference else "",
        "reference_comparable": str(run.dataset.get("source", "")).lower() in HUB_SOURCES,
        "pairs": [],
        "verified_count": sum(v.verification.status == "verified" for v in views),
        "subtask_rows": _subtask_table(run),
    }


def _subtask_table(run: Run) -> list[dict[str, Any]]:
    acc = run.metrics.get("accuracy") or {}
    ci = run.metrics.get("ci95") or {}
    out = []
    for block in (*BLOCKS, *SUBTASKS):
        is_subtask = block in SUBTASK_GROUP
        a = (
            ((acc.get("subtasks") or {}).get(block) or {})
            if is_subtask
            else block_cells(acc, block)
        )
        c = ((ci.get("subtasks") or {}).get(block) or {}) if is_subtask else block_cells(ci, block)
        out.append(
            {
                "name": block,
                "kind": "subtask" if is_subtask else "block",
                "cells": [
                    {
                        "text": _fmt3(a.get(d)),
                        "ci": None if not c.get(d) else f"{c[d][0]:.3f}–{c[d][1]:.3f}",
                    }
                    for d in DIMENSIONS
                ],
            }
        )
    return out


def render_report(run: Run, **kwargs: Any) -> str:
    """One run's page (see :func:`report_context` for the arguments)."""
    return environment().get_template("report.html.j2").render(**report_context(run, **kwargs))
