"""The main table: one row per judge and k, PF / C / O for Overall and each group.

:func:`measured_rows` builds it from runs (best Overall O first); the HTML page
renders it itself, and :func:`render_table` writes it in the paper's style as
Markdown, CSV or LaTeX, with judge names escaped for each format.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from ..taxonomy import BLOCKS, DIMENSION_ABBREV, DIMENSIONS, OVERALL_BLOCK
from .runs import Run, block_cells

TableFormat = Literal["md", "csv", "latex"]

#: Columns of the main table: (block, dimension), in the paper's order.
COLUMNS: tuple[tuple[str, str], ...] = tuple((b, d) for b in BLOCKS for d in DIMENSIONS)


def column_id(block: str, dimension: str) -> str:
    """A column's id in the page and in ``#sort=``: e.g. ``overall-O``, ``scene-PF``."""
    return f"{block}-{DIMENSION_ABBREV[dimension]}"


def block_title(block: str) -> str:
    return block.capitalize()


@dataclass(frozen=True)
class TableRow:
    """One measured row of the main table."""

    #: The judge's name (with the run folder's name when one judge and k has several runs).
    label: str
    k: int
    run: Run
    #: {(block, dimension): accuracy}
    values: dict[tuple[str, str], float | None]
    #: {(block, dimension): [low, high]}
    intervals: dict[tuple[str, str], list[float] | None]
    #: ``erb verify``'s verdict: verified, mismatch (metrics.json does not follow from the
    #: records) or unchecked (the dataset or the records were not available).
    verification: str = "unchecked"

    @property
    def ranked(self) -> bool:
        """A run whose numbers do not follow from its records is never ranked or best."""
        return self.verification != "mismatch"


def measured_rows(
    runs: Sequence[Run], verification: Mapping[Path, str] | None = None
) -> list[TableRow]:
    """Main-table rows for ``runs``, best Overall O first (rows without it last), and rows
    whose ``verification`` (by run folder) is a mismatch after every ranked row."""
    counts: dict[tuple[str, int], int] = {}
    for run in runs:
        counts[(run.name, run.k)] = counts.get((run.name, run.k), 0) + 1
    rows = []
    for run in runs:
        acc, ci = run.metrics.get("accuracy") or {}, run.metrics.get("ci95") or {}
        values: dict[tuple[str, str], float | None] = {}
        intervals: dict[tuple[str, str], list[float] | None] = {}
        for block in BLOCKS:
            acc_block, ci_block = block_cells(acc, block), block_cells(ci, block)
            for dim in DIMENSIONS:
                value = acc_block.get(dim)
                values[(block, dim)] = None if value is None else float(value)
                interval = ci_block.get(dim)
                intervals[(block, dim)] = (
                    [float(interval[0]), float(interval[1])]
                    if isinstance(interval, (list, tuple)) and len(interval) == 2
                    else None
                )
        label = run.name if counts[(run.name, run.k)] == 1 else f"{run.name} [{run.run_id}]"
        status = (verification or {}).get(run.path, "unchecked")
        rows.append(TableRow(label, run.k, run, values, intervals, status))

    def order(row: TableRow) -> tuple[bool, bool, float, str, int]:
        value = row.values[(OVERALL_BLOCK, "overall")]
        return (not row.ranked, value is None, -(value or 0.0), row.label, row.k)

    return sorted(rows, key=order)


def best_values(rows: Sequence[TableRow]) -> dict[tuple[str, str], float]:
    """The highest value of each column among the ranked ``rows`` (columns with no value
    are absent). Empty for a single row: a lone row is not "best" at anything.
    """
    best: dict[tuple[str, str], float] = {}
    if len(rows) < 2:
        return best
    for row in rows:
        if not row.ranked:
            continue
        for col, value in row.values.items():
            if value is not None and (col not in best or value > best[col]):
                best[col] = value
    return best


def _is_best(row: TableRow, col: tuple[str, str], best: dict[tuple[str, str], float]) -> bool:
    value = row.values[col]
    return row.ranked and value is not None and col in best and abs(value - best[col]) < 1e-12


def _fmt(value: float | None, missing: str = "-") -> str:
    return missing if value is None else f"{value:.3f}"


# --------------------------------------------------------------------------- escaping

_MD_BACKSLASHED = set("\\`*_[]|~#")
_MD_ENTITIES = {"<": "&lt;", ">": "&gt;", "&": "&amp;"}


def escape_markdown(text: str) -> str:
    """Text safe in a Markdown table cell: no emphasis, links, pipes or raw HTML."""
    out = []
    for ch in " ".join(str(text).split()):
        if ch in _MD_ENTITIES:
            out.append(_MD_ENTITIES[ch])
        elif ch in _MD_BACKSLASHED:
            out.append("\\" + ch)
        else:
            out.append(ch)
    return "".join(out)


_LATEX = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "<": r"\textless{}",
    ">": r"\textgreater{}",
    "|": r"\textbar{}",
}


def escape_latex(text: str) -> str:
    """Text safe in a LaTeX table cell (text mode)."""
    return "".join(_LATEX.get(ch, ch) for ch in " ".join(str(text).split()))


# --------------------------------------------------------------------------- formats


def render_table(rows: Sequence[TableRow], fmt: TableFormat) -> str:
    """The main table in ``fmt``: rows = judges (name, k), PF / C / O per block, 3 decimals."""
    if fmt == "md":
        return to_markdown(rows)
    if fmt == "csv":
        return to_csv(rows)
    if fmt == "latex":
        return to_latex(rows)
    raise ValueError(f"unknown table format {fmt!r}; expected md, csv or latex")


def to_markdown(rows: Sequence[TableRow]) -> str:
    best = best_values(rows)
    header = ["Judge", "k"] + [f"{block_title(b)} {DIMENSION_ABBREV[d]}" for b, d in COLUMNS]
    header.append("Verified")
    lines = [
        "| " + " | ".join(header) + " |",
        "|" + "|".join([":---", "---:"] + [":---:"] * len(COLUMNS) + [":---"]) + "|",
    ]
    for row in rows:
        cells = [escape_markdown(row.label), str(row.k)]
        for col in COLUMNS:
            text = _fmt(row.values[col])
            cells.append(f"**{text}**" if _is_best(row, col, best) else text)
        cells.append(row.verification)
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines.append(
        "Pairwise accuracy (PF: prompt following, C: consistency, O: overall); "
        "Overall is the mean of the 13 subtasks, a group the mean of its subtasks; "
        "bold: best per column. Verified: `erb verify` recomputed every number from the run's "
        "records (mismatch: it did not follow; such rows are listed last and never bold)."
    )
    return "\n".join(lines) + "\n"


def to_csv(rows: Sequence[TableRow]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    header = ["judge", "k"] + [f"{b}_{DIMENSION_ABBREV[d]}" for b, d in COLUMNS]
    writer.writerow([*header, "verification"])
    for row in rows:
        values = [_fmt(row.values[col], "") for col in COLUMNS]
        writer.writerow([row.label, row.k, *values, row.verification])
    return buf.getvalue()


def to_latex(rows: Sequence[TableRow]) -> str:
    best = best_values(rows)
    n = len(COLUMNS)
    lines = [
        "% Pairwise accuracy on EditReward-Bench, written by `erb leaderboard --format latex`.",
        "% Needs \\usepackage{booktabs}. Bold: best per column. $^\\dagger$: metrics do not"
        " follow from the run's records (erb verify); $^*$: not verified.",
        f"\\begin{{tabular}}{{lr*{{{n}}}{{c}}}}",
        "\\toprule",
        " & & "
        + " & ".join(f"\\multicolumn{{{len(DIMENSIONS)}}}{{c}}{{{block_title(b)}}}" for b in BLOCKS)
        + " \\\\",
        " ".join(
            f"\\cmidrule(lr){{{3 + i * len(DIMENSIONS)}-{2 + (i + 1) * len(DIMENSIONS)}}}"
            for i in range(len(BLOCKS))
        ),
        "Judge & $k$ & " + " & ".join(DIMENSION_ABBREV[d] for _, d in COLUMNS) + " \\\\",
        "\\midrule",
    ]
    marks = {"verified": "", "mismatch": "$^\\dagger$", "unchecked": "$^*$"}
    for row in rows:
        cells = [escape_latex(row.label) + marks.get(row.verification, "$^*$"), str(row.k)]
        for col in COLUMNS:
            text = _fmt(row.values[col])
            cells.append(f"\\textbf{{{text}}}" if _is_best(row, col, best) else text)
        lines.append(" & ".join(cells) + " \\\\")
    lines += ["\\bottomrule", "\\end{tabular}"]
    return "\n".join(lines) + "\n"


def cell_view(
    row: TableRow, col: tuple[str, str], best: dict[tuple[str, str], float]
) -> dict[str, Any]:
    """What the HTML table shows in one cell."""
    value, interval = row.values[col], row.intervals[col]
    return {
        "col": column_id(*col),
        "value": value,
        "text": _fmt(value, "–"),
        "ci": None if interval is None else f"{interval[0]:.3f}–{interval[1]:.3f}",
        "best": _is_best(row, col, best),
    }
