"""HTML rendering: one Jinja2 environment (autoescaping everything) and the template filters."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from molexp.workspace import format_duration, format_size

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"
STATUSES = ("created", "running", "succeeded", "failed", "cancelled")


def fmt_time(value: datetime | None) -> str:
    """``2026-11-22 08:40:03`` (UTC), or an empty string."""
    if value is None:
        return ""
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def fmt_duration(seconds: float | None) -> str:
    """``850 ms``, ``12.3 s``, ``4m 05s``, ``2h 03m``, or an empty string when unknown."""
    if seconds is None or not math.isfinite(seconds):
        return ""
    return format_duration(seconds)


def fmt_size(size: int | None) -> str:
    """``512 B``, ``1.5 KiB``, ``3.2 MiB``, or an empty string when unknown."""
    return "" if size is None else format_size(size)


def fmt_value(value: Any, limit: int = 80) -> str:
    """A JSON value in one short line (numbers with 6 significant digits)."""
    if value is None:
        return ""
    if isinstance(value, float):
        text = f"{value:.6g}"
    elif isinstance(value, str):
        text = value
    else:
        text = json.dumps(value, ensure_ascii=False, sort_keys=True)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def fmt_json(value: Any) -> str:
    """A JSON value, indented."""
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True, default=str)


def query(pairs: Iterable[tuple[str, Any]], **changes: Any) -> str:
    """``?a=1&b=2``: ``pairs`` with ``changes`` applied (``None`` removes a key; a list repeats)."""
    kept = [(k, v) for k, v in pairs if k not in changes]
    for key, value in changes.items():
        if value is None:
            continue
        if isinstance(value, (list, tuple)):
            kept.extend((key, v) for v in value)
        else:
            kept.append((key, value))
    encoded = urlencode([(k, str(v)) for k, v in kept])
    return f"?{encoded}" if encoded else "?"


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(str(TEMPLATES)),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        time=fmt_time,
        duration=fmt_duration,
        size=fmt_size,
        value=fmt_value,
        pretty=fmt_json,
    )
    env.globals.update(STATUSES=STATUSES, query=query)
    return env


ENV = _environment()


def render(name: str, context: Mapping[str, Any]) -> str:
    """Render template ``name`` with ``context``."""
    return ENV.get_template(name).render(**context)
