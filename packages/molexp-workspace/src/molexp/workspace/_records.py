"""Reading and writing the JSON records of the hierarchy, with schema-version checks."""

from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from molexp.workspace._errors import CorruptRecordError, CorruptRecordWarning, SchemaVersionError
from molexp.workspace.storage import Storage

SCHEMA_VERSION = 1
M = TypeVar("M", bound=BaseModel)


class VersionedRecord(BaseModel):
    """Unknown fields are kept, so rewriting a record never drops what a newer writer added."""

    model_config = ConfigDict(extra="allow", ser_json_inf_nan="constants", defer_build=True)

    schema_version: int = SCHEMA_VERSION


def utcnow() -> datetime:
    """The current time, timezone-aware, in UTC."""
    return datetime.now(UTC)


def canonical_json(value: Any) -> str:
    """A stable encoding: sorted keys at every depth, no whitespace; the basis of hashes and ids."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def content_hash(value: Any, length: int = 16) -> str:
    """A short sha256 hex digest of ``value``'s canonical encoding."""
    return hashlib.sha256(canonical_json(value).encode()).hexdigest()[:length]


def flatten_keys(value: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested dicts as one level of dotted keys: ``{"a": {"b": 1}}`` becomes ``{"a.b": 1}``.

    How listings, filters and diffs name a nested parameter, result or config value; an empty
    dict stays a value of its own.
    """
    flat: dict[str, Any] = {}
    for key, item in value.items():
        name = f"{prefix}{key}"
        if isinstance(item, Mapping) and item:
            flat.update(flatten_keys(item, f"{name}."))
        else:
            flat[name] = item
    return flat


def parse_record(data: bytes, model: type[M], location: str) -> M:
    """Validate the JSON record ``data`` as ``model``, checking its ``schema_version``.

    For readers that fetch a record's bytes themselves (a cached index, a server): a torn,
    non-JSON or invalid record is a :class:`CorruptRecordError` and a newer schema a
    :class:`SchemaVersionError`, each naming ``location`` (the file or URL it came from).
    """
    try:
        raw = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        reason = "empty file" if not data.strip() else f"not valid JSON ({exc})"
        raise CorruptRecordError(location, reason) from None
    if not isinstance(raw, dict):
        raise CorruptRecordError(location, f"expected a JSON object, found {type(raw).__name__}")
    version = raw.get("schema_version", SCHEMA_VERSION)
    if isinstance(version, bool) or not isinstance(version, int):
        raise CorruptRecordError(location, f"schema_version must be an integer, got {version!r}")
    if version > SCHEMA_VERSION:
        raise SchemaVersionError(
            location,
            f"schema_version {version} was written by a newer molexp; this one reads up to "
            f"{SCHEMA_VERSION}: upgrade molexp-workspace",
        )
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "(root)"
        raise CorruptRecordError(location, f"field {field!r}: {first['msg']}") from None


def read_record(storage: Storage, key: str, model: type[M]) -> M:
    """Read and validate the record at ``key``; ``FileNotFoundError`` if it does not exist."""
    return parse_record(storage.read_bytes(key), model, storage.url_for(key))


def write_record(storage: Storage, key: str, record: BaseModel, *, exclusive: bool = False) -> None:
    """Write ``record`` atomically as indented, human-readable JSON."""
    storage.write_bytes(key, record.model_dump_json(indent=2).encode() + b"\n", exclusive=exclusive)


def list_records(
    storage: Storage, dir_key: str, filename: str, model: type[M], *, prefix: str = ""
) -> list[M]:
    """The records ``<dir_key>/<prefix><id>/<filename>`` of every child, sorted by directory name.

    A child whose record cannot be read is skipped with a :class:`CorruptRecordWarning` naming the
    file, so one damaged record never hides the others.
    """
    found: list[M] = []
    for child in storage.list(dir_key):
        if not child.startswith(prefix) or child.startswith("."):
            continue
        key = f"{dir_key}/{child}/{filename}"
        try:
            found.append(read_record(storage, key, model))
        except FileNotFoundError:
            continue
        except CorruptRecordError as exc:
            warnings.warn(str(exc), CorruptRecordWarning, stacklevel=3)
    return found


#: How deeply lists and dicts may nest in a value stored in a record: far beyond any real
#: parameter set, and well within what every reader and writer of records accepts (pydantic's
#: JSON serializer stops at 255 levels, its JSON parser near 200, ``json`` at the interpreter's
#: recursion limit), so that nothing is ever written that cannot be read back.
MAX_DEPTH = 100


def _too_deep(value: Any, limit: int) -> str | None:
    """The path of the first list or dict nested more than ``limit`` levels, if any (a value
    shared between places is walked again only where it sits deeper, so this is linear in the
    size of the value times ``limit`` at most, and ends on a value that contains itself)."""
    stack: list[tuple[Any, int, str]] = [(value, 1, "")]
    deepest: dict[int, int] = {}
    while stack:
        item, depth, path = stack.pop()
        if not isinstance(item, (Mapping, list, tuple)) or deepest.get(id(item), 0) >= depth:
            continue
        if depth > limit:
            return path
        deepest[id(item)] = depth
        if isinstance(item, Mapping):
            stack.extend((v, depth + 1, f"{path}[{k!r}]") for k, v in item.items())
        else:
            stack.extend((v, depth + 1, f"{path}[{i}]") for i, v in enumerate(item))
    return None


def check_params(params: Mapping[str, Any] | None, *, what: str) -> dict[str, Any]:
    """A JSON-serializable dict with string keys, or a clear error naming the offending value."""
    if params is None:
        return {}
    if not isinstance(params, Mapping):
        raise TypeError(f"{what} must be a dict, got {type(params).__name__}")
    for key in params:
        if not isinstance(key, str):
            raise TypeError(f"{what} keys must be strings, got {key!r}")
    deep = _too_deep(params, MAX_DEPTH)
    if deep is not None:
        raise TypeError(
            f"{what} must hold JSON values nested at most {MAX_DEPTH} levels deep; the value at "
            f"{deep if len(deep) <= 60 else deep[:60] + '...'} is nested deeper"
        )
    try:
        text = json.dumps(params, ensure_ascii=False)
        text.encode("utf-8")
        normalized: dict[str, Any] = json.loads(text)
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"{what} must hold JSON values (str, int, float, bool, None, lists and dicts): {exc}"
        ) from None
    return normalized


def check_tags(tags: Sequence[str] | None, *, what: str = "tags") -> list[str] | None:
    """A list of non-empty strings (a bare string is refused, never split into characters)."""
    if tags is None:
        return None
    if isinstance(tags, (str, bytes)) or not isinstance(tags, Sequence):
        raise TypeError(f"{what} must be a list of strings, got {type(tags).__name__} {tags!r}")
    for tag in tags:
        if not isinstance(tag, str) or not tag:
            raise TypeError(f"{what} must be non-empty strings, got {tag!r}")
    return list(tags)


def check_labels(labels: Mapping[str, str] | None, *, what: str = "labels") -> dict[str, str]:
    """A dict of string keys to string values (labels are for filtering, not for data)."""
    if labels is None:
        return {}
    if not isinstance(labels, Mapping):
        raise TypeError(f"{what} must be a dict of strings, got {type(labels).__name__}")
    for key, value in labels.items():
        if not isinstance(key, str) or not key or not isinstance(value, str):
            raise TypeError(f"{what} must map non-empty strings to strings, got {key!r}: {value!r}")
    return dict(labels)
