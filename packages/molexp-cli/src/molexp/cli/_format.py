"""Plain-text tables, compact values and JSON output for the listings (no third-party imports).

Sizes and durations are spelled by the workspace layer, as on the server's pages.
"""

from __future__ import annotations

import json
import math
import shutil
import sys
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from molexp.workspace import format_duration, format_size

MAX_CELL = 60


def echo(text: str = "") -> None:
    """Write a line to stdout."""
    sys.stdout.write(f"{text}\n")


def warn(text: str) -> None:
    """Write ``warning: <text>`` to stderr."""
    sys.stderr.write(f"warning: {text}\n")


def print_json(value: Any) -> None:
    """Write ``value`` as indented JSON to stdout (datetimes and other objects as strings)."""
    sys.stdout.write(json.dumps(value, indent=2, ensure_ascii=False, default=str) + "\n")


def compact(value: Any) -> str:
    """A short one-line rendering of a JSON value: ``1e-03``, ``a=1 b=x``, ``[1, 2]``."""
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        return " ".join(f"{k}={compact(v)}" for k, v in value.items())
    if isinstance(value, list):
        return "[" + ", ".join(compact(v) for v in value) + "]"
    return str(value)


def clip(text: str, width: int = MAX_CELL) -> str:
    """``text`` cut to ``width`` characters with an ellipsis."""
    text = text.replace("\n", " ")
    return text if len(text) <= width else text[: width - 1] + "…"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """Print an aligned table; the last column is not padded and may run long."""
    if not rows:
        return
    cells = [[clip(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    echo("  ".join(h.upper().ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip())
    for row in cells:
        echo("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


def parse_time(value: Any) -> datetime | None:
    """An ISO timestamp from a record, or None."""
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def short_time(value: Any) -> str:
    """``2026-01-31 14:05:09`` (local time) for an ISO timestamp; ``-`` when absent."""
    when = parse_time(value)
    return when.astimezone().strftime("%Y-%m-%d %H:%M:%S") if when is not None else "-"


def duration(seconds: float | None) -> str:
    """``850 ms``, ``12.3 s``, ``4m 05s``, ``2h 03m``; ``-`` when unknown."""
    if seconds is None or not math.isfinite(seconds):
        return "-"
    return format_duration(seconds)


def record_duration(record: Mapping[str, Any]) -> float | None:
    """Seconds from a record's ``started_at`` to its ``finished_at``."""
    start, end = parse_time(record.get("started_at")), parse_time(record.get("finished_at"))
    if start is None or end is None:
        return None
    return (end - start).total_seconds()


def size(n: int | None) -> str:
    """``512 B``, ``1.5 KiB``, ``3.2 MiB``; ``-`` when unknown."""
    return "-" if n is None else format_size(n)


def terminal_width() -> int:
    """The terminal's width (80 when unknown)."""
    return shutil.get_terminal_size((80, 24)).columns
