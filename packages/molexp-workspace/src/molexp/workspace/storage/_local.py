"""The built-in local-filesystem backend: plain ``os`` calls, atomic renames and fsync."""

from __future__ import annotations

import builtins
import contextlib
import io
import os
import re
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from molexp.workspace._errors import StorageError
from molexp.workspace.storage._base import Storage, check_key, check_write_key


def _tmp_path(path: str) -> str:
    head, _, name = path.rpartition("/")
    return f"{head}/.{name}.{os.getpid()}.{os.urandom(4).hex()}.tmp"


def _makedirs(path: str, *, parents: bool = True) -> None:
    """``os.makedirs(path, exist_ok=True)`` with one ``mkdir`` per missing level and nothing
    else (``os.makedirs`` first asks whether each parent exists, a system call per level)."""
    try:
        os.mkdir(path)
    except FileNotFoundError:
        parent = os.path.dirname(path)
        if not parents or parent == path:
            raise
        _makedirs(parent)
        _makedirs(path, parents=False)  # once: a parent removed meanwhile is an error, no loop
    except FileExistsError:
        if not os.path.isdir(path):
            raise


def _open_new(path: str) -> int:
    """Create ``path`` exclusively, creating its parent directories if they are missing."""
    try:
        return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileNotFoundError:
        _makedirs(os.path.dirname(path))
        return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)


class _AtomicFile(io.FileIO):
    """A write stream to a temporary file that replaces the target only when closed cleanly."""

    def __init__(self, target: str, *, fsync: bool) -> None:
        self._target = target
        self._tmp = _tmp_path(target)
        self._fsync = fsync
        super().__init__(_open_new(self._tmp), "wb", closefd=True)

    def close(self) -> None:
        if self.closed:
            return
        if self._fsync:
            os.fsync(self.fileno())
        super().close()
        os.replace(self._tmp, self._target)

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self._abort()

    def __del__(self) -> None:
        # A stream dropped without close() was never finished: it must not replace the target.
        if not self.closed:
            self._abort()

    def _abort(self) -> None:
        super().close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._tmp)


class LocalStorage(Storage):
    """Files under a local directory. Writes go to a temporary file that is fsynced and renamed.

    ``fsync=False`` keeps writes atomic (a killed process never leaves a torn file) but gives up
    durability across a power loss, for speed.
    """

    scheme = "file"
    supports_links = True

    def __init__(self, root: str | os.PathLike[str], *, fsync: bool = True) -> None:
        self.root = Path(root).expanduser().resolve()
        self._prefix = self.root.as_posix().rstrip("/")
        self.fsync = fsync
        super().__init__(self._prefix or "/")

    @classmethod
    def from_url(cls, url: str, **options: Any) -> LocalStorage:
        unknown = set(options) - {"fsync"}
        if unknown:
            raise StorageError(
                f"unknown storage option(s) {', '.join(sorted(unknown))} for local workspaces; "
                "accepted: fsync"
            )
        return cls(re.sub(r"^(?:file|local)://", "", url), **options)

    def _path(self, key: str) -> str:
        check_key(key)
        return f"{self._prefix}/{key}" if key else self._prefix or "/"

    def local_path(self, key: str) -> Path:
        return Path(self._path(key))

    def url_for(self, key: str) -> str:
        return self._path(key)

    def read_bytes(self, key: str) -> bytes:
        with open(self._path(key), "rb") as f:
            return f.read()

    def write_bytes(
        self, key: str, data: bytes, *, exclusive: bool = False, durable: bool = True
    ) -> None:
        path = self._path(check_write_key(key))
        tmp = _tmp_path(path)
        fd = _open_new(tmp)
        try:
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                if self.fsync and durable:
                    os.fsync(fd)
            finally:
                os.close(fd)
            if exclusive:
                os.link(tmp, path)
                os.unlink(tmp)
            else:
                os.replace(tmp, path)
        except BaseException:
            if os.path.lexists(tmp):
                os.unlink(tmp)
            raise

    def exists(self, key: str) -> bool:
        return os.path.exists(self._path(key))

    def is_dir(self, key: str) -> bool:
        return os.path.isdir(self._path(key))

    def list(self, key: str) -> list[str]:
        try:
            return sorted(os.listdir(self._path(key)))
        except (FileNotFoundError, NotADirectoryError):
            return []

    def list_entries(self, key: str) -> builtins.list[tuple[str, bool]]:
        try:
            with os.scandir(self._path(key)) as entries:
                found = [(e.name, e.is_dir(follow_symlinks=False)) for e in entries]
        except (FileNotFoundError, NotADirectoryError):
            return []
        return sorted(found)

    def makedirs(self, key: str) -> None:
        _makedirs(self._path(key))

    def remove(self, key: str, *, recursive: bool = False) -> None:
        path = self._path(key)
        try:
            os.unlink(path)
        except FileNotFoundError:
            return
        except (IsADirectoryError, PermissionError):
            if not os.path.isdir(path) or os.path.islink(path):
                raise
            if recursive:
                shutil.rmtree(path)
            else:
                os.rmdir(path)

    def put_file(self, src: Path, key: str) -> None:
        with open(src, "rb") as source, self.open(key, "wb") as target:
            shutil.copyfileobj(source, target, 1 << 20)

    def open(self, key: str, mode: str = "rb") -> IO[bytes]:
        if mode not in ("rb", "wb", "ab"):
            raise ValueError(f"mode must be 'rb', 'wb' or 'ab', got {mode!r}")
        path = self._path(key if mode == "rb" else check_write_key(key))
        if mode == "rb":
            return open(path, "rb")
        if mode == "wb":
            return _AtomicFile(path, fsync=self.fsync)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        return open(path, "ab")

    def size(self, key: str) -> int:
        return os.stat(self._path(key)).st_size

    def modified(self, key: str) -> datetime:
        """The modification time of ``key`` itself (of a symlink, not of its target)."""
        return datetime.fromtimestamp(os.lstat(self._path(key)).st_mtime, UTC)
