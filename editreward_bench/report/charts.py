"""Geometry of the pages' inline SVG charts and heatmap colours.

Functions here only compute numbers (coordinates, colours); the templates draw
them, so every label goes through the templates' escaping.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

#: Line colours, in order (colour-blind friendly, Okabe-Ito then Tableau).
PALETTE = (
    "#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000",
    "#8C564B", "#7F7F7F", "#BCBD22", "#17BECF", "#9467BD",
)  # fmt: skip


def colour(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


def heat_colour(value: float | None) -> str:
    """Background for an accuracy in [0, 1]: red (0) through yellow (0.5) to green (1)."""
    if value is None or math.isnan(value):
        return "#eeeeee"
    v = min(1.0, max(0.0, value))
    return f"hsl({round(120 * v)}, 70%, {round(82 - 8 * abs(v - 0.5))}%)"


def _ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    step = (hi - lo) / (n - 1)
    return [round(lo + i * step, 6) for i in range(n)]


def _round_ticks(lo: float, hi: float) -> list[float]:
    """Ticks at multiples of a round step (0.05, 0.1 or 0.2) from ``lo`` to ``hi``."""
    span = hi - lo
    step = 0.05 if span <= 0.3 else 0.1 if span <= 0.6 else 0.2
    first = math.ceil(lo / step - 1e-9)
    last = math.floor(hi / step + 1e-9)
    return [round(i * step, 6) for i in range(first, last + 1)]


def interval_plot(
    rows: Sequence[tuple[str, Mapping[str, tuple[float | None, Sequence[float] | None]]]],
    dims: Sequence[tuple[str, str]],
) -> dict[str, Any]:
    """Dot-and-whisker panels, one per dimension: each row's accuracy and 95% interval.

    ``rows`` are (label, {dimension: (value, [low, high] or None)}); ``dims`` are
    (dimension, title) in panel order. The x axis runs from 0 to 1.
    """
    label_w, panel_w, gap, row_h, top, bottom = 190, 210, 18, 20, 34, 26
    width = label_w + len(dims) * (panel_w + gap)
    height = top + max(1, len(rows)) * row_h + bottom
    labels = [
        {"x": label_w - 8, "y": top + i * row_h + row_h / 2 + 4, "text": label}
        for i, (label, _) in enumerate(rows)
    ]
    panels = []
    for p, (dim, title) in enumerate(dims):
        x0 = label_w + p * (panel_w + gap)

        def sx(v: float, x0: int = x0) -> float:
            return round(x0 + min(1.0, max(0.0, v)) * panel_w, 2)

        points = []
        for i, (label, values) in enumerate(rows):
            value, ci = values.get(dim, (None, None))
            if value is None:
                continue
            y = top + i * row_h + row_h / 2
            lo, hi = (ci[0], ci[1]) if ci else (value, value)
            ci_text = f", 95% interval {lo:.3f}–{hi:.3f}" if ci else ""
            points.append(
                {
                    "y": y,
                    "cx": sx(value),
                    "x1": sx(lo),
                    "x2": sx(hi),
                    "title": f"{label}: {title} {value:.3f}{ci_text}",
                }
            )
        panels.append(
            {
                "title": title,
                "x0": x0,
                "x1": x0 + panel_w,
                "title_x": x0 + panel_w / 2,
                "ticks": [{"x": sx(t), "text": f"{t:g}"} for t in _ticks(0.0, 1.0)],
                "chance_x": sx(0.5),
                "points": points,
            }
        )
    return {
        "width": width,
        "height": height,
        "top": top,
        "axis_y": height - bottom,
        "labels": labels,
        "panels": panels,
    }


def curve_plot(
    series: Sequence[tuple[str, str, Mapping[int, float | None]]], title: str
) -> dict[str, Any]:
    """Accuracy against k: one line per (label, colour, {k: accuracy})."""
    width, height = 340, 230
    left, right, top, bottom = 46, 14, 28, 36
    ks = sorted({k for _, _, curve in series for k in curve})
    values = [v for _, _, curve in series for v in curve.values() if v is not None]
    k_max = max(ks) if ks else 1
    lo = math.floor((min(values) if values else 0.0) * 10 - 0.5) / 10
    hi = math.ceil((max(values) if values else 1.0) * 10 + 0.5) / 10
    lo, hi = max(0.0, lo), min(1.0, hi)
    if hi - lo < 0.2:
        lo, hi = max(0.0, hi - 0.2), min(1.0, lo + 0.2)
    plot_w, plot_h = width - left - right, height - top - bottom

    def sx(k: float) -> float:
        return round(left + (0.5 if k_max == 1 else (k - 1) / (k_max - 1)) * plot_w, 2)

    def sy(v: float) -> float:
        return round(top + (1 - (v - lo) / (hi - lo)) * plot_h, 2)

    lines = []
    for label, line_colour, curve in series:
        pts = [(k, v) for k, v in sorted(curve.items()) if v is not None]
        lines.append(
            {
                "label": label,
                "colour": line_colour,
                "points": " ".join(f"{sx(k)},{sy(v)}" for k, v in pts),
                "dots": [
                    {"cx": sx(k), "cy": sy(v), "title": f"{label}: Avg@{k} = {v:.3f}"}
                    for k, v in pts
                ],
            }
        )
    return {
        "title": title,
        "width": width,
        "height": height,
        "left": left,
        "right": width - right,
        "top": top,
        "bottom": height - bottom,
        "xticks": [{"x": sx(k), "text": str(k)} for k in ks],
        "yticks": [{"y": sy(t), "text": f"{t:.2f}"} for t in _round_ticks(lo, hi)],
        "lines": lines,
    }
