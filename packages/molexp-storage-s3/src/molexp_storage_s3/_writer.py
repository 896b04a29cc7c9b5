"""``open(key, "wb")`` on S3: a write stream that appears whole on a clean close, or not at all.

Small payloads (below ``multipart_threshold``) are buffered and sent as one PUT when the stream
closes. Larger ones become a multipart upload whose parts are sent in the background while the
caller keeps writing (at most ``MAX_IN_FLIGHT`` parts in memory at once); closing completes the
upload, and an exception inside ``with`` (or a stream dropped without ``close()``) aborts it. In
both cases the object is created by one final request, so readers never see a partial file and a
failed write leaves the previous content in place.
"""

from __future__ import annotations

import contextlib
import io
import sys
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from molexp_storage_s3._storage import S3Storage

#: Parts uploaded concurrently (and so held in memory) by one stream.
MAX_IN_FLIGHT = 4
#: S3 allows at most this many parts, so the part size doubles every ``_GROW_EVERY`` parts.
_GROW_EVERY = 1000
_MAX_PART = 5 << 30


class S3Writer(io.RawIOBase):
    """A write-only stream to one S3 object; see the module docstring."""

    def __init__(self, storage: S3Storage, key: str, *, exclusive: bool = False) -> None:
        super().__init__()
        # Exclusive: the final request carries If-None-Match: * and fails if the key exists.
        self._condition = {"IfNoneMatch": "*"} if exclusive else {}
        self._storage = storage
        self._key = key
        self._s3key = storage.object_key(key)
        options = storage.options
        self._threshold = options.multipart_threshold
        self._part_size = options.part_size
        # What is written and not yet sent, as the caller's own bytes objects (no copy until a
        # part or the whole object is cut from them).
        self._chunks: list[bytes] = []
        self._buffered = 0
        self._upload_id: str | None = None
        self._parts: list[Future[Any]] = []
        self._finished = False

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        if self.closed:
            raise ValueError("write to a closed S3 stream")
        chunk = data if type(data) is bytes else bytes(memoryview(data).cast("B"))
        if chunk:
            self._chunks.append(chunk)
            self._buffered += len(chunk)
        if self._upload_id is not None or self._buffered >= self._threshold:
            while self._buffered >= self._next_part_size():
                self._send_part(final=False)
        return len(chunk)

    def _take(self, size: int) -> bytes:
        """Remove and return the first ``size`` buffered bytes (all of them if fewer)."""
        joined = self._chunks[0] if len(self._chunks) == 1 else b"".join(self._chunks)
        body, rest = (joined, b"") if size >= len(joined) else (joined[:size], joined[size:])
        self._chunks = [rest] if rest else []
        self._buffered = len(rest)
        return body

    def _next_part_size(self) -> int:
        grown = self._part_size << (len(self._parts) // _GROW_EVERY)
        return min(grown, _MAX_PART)

    def _send_part(self, *, final: bool) -> None:
        storage = self._storage
        if self._upload_id is None:
            created = storage.call("create_multipart_upload", self._key, Key=self._s3key)
            self._upload_id = str(created["UploadId"])
        body = self._take(self._buffered if final else self._next_part_size())
        # Wait for the oldest part when the window is full: bounded memory, steady throughput.
        if len(self._parts) >= MAX_IN_FLIGHT:
            storage.wait(self._parts[-MAX_IN_FLIGHT], "upload", self._key)
        self._parts.append(
            storage.submit(
                "upload_part",
                Key=self._s3key,
                UploadId=self._upload_id,
                PartNumber=len(self._parts) + 1,
                Body=body,
            )
        )

    def close(self) -> None:
        """Commit: one PUT, or complete the multipart upload (aborting it if that fails)."""
        if self.closed:
            return
        try:
            self._commit()
        except BaseException:
            self.discard()
            raise
        finally:
            super().close()

    def _commit(self) -> None:
        storage = self._storage
        if self._upload_id is None:
            body = self._take(self._buffered)
            storage.call("put_object", self._key, Key=self._s3key, Body=body, **self._condition)
            self._finished = True
            return
        if self._buffered or not self._parts:
            self._send_part(final=True)
        parts = [
            {"PartNumber": number, "ETag": storage.wait(future, "upload", self._key)["ETag"]}
            for number, future in enumerate(self._parts, start=1)
        ]
        storage.call(
            "complete_multipart_upload",
            self._key,
            Key=self._s3key,
            UploadId=self._upload_id,
            MultipartUpload={"Parts": parts},
            **self._condition,
        )
        self._finished = True

    def discard(self) -> None:
        """Drop what was written: abort the multipart upload, leave the target untouched."""
        if self._finished:
            return
        self._finished = True
        self._chunks, self._buffered = [], 0
        upload_id, self._upload_id = self._upload_id, None
        if upload_id is not None:
            # Let parts already on the wire finish first: S3 may keep a part that lands after
            # the abort, which would then never be cleaned up.
            for future in self._parts:
                if not future.cancel():
                    with contextlib.suppress(Exception):
                        future.result()
            self._storage.abort_upload(self._s3key, upload_id)
        if not self.closed:
            super().close()

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.discard()

    def __del__(self) -> None:
        # Never commit a stream that was dropped without close(): it may be incomplete. (At
        # interpreter shutdown no request is sent; an unfinished upload is invisible anyway.)
        if sys.is_finalizing():
            return
        with contextlib.suppress(Exception):
            self.discard()
