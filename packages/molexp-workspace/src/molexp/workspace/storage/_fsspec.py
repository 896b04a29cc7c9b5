"""A backend over any fsspec filesystem: the base that storage plugins build on."""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Sequence
from datetime import UTC, datetime
from glob import has_magic
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, cast

from molexp.workspace.storage._base import Storage, check_key, check_write_key

if TYPE_CHECKING:
    from fsspec import AbstractFileSystem


class _MoveOnClose(io.RawIOBase):
    """A write stream to a temporary key, moved over the target on a clean close and removed on
    an exception, so a failed or partial write never replaces the target."""

    def __init__(self, fs: AbstractFileSystem, target: str) -> None:
        super().__init__()
        head, _, name = target.rpartition("/")
        self._fs = fs
        self._target = target
        self._tmp = f"{head}/.{name}.{os.urandom(4).hex()}.tmp"
        self._stream = fs.open(self._tmp, "wb")

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        written = self._stream.write(data)
        return len(data) if written is None else int(written)

    def close(self) -> None:
        if not self.closed:
            self._stream.close()
            self._fs.mv(self._tmp, self._target)
        super().close()

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
        self._stream.close()
        with contextlib.suppress(FileNotFoundError):
            self._fs.rm_file(self._tmp)
        super().close()


class FsspecStorage(Storage):
    """Keys map to paths under ``root`` on an fsspec filesystem (``memory://`` is built in)."""

    scheme = "memory"

    def __init__(self, fs: AbstractFileSystem, root: str, url: str) -> None:
        self.fs = fs
        self.root = root.rstrip("/")
        super().__init__(url.rstrip("/"))

    @classmethod
    def from_url(cls, url: str, **options: Any) -> FsspecStorage:
        from fsspec.core import url_to_fs

        fs, root = url_to_fs(url, **options)
        return cls(fs, root, url)

    def _path(self, key: str) -> str:
        check_key(key)
        return f"{self.root}/{key}" if key else self.root

    def read_bytes(self, key: str) -> bytes:
        data: bytes = self.fs.cat_file(self._path(key))
        return data

    def write_bytes(
        self, key: str, data: bytes, *, exclusive: bool = False, durable: bool = True
    ) -> None:
        path = self._path(check_write_key(key))
        if exclusive and self.fs.exists(path):
            raise FileExistsError(self.url_for(key))
        self.fs.pipe_file(path, data)

    def exists(self, key: str) -> bool:
        return bool(self.fs.exists(self._path(key)))

    def is_dir(self, key: str) -> bool:
        return bool(self.fs.isdir(self._path(key)))

    def list(self, key: str) -> list[str]:
        try:
            entries = self.fs.ls(self._path(key), detail=False)
        except (FileNotFoundError, NotADirectoryError):
            return []
        base = self._path(key).rstrip("/") + "/"
        names = {str(e).rstrip("/").rsplit("/", 1)[-1] for e in entries if str(e).startswith(base)}
        return sorted(names)

    def makedirs(self, key: str) -> None:
        self.fs.makedirs(self._path(key), exist_ok=True)

    def remove(self, key: str, *, recursive: bool = False) -> None:
        path = self._path(key)
        if not self.fs.exists(path):
            return
        if self.fs.isdir(path):
            if recursive:
                self.fs.rm(path, recursive=True)
            else:
                self.fs.rmdir(path)
        else:
            self.fs.rm_file(path)

    def remove_many(self, keys: Sequence[str]) -> None:
        paths = [self._path(check_write_key(key)) for key in keys]
        # fsspec would expand a path with glob characters: those are removed one by one.
        literal = [path for path in paths if not has_magic(path)]
        if literal:
            try:
                self.fs.rm(literal)  # one batch request per 1000 keys on s3fs, gcsfs, adlfs
            except FileNotFoundError:  # some were gone already: fsspec refuses the whole batch
                for path in literal:
                    if self.fs.exists(path):
                        self.fs.rm_file(path)
        for key, path in zip(keys, paths, strict=True):
            if has_magic(path):
                self.remove(key)

    def put_file(self, src: Path, key: str) -> None:
        self.fs.put_file(str(src), self._path(check_write_key(key)))

    def open(self, key: str, mode: str = "rb") -> IO[bytes]:
        if mode not in ("rb", "wb", "ab"):
            raise ValueError(f"mode must be 'rb', 'wb' or 'ab', got {mode!r}")
        if mode != "rb":
            check_write_key(key)
        if mode == "wb":
            return cast(IO[bytes], _MoveOnClose(self.fs, self._path(key)))
        stream: IO[bytes] = self.fs.open(self._path(key), mode)
        return stream

    def size(self, key: str) -> int:
        return int(self.fs.size(self._path(key)))

    def modified(self, key: str) -> datetime | None:
        path = self._path(key)
        try:
            stamp = self.fs.modified(path)
        except NotImplementedError:
            return super().modified(key)
        except FileNotFoundError:
            if self.fs.isdir(path):
                return None  # directories carry no time on most fsspec filesystems
            raise
        if not isinstance(stamp, datetime):
            return None
        return stamp if stamp.tzinfo is not None else stamp.replace(tzinfo=UTC)
