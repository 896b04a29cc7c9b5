"""The exact words of S3 errors, for each failure as the libraries really raise it.

Faults are injected by :class:`molexp_storage_s3.testing.FaultProxy` between the store and the
session's moto server, so each message below comes from the exception chain botocore, aiohttp
and s3fs produce for that failure (a refused connection and a reset one both arrive as
``EndpointConnectionError``; a 503 arrives as ``OSError(EBUSY)``), not from a hand-made one.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from molexp.workspace import StorageError
from molexp_storage_s3 import S3Storage
from molexp_storage_s3.testing import FaultProxy, MotoServer, free_port

NOTHING_HALF_WRITTEN = (
    ": the write did not complete, and nothing half-written is visible (S3 shows an object "
    "whole or not at all)"
)


@pytest.fixture
def proxy(moto: MotoServer) -> Iterator[FaultProxy]:
    with FaultProxy(moto.endpoint) as proxy:
        yield proxy


def through(proxy: FaultProxy, url: str, **options: Any) -> S3Storage:
    """A store that reaches the server through the proxy (two attempts per request unless
    ``max_attempts`` says otherwise)."""
    return S3Storage.from_url(url, **{"endpoint_url": proxy.endpoint, "max_attempts": 2, **options})


def failure(action: Any) -> str:
    with pytest.raises(StorageError) as info:
        action()
    return str(info.value)


def refused(proxy: FaultProxy) -> int:
    return sum(1 for *_, outcome in proxy.seen if outcome != "forwarded")


def test_unreachable_endpoint(s3_url: str) -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    message = failure(lambda: S3Storage.from_url(s3_url, endpoint_url=endpoint, max_attempts=2))
    assert message == (
        f"cannot open {s3_url}: cannot connect to the S3 endpoint {endpoint}: check the storage "
        "option 'endpoint_url' (or AWS_ENDPOINT_URL) and that the server is up"
    )


def test_connection_reset_during_a_write(proxy: FaultProxy, s3_url: str) -> None:
    storage = through(proxy, s3_url)
    storage.write_bytes("f", b"old")
    proxy.fault = lambda method, path: ("reset",) if method == "PUT" else None
    message = failure(lambda: storage.write_bytes("f", b"new"))
    assert message == (
        f"S3 write of {s3_url}/f failed: the connection to the S3 endpoint {proxy.endpoint} was "
        "reset during the request (ConnectionResetError), on each of 2 attempts (storage option "
        f"'max_attempts', now 2){NOTHING_HALF_WRITTEN}"
    )
    # Each attempt is one or two connections: aiohttp retries a reset pooled one once.
    assert 2 <= refused(proxy) <= 4
    proxy.heal()
    assert storage.read_bytes("f") == b"old"


def test_connection_reset_during_a_multipart_upload(proxy: FaultProxy, s3_url: str) -> None:
    storage = through(proxy, s3_url, multipart_threshold=5 << 20, part_size=5 << 20)
    proxy.fault = lambda method, path: ("reset",) if "partNumber=2" in path else None
    message = failure(lambda: storage.write_bytes("big", os.urandom(11 << 20)))
    assert message == (
        f"S3 upload of {s3_url}/big failed: the connection to the S3 endpoint {proxy.endpoint} "
        "was reset during the request (ConnectionResetError), on each of 2 attempts (storage "
        f"option 'max_attempts', now 2){NOTHING_HALF_WRITTEN}"
    )
    # Each attempt is one or two connections: aiohttp retries a reset pooled one once.
    assert 2 <= refused(proxy) <= 4
    proxy.heal()
    assert not storage.exists("big")


def test_connection_reset_during_a_read(proxy: FaultProxy, s3_url: str) -> None:
    storage = through(proxy, s3_url, max_attempts=1)  # botocore's count; read_bytes tries twice
    storage.write_bytes("f", b"x")
    proxy.fault = lambda method, path: ("reset",) if method == "GET" else None
    message = failure(lambda: storage.read_bytes("f"))
    assert message == (
        f"S3 read of {s3_url}/f failed: the connection to the S3 endpoint {proxy.endpoint} was "
        "reset during the request (ConnectionResetError), on the only attempt (storage option "
        "'max_attempts', now 1)"
    )


@pytest.mark.parametrize(
    ("code", "method", "verb", "label"),
    [
        ("SlowDown", "PUT", "write", "503 SlowDown"),
        ("ServiceUnavailable", "GET", "read", "503 ServiceUnavailable"),
        ("ServiceUnavailable", "HEAD", "lookup", "503"),  # a HEAD answer has no body, no code
    ],
)
def test_a_server_that_stays_busy(
    proxy: FaultProxy, s3_url: str, code: str, method: str, verb: str, label: str
) -> None:
    storage = through(proxy, s3_url)
    storage.write_bytes("f", b"x")
    proxy.fault = lambda m, path: ("error", 503, code) if m == method else None
    actions = {
        "PUT": lambda: storage.write_bytes("f", b"y"),
        "GET": lambda: storage.read_bytes("f"),
        "HEAD": lambda: storage.size("f"),
    }
    message = failure(actions[method])
    attempts = refused(proxy)  # botocore's retries, and s3fs's own once more for SlowDown
    assert attempts >= 2
    assert message == (
        f"S3 {verb} of {s3_url}/f failed: the S3 endpoint {proxy.endpoint} kept answering "
        f"{label} (busy) after {attempts} attempts: try again later, or allow more retries "
        "(storage option 'max_attempts', now 2)"
    )


def test_read_timeout(proxy: FaultProxy, s3_url: str) -> None:
    storage = through(proxy, s3_url, read_timeout=0.5)
    storage.write_bytes("f", b"x")
    proxy.fault = lambda method, path: ("delay", 1.5)
    message = failure(lambda: storage.read_bytes("f"))
    assert message == (
        f"S3 read of {s3_url}/f failed: the S3 endpoint {proxy.endpoint} did not answer within "
        "0.5 s (storage option 'read_timeout')"
    )


def test_access_denied(proxy: FaultProxy, s3_url: str) -> None:
    storage = through(proxy, s3_url)
    proxy.fault = lambda method, path: ("error", 403, "AccessDenied")
    message = failure(lambda: storage.write_bytes("f", b"x"))
    assert message == (
        f"S3 write of {s3_url}/f failed: access denied by {proxy.endpoint} (injected by the test "
        "proxy): check the credentials and the bucket policy"
    )
    assert refused(proxy) == 1  # not retried: it will not change


def test_missing_credentials(
    s3_url: str, options: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    message = failure(lambda: S3Storage.from_url(s3_url, **options))
    assert message == (
        f"cannot open {s3_url}: no AWS credentials were found: set AWS_ACCESS_KEY_ID and "
        "AWS_SECRET_ACCESS_KEY, choose a profile (AWS_PROFILE or the storage option 'profile'), "
        "pass the storage options 'key' and 'secret', or use anon=True for a public bucket"
    )
