"""``open(key, "ab")`` on S3, which has no append: buffered, chunked log streaming.

Appended bytes are buffered locally and uploaded when ``log_flush_bytes`` are pending, when the
oldest pending byte is ``log_flush_seconds`` old (a background thread sees to idle logs), and on
close. So a run that logs 1,000 lines in a few seconds sends its log in one request, not 1,000.

Every upload rewrites the *whole* object in one request, so a reader (another process, the CLI)
always sees a complete log as of the last upload, and a run killed midway leaves a readable log
that lacks at most the lines of the last interval:

* while the log is smaller than 5 MiB, the stream keeps a copy of it and each upload is one PUT
  of the full content (at most 5 MiB);
* from 5 MiB on, each upload is a multipart upload composed on the server: the current object is
  copied as the first part(s) (``UploadPartCopy``, no bytes re-sent) and the new bytes are the
  last part. An upload interrupted halfway leaves the previous object in place.

Only one writer may append to a key at a time (the run that owns it), as on every molexp store.
"""

from __future__ import annotations

import atexit
import contextlib
import io
import os
import sys
import threading
import time
import weakref
from pathlib import Path
from typing import TYPE_CHECKING, Any

from molexp.workspace import StorageError
from molexp_storage_s3._options import MIN_PART

if TYPE_CHECKING:
    from molexp_storage_s3._storage import S3Storage

#: Below this size a log is rewritten whole; from it on, composed from a server-side copy.
COMPOSE_FROM = MIN_PART
#: The largest range one UploadPartCopy may copy.
_MAX_COPY = 5 << 30


class LogAppender(io.RawIOBase):
    """An append stream to one S3 object; see the module docstring."""

    def __init__(self, storage: S3Storage, key: str) -> None:
        super().__init__()
        self._storage = storage
        self._key = key
        self._s3key = storage.object_key(key)
        self.flush_bytes = storage.options.log_flush_bytes
        self.flush_seconds = storage.options.log_flush_seconds
        self._lock = threading.RLock()
        self._pending = bytearray()
        self._pending_since: float | None = None
        head = storage.head(key)
        self._exists = head is not None
        self._size = int(head["ContentLength"]) if head is not None else 0
        # The whole current content while it is small enough to be rewritten in one PUT.
        self._copy: bytearray | None = None
        if self._size < COMPOSE_FROM:
            self._copy = bytearray(storage.read_bytes(key) if self._size else b"")
            self._size = len(self._copy)
        _flusher.add(self)

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        """Buffer ``data``; upload at once if ``log_flush_bytes`` are now pending."""
        view = memoryview(data).cast("B")
        with self._lock:
            if self.closed:
                raise ValueError("write to a closed S3 log stream")
            self._pending += view
            if self._pending_since is None:
                self._pending_since = time.monotonic()
            if len(self._pending) >= self.flush_bytes:
                self._upload()
        return len(view)

    def flush(self) -> None:
        """Upload only when a flush threshold is reached (callers flush after every line)."""
        with self._lock:
            if not self.closed and self.due():
                self._upload()

    def due(self) -> bool:
        """Whether pending bytes have reached the size or age that calls for an upload."""
        if not self._pending or self._pending_since is None:
            return False
        return (
            len(self._pending) >= self.flush_bytes
            or time.monotonic() - self._pending_since >= self.flush_seconds
        )

    def sync(self) -> None:
        """Upload whatever is pending now (before this process reads the log back)."""
        with self._lock:
            if self._pending and not self.closed:
                self._upload()

    def close(self) -> None:
        """Upload what is pending (creating the object if it does not exist yet) and close.

        If that upload fails, the unsent bytes are kept in a local file (see :func:`spill_path`)
        that the error names, so a run that loses its endpoint loses no log line.
        """
        with self._lock:
            if self.closed:
                return
            try:
                if self._pending or not self._exists:
                    self._upload()
            except StorageError as exc:
                if not self._pending:
                    raise
                spill = spill_path(self._storage.bucket, self._s3key)
                spill.parent.mkdir(parents=True, exist_ok=True)
                with spill.open("ab") as local:
                    local.write(self._pending)
                unsent = len(self._pending)
                self._pending.clear()
                raise StorageError(
                    f"{exc}; the {unsent} unsent bytes of this log are kept in {spill}"
                ) from exc
            finally:
                _flusher.discard(self)
                self._pending_since = None  # nothing is due any more: IOBase.close() flushes
                super().close()

    def _upload(self) -> None:
        storage = self._storage
        data = bytes(self._pending)
        if self._copy is not None:
            content = bytes(self._copy) + data
            storage.call("put_object", self._key, Key=self._s3key, Body=content)
            self._copy = bytearray(content) if len(content) < COMPOSE_FROM else None
        else:
            self._compose(data)
        self._size += len(data)
        self._exists = True
        del self._pending[: len(data)]
        self._pending_since = None if not self._pending else time.monotonic()

    def _compose(self, data: bytes) -> None:
        """Append ``data`` on the server: copy the current object, add ``data`` as last part."""
        storage = self._storage
        created = storage.call("create_multipart_upload", self._key, Key=self._s3key)
        upload_id = str(created["UploadId"])
        try:
            parts: list[dict[str, Any]] = []
            count = -(-self._size // _MAX_COPY)
            step = -(-self._size // count)
            source = {"Bucket": storage.bucket, "Key": self._s3key}
            for start in range(0, self._size, step):
                end = min(start + step, self._size) - 1
                copied = storage.call(
                    "upload_part_copy",
                    self._key,
                    Key=self._s3key,
                    UploadId=upload_id,
                    PartNumber=len(parts) + 1,
                    CopySource=source,
                    CopySourceRange=f"bytes={start}-{end}",
                )
                parts.append(
                    {"PartNumber": len(parts) + 1, "ETag": copied["CopyPartResult"]["ETag"]}
                )
            if data:
                sent = storage.call(
                    "upload_part",
                    self._key,
                    Key=self._s3key,
                    UploadId=upload_id,
                    PartNumber=len(parts) + 1,
                    Body=data,
                )
                parts.append({"PartNumber": len(parts) + 1, "ETag": sent["ETag"]})
            storage.call(
                "complete_multipart_upload",
                self._key,
                Key=self._s3key,
                UploadId=upload_id,
                MultipartUpload={"Parts": parts},
            )
        except BaseException:
            storage.abort_upload(self._s3key, upload_id)
            raise

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        # A log keeps what was written even when the block failed.
        self.close()

    def __del__(self) -> None:
        # At interpreter shutdown the I/O thread may already be gone: a request would wait
        # forever. Pending lines were uploaded by the exit hook (_Flusher.sync_all) instead.
        if sys.is_finalizing():
            return
        with contextlib.suppress(Exception):
            self.close()


def spill_path(bucket: str, s3key: str) -> Path:
    """Where the unsent end of a log is kept when its final upload fails: under the molexp
    cache directory (``MOLEXP_CACHE_DIR``, else ``$XDG_CACHE_HOME/molexp`` or
    ``~/.cache/molexp``), in ``s3-unsent/<bucket>/<key>``."""
    base = os.environ.get("MOLEXP_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "molexp"
    )
    return Path(base) / "s3-unsent" / bucket / s3key


class _Flusher:
    """One daemon thread per process that uploads the pending lines of idle log streams."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._streams: weakref.WeakSet[LogAppender] = weakref.WeakSet()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()
        self._exit_hook = False

    def sync_all(self) -> None:
        """Upload the pending lines of every open log (at interpreter exit, while the I/O thread
        still runs): a script that never closes its logs loses no line."""
        with self._lock:
            streams = list(self._streams)
        for stream in streams:
            with contextlib.suppress(Exception):
                stream.sync()

    def add(self, stream: LogAppender) -> None:
        with self._lock:
            if self._pid != os.getpid():  # forked: the parent's thread does not exist here
                self._pid, self._thread = os.getpid(), None
            if not self._exit_hook:
                atexit.register(self.sync_all)
                self._exit_hook = True
            self._streams.add(stream)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._loop, name="molexp-s3-log-flusher", daemon=True
                )
                self._thread.start()

    def discard(self, stream: LogAppender) -> None:
        with self._lock:
            self._streams.discard(stream)

    def _loop(self) -> None:
        while True:
            with self._lock:
                streams = list(self._streams)
                if not streams:
                    self._thread = None
                    return
            interval = min(s.flush_seconds for s in streams) / 4
            del streams
            self._wake.wait(min(max(interval, 0.05), 1.0))
            with self._lock:
                streams = list(self._streams)
            for stream in streams:
                # A failed upload keeps the bytes pending: the next flush or close retries,
                # and close() reports the error to the writer.
                with contextlib.suppress(Exception):
                    stream.flush()


_flusher = _Flusher()
