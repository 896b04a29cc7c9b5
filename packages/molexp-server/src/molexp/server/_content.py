"""Safe access to asset payloads: which bytes may be served, how, and with which content type.

Every payload is reached through a catalog record and the workspace's storage seam, never through
a path from the request. On a local store a payload that resolves (through symlinks) outside the
workspace root is refused. Content types come from a fixed allow-list: images (not SVG), JSON and
plain text may be shown in the browser; everything else, HTML and SVG included, is served as
``application/octet-stream`` with ``Content-Disposition: attachment`` and previewed, if at all, as
escaped source text.
"""

from __future__ import annotations

import json
import os
import posixpath
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from molexp.server._errors import AccessDenied, BadRequest
from molexp.workspace import InvalidNameError, StorageError, check_filename

if TYPE_CHECKING:
    from molexp.workspace import Asset
    from molexp.workspace.storage import Storage

PreviewKind = Literal["image", "json", "text", "source", "none"]

_IMAGES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
}
_TEXT = {
    ".txt", ".log", ".csv", ".tsv", ".md", ".rst", ".py", ".yaml", ".yml", ".toml", ".ini",
    ".cfg", ".out", ".err", ".dat", ".xyz", ".pdb", ".sdf", ".mol", ".smi", ".tex", ".sh",
    ".diff", ".patch", ".in", ".conf",
}  # fmt: skip
# Formats a browser would execute or render actively: downloads only, previewed as source text.
_MARKUP = {".html", ".htm", ".xhtml", ".svg", ".svgz", ".xml", ".js", ".mjs", ".css", ".xsl"}
TEXT_PLAIN = "text/plain; charset=utf-8"
OCTET = "application/octet-stream"
PREVIEW_BYTES = 64 * 1024
JSON_PRETTY_LIMIT = 512 * 1024


@dataclass(frozen=True)
class MediaPolicy:
    """How a payload is served: its content type, whether inline, and how it is previewed."""

    media_type: str
    inline: bool
    preview: PreviewKind


def media_policy(name: str, encoding: str | None = None) -> MediaPolicy:
    """The policy for a payload called ``name`` saved with ``encoding`` (``json``, ``text``...)."""
    ext = posixpath.splitext(name.lower())[1]
    if ext in _MARKUP:
        return MediaPolicy(OCTET, False, "source")
    if ext in _IMAGES:
        return MediaPolicy(_IMAGES[ext], True, "image")
    if ext == ".json" or encoding == "json":
        return MediaPolicy("application/json", True, "json")
    if ext in _TEXT or encoding == "text":
        return MediaPolicy(TEXT_PLAIN, True, "text")
    return MediaPolicy(OCTET, False, "none")


def checked_key(storage: Storage, key: str) -> str:
    """``key`` if it is a valid storage key whose bytes stay inside the workspace.

    On a local store the key's real path (symlinks resolved) must lie under the workspace's real
    root; :class:`AccessDenied` otherwise.
    """
    try:
        local = storage.local_path(key)
    except StorageError as exc:
        raise AccessDenied(f"refused: {exc}") from None
    if local is not None:
        root = storage.local_path("")
        root_real = os.path.realpath(root) if root is not None else "/"
        real = os.path.realpath(local)
        if real != root_real and not real.startswith(root_real.rstrip(os.sep) + os.sep):
            raise AccessDenied(
                f"refused: {key!r} resolves to a file outside the workspace (a symbolic link "
                "pointing out of it); the server only serves files inside the workspace"
            )
    return key


def payload_key(asset: Asset, file: str | None = None) -> str:
    """The checked key of an asset's payload, or of ``file`` (a relative path) inside a directory
    payload; each segment of ``file`` must be a safe file name."""
    key = asset.record.payload
    if file:
        segments = file.split("/")
        try:
            for segment in segments:
                check_filename(segment, what="file path segment")
        except InvalidNameError as exc:
            raise BadRequest(str(exc)) from None
        key = f"{key}/{'/'.join(segments)}"
    return checked_key(asset.workspace.storage, key)


@dataclass(frozen=True)
class FileEntry:
    """One file of a directory payload."""

    path: str
    size: int | None


def list_files(storage: Storage, key: str, limit: int = 5000) -> tuple[list[FileEntry], bool]:
    """The files under directory ``key`` (relative paths, sorted) and whether the list was cut."""
    found: list[FileEntry] = []
    pending = [""]
    while pending:
        rel = pending.pop()
        current = f"{key}/{rel}" if rel else key
        for child in storage.list(current):
            child_rel = f"{rel}/{child}" if rel else child
            child_key = f"{key}/{child_rel}"
            try:
                checked_key(storage, child_key)
            except AccessDenied:
                continue
            if storage.is_dir(child_key):
                pending.append(child_rel)
                continue
            try:
                size: int | None = storage.size(child_key)
            except (FileNotFoundError, OSError):
                size = None
            found.append(FileEntry(child_rel, size))
            if len(found) >= limit:
                return sorted(found, key=lambda e: e.path), True
    return sorted(found, key=lambda e: e.path), False


def read_head(storage: Storage, key: str, limit: int = PREVIEW_BYTES) -> bytes:
    """The first ``limit`` bytes of ``key``."""
    with storage.open(key, "rb") as stream:
        return stream.read(limit)


def looks_textual(data: bytes) -> bool:
    """Whether ``data`` reads as UTF-8 text (no NUL bytes; a cut last character is allowed)."""
    if b"\x00" in data:
        return False
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start >= len(data) - 3
    return True


@dataclass(frozen=True)
class Preview:
    """What a page shows of a payload: escaped text (pretty JSON), an image, or nothing."""

    kind: PreviewKind
    text: str | None = None
    truncated: bool = False
    note: str | None = None


def preview(storage: Storage, key: str, policy: MediaPolicy, size: int | None) -> Preview:
    """A preview of the payload at a checked ``key``; never executes or renders active content."""
    if policy.preview == "image":
        return Preview("image")
    limit = JSON_PRETTY_LIMIT if policy.preview == "json" else PREVIEW_BYTES
    try:
        head = read_head(storage, key, limit + 1)
    except (FileNotFoundError, IsADirectoryError):
        return Preview("none", note="the payload is missing")
    truncated = len(head) > limit
    head = head[:limit]
    if policy.preview == "json" and not truncated:
        try:
            text = json.dumps(json.loads(head), indent=2, ensure_ascii=False)
        except ValueError:
            text = head.decode("utf-8", "replace")
        cut = len(text) > PREVIEW_BYTES
        return Preview("json", text[:PREVIEW_BYTES], truncated=cut)
    if policy.preview in ("json", "text", "source") or looks_textual(head[:PREVIEW_BYTES]):
        head = head[:PREVIEW_BYTES]
        kind: PreviewKind = "source" if policy.preview == "source" else "text"
        return Preview(
            kind,
            head.decode("utf-8", "replace"),
            truncated=truncated or (size is not None and size > len(head)),
        )
    return Preview("none", note="binary content: download it to look at it")


@dataclass(frozen=True)
class Tail:
    """A piece of a growing log: the text, the offset to ask from next time, the log's size."""

    text: str
    offset: int
    size: int
    reset: bool = False


def tail_lines(storage: Storage, key: str, lines: int, max_bytes: int = 256 * 1024) -> Tail:
    """The last ``lines`` complete lines of ``key``, reading at most ``max_bytes`` from its end."""
    size = storage.size(key)
    start = max(0, size - max_bytes)
    with storage.open(key, "rb") as stream:
        if start:
            stream.seek(start)
        data = stream.read(size - start)
    end = start + len(data)
    if start and b"\n" in data:
        data = data[data.index(b"\n") + 1 :]  # the first line read is only the end of a line
    complete = data.rfind(b"\n") + 1  # a last line still being written is left for later
    chosen = data[:complete].decode("utf-8", "replace").splitlines()[-lines:] if lines > 0 else []
    text = "".join(f"{line}\n" for line in chosen)
    return Tail(text, end - (len(data) - complete), size)


def read_from(storage: Storage, key: str, offset: int, max_bytes: int = 256 * 1024) -> Tail:
    """The complete lines written to ``key`` from byte ``offset`` on (at most ``max_bytes``).

    An offset past the end (the log was replaced by a shorter one) starts over with a tail, with
    ``reset`` set.
    """
    size = storage.size(key)
    if offset > size:
        found = tail_lines(storage, key, 200)
        return Tail(found.text, found.offset, found.size, reset=True)
    if offset == size:
        return Tail("", offset, size)
    with storage.open(key, "rb") as stream:
        stream.seek(offset)
        data = stream.read(min(max_bytes, size - offset))
    consumed = data.rfind(b"\n") + 1
    if consumed == 0 and len(data) >= max_bytes:
        consumed = len(data)  # one line longer than max_bytes: hand it over in pieces
    return Tail(data[:consumed].decode("utf-8", "replace"), offset + consumed, size)
