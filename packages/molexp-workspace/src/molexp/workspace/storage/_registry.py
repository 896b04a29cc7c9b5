"""Find a storage backend by URL scheme through the ``molexp.storage`` entry-point group."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from molexp.workspace._errors import StorageError
from molexp.workspace.storage._base import Storage

ENTRY_POINT_GROUP = "molexp.storage"
_SCHEME_RE = re.compile(r"([a-zA-Z][a-zA-Z0-9+.-]*)://")
_LOCAL_SCHEMES = ("file", "local")
_KNOWN_PLUGINS = {"s3": "molexp-storage-s3"}


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


def open_storage(url: str | os.PathLike[str], **options: Any) -> Storage:
    """Open the store at ``url`` with the backend registered for its scheme."""
    scheme, text = split_scheme(url)
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
