"""The helpers the workspace layer exports for the layers above it (CLI, server, plugins).

Checked through the public names only: ``molexp.workspace`` resolves every name it lists, and
the validation, parsing, flattening and formatting helpers behave as documented.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import molexp.workspace as mw
from molexp.workspace import (
    CorruptRecordError,
    InvalidNameError,
    RunMetadata,
    SchemaVersionError,
    check_filename,
    check_id,
    flatten_keys,
    format_duration,
    format_size,
    parse_record,
)

# On a failing example hypothesis' pytest plugin imports libcst, whose import warns (mypy_extensions
# TypedDict deprecation); under `filterwarnings = error` that would crash the session instead of
# reporting the failure.
pytestmark = pytest.mark.filterwarnings(
    "ignore:mypy_extensions.TypedDict is deprecated:DeprecationWarning"
)


@pytest.mark.parametrize("name", mw.__all__)
def test_every_listed_name_resolves_and_is_documented(name: str) -> None:
    value = getattr(mw, name)
    assert name in dir(mw)
    if callable(value):
        assert (value.__doc__ or "").strip(), f"{name} has no docstring"


def test_an_unknown_name_is_a_clear_attribute_error() -> None:
    with pytest.raises(AttributeError, match="has no attribute 'check_everything'"):
        mw.check_everything  # noqa: B018


# -- ids and file names ---------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["run-1", "a", "qm9.v2_b", "0" * 128])
def test_check_id_returns_a_canonical_id(value: str) -> None:
    assert check_id(value, what="run id") == value


@pytest.mark.parametrize("value", ["../evil", "Run 1", "a/b", "", "-x", "a" * 129, "é"])
def test_check_id_names_the_value_and_the_rule(value: str) -> None:
    with pytest.raises(InvalidNameError, match=r"run id .* is not valid: use lowercase ASCII"):
        check_id(value, what="run id")


def test_check_id_refuses_a_non_string() -> None:
    with pytest.raises(InvalidNameError, match="asset id must be a string, got int"):
        check_id(7, what="asset id")  # type: ignore[arg-type]


@pytest.mark.parametrize("value", ["metrics.json", "My Report (1).pdf", ".hidden", "日本.txt"])
def test_check_filename_returns_a_safe_name(value: str) -> None:
    assert check_filename(value) == value


@pytest.mark.parametrize("value", ["a/b", "a\\b", ".", "..", "", " x", "a\x00b", "x" * 201])
def test_check_filename_names_the_value_and_the_rule(value: str) -> None:
    with pytest.raises(InvalidNameError, match=r"file path segment .* is not a safe file name"):
        check_filename(value, what="file path segment")


# -- records ---------------------------------------------------------------------------------------


def _run_json(**changes: Any) -> bytes:
    record = {"id": "r1", "experiment_id": "e", "project_id": "p", **changes}
    return json.dumps(record).encode()


def test_parse_record_reads_a_valid_record() -> None:
    run = parse_record(_run_json(), RunMetadata, "lab/run.json")
    assert (run.id, run.status.value, run.schema_version) == ("r1", "created", 1)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty file"),
        (b'{"id": "r1", "experim', "not valid JSON"),
        (b"[1, 2]", "expected a JSON object, found list"),
        (_run_json(schema_version="1"), "schema_version must be an integer"),
        (_run_json(status="exploded"), "field 'status'"),
    ],
)
def test_parse_record_names_the_location_of_a_corrupt_record(data: bytes, reason: str) -> None:
    with pytest.raises(CorruptRecordError, match=re.escape(reason)) as info:
        parse_record(data, RunMetadata, "s3://bucket/lab/run.json")
    assert "s3://bucket/lab/run.json" in str(info.value)


def test_parse_record_refuses_a_newer_schema() -> None:
    with pytest.raises(SchemaVersionError, match="upgrade molexp-workspace") as info:
        parse_record(_run_json(schema_version=99), RunMetadata, "lab/run.json")
    assert "lab/run.json" in str(info.value)


# -- flattening -----------------------------------------------------------------------------------


def test_flatten_keys_joins_nested_keys_with_dots() -> None:
    nested = {"a": {"b": 1, "c": {"d": [1, {"e": 2}]}}, "f": {}, "g": None}
    assert flatten_keys(nested) == {"a.b": 1, "a.c.d": [1, {"e": 2}], "f": {}, "g": None}


_KEYS = st.text(alphabet="abcxyz_0", min_size=1, max_size=4)
_LEAVES = st.none() | st.booleans() | st.integers() | st.text(max_size=5) | st.lists(st.integers())
_NESTED = st.recursive(
    _LEAVES, lambda inner: st.dictionaries(_KEYS, inner, max_size=4), max_leaves=30
)


def _unflatten(flat: dict[str, Any]) -> dict[str, Any]:
    nested: dict[str, Any] = {}
    for key, value in flat.items():
        *parents, last = key.split(".")
        node = nested
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
    return nested


@given(st.dictionaries(_KEYS, _NESTED, max_size=5))
def test_flatten_keys_loses_nothing(nested: dict[str, Any]) -> None:
    flat = flatten_keys(nested)
    assert all(not (isinstance(v, dict) and v) for v in flat.values())
    assert _unflatten(flat) == nested


# -- sizes and durations --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("n", "text"),
    [
        (0, "0 B"),
        (512, "512 B"),
        (1023, "1023 B"),
        (1024, "1.0 KiB"),
        (1536, "1.5 KiB"),
        (int(3.2 * 1024**2), "3.2 MiB"),
        (5 * 1024**3, "5.0 GiB"),
        (2 * 1024**4, "2048.0 GiB"),
    ],
)
def test_format_size(n: int, text: str) -> None:
    assert format_size(n) == text


_UNITS = {"B": 1, "KiB": 1024, "MiB": 1024**2, "GiB": 1024**3}


@given(st.integers(min_value=0, max_value=2**50))
def test_format_size_is_within_five_percent(n: int) -> None:
    number, unit = format_size(n).split(" ")
    shown = float(number) * _UNITS[unit]
    assert abs(shown - n) <= 0.05 * max(n, 1)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0 ms"),
        (0.0421, "42 ms"),
        (0.85, "850 ms"),
        (1, "1.0 s"),
        (12.34, "12.3 s"),
        (245, "4m 05s"),
        (3599, "59m 59s"),
        (7380, "2h 03m"),
        (90000, "25h 00m"),
        (-0.5, "-500 ms"),
    ],
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


@pytest.mark.parametrize("seconds", [math.nan, math.inf, -math.inf])
def test_format_duration_refuses_a_non_finite_number(seconds: float) -> None:
    with pytest.raises(ValueError, match="finite number of seconds"):
        format_duration(seconds)


_DURATION = re.compile(r"(?:(\d+)h )?(?:(\d+)m )?(?:(\d+)s|([\d.]+) s|(\d+) ms|(\d+)m)\Z")


@given(st.floats(min_value=0, max_value=1e7))
def test_format_duration_is_close(seconds: float) -> None:
    text = format_duration(seconds)
    match = _DURATION.fullmatch(text)
    assert match, text
    hours, minutes, secs, frac, ms, bare_minutes = match.groups()
    shown = (
        int(hours or 0) * 3600
        + int(minutes or bare_minutes or 0) * 60
        + int(secs or 0)
        + float(frac or 0)
        + int(ms or 0) / 1000
    )
    # Cut to the unit shown: 0.05 s below a minute, a second below an hour, a minute above.
    step = 0.0005 if seconds < 1 else 0.05 if seconds < 60 else 1 if seconds < 3600 else 60
    assert seconds - step - 1e-9 <= shown <= seconds + step + 1e-9, (seconds, text)
