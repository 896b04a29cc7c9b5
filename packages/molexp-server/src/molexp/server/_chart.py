"""A scatter chart of one result against one parameter, drawn on the server as inline SVG.

No script and no chart library: the SVG is plain markup (circles, lines and text, every string
escaped), styled by the server's stylesheet, with a tooltip (``<title>``) and a link to the run
page on every point. A numeric parameter gets a linear (or logarithmic) axis and a line through the
mean result at each value; any other parameter gets one column per distinct value.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape
from typing import Any

WIDTH = 720
HEIGHT = 420
_MARGIN_LEFT = 78
_MARGIN_RIGHT = 24
_MARGIN_TOP = 20
_MARGIN_BOTTOM = 58


@dataclass(frozen=True)
class Point:
    """One run on the chart."""

    x: Any
    y: Any
    label: str
    status: str
    href: str


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def nice_ticks(low: float, high: float, count: int = 6) -> list[float]:
    """Round tick values (1, 2 or 5 times a power of ten apart) covering ``[low, high]``."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return []
    if high < low:
        low, high = high, low
    if high == low:
        pad = abs(low) * 0.1 or 1.0
        low, high = low - pad, high + pad
    raw = (high - low) / max(1, count - 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first = math.floor(low / step) * step
    ticks = []
    value = first
    while value <= high + step * 1e-9:
        ticks.append(round(value, 12))
        value += step
    if ticks and ticks[-1] < high:
        ticks.append(round(ticks[-1] + step, 12))
    return ticks


def fmt_number(value: float) -> str:
    """A short label for an axis tick or a tooltip."""
    if value == 0:
        return "0"
    if abs(value) >= 1e5 or abs(value) < 1e-3:
        return f"{value:.3g}"
    return f"{value:.6g}"


def _category(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


class _Axis:
    """Maps data values to pixels on one axis (linear or log10)."""

    def __init__(self, values: Sequence[float], lo_px: float, hi_px: float, log: bool) -> None:
        self.log = log and all(v > 0 for v in values)
        data = [math.log10(v) for v in values] if self.log else list(values)
        if self.log:
            low, high = math.floor(min(data)), math.ceil(max(data))
            if low == high:
                high += 1
            self.ticks = [float(t) for t in range(int(low), int(high) + 1)]
        else:
            self.ticks = nice_ticks(min(data), max(data))
        self.low, self.high = self.ticks[0], self.ticks[-1]
        self.lo_px, self.hi_px = lo_px, hi_px

    def __call__(self, value: float) -> float:
        v = math.log10(value) if self.log else value
        span = self.high - self.low or 1.0
        return self.lo_px + (v - self.low) / span * (self.hi_px - self.lo_px)

    def labels(self) -> list[tuple[float, str]]:
        """``(pixel, text)`` of each tick."""
        if self.log:
            return [(self(10**t), fmt_number(10**t)) for t in self.ticks]
        return [(self(t), fmt_number(t)) for t in self.ticks]


def scatter_svg(
    points: Sequence[Point],
    x_label: str,
    y_label: str,
    *,
    log_x: bool = False,
    log_y: bool = False,
) -> tuple[str, str | None]:
    """The SVG markup of the chart, and a note about points left out (or None)."""
    usable = [p for p in points if _number(p.y) is not None]
    skipped = len(points) - len(usable)
    note = f"{skipped} run(s) without a numeric {y_label} are not shown" if skipped else None
    parts = [
        (
            f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" '
            f'width="{WIDTH}" height="{HEIGHT}" role="img" '
            f'aria-label="{escape(y_label)} against {escape(x_label)}">'
        )
    ]
    left, right = _MARGIN_LEFT, WIDTH - _MARGIN_RIGHT
    top, bottom = _MARGIN_TOP, HEIGHT - _MARGIN_BOTTOM
    if not usable:
        parts.append(
            f'<text class="chart-empty" x="{WIDTH / 2}" y="{HEIGHT / 2}" text-anchor="middle">'
            f"no run has a numeric {escape(y_label)}</text></svg>"
        )
        return "".join(parts), note
    ys = [float(p.y) for p in usable]
    y_axis = _Axis(ys, bottom, top, log_y)
    numeric_x = all(_number(p.x) is not None for p in usable)
    positions: list[float] = []
    x_ticks: list[tuple[float, str]]
    if numeric_x:
        x_axis = _Axis([float(p.x) for p in usable], left + 10, right - 10, log_x)
        positions = [x_axis(float(p.x)) for p in usable]
        x_ticks = x_axis.labels()
    else:
        categories = sorted({_category(p.x) for p in usable})
        band = (right - left) / len(categories)
        centre = {c: left + band * (i + 0.5) for i, c in enumerate(categories)}
        seen: dict[str, int] = defaultdict(int)
        for p in usable:
            c = _category(p.x)
            k = seen[c]
            seen[c] += 1
            jitter = ((k * 7) % 11 - 5) / 5 * min(12.0, band / 5)
            positions.append(centre[c] + jitter)
        x_ticks = [(centre[c], c if len(c) <= 18 else c[:17] + "…") for c in categories]
    # grid and axes
    for pixel, text in y_axis.labels():
        parts.append(
            f'<line class="chart-grid" x1="{left}" x2="{right}" y1="{pixel:.1f}" y2="{pixel:.1f}"/>'
        )
        parts.append(
            f'<text class="chart-tick" x="{left - 6}" y="{pixel + 4:.1f}" text-anchor="end">'
            f"{escape(text)}</text>"
        )
    for pixel, text in x_ticks:
        parts.append(
            f'<line class="chart-grid" x1="{pixel:.1f}" x2="{pixel:.1f}" y1="{top}" y2="{bottom}"/>'
        )
        parts.append(
            f'<text class="chart-tick" x="{pixel:.1f}" y="{bottom + 18}" text-anchor="middle">'
            f"{escape(text)}</text>"
        )
    parts.append(f'<line class="chart-axis" x1="{left}" x2="{right}" y1="{bottom}" y2="{bottom}"/>')
    parts.append(f'<line class="chart-axis" x1="{left}" x2="{left}" y1="{top}" y2="{bottom}"/>')
    parts.append(
        f'<text class="chart-label" x="{(left + right) / 2}" y="{HEIGHT - 12}" '
        f'text-anchor="middle">{escape(x_label)}{" (log)" if numeric_x and log_x else ""}</text>'
    )
    parts.append(
        f'<text class="chart-label" x="16" y="{(top + bottom) / 2}" text-anchor="middle" '
        f'transform="rotate(-90 16 {(top + bottom) / 2})">{escape(y_label)}'
        f"{' (log)' if y_axis.log else ''}</text>"
    )
    if numeric_x:
        means: dict[float, list[float]] = defaultdict(list)
        for pixel, p in zip(positions, usable, strict=True):
            means[pixel].append(float(p.y))
        line = " ".join(
            f"{px:.1f},{y_axis(sum(v) / len(v)):.1f}" for px, v in sorted(means.items())
        )
        if len(means) > 1:
            parts.append(f'<polyline class="chart-mean" points="{line}"/>')
    for pixel, p in zip(positions, usable, strict=True):
        y = float(p.y)
        tip = f"{p.label}: {x_label}={_category(p.x)}, {y_label}={fmt_number(y)} ({p.status})"
        parts.append(
            f'<a href="{escape(p.href)}"><circle class="chart-point st-{escape(p.status)}" '
            f'cx="{pixel:.1f}" cy="{y_axis(y):.1f}" r="4.5"><title>{escape(tip)}</title>'
            "</circle></a>"
        )
    parts.append("</svg>")
    return "".join(parts), note
