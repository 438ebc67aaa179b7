"""Inline SVG charts generated in Python: no JS, no external CSS, so a report is one self-contained file."""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

# Fixed palette: the browser test looks for these colours in the rendered page.
POLICY_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#8c564b")
TRUE_COLOR = "#d62728"
FIXED_COLOR = "#9467bd"
FAILED_COLOR = "#e377c2"
DISCOUNT_COLOR = "#17becf"
ROW_H = 26
LEFT = 230


def _scale(lo: float, hi: float, width: float) -> tuple[float, float]:
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        hi = lo + 1.0
    pad = (hi - lo) * 0.05
    lo, hi = lo - pad, hi + pad
    return lo, (width - LEFT - 20) / (hi - lo)


def _frame(width: int, height: int, title: str, body: list[str]) -> str:
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}">'
    )
    return "\n".join(
        [
            head,
            f'<text x="4" y="16" font-size="14" font-weight="bold">{escape(title)}</text>',
            *body,
            "</svg>",
        ]
    )


def interval_chart(
    rows: Sequence[tuple[str, float, float, float, float | None, str]], title: str, width: int = 900
) -> str:
    """One row per (label, value, low, high, true value or None, colour): a thick interval bar,
    a dark point estimate, and a red tick at the true value when known."""
    finite = [v for r in rows for v in (r[1], r[2], r[3], r[4]) if v is not None and math.isfinite(v)]
    lo, k = _scale(min(finite, default=0.0), max(finite, default=1.0), width)
    height = 40 + ROW_H * len(rows) + 20
    body = []
    for i, (label, value, low, high, true, color) in enumerate(rows):
        y = 30 + i * ROW_H
        body.append(f'<text x="4" y="{y + 16}" font-size="12">{escape(label)}</text>')
        if all(math.isfinite(v) for v in (value, low, high)):
            x0, x1 = LEFT + (low - lo) * k, LEFT + (high - lo) * k
            body.append(
                f'<rect x="{x0:.1f}" y="{y + 4}" width="{max(x1 - x0, 3):.1f}" height="16" fill="{color}"/>'
            )
            body.append(f'<circle cx="{LEFT + (value - lo) * k:.1f}" cy="{y + 12}" r="4" fill="#111"/>')
        if true is not None and math.isfinite(true):
            xt = LEFT + (true - lo) * k
            body.append(f'<rect x="{xt - 2:.1f}" y="{y}" width="4" height="24" fill="{TRUE_COLOR}"/>')
    axis_y = 30 + ROW_H * len(rows) + 14
    for j in range(5):
        v = lo + j * (width - LEFT - 20) / k / 4
        body.append(f'<text x="{LEFT + (v - lo) * k:.1f}" y="{axis_y}" font-size="10">{v:.3g}</text>')
    return _frame(width, height, title, body)


def bar_chart(
    items: Sequence[tuple[str, Sequence[float]]],
    colors: Sequence[str],
    title: str,
    legend: Sequence[str] = (),
    width: int = 900,
) -> str:
    """Horizontal stacked bars: one row per (label, [value per series])."""
    top = max((sum(v) for _, v in items), default=1.0) or 1.0
    k = (width - LEFT - 60) / top
    height = 40 + ROW_H * max(1, len(items)) + (20 if legend else 0)
    body = []
    for i, (label, values) in enumerate(items):
        y, x = 30 + i * ROW_H, float(LEFT)
        body.append(f'<text x="4" y="{y + 16}" font-size="12">{escape(label)}</text>')
        for v, color in zip(values, colors, strict=False):
            body.append(f'<rect x="{x:.1f}" y="{y + 3}" width="{v * k:.1f}" height="18" fill="{color}"/>')
            x += v * k
        body.append(f'<text x="{x + 4:.1f}" y="{y + 16}" font-size="11">{sum(values):g}</text>')
    for j, (name, color) in enumerate(zip(legend, colors, strict=False)):
        lx, ly = LEFT + j * 120, height - 12
        body.append(
            f'<rect x="{lx}" y="{ly - 9}" width="10" height="10" fill="{color}"/>'
            f'<text x="{lx + 14}" y="{ly}" font-size="11">{escape(name)}</text>'
        )
    if not items:
        body.append('<text x="4" y="48" font-size="12">no data</text>')
    return _frame(width, height, title, body)
