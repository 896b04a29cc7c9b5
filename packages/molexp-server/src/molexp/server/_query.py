"""Filtering, sorting and paging runs on the server, for the runs table and the JSON API.

A filter is ``FIELD OP VALUE``: ``param.lr>=0.01``, ``result.loss<0.5``, ``status=failed``,
``profile!=smoke``, ``param.model~gcn`` (``~`` is "contains", case-insensitive). ``VALUE`` is read
as JSON when it is JSON (``0.01``, ``true``, ``"text"``), else as plain text. Fields: ``id``,
``status``, ``profile``, ``created``, ``started``, ``finished``, ``duration``, ``attempts``,
``error``, ``param.<name>``, ``result.<name>``, ``label.<name>`` (nested parameters by dotted
path, ``param.model.depth``).
"""

from __future__ import annotations

import json
import math
import operator
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from molexp.server._runindex import RunRow, Snapshot

SORT_FIELDS = ("created", "id", "status", "profile", "started", "finished", "duration", "attempts")
_FILTER_RE = re.compile(
    r"^\s*(?P<field>[A-Za-z0-9_.\-]+)\s*(?P<op>!=|>=|<=|=|<|>|~)\s*(?P<value>.*)$"
)
_PREFIXES = {
    "param.": "param",
    "params.": "param",
    "result.": "result",
    "results.": "result",
    "label.": "label",
    "labels.": "label",
}
_PLAIN = {*SORT_FIELDS, "error"}
MAX_LIMIT = 1000


class QueryError(ValueError):
    """A filter or sort the server cannot understand; the message says what is accepted."""


def normalize_field(name: str) -> str:
    """The canonical spelling of a field (``params.lr`` → ``param.lr``); :class:`QueryError` if
    it is not one."""
    if name in _PLAIN:
        return name
    for prefix, kind in _PREFIXES.items():
        if name.startswith(prefix) and len(name) > len(prefix):
            return f"{kind}.{name[len(prefix) :]}"
    raise QueryError(
        f"unknown field {name!r}: use one of {', '.join(sorted(_PLAIN))}, param.<name>, "
        "result.<name> or label.<name>"
    )


def field_value(row: RunRow, name: str) -> tuple[bool, Any]:
    """``(present, value)`` of a canonical field on a row."""
    kind, _, key = name.partition(".")
    if key:
        source: dict[str, Any] = (
            row.flat_params
            if kind == "param"
            else row.flat_results
            if kind == "result"
            else row.labels
        )
        return key in source, source.get(key)
    value: Any
    if name == "created":
        value = row.created_at
    elif name == "id":
        value = row.id
    elif name == "status":
        value = row.status.value
    elif name == "profile":
        value = row.profile_name
    elif name == "started":
        value = row.started_at
    elif name == "finished":
        value = row.finished_at
    elif name == "duration":
        value = row.duration
    elif name == "attempts":
        value = row.attempts
    else:
        value = row.error_type
    return value is not None, value


def _parse_value(text: str) -> Any:
    text = text.strip()
    try:
        return json.loads(text)
    except ValueError:
        return text


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


@dataclass(frozen=True)
class Filter:
    """One ``FIELD OP VALUE`` condition."""

    field: str
    op: str
    value: Any

    @classmethod
    def parse(cls, text: str) -> Filter:
        """Parse ``param.lr>=0.01``; :class:`QueryError` with the accepted syntax otherwise."""
        match = _FILTER_RE.match(text)
        if match is None:
            raise QueryError(
                f"cannot read the filter {text!r}: write FIELD OP VALUE, e.g. param.lr>=0.01, "
                "status=failed or param.model~gcn (OP is one of = != < <= > >= ~)"
            )
        return cls(normalize_field(match["field"]), match["op"], _parse_value(match["value"]))

    def __str__(self) -> str:
        value = self.value if isinstance(self.value, str) else json.dumps(self.value)
        return f"{self.field}{self.op}{value}"

    def matches(self, row: RunRow) -> bool:
        """Whether ``row`` satisfies the condition (a missing field satisfies only ``!=``)."""
        present, value = field_value(row, self.field)
        if hasattr(value, "isoformat"):
            value = value.isoformat()
        wanted = self.value
        if self.op in ("=", "!="):
            equal = present and (
                value == wanted
                or (not isinstance(wanted, str) and str(value) == str(wanted))
                or (isinstance(wanted, str) and not isinstance(value, str) and str(value) == wanted)
            )
            return equal if self.op == "=" else not equal
        if not present:
            return False
        if self.op == "~":
            text = value if isinstance(value, str) else json.dumps(value)
            return str(wanted).lower() in text.lower()
        if _is_number(value) and _is_number(wanted):
            return _compare(self.op, float(value), float(wanted))
        if isinstance(value, str) and isinstance(wanted, str):
            return _compare(self.op, value, wanted)
        return False

    def predicate(self) -> Callable[[RunRow], bool]:
        """A fast test of the condition; the same answers as :meth:`matches`."""
        kind, _, key = self.field.partition(".")
        compare = _ORDER_OPS.get(self.op)
        if key and compare is not None and _is_number(self.value):
            wanted = float(self.value)
            attr = {"param": "flat_params", "result": "flat_results"}.get(kind)
            if attr is not None:

                def check(row: RunRow) -> bool:
                    value = getattr(row, attr).get(key)
                    return type(value) in (int, float) and bool(compare(value, wanted))

                return check
        return self.matches


_ORDER_OPS: dict[str, Callable[[Any, Any], Any]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


def _compare(op: str, a: Any, b: Any) -> bool:
    if op == "<":
        return bool(a < b)
    if op == "<=":
        return bool(a <= b)
    if op == ">":
        return bool(a > b)
    return bool(a >= b)


def _sort_key(value: Any) -> tuple[int, Any]:
    """A key that orders mixed JSON values: numbers, then text, then everything else."""
    if isinstance(value, bool):
        return (1, int(value))
    if _is_number(value):
        return (0, value) if not math.isnan(value) else (3, "")
    if isinstance(value, str):
        return (2, value.lower())
    if hasattr(value, "isoformat"):
        return (0, value.timestamp())
    return (4, json.dumps(value, sort_keys=True))


@dataclass(frozen=True)
class RunQuery:
    """Which runs, in which order, and which page of them."""

    statuses: tuple[str, ...] = ()
    filters: tuple[Filter, ...] = ()
    text: str = ""
    sort: str = "created"
    descending: bool = True
    offset: int = 0
    limit: int = 50

    @classmethod
    def build(
        cls,
        *,
        status: Iterable[str] = (),
        filters: Iterable[str] = (),
        q: str | None = None,
        sort: str | None = None,
        order: str | None = None,
        offset: int = 0,
        limit: int = 50,
    ) -> RunQuery:
        """Validate raw request values; :class:`QueryError` names the bad one."""
        from molexp.workspace import RunStatus

        statuses: list[str] = []
        for item in status:
            for part in item.split(","):
                part = part.strip()
                if not part:
                    continue
                try:
                    statuses.append(RunStatus(part).value)
                except ValueError:
                    known = ", ".join(s.value for s in RunStatus)
                    raise QueryError(f"unknown status {part!r}: use one of {known}") from None
        parsed = tuple(Filter.parse(f) for f in filters if f.strip())
        sort_field = normalize_field(sort) if sort else "created"
        if order not in (None, "", "asc", "desc"):
            raise QueryError(f"order must be 'asc' or 'desc', got {order!r}")
        if offset < 0:
            raise QueryError(f"offset must be >= 0, got {offset}")
        if not 1 <= limit <= MAX_LIMIT:
            raise QueryError(f"limit must be between 1 and {MAX_LIMIT}, got {limit}")
        descending = order == "desc" if order else sort_field == "created"
        return cls(
            statuses=tuple(sorted(set(statuses))),
            filters=parsed,
            text=(q or "").strip(),
            sort=sort_field,
            descending=descending,
            offset=offset,
            limit=limit,
        )

    def _has_text(self, row: RunRow) -> bool:
        needle = self.text.lower()
        haystack = [row.id, row.status.value, row.profile_name or "", row.error_type or ""]
        haystack.extend(f"{k}={v}" for k, v in row.flat_params.items())
        haystack.extend(f"{k}={v}" for k, v in row.labels.items())
        return any(needle in item.lower() for item in haystack)

    def _ordered(self, rows: Sequence[RunRow]) -> tuple[RunRow, ...]:
        statuses = set(self.statuses)
        tests = [f.predicate() for f in self.filters]
        selected = [
            row
            for row in rows
            if (not statuses or row.status.value in statuses)
            and (not self.text or self._has_text(row))
            and all(test(row) for test in tests)
        ]
        if self.sort == "created":
            return tuple(reversed(selected)) if self.descending else tuple(selected)
        keyed: list[tuple[tuple[int, Any], RunRow]] = []
        missing: list[RunRow] = []
        for row in selected:
            present, value = field_value(row, self.sort)
            if present and value is not None:
                keyed.append((_sort_key(value), row))
            else:
                missing.append(row)
        keyed.sort(key=lambda item: item[0], reverse=self.descending)
        return tuple(row for _, row in keyed) + tuple(missing)

    def run(self, snapshot: Snapshot) -> tuple[int, tuple[RunRow, ...]]:
        """``(total matching, this page)``; the ordering is memoised per snapshot."""
        ordered = snapshot.select(self._key, self._ordered)
        return len(ordered), ordered[self.offset : self.offset + self.limit]

    def all(self, snapshot: Snapshot) -> tuple[RunRow, ...]:
        """Every matching run, in order (the chart uses them all)."""
        return snapshot.select(self._key, self._ordered)

    @property
    def _key(self) -> tuple[Any, ...]:
        filters = tuple(str(f) for f in self.filters)
        return (self.statuses, filters, self.text, self.sort, self.descending)
