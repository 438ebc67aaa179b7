"""Inline SVG charts generated in Python: no JS, no external CSS, so a report is one self-contained file.

Every chart has a title, an x axis with round ticks, an axis title naming the quantity and its unit,
and a legend when it has more than one kind of mark. The axis runs from one round tick to another
and the plot keeps a right margin wider than half a tick label, so no tick label is clipped. Charts
scale down with the page (viewBox, width 100%) and never exceed their natural width.
All text is escaped here: labels may come from policy names, segment names or case names.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from html import escape
from typing import NamedTuple

# Fixed palette: the browser test looks for these colours in the rendered page.
POLICY_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#8c564b")
ORACLE_COLOR = "#8a94a6"  # a blue-grey: text antialiasing makes neutral greys, never this
TRUE_COLOR = "#d62728"
FIXED_COLOR = "#9467bd"
FAILED_COLOR = "#e377c2"
DISCOUNT_COLOR = "#17becf"
LEGEND_COLOR = "#b0b0b0"  # a neutral swatch for "the bar", whatever the policy's colour
AXIS_COLOR = "#555"
GRID_COLOR = "#e5e5e5"
WIDTH = 720
ROW_H = 24
FONT = 12
RIGHT = 56  # room for a value label at a bar's end and half of the last tick label


class IntervalRow(NamedTuple):
    label: str
    value: float | None
    low: float | None
    high: float | None
    true: float | None
    color: str


class Bar(NamedTuple):
    label: str
    value: float
    color: str
    note: str = ""  # printed after the bar, e.g. "93% of oracle"


def _finite(x: float | None) -> bool:
    return x is not None and math.isfinite(x)


def text_width(text: str, size: float = FONT) -> float:
    """A generous estimate of rendered text width in px (sans-serif averages ~0.55 em per char)."""
    return 0.6 * size * len(text)


def nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    """Round ticks (1, 2, 2.5, 5 x 10^k) whose first is <= lo and last >= hi."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        lo, hi = 0.0, 1.0
    if hi <= lo:
        lo, hi = (lo - 1.0, hi + 1.0) if lo == 0 else (lo - abs(lo) * 0.1, hi + abs(hi) * 0.1)
    raw = (hi - lo) / max(n, 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    first, last = math.floor(lo / step + 1e-9), math.ceil(hi / step - 1e-9)
    return [round(i * step, 12) for i in range(first, last + 1)]


def tick_format(ticks: Sequence[float]) -> Callable[[float], str]:
    """Just enough decimals for the tick step (2.5 x 10^k needs one more than its power)."""
    step = ticks[1] - ticks[0] if len(ticks) > 1 else 1.0
    power = math.floor(math.log10(step) + 1e-9)
    decimals = max(0, -power) + (1 if round(step / 10**power, 6) == 2.5 and power <= 0 else 0)
    return lambda v: f"{v:,.{decimals}f}"


class _Axis:
    def __init__(self, ticks: Sequence[float], x0: float, x1: float) -> None:
        self.ticks, self.x0, self.x1 = list(ticks), x0, x1
        self.lo, self.hi = self.ticks[0], self.ticks[-1]
        self.fmt = tick_format(self.ticks)

    def px(self, v: float) -> float:
        """A length of v data units in px."""
        return v / (self.hi - self.lo) * (self.x1 - self.x0)

    def x(self, v: float) -> float:
        v = min(max(v, self.lo), self.hi)
        return self.x0 + (v - self.lo) / (self.hi - self.lo) * (self.x1 - self.x0)

    def draw(self, top: float, bottom: float, title: str, width: int) -> list[str]:
        """Grid lines from top to bottom, the axis line at bottom, tick labels and the axis title."""
        out = []
        for t in self.ticks:
            x = self.x(t)
            out.append(f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{bottom}" stroke="{GRID_COLOR}"/>')
            out.append(
                f'<line x1="{x:.1f}" y1="{bottom}" x2="{x:.1f}" y2="{bottom + 4}" stroke="{AXIS_COLOR}"/>'
            )
            out.append(
                f'<text x="{x:.1f}" y="{bottom + 16}" font-size="11" text-anchor="middle" '
                f'fill="{AXIS_COLOR}">{escape(self.fmt(t))}</text>'
            )
        out.append(f'<line x1="{self.x0}" y1="{bottom}" x2="{self.x1}" y2="{bottom}" stroke="{AXIS_COLOR}"/>')
        mid = (self.x0 + self.x1) / 2
        anchor = "middle" if text_width(title) / 2 < min(mid, width - mid) else "start"
        tx = mid if anchor == "middle" else 4
        out.append(
            f'<text x="{tx:.1f}" y="{bottom + 34}" font-size="{FONT}" text-anchor="{anchor}" '
            f'class="axis-title">{escape(title)}</text>'
        )
        return out


def _frame(width: int, height: float, title: str, body: list[str]) -> str:
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height:.0f}" '
        f'width="100%" style="max-width:{width}px;height:auto" role="img" aria-label="{escape(title)}" '
        'font-family="system-ui, sans-serif">'
    )
    title_el = f'<text x="4" y="16" font-size="14" font-weight="bold">{escape(title)}</text>'
    return "\n".join([head, title_el, *body, "</svg>"])


def _legend(y: float, entries: Sequence[tuple[str, str]], x0: float = 4, width: int = WIDTH) -> list[str]:
    """One line of (mark svg at (0,0) of a 12x12 box, label) entries, wrapped to the width."""
    out, x = [], x0
    for mark, label in entries:
        w = 18 + text_width(label, 11) + 16
        if x + w > width and x > x0:
            x, y = x0, y + 18
        out.append(f'<g transform="translate({x:.1f},{y - 10:.1f})">{mark}</g>')
        out.append(f'<text x="{x + 18:.1f}" y="{y}" font-size="11">{escape(label)}</text>')
        x += w
    return out


def fit(text: str, px: float, size: float = FONT) -> str:
    """The text, cut with an ellipsis to about px wide (a hostile or very long name cannot push into
    the plot)."""
    keep = max(int(px / (0.6 * size)), 1)
    return text if len(text) <= keep else text[: max(keep - 1, 1)] + "\u2026"


def _label_width(labels: Sequence[str], width: int) -> float:
    return min(max((text_width(s) for s in labels), default=40) + 12, width * 0.4)


def interval_chart(
    rows: Sequence[IntervalRow], title: str, x_title: str, estimate: str = "estimate", width: int = WIDTH
) -> str:
    """One row per policy: a thick bar over the 95% interval, a dark dot at the estimate, and a red
    tick at the true value when known."""
    finite = [v for r in rows for v in (r.value, r.low, r.high, r.true) if v is not None and math.isfinite(v)]
    left = _label_width([r.label for r in rows], width)
    axis = _Axis(nice_ticks(min(finite, default=0.0), max(finite, default=1.0)), left, width - RIGHT)
    top, body = 28, []
    bottom = top + ROW_H * max(len(rows), 1) + 6
    body += axis.draw(top, bottom, x_title, width)
    for i, r in enumerate(rows):
        y = top + i * ROW_H
        body.append(f'<text x="4" y="{y + 16}" font-size="{FONT}">{escape(fit(r.label, left - 8))}</text>')
        if _finite(r.low) and _finite(r.high):
            x0, x1 = axis.x(r.low), axis.x(r.high)  # type: ignore[arg-type]
            body.append(
                f'<rect x="{x0:.1f}" y="{y + 5}" width="{max(x1 - x0, 3):.1f}" height="14" fill="{r.color}"/>'
            )
        if _finite(r.value):
            body.append(f'<circle cx="{axis.x(r.value):.1f}" cy="{y + 12}" r="4" fill="#111"/>')  # type: ignore[arg-type]
        if _finite(r.true):
            xt = axis.x(r.true)  # type: ignore[arg-type]
            body.append(f'<rect x="{xt - 2:.1f}" y="{y + 1}" width="4" height="22" fill="{TRUE_COLOR}"/>')
    if not rows:
        body.append(f'<text x="4" y="{top + 16}" font-size="{FONT}">no data</text>')
    legend = [
        (f'<rect x="0" y="3" width="14" height="8" fill="{LEGEND_COLOR}"/>', "95% interval (colour: policy)"),
        ('<circle cx="7" cy="7" r="4" fill="#111"/>', estimate),
    ]
    if any(_finite(r.true) for r in rows):
        legend.append((f'<rect x="5" y="0" width="4" height="14" fill="{TRUE_COLOR}"/>', "true value"))
    body += _legend(bottom + 56, legend, width=width)
    return _frame(width, bottom + 66, title, body)


def bar_chart(
    items: Sequence[tuple[str, Sequence[float]]],
    colors: Sequence[str],
    title: str,
    x_title: str,
    legend: Sequence[str] = (),
    width: int = WIDTH,
) -> str:
    """Horizontal stacked bars from zero: one row per (label, [value per series]); the total is
    printed after each bar."""
    top_value = max((sum(v) for _, v in items), default=1.0) or 1.0
    left = _label_width([label for label, _ in items], width)
    axis = _Axis(nice_ticks(0.0, top_value), left, width - RIGHT)
    top = 28
    bottom = top + ROW_H * max(1, len(items)) + 6
    body = axis.draw(top, bottom, x_title, width)
    for i, (label, values) in enumerate(items):
        y, x = top + i * ROW_H, axis.x(0.0)
        body.append(f'<text x="4" y="{y + 16}" font-size="{FONT}">{escape(fit(label, left - 8))}</text>')
        for v, color in zip(values, colors, strict=False):
            w = axis.px(v) if v > 0 else 0.0
            body.append(f'<rect x="{x:.1f}" y="{y + 4}" width="{w:.1f}" height="16" fill="{color}"/>')
            x += w
        body.append(f'<text x="{x + 4:.1f}" y="{y + 16}" font-size="11">{sum(values):,.0f}</text>')
    if not items:
        body.append(f'<text x="4" y="{top + 16}" font-size="{FONT}">no data</text>')
    height = bottom + 44
    if legend:
        entries = [
            (f'<rect x="0" y="1" width="12" height="12" fill="{c}"/>', name)
            for name, c in zip(legend, colors, strict=False)
        ]
        body += _legend(bottom + 56, entries, width=width)
        height += 22
    return _frame(width, height, title, body)


def grouped_bar_chart(
    groups: Sequence[tuple[str, Sequence[Bar]]],
    title: str,
    x_title: str,
    value_format: Callable[[float], str] = lambda v: f"{v:,.2f}",
    width: int = WIDTH,
) -> str:
    """Small multiples in one chart: per group (a segment) a heading row, then one bar per policy
    from zero, its value and note printed after it. Group headings sit on their own row, so long
    segment names never squeeze the bars at narrow widths."""
    values = [b.value for _, bars in groups for b in bars if math.isfinite(b.value)]
    left = 14 + _label_width([b.label for _, bars in groups for b in bars], width)
    notes = max(
        (text_width(f"{value_format(b.value)}  {b.note}", 11) for _, bars in groups for b in bars), default=0
    )
    axis = _Axis(nice_ticks(0.0, max(values, default=1.0) or 1.0), left, width - max(RIGHT, notes + 8))
    top, body, y = 28, [], 28
    rows: list[str] = []
    for name, bars in groups:
        rows.append(
            f'<text x="4" y="{y + 16}" font-size="{FONT}" font-weight="bold">{escape(fit(name, width - 8))}</text>'
        )
        y += ROW_H - 4
        for b in bars:
            rows.append(
                f'<text x="14" y="{y + 16}" font-size="{FONT}">{escape(fit(b.label, left - 22))}</text>'
            )
            if math.isfinite(b.value):
                w = axis.x(b.value) - axis.x0 if b.value > 0 else 0.0
                rows.append(
                    f'<rect x="{axis.x0:.1f}" y="{y + 4}" width="{w:.1f}" height="16" fill="{b.color}"/>'
                )
                text = value_format(b.value) + (f" ({b.note})" if b.note else "")
                rows.append(
                    f'<text x="{axis.x0 + w + 4:.1f}" y="{y + 16}" font-size="11">{escape(text)}</text>'
                )
            y += ROW_H
        y += 6
    if not groups:
        rows.append(f'<text x="4" y="{top + 16}" font-size="{FONT}">no data</text>')
        y += ROW_H
    bottom = y + 2
    body = axis.draw(top, bottom, x_title, width) + rows
    return _frame(width, bottom + 44, title, body)
