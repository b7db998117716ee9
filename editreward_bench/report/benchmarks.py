"""One leaderboard across benchmarks: a column group per benchmark (and dataset), judges as rows.

Each column group holds one benchmark on one dataset (its fingerprint: a split, a synthetic
copy or the hub's data are different groups), so runs on different benchmarks or data are
never mixed in one column. A group has two columns: the authors' metric (named as the
authors name it, e.g. TIGER's ``overall strict_ranking_accuracy``) and erb's strict
accuracy. Judges are rows (a pairwise judge's row names its orders); a missing cell is
empty. The authors' published numbers are "reported" rows with their source, in their
benchmark's group on its real data. Non-commercial benchmarks carry their licence note.
"""

from __future__ import annotations

import csv
import html
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from .runs import Run

EDITREWARD = "editreward-bench"


@dataclass
class Group:
    """One column group: a benchmark on one dataset."""

    key: tuple[str, str]
    benchmark: str
    title: str
    split: str | None
    dataset: str
    synthetic: bool
    licence_note: str | None
    #: The authors' metric names seen in this group's cells.
    authors_names: list[str] = field(default_factory=list)
    reported_only: bool = False

    @property
    def heading(self) -> str:
        parts = [self.title]
        if self.split:
            parts.append(f"split {self.split}")
        parts.append("SYNTHETIC " + self.dataset if self.synthetic else self.dataset)
        return ", ".join(parts)


@dataclass
class Cell:
    authors: float | None
    authors_name: str | None
    strict: float | None = None
    strict_ci: list[float] | None = None
    #: The run folder, or the published source.
    origin: str = ""


@dataclass
class Row:
    label: str
    reported: bool
    cells: dict[tuple[str, str], Cell] = field(default_factory=dict)
    #: When each cell's run was made (latest kept).
    created: dict[tuple[str, str], str] = field(default_factory=dict)


def _adapters() -> dict[str, Any]:
    from ..benchmarks import discover

    return discover().entries


def run_benchmark(run: Run) -> str:
    """The benchmark a run was made on (EditReward-Bench runs predate the field)."""
    bench = run.metrics.get("benchmark")
    return str(bench.get("name")) if isinstance(bench, dict) else EDITREWARD


def uses_other_benchmarks(runs: Sequence[Run]) -> bool:
    return any(run_benchmark(r) != EDITREWARD for r in runs)


def _entry(run: Run, adapters: dict[str, Any]) -> tuple[Group, str, Cell]:
    m = run.metrics
    dataset = run.dataset
    name = run_benchmark(run)
    adapter = adapters.get(name)
    title = str(getattr(adapter, "title", name))
    note = getattr(adapter, "licence_note", None)
    source = str(dataset.get("source", "?"))
    group = Group(
        key=(name, str(dataset.get("fingerprint") or source)),
        benchmark=name,
        title=title,
        split=dataset.get("split"),
        dataset=source,
        synthetic=bool(dataset.get("synthetic")),
        licence_note=note or (m.get("benchmark") or {}).get("licence_note"),
    )
    if name == EDITREWARD:
        acc = ((m.get("accuracy") or {}).get("overall") or {}).get("overall")
        ci = ((m.get("ci95") or {}).get("overall") or {}).get("overall")
        cell = Cell(acc, "Overall O (macro over subtasks)", acc, ci, str(run.path))
        label = f"{run.name} (k={run.k})"
        return group, label, cell
    headline = m.get("authors_headline") or {}
    strict = m.get("strict") or {}
    cell = Cell(headline.get("value"), headline.get("name"), strict.get("accuracy"),
                strict.get("ci95"), str(run.path))  # fmt: skip
    kind = m.get("judge_kind")
    if kind == "pairwise":
        label = f"{run.name} (pairwise, orders {m.get('orders')})"
    else:
        label = f"{run.name} (k={run.k})"
    return group, label, cell


def build(
    runs: Sequence[Run], *, reported: bool = True, all_runs: bool = False
) -> tuple[list[Group], list[Row], list[str]]:
    """The table: column groups, rows (measured first, then reported), and notes."""
    adapters = _adapters()
    groups: dict[tuple[str, str], Group] = {}
    rows: dict[str, Row] = {}
    notes: list[str] = []
    for run in runs:
        group, label, cell = _entry(run, adapters)
        groups.setdefault(group.key, group)
        if cell.authors_name and cell.authors_name not in groups[group.key].authors_names:
            groups[group.key].authors_names.append(cell.authors_name)
        if all_runs and label in rows and group.key in rows[label].cells:
            label = f"{label} [{run.path.name}]"
        row = rows.setdefault(label, Row(label, reported=False))
        created = str(run.metrics.get("created") or "")
        if group.key in row.cells and created <= row.created.get(group.key, ""):
            notes.append(
                f"{label}: kept the latest run {row.cells[group.key].origin}, not {run.path}"
            )
            continue
        if group.key in row.cells:
            notes.append(
                f"{label}: kept the latest run {run.path}, not {row.cells[group.key].origin}"
            )
        row.cells[group.key] = cell
        row.created[group.key] = created
    order = list(adapters)

    def place(g: Group) -> tuple[int, bool, bool, str]:
        at = order.index(g.benchmark) if g.benchmark in order else len(order)
        return (at, g.synthetic, g.reported_only, g.heading)

    ordered = sorted(groups.values(), key=place)
    measured = list(rows.values())
    reported_rows: list[Row] = []
    if reported:
        reported_rows = _reported_rows(ordered, adapters)
        ordered.sort(key=place)
    measured_keys = [g.key for g in ordered if any(g.key in r.cells for r in measured)]
    first = measured_keys[0] if measured_keys else None

    def rank(row: Row) -> tuple[bool, float]:
        cell = row.cells.get(first) if first else None
        value = (
            cell.strict if cell and cell.strict is not None else (cell.authors if cell else None)
        )
        return (value is None, -(value or 0.0))

    measured.sort(key=rank)
    for g in ordered:
        if g.licence_note:
            notes.append(f"{g.title}: {g.licence_note}")
        if g.synthetic:
            notes.append(f"{g.heading}: synthetic data made by erb; its numbers test the toolkit, "
                         "not the judges")  # fmt: skip
    return ordered, measured + reported_rows, list(dict.fromkeys(notes))


def _reported_rows(groups: list[Group], adapters: dict[str, Any]) -> list[Row]:
    """Published numbers, in their benchmark's group on real data (a group is added, marked
    "as published", when the runs have none)."""
    from ..benchmarks.reported import headline_numbers
    from ..published import read_published

    benchmarks = {g.benchmark for g in groups}
    rows: dict[str, Row] = {}

    def home(benchmark: str, split: str) -> tuple[str, str]:
        real = [g for g in groups if g.benchmark == benchmark and not g.synthetic
                and not g.reported_only and (not split or g.split in (None, split))]  # fmt: skip
        if len(real) == 1:
            return real[0].key
        key = (benchmark, f"published:{split}")
        if key not in {g.key for g in groups}:
            adapter = adapters.get(benchmark)
            groups.append(Group(
                key=key, benchmark=benchmark, title=str(getattr(adapter, "title", benchmark)),
                split=split or None, dataset="as published" + ("" if split else ", split not stated"),
                synthetic=False, licence_note=getattr(adapter, "licence_note", None),
                reported_only=True,
            ))  # fmt: skip
        return key

    if EDITREWARD in benchmarks:
        for ref in read_published():
            value = (ref.accuracy.get("overall") or {}).get("overall")
            label = f"{ref.judge} (k={ref.k}, reported)"
            row = rows.setdefault(label, Row(label, reported=True))
            row.cells[home(EDITREWARD, "")] = Cell(value, "Overall O (macro over subtasks)",
                                                   origin=ref.source)  # fmt: skip
    for number in headline_numbers():
        if number.benchmark not in benchmarks:
            continue
        kind = f", {number.judge_kind}" if number.judge_kind else ""
        label = f"{number.judge} (reported{kind})"
        row = rows.setdefault(label, Row(label, reported=True))
        row.cells[home(number.benchmark, number.split)] = Cell(
            number.value, f"{number.metric} ({number.note})", origin=number.source
        )
    return list(rows.values())


# --------------------------------------------------------------------------- rendering


def _fmt(value: float | None) -> str:
    return "" if value is None else f"{value:.3f}"


def to_markdown(groups: Sequence[Group], rows: Sequence[Row], notes: Sequence[str]) -> str:
    head = ["judge"]
    for g in groups:
        head += [f"{g.heading}: authors", f"{g.heading}: erb strict"]
    lines = ["| " + " | ".join(h.replace("|", "\\|") for h in head) + " |",
             "|" + "---|" * len(head)]  # fmt: skip
    for row in rows:
        cells = [row.label.replace("|", "\\|")]
        for g in groups:
            cell = row.cells.get(g.key)
            cells += [_fmt(cell.authors) if cell else "", _fmt(cell.strict) if cell else ""]
        lines.append("| " + " | ".join(cells) + " |")
    legend = [
        f"- {g.heading}: authors' metric = {'; '.join(g.authors_names) or 'as published'}"
        for g in groups
    ]
    return "\n".join(lines + [""] + legend + [f"- note: {n}" for n in notes]) + "\n"


def to_csv(groups: Sequence[Group], rows: Sequence[Row]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["judge", "reported", "benchmark", "split", "dataset", "synthetic",
                     "authors_metric", "authors", "erb_strict", "erb_strict_ci_low",
                     "erb_strict_ci_high", "origin"])  # fmt: skip
    for row in rows:
        for g in groups:
            cell = row.cells.get(g.key)
            if cell is None:
                continue
            low, high = cell.strict_ci if cell.strict_ci else (None, None)
            writer.writerow([row.label, row.reported, g.benchmark, g.split or "", g.dataset,
                             g.synthetic, cell.authors_name or "", _fmt(cell.authors),
                             _fmt(cell.strict), _fmt(low), _fmt(high), cell.origin])  # fmt: skip
    return buf.getvalue()


_CSS = """
body { font: 14px/1.45 system-ui, sans-serif; color: #1d232a; margin: 0; }
header { background: #15202b; color: #fff; padding: 16px 28px; }
header h1 { margin: 0; font-size: 21px; }
main { padding: 8px 28px 40px; }
table { border-collapse: collapse; font-variant-numeric: tabular-nums; }
th, td { padding: 3px 7px; border-bottom: 1px solid #d5dbe1; }
thead th { background: #f4f6f8; text-align: center; }
th.group, td.first { border-left: 2px solid #b9c2cc; }
td.num { text-align: center; white-space: nowrap; }
td.num .ci { display: block; font-size: 10px; color: #5d6874; }
tr.reported td, tr.reported th { color: #5d6874; font-style: italic; }
tbody th { text-align: left; white-space: nowrap; }
.note { background: #fff8e1; border-left: 4px solid #f0b400; padding: 6px 10px; margin: 8px 0; }
.licence { background: #fdecea; border-left-color: #b3261e; }
.muted { color: #5d6874; }
"""


def to_html(groups: Sequence[Group], rows: Sequence[Row], notes: Sequence[str]) -> str:
    from .. import __version__

    e = html.escape
    out = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<meta name='generator' content='erb {e(__version__)}'>",
        "<title>Preference benchmarks leaderboard</title>",
        f"<style>{_CSS}</style></head><body>",
        "<header><h1>Preference benchmarks leaderboard</h1>",
        "<p>One column group per benchmark and dataset: the authors' metric, as the authors "
        "compute it, beside erb's strict accuracy (judge ties and failures wrong, nothing "
        "tuned on the test set).</p></header><main>",
    ]
    for note in notes:
        cls = "note licence" if "licen" in note.lower() else "note"
        out.append(f"<div class='{cls}'>{e(note)}</div>")
    out.append("<div style='overflow-x:auto'><table><thead><tr><th rowspan='2'>judge</th>")
    for g in groups:
        out.append(f"<th class='group' colspan='2'>{e(g.heading)}</th>")
    out.append("</tr><tr>")
    for g in groups:
        names = "; ".join(g.authors_names) or "as published"
        out.append(f"<th class='group' title='{e(names)}'>authors: {e(names)}</th>"
                   "<th>erb strict accuracy</th>")  # fmt: skip
    out.append("</tr></thead><tbody>")
    for row in rows:
        out.append(f"<tr class='{'reported' if row.reported else 'measured'}'>"
                   f"<th>{e(row.label)}</th>")  # fmt: skip
        for g in groups:
            cell = row.cells.get(g.key)
            if cell is None:
                out.append("<td class='num first'></td><td class='num'></td>")
                continue
            ci = (f"<span class='ci'>[{cell.strict_ci[0]:.3f}, {cell.strict_ci[1]:.3f}]</span>"
                  if cell.strict_ci else "")  # fmt: skip
            out.append(
                f"<td class='num first' title='{e(cell.authors_name or '')}; {e(cell.origin)}'>"
                f"{_fmt(cell.authors)}</td><td class='num'>{_fmt(cell.strict)}{ci}</td>"
            )
        out.append("</tr>")
    out.append("</tbody></table></div>")
    out.append("<h2>Metrics</h2><ul>")
    adapters = _adapters()
    for g in groups:
        adapter = adapters.get(g.benchmark)
        authors = getattr(adapter, "authors_metric", None) or (
            adapter.describe()["authors_metric"] if adapter is not None else "")  # fmt: skip
        strict = getattr(adapter, "strict_metric", None) or (
            adapter.describe()["strict_metric"] if adapter is not None else "")  # fmt: skip
        out.append(f"<li><b>{e(g.heading)}</b>: authors' metric: {e(str(authors))}; "
                   f"erb's strict metric: {e(str(strict))}</li>")  # fmt: skip
    out.append("</ul><p class='muted'>Reported rows are the authors' published numbers (their "
               "source in each cell's tooltip); they are not runs.</p></main></body></html>")  # fmt: skip
    return "".join(out) + "\n"


def render(runs: Sequence[Run], fmt: str, *, all_runs: bool = False) -> tuple[str, list[str]]:
    """The cross-benchmark leaderboard as ``html``, ``md`` or ``csv``; returns (text, notes)."""
    groups, rows, notes = build(runs, all_runs=all_runs)
    if fmt == "md":
        return to_markdown(groups, rows, notes), notes
    if fmt == "csv":
        return to_csv(groups, rows), notes
    if fmt == "html":
        return to_html(groups, rows, notes), notes
    raise ValueError(f"the cross-benchmark leaderboard has no {fmt} format (html, md, csv)")
