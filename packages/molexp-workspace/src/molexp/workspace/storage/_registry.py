"""Find a storage backend by URL scheme through the ``molexp.storage`` entry-point group, and
resolve the storage options it is opened with."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from molexp.workspace._errors import StorageError
from molexp.workspace.storage._base import Storage

ENTRY_POINT_GROUP = "molexp.storage"
_SCHEME_RE = re.compile(r"([a-zA-Z][a-zA-Z0-9+.-]*)://")
_LOCAL_SCHEMES = ("file", "local")
_KNOWN_PLUGINS = {"s3": "molexp-storage-s3"}

#: Storage options for programs that open workspaces they are only given a URL for (the CLI, a
#: worker executing a run): a JSON object like ``{"s3": {"endpoint_url": "http://..."}}``.
STORAGE_OPTIONS_ENV = "MOLEXP_STORAGE_OPTIONS"

OptionsTable = Mapping[str, Mapping[str, Any]]
_defaults: dict[str, dict[str, Any]] = {}
_env_cache: tuple[str, dict[str, dict[str, Any]]] | None = None


@dataclass(frozen=True)
class BackendInfo:
    """One installed storage backend, as its entry point declares it."""

    scheme: str
    target: str
    distribution: str | None
    version: str | None


def split_scheme(url: str | os.PathLike[str]) -> tuple[str, str]:
    """Return ``(scheme, url)``; plain paths have scheme ``file``."""
    text = os.fspath(url)
    match = _SCHEME_RE.match(text)
    if match is None:
        return "file", text
    return match.group(1).lower(), text


def _entry_points() -> dict[str, EntryPoint]:
    return {ep.name.lower(): ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def installed_backends() -> list[BackendInfo]:
    """Every backend that can be used: the built-in local one and the registered plugins."""
    found = [BackendInfo("file", "molexp.workspace.storage:LocalStorage", "molexp-workspace", None)]
    for name, ep in sorted(_entry_points().items()):
        dist = ep.dist
        found.append(
            BackendInfo(
                name,
                ep.value,
                dist.metadata["Name"] if dist is not None else None,
                dist.version if dist is not None else None,
            )
        )
    return found


def _check_table(table: Any, where: str) -> dict[str, dict[str, Any]]:
    if not isinstance(table, Mapping):
        raise StorageError(
            f"{where} must be an object mapping a URL scheme ('s3') or a URL prefix "
            f"('s3://bucket') to storage options, got {type(table).__name__}"
        )
    checked: dict[str, dict[str, Any]] = {}
    for target, options in table.items():
        if not isinstance(target, str) or not isinstance(options, Mapping):
            raise StorageError(
                f"{where}: the entry {target!r} must map a URL scheme or URL prefix to an object "
                "of storage options"
            )
        checked[target] = dict(options)
    return checked


def set_default_storage_options(table: OptionsTable | None) -> None:
    """Set this process's default storage options, e.g. the ``storage:`` section of molcfg.yaml.

    ``table`` maps a URL scheme (``"s3"``) or a URL prefix (``"s3://bucket"``) to options; it has
    the lowest precedence (below :data:`STORAGE_OPTIONS_ENV`, below explicit options).
    """
    global _defaults
    _defaults = _check_table(table or {}, "storage options")


def _env_table() -> dict[str, dict[str, Any]]:
    global _env_cache
    raw = os.environ.get(STORAGE_OPTIONS_ENV, "").strip()
    if not raw:
        return {}
    if _env_cache is not None and _env_cache[0] == raw:
        return _env_cache[1]
    try:
        parsed = json.loads(raw)
    except json.JSONDecodeError as exc:  # it may hold credentials: name the place, not the text
        raise StorageError(
            f"the environment variable {STORAGE_OPTIONS_ENV} is not valid JSON ({exc.msg} at "
            f"line {exc.lineno}, column {exc.colno}); expected an object like "
            '{"s3": {"endpoint_url": "http://host:9000"}}'
        ) from None
    table = _check_table(parsed, f"the environment variable {STORAGE_OPTIONS_ENV}")
    _env_cache = (raw, table)
    return table


def _select(table: Mapping[str, Mapping[str, Any]], scheme: str, url: str) -> dict[str, Any]:
    """The options of ``table`` that apply to ``url``: its scheme's, then longer URL prefixes'."""
    picked: dict[str, Any] = {}
    prefixes = [
        target
        for target in table
        if "://" in target
        and (url.rstrip("/") == target.rstrip("/") or url.startswith(target.rstrip("/") + "/"))
    ]
    for target in [t for t in table if t.lower() == scheme] + sorted(prefixes, key=len):
        picked.update(table[target])
    return picked


def storage_options_for(
    url: str | os.PathLike[str], options: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The storage options ``url`` is opened with, merged from (lowest precedence first): the
    process defaults (:func:`set_default_storage_options`), the :data:`STORAGE_OPTIONS_ENV`
    environment variable, and ``options``. Each table applies its scheme's entry, then the
    entries of URL prefixes of ``url``, shortest first."""
    scheme, text = split_scheme(url)
    merged = _select(_defaults, scheme, text)
    merged.update(_select(_env_table(), scheme, text))
    merged.update(options or {})
    return merged


def open_storage(url: str | os.PathLike[str], **options: Any) -> Storage:
    """Open the store at ``url`` with the backend registered for its scheme.

    ``options`` are merged over the defaults and :data:`STORAGE_OPTIONS_ENV` (see
    :func:`storage_options_for`); they are handed to the backend, never written to the store.
    """
    scheme, text = split_scheme(url)
    options = storage_options_for(text, options)
    if scheme in _LOCAL_SCHEMES:
        from molexp.workspace.storage._local import LocalStorage

        return LocalStorage.from_url(text, **options)
    eps = _entry_points()
    ep = eps.get(scheme)
    if ep is None:
        known = ", ".join(b.scheme for b in installed_backends())
        hint = ""
        if scheme in _KNOWN_PLUGINS:
            hint = f"; install it with: pip install {_KNOWN_PLUGINS[scheme]}"
        raise StorageError(
            f"no storage backend for scheme {scheme!r} (in {text!r}); installed backends: "
            f"{known}{hint}"
        )
    try:
        backend = ep.load()
    except Exception as exc:
        dist = ep.dist.metadata["Name"] if ep.dist is not None else "its distribution"
        raise StorageError(
            f"the storage backend for scheme {scheme!r} ({ep.value}, from {dist}) failed to "
            f"import: {type(exc).__name__}: {exc}; reinstall it with: "
            f"pip install --force-reinstall {dist}"
        ) from exc
    if not (isinstance(backend, type) and issubclass(backend, Storage)):
        raise StorageError(
            f"the entry point {ep.name!r} = {ep.value!r} in group {ENTRY_POINT_GROUP!r} is not a "
            "molexp.workspace.storage.Storage subclass"
        )
    try:
        return backend.from_url(text, **options)
    except TypeError as exc:
        raise StorageError(f"invalid storage options for scheme {scheme!r}: {exc}") from None
