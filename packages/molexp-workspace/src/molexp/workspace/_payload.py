"""Putting payloads into a store: streaming copies that hash what they write."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from molexp.workspace.storage import Storage

CHUNK = 1 << 20


def hash_bytes(data: bytes) -> str:
    """``sha256:<hex>`` of ``data``."""
    return f"sha256:{hashlib.sha256(data).hexdigest()}"


def _tree_hash(entries: list[tuple[str, str]]) -> str:
    digest = hashlib.sha256()
    for rel, file_hash in sorted(entries):
        digest.update(f"{rel}\0{file_hash}\n".encode())
    return f"sha256:{digest.hexdigest()}"


def _raise(error: OSError) -> None:
    raise error


def local_files(src: Path) -> list[tuple[Path, str]]:
    """Every file under directory ``src`` with its '/'-separated relative path, sorted.

    A directory that cannot be listed is an error, never silently left out (a move would
    otherwise delete what it did not import).
    """
    found: list[tuple[Path, str]] = []
    for dirpath, dirnames, filenames in os.walk(src, onerror=_raise):
        dirnames.sort()
        base = Path(dirpath)
        for filename in sorted(filenames):
            path = base / filename
            found.append((path, path.relative_to(src).as_posix()))
    return found


def hash_local(src: Path) -> tuple[int, str]:
    """Size and content hash of a local file or directory, without copying it."""
    if src.is_dir():
        entries = []
        total = 0
        for path, rel in local_files(src):
            size, file_hash = hash_local(path)
            total += size
            entries.append((rel, file_hash))
        return total, _tree_hash(entries)
    digest = hashlib.sha256()
    size = 0
    with open(src, "rb") as stream:
        while chunk := stream.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return size, f"sha256:{digest.hexdigest()}"


def copy_in(storage: Storage, src: Path, key: str) -> tuple[int, str]:
    """Copy a local file or directory to ``key``, hashing as it streams; returns size and hash."""
    if src.is_dir():
        entries = []
        total = 0
        storage.makedirs(key)
        for path, rel in local_files(src):
            size, file_hash = copy_in(storage, path, f"{key}/{rel}")
            total += size
            entries.append((rel, file_hash))
        return total, _tree_hash(entries)
    digest = hashlib.sha256()
    size = 0
    with open(src, "rb") as source, storage.open(key, "wb") as target:
        while chunk := source.read(CHUNK):
            digest.update(chunk)
            target.write(chunk)
            size += len(chunk)
    return size, f"sha256:{digest.hexdigest()}"
