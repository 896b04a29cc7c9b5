"""``S3Storage``: a molexp store rooted at ``s3://bucket/prefix``.

It is an :class:`~molexp.workspace.storage._fsspec.FsspecStorage` over s3fs whose hot operations
talk to S3 directly, so that each costs the fewest requests (``is_dir`` is one ``LIST`` with
``MaxKeys=1``, not a listing of the whole directory) and keeps S3's guarantees (a PUT replaces an
object atomically; ``If-None-Match: *`` creates one exclusively). S3 has no directories: a
"directory" exists while some key lies below it, and ``makedirs`` is a no-op.
"""

from __future__ import annotations

import asyncio
import errno
import io
import weakref
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from contextlib import AbstractContextManager, contextmanager, suppress
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, cast

from fsspec.asyn import sync

from molexp.workspace import StorageError
from molexp.workspace.storage import check_key
from molexp.workspace.storage._base import check_write_key
from molexp.workspace.storage._fsspec import FsspecStorage
from molexp_storage_s3._appender import LogAppender
from molexp_storage_s3._client import RequestStats, count_sends, make_filesystem
from molexp_storage_s3._errors import Context, error_code, error_names, guard
from molexp_storage_s3._options import S3Options, parse_s3_url
from molexp_storage_s3._writer import S3Writer

#: How many times an exclusive write is retried when S3 reports a concurrent conditional write
#: still in flight (HTTP 409 ConditionalRequestConflict); the outcome then decides the winner.
_CONFLICT_RETRIES = 3
_PRECONDITION_FAILED = ("PreconditionFailed", "412")
#: The most keys S3 deletes in one ``DeleteObjects`` request.
_DELETE_BATCH = 1000
#: How S3 API operations are named in error messages.
_VERBS = {
    "put_object": "write",
    "get_object": "read",
    "head_object": "lookup",
    "list_objects_v2": "listing",
    "delete_object": "delete",
    "delete_objects": "delete",
    "create_multipart_upload": "upload",
    "upload_part": "upload",
    "upload_part_copy": "append",
    "complete_multipart_upload": "upload",
}
#: The verbs of requests that write: their errors say whether anything half-written is visible.
_WRITES = {"write", "upload", "append"}


class _Reader(io.RawIOBase):
    """A read stream over an s3fs file that reports failures as clear ``StorageError`` too."""

    def __init__(self, stream: Any, guard: Callable[[], AbstractContextManager[None]]) -> None:
        super().__init__()
        self._stream = stream
        self._guard = guard

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        with self._guard():
            return int(self._stream.readinto(buffer))

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return int(self._stream.seek(offset, whence))

    def tell(self) -> int:
        return int(self._stream.tell())

    def close(self) -> None:
        if not self.closed:
            self._stream.close()
        super().close()


def _reopen(url: str, options: dict[str, Any]) -> S3Storage:
    return S3Storage.from_url(url, **options)


class S3Storage(FsspecStorage):
    """The store of an ``s3://bucket/prefix`` workspace (open it with :meth:`from_url`)."""

    scheme = "s3"
    supports_links = False

    def __init__(
        self,
        fs: Any,
        bucket: str,
        prefix: str,
        *,
        options: S3Options,
        requests: RequestStats,
    ) -> None:
        url = f"s3://{bucket}/{prefix}" if prefix else f"s3://{bucket}"
        super().__init__(fs, f"{bucket}/{prefix}" if prefix else bucket, url)
        self.bucket = bucket
        self.prefix = prefix
        self.options = options
        #: Every HTTP request this store sent (``requests.total``; ``requests.track()``).
        self.requests = requests
        self._appenders: weakref.WeakValueDictionary[str, LogAppender] = (
            weakref.WeakValueDictionary()
        )
        # The request counter of each submitted request, for the attempts an error reports.
        self._sent: weakref.WeakKeyDictionary[Future[Any], list[int]] = weakref.WeakKeyDictionary()

    @classmethod
    def from_url(cls, url: str, **options: Any) -> S3Storage:
        """Open ``s3://bucket[/prefix]``; see :class:`S3Options` for the accepted options.

        With ``check_bucket`` (the default) one ``HEAD`` request verifies the endpoint, the
        credentials and the bucket now, so that a mistake is reported here, naming the URL.
        """
        bucket, prefix = parse_s3_url(url)
        parsed = S3Options.parse(options)
        requests = RequestStats(bucket)
        endpoint = parsed.endpoint_url or "the default AWS endpoint"
        context = Context(endpoint, parsed.read_timeout, parsed.max_attempts)
        with guard(f"cannot open {url}", context):
            fs = make_filesystem(parsed, requests)
        storage = cls(fs, bucket, prefix, options=parsed, requests=requests)
        if parsed.check_bucket:
            storage.check()
        return storage

    def __reduce__(self) -> tuple[Any, ...]:
        return (_reopen, (self.url, asdict(self.options)))

    # -- plumbing shared with the write and append streams --------------------------------------

    @property
    def endpoint(self) -> str:
        """The endpoint URL requests go to."""
        try:
            return str(self.fs.s3.meta.endpoint_url)
        except Exception:
            return self.options.endpoint_url or "the default AWS endpoint"

    def object_key(self, key: str) -> str:
        """The S3 object key of store key ``key``."""
        check_key(key)
        return f"{self.prefix}/{key}".strip("/") if self.prefix else key

    def _context(self, *, writing: bool = False, sent: list[int] | None = None) -> Context:
        attempts = None if sent is None else (lambda: sent[0])
        return Context(
            self.endpoint, self.options.read_timeout, self.options.max_attempts, writing, attempts
        )

    @contextmanager
    def _guard(self, what: str, key: str, sent: list[int] | None = None) -> Iterator[None]:
        """Turn failures of the block into clear errors that count the requests it sent (or
        those counted in ``sent``, for a request submitted earlier)."""
        with count_sends() as counted:
            context = self._context(writing=what in _WRITES, sent=counted if sent is None else sent)
            with guard(f"S3 {what} of {self.url_for(key)} failed", context):
                yield

    def call(self, operation: str, key: str, **kwargs: Any) -> Any:
        """Send one S3 API request about ``key`` (bounded retries, timeouts, clear errors).

        A conditional write (``IfNoneMatch="*"``) that finds the object already there raises
        ``FileExistsError``.
        """
        with self._guard(_VERBS.get(operation, operation), key):
            try:
                return self.fs.call_s3(operation, Bucket=self.bucket, **kwargs)
            except OSError as exc:
                if "IfNoneMatch" in kwargs and error_code(exc) in _PRECONDITION_FAILED:
                    raise FileExistsError(self.url_for(key)) from None
                raise

    def submit(self, operation: str, **kwargs: Any) -> Future[Any]:
        """Start one S3 API request in the background; :meth:`wait` for its result."""
        coroutine = self.fs._call_s3(operation, Bucket=self.bucket, **kwargs)
        with count_sends() as sent:  # the request's task runs in a copy of this context
            future = asyncio.run_coroutine_threadsafe(coroutine, self.fs.loop)
        self._sent[future] = sent
        return future

    def wait(self, future: Future[Any], what: str, key: str) -> Any:
        """The result of a :meth:`submit`-ted request, failures turned into clear errors."""
        with self._guard(what, key, self._sent.get(future)):
            return future.result()

    def abort_upload(self, s3key: str, upload_id: str) -> None:
        """Abort a multipart upload, best effort (an abandoned one is invisible to readers)."""
        with suppress(Exception):
            self.fs.call_s3(
                "abort_multipart_upload", Bucket=self.bucket, Key=s3key, UploadId=upload_id
            )

    def head(self, key: str) -> dict[str, Any] | None:
        """The ``HEAD`` response of the object at ``key``, or None if there is none."""
        try:
            return cast(dict[str, Any], self.call("head_object", key, Key=self.object_key(key)))
        except FileNotFoundError:
            return None

    def check(self) -> None:
        """Verify that the endpoint answers, the credentials work and the bucket exists."""
        endpoint = self.endpoint
        headline = f"cannot open {self.url}"
        with count_sends() as sent, guard(headline, self._context(sent=sent)):
            try:
                self.fs.call_s3("head_bucket", Bucket=self.bucket)
            except FileNotFoundError:
                raise StorageError(
                    f"cannot open {self.url}: the bucket {self.bucket!r} does not exist at "
                    f"{endpoint} (or that endpoint is not an S3 server); create the bucket, or "
                    "check the URL and the storage option 'endpoint_url'"
                ) from None
            except PermissionError as exc:
                if self.options.anon:
                    return  # a public bucket may refuse HEAD to anonymous callers yet serve keys
                raise StorageError(
                    f"cannot open {self.url}: {endpoint} denied access to the bucket "
                    f"{self.bucket!r} ({exc}); check the credentials and the bucket policy"
                ) from None

    def _sync(self, key: str) -> None:
        """Upload a log this process is appending to before reading it (read your writes)."""
        appender = self._appenders.get(key)
        if appender is not None:
            appender.sync()

    # -- the Storage interface --------------------------------------------------------------------

    async def _get(self, s3key: str) -> bytes:
        response = await self.fs._call_s3("get_object", Bucket=self.bucket, Key=s3key)
        body = response["Body"]
        try:
            data: bytes = await body.read()
        finally:
            body.close()
        return data

    def read_bytes(self, key: str) -> bytes:
        s3key = self.object_key(key)
        self._sync(key)
        # One GET (s3fs's cat_file would first HEAD the key, and then LIST it when missing).
        # A body cut off while being read is fetched once more: botocore does not retry that.
        for attempt in (1, 2):
            try:
                with self._guard("read", key):
                    data: bytes = sync(self.fs.loop, self._get, s3key)
                    return data
            except StorageError as exc:
                cut_off = {"ClientPayloadError", "IncompleteRead"} & error_names(exc)
                if not cut_off or attempt == 2:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def write_bytes(
        self, key: str, data: bytes, *, exclusive: bool = False, durable: bool = True
    ) -> None:
        check_write_key(key)
        if exclusive and not self.options.conditional_writes:
            # Without conditional writes a check-then-write is the best S3 can do: two writers
            # racing within one round trip may both succeed (documented in docs/storage.md).
            if self.head(key) is not None:
                raise FileExistsError(self.url_for(key))
            exclusive = False
        for attempt in range(_CONFLICT_RETRIES + 1):
            try:
                with S3Writer(self, key, exclusive=exclusive) as stream:
                    stream.write(data)
                return
            except StorageError as exc:
                # S3 answers 409 while another conditional write of the key is in flight; a
                # retry then meets the winner's object (FileExistsError) or succeeds.
                if error_code(exc) != "ConditionalRequestConflict" or attempt == _CONFLICT_RETRIES:
                    raise

    def exists(self, key: str) -> bool:
        if key and self.head(key) is not None:
            return True
        return self.is_dir(key)

    def _dir_prefix(self, key: str) -> str:
        base = self.object_key(key)
        return f"{base}/" if base else ""

    def is_dir(self, key: str) -> bool:
        prefix = self._dir_prefix(key)
        if not prefix:
            return True  # the root of a store on a whole bucket
        listed = self.call("list_objects_v2", key, Prefix=prefix, MaxKeys=1)
        return int(listed.get("KeyCount", 0)) > 0

    def _pages(self, key: str, **kwargs: Any) -> Iterator[dict[str, Any]]:
        prefix = self._dir_prefix(key)
        token: dict[str, str] = {}
        while True:
            page = self.call("list_objects_v2", key, Prefix=prefix, **kwargs, **token)
            yield page
            if not page.get("IsTruncated"):
                return
            token = {"ContinuationToken": page["NextContinuationToken"]}

    def list(self, key: str) -> list[str]:
        prefix = self._dir_prefix(key)
        names: set[str] = set()
        for page in self._pages(key, Delimiter="/"):
            for common in page.get("CommonPrefixes", []):
                names.add(common["Prefix"][len(prefix) :].rstrip("/"))
            for item in page.get("Contents", []):
                names.add(item["Key"][len(prefix) :])
        names.discard("")  # a zero-byte "directory marker" object some tools create
        return sorted(names)

    def makedirs(self, key: str) -> None:
        check_key(key)  # S3 has no directories: a prefix exists once a key lies below it

    def remove(self, key: str, *, recursive: bool = False) -> None:
        if not self._dir_prefix(key):
            raise StorageError(
                f"refusing to remove {self.url}: it is the root of a store on a whole bucket; "
                "remove the workspace's keys with an S3 tool if that is really meant"
            )
        if self.is_dir(key):
            if not recursive:
                raise OSError(
                    errno.ENOTEMPTY, f"{self.url_for(key)} is a directory: pass recursive=True"
                )
            for page in self._pages(key):
                self._delete_objects(key, [item["Key"] for item in page.get("Contents", [])])
        s3key = self.object_key(key)
        if s3key:
            self.call("delete_object", key, Key=s3key)

    def remove_many(self, keys: Sequence[str]) -> None:
        """Remove the objects ``keys``: one ``DeleteObjects`` request per 1000 keys."""
        s3keys = [self.object_key(check_write_key(key)) for key in keys]
        for start in range(0, len(s3keys), _DELETE_BATCH):
            self._delete_objects("", s3keys[start : start + _DELETE_BATCH])

    def _delete_objects(self, key: str, s3keys: Sequence[str]) -> None:
        """Delete up to 1000 objects in one request (S3 ignores missing ones); ``key`` names
        the place in errors."""
        if not s3keys:
            return
        objects = [{"Key": s3key} for s3key in s3keys]
        result = self.call("delete_objects", key, Delete={"Objects": objects, "Quiet": True})
        if result.get("Errors"):
            first = result["Errors"][0]
            raise StorageError(
                f"S3 delete under {self.url_for(key)} failed for {len(result['Errors'])} "
                f"key(s), first {first.get('Key')!r}: {first.get('Code')} {first.get('Message')}"
            )

    def put_file(self, src: Path, key: str) -> None:
        path = self._path(check_write_key(key))
        with self._guard("upload", key):
            self.fs.put_file(str(src), path)

    def open(self, key: str, mode: str = "rb") -> IO[bytes]:
        if mode not in ("rb", "wb", "ab"):
            raise ValueError(f"mode must be 'rb', 'wb' or 'ab', got {mode!r}")
        if mode == "rb":
            path = self._path(key)
            self._sync(key)
            with self._guard("read", key):
                raw = _Reader(self.fs.open(path, "rb"), lambda: self._guard("read", key))
            return io.BufferedReader(raw, buffer_size=1 << 20)
        check_write_key(key)
        if mode == "wb":
            return cast(IO[bytes], S3Writer(self, key))
        appender = LogAppender(self, key)
        self._appenders[key] = appender
        return cast(IO[bytes], appender)

    def size(self, key: str) -> int:
        self._path(key)
        self._sync(key)
        head = self.head(key)
        if head is None:
            raise FileNotFoundError(self.url_for(key))
        return int(head["ContentLength"])

    def modified(self, key: str) -> datetime | None:
        """The object's ``LastModified`` (one ``HEAD``); None for a prefix, which has none."""
        head = self.head(key) if key else None
        if head is None:
            if self.is_dir(key):
                return None
            raise FileNotFoundError(self.url_for(key))
        stamp: datetime = head["LastModified"]
        return stamp if stamp.tzinfo is not None else stamp.replace(tzinfo=UTC)
