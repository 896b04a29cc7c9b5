"""Building the s3fs filesystem of a store, and counting the requests it sends.

Each store gets its own s3fs instance and botocore session, so credentials are resolved afresh
for every workspace opened (a changed ``AWS_PROFILE`` or a rotated key is picked up) and request
counts belong to one store. The botocore data loader (the parsed service models, the slow part of
creating a client) is shared by all of them.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from molexp_storage_s3._options import S3Options

#: How often s3fs itself re-runs a failed call (around botocore's own bounded retries); the
#: second try covers a response body cut off while being read, which botocore does not retry.
OUTER_TRIES = 2

#: The counters of the :func:`count_sends` blocks around the current code (a context variable:
#: fsspec runs each request as a task on its event loop thread, in a copy of the caller's context).
_counters: ContextVar[tuple[list[int], ...]] = ContextVar("molexp_s3_sends", default=())

_loader_lock = threading.Lock()
_loader: Any = None


def _shared_loader(session: Any) -> Any:
    global _loader
    with _loader_lock:
        if _loader is None:
            _loader = session.get_component("data_loader")
        return _loader


@dataclass(frozen=True)
class Request:
    """One HTTP request sent to the endpoint (retries count separately).

    ``key`` is the object key; a listing has key "" and the listed prefix in ``list_prefix``.
    """

    method: str
    bucket: str
    key: str
    list_prefix: str | None = None


class RequestStats:
    """Counts every HTTP request a store sends (a botocore ``before-send`` hook).

    ``total`` and ``by_method`` are always kept; :meth:`track` also records each request's
    method and key while its block runs, to check what an operation cost.
    """

    def __init__(self, bucket: str) -> None:
        self.bucket = bucket
        self._lock = threading.Lock()
        self.total = 0
        self.by_method: Counter[str] = Counter()
        self._trackers: list[list[Request]] = []

    def on_send(self, request: Any = None, **_: Any) -> None:
        """The hook: called by botocore just before each request goes on the wire."""
        if request is None:
            return
        method = str(getattr(request, "method", "?"))
        for counter in _counters.get():
            counter[0] += 1
        with self._lock:
            self.total += 1
            self.by_method[method] += 1
            if self._trackers:
                entry = self._describe(method, str(getattr(request, "url", "")))
                for tracker in self._trackers:
                    tracker.append(entry)

    def _describe(self, method: str, url: str) -> Request:
        # Path style (http://host/bucket/key) or virtual-host style (http://bucket.host/key).
        parts = urlsplit(url)
        path = unquote(parts.path).lstrip("/")
        if path == self.bucket or path.startswith(f"{self.bucket}/"):
            path = path[len(self.bucket) + 1 :]
        query = parse_qs(parts.query)
        listed = query.get("prefix", [""])[0] if "list-type" in query else None
        return Request(method, self.bucket, path, listed)

    @contextmanager
    def track(self) -> Iterator[list[Request]]:
        """Record every request sent while the block runs into the yielded list."""
        found: list[Request] = []
        with self._lock:
            self._trackers.append(found)
        try:
            yield found
        finally:
            with self._lock:
                self._trackers.remove(found)


@contextmanager
def count_sends() -> Iterator[list[int]]:
    """Count the HTTP requests (retries included) that the code in the block sends itself, and
    not those of other threads: ``counter[0]`` is the number so far."""
    counter = [0]
    token = _counters.set((*_counters.get(), counter))
    try:
        yield counter
    finally:
        _counters.reset(token)


def make_filesystem(options: S3Options, stats: RequestStats) -> Any:
    """A new ``s3fs.S3FileSystem`` for ``options``, its client created and hooked to ``stats``.

    Creating the client sends no request; it resolves the credentials (and fails clearly here
    when a named profile does not exist).
    """
    import s3fs
    from aiobotocore.session import AioSession

    session = AioSession(profile=options.profile) if options.profile else AioSession()
    session.register_component("data_loader", _shared_loader(session))
    fs = s3fs.S3FileSystem(
        anon=options.anon,
        endpoint_url=options.endpoint_url,
        key=options.key,
        secret=options.secret,
        token=options.token,
        session=session,
        config_kwargs=options.config_kwargs(),
        client_kwargs=options.client_kwargs(),
        # Listings must always be fresh: other processes write the same bucket.
        use_listings_cache=False,
        skip_instance_cache=True,
        default_block_size=max(options.part_size, 5 << 20),
    )
    fs.retries = OUTER_TRIES
    fs.connect()
    fs.s3.meta.events.register("before-send.s3", stats.on_send)
    return fs
