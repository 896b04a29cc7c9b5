"""Sizes and durations for people: one spelling in every listing (the CLI's tables, web pages)."""

from __future__ import annotations

import math


def format_size(n: int) -> str:
    """``512 B``, ``1.5 KiB``, ``3.2 MiB``, ``4.0 GiB``: binary units, GiB the largest."""
    value = float(n)
    for unit in ("B", "KiB", "MiB"):
        if abs(value) < 1024:
            return f"{n} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"


def format_duration(seconds: float) -> str:
    """``850 ms``, ``12.3 s``, ``4m 05s``, ``2h 03m``; ValueError for NaN or infinity."""
    if not math.isfinite(seconds):
        raise ValueError(f"a duration must be a finite number of seconds, got {seconds!r}")
    if seconds < 0:
        return f"-{format_duration(-seconds)}"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"
