"""The storage seam: the one interface through which the workspace layer reads and writes bytes."""

from __future__ import annotations

import builtins
import json
import re
from abc import ABC, abstractmethod
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import IO, Any, ClassVar

from molexp.workspace._errors import StorageError

_BAD_KEY = re.compile(r"(?:^|/)\.{0,2}(?:/|\Z)|[\x00\\]")


def check_key(key: str) -> str:
    """Return ``key`` if it is a relative '/'-separated path that stays inside the store's root."""
    if not isinstance(key, str):
        raise StorageError(f"storage key must be a string, got {type(key).__name__}")
    if key and _BAD_KEY.search(key):
        raise StorageError(
            f"storage key {key!r} must be a relative '/'-separated path without empty, '.' or "
            "'..' segments, backslashes or NUL"
        )
    return key


def check_write_key(key: str) -> str:
    """Like :func:`check_key`, and refuse the root itself: only keys below it can be written."""
    if check_key(key) == "":
        raise StorageError("storage key '' is the store's root, which cannot be written as a file")
    return key


def join(*parts: str) -> str:
    """Join key segments with '/', skipping empty ones."""
    return "/".join(p for p in parts if p)


class Storage(ABC):
    """A store rooted at one URL; keys are relative paths below it.

    Backends implement the abstract methods; metadata writes must be atomic (readers see the old or
    the new bytes, never a mix) and, with ``exclusive=True``, must fail with ``FileExistsError``
    rather than replace an existing file.
    """

    scheme: ClassVar[str]
    supports_links: ClassVar[bool] = False

    def __init__(self, url: str) -> None:
        self.url = url

    @classmethod
    @abstractmethod
    def from_url(cls, url: str, **options: Any) -> Storage:
        """Open the store rooted at ``url`` with backend-specific ``options``."""

    @abstractmethod
    def read_bytes(self, key: str) -> bytes:
        """Return the whole content of ``key``; ``FileNotFoundError`` if it does not exist."""

    @abstractmethod
    def write_bytes(
        self, key: str, data: bytes, *, exclusive: bool = False, durable: bool = True
    ) -> None:
        """Replace ``key`` atomically with ``data``, creating parent directories as needed.

        ``durable=False`` lets a backend skip flushing to stable storage (for lock-like files whose
        loss in a power cut is harmless); the write stays atomic.
        """

    @abstractmethod
    def exists(self, key: str) -> bool:
        """Whether a file or directory exists at ``key``."""

    @abstractmethod
    def is_dir(self, key: str) -> bool:
        """Whether ``key`` is a directory (or a prefix with children on object stores)."""

    @abstractmethod
    def list(self, key: str) -> list[str]:
        """Names of the direct children of directory ``key``, sorted; empty if it does not exist."""

    def list_entries(self, key: str) -> builtins.list[tuple[str, bool]]:
        """``(name, is_dir)`` for each direct child of ``key``; backends that learn both from one
        listing (object stores) override this to save a request per child."""
        prefix = f"{key}/" if key else ""
        return [(name, self.is_dir(f"{prefix}{name}")) for name in self.list(key)]

    @abstractmethod
    def makedirs(self, key: str) -> None:
        """Create directory ``key`` and its parents (a no-op where directories are implicit)."""

    @abstractmethod
    def remove(self, key: str, *, recursive: bool = False) -> None:
        """Remove ``key``; a directory needs ``recursive=True``. Missing keys are not an error."""

    def remove_many(self, keys: Sequence[str]) -> None:
        """Remove the files ``keys`` (missing ones are not an error), every key checked first.

        Backends with a batch delete override this: an object store then removes a thousand
        keys per request instead of one.
        """
        for key in keys:
            check_write_key(key)
        for key in keys:
            self.remove(key)

    @abstractmethod
    def put_file(self, src: Path, key: str) -> None:
        """Copy the local file ``src`` to ``key``; it appears complete or not at all."""

    @abstractmethod
    def open(self, key: str, mode: str = "rb") -> IO[bytes]:
        """Open ``key`` for streaming: ``rb``, ``wb`` (visible when closed) or ``ab``."""

    @abstractmethod
    def size(self, key: str) -> int:
        """Size in bytes of file ``key``."""

    def modified(self, key: str) -> datetime | None:
        """When ``key`` was last written (timezone-aware UTC), or None where the backend cannot
        tell (this default, and directories on object stores); ``FileNotFoundError`` if missing.

        Cleanup uses it to leave alone anything a writer may still be working on.
        """
        if not self.exists(key):
            raise FileNotFoundError(self.url_for(key))
        return None

    def local_path(self, key: str) -> Path | None:
        """The local filesystem path of ``key`` when the store is local, else None."""
        return None

    def url_for(self, key: str) -> str:
        """The full URL (or path, for local stores) of ``key``."""
        check_key(key)
        return f"{self.url.rstrip('/')}/{key}" if key else self.url

    def read_json(self, key: str) -> Any:
        """Parse ``key`` as JSON."""
        return json.loads(self.read_bytes(key))

    def write_json(self, key: str, value: Any, *, exclusive: bool = False) -> None:
        """Write ``value`` as indented JSON, atomically."""
        data = json.dumps(value, indent=2, sort_keys=False, ensure_ascii=False).encode()
        self.write_bytes(key, data + b"\n", exclusive=exclusive)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"
