"""An S3 server that answers errors, answers slowly, or cuts connections during a run (issue 8).

The workspace talks to moto's S3 server (molexp_storage_s3.testing.MotoServer, as the plugin's
own tests do) through a small HTTP proxy in this process that injects faults into chosen
requests. What packages/molexp-storage-s3/tests already cover is not repeated here: a stopped
server during an artifact save (log spill, no pending row), a wrong endpoint, a missing bucket,
missing credentials, a frozen server on a read. Here:

* every request answered ``503 SlowDown`` while a run sets a result: bounded retries (counted at
  the proxy), a clear error naming the endpoint, ``run.json`` in the bucket still the last whole
  version; once the process is gone, the run is recognisably dead and a new attempt works;
* transient ``500`` errors: retried, invisible to the run;
* a slow server: waited for within ``read_timeout``, a clear error past it, nothing torn;
* the connection cut during a multipart upload: a clear error, no object, no pending catalog
  row, no multipart upload left open;
* the catalog journal unwritable while an artifact is saved: a clear error, and the artifact's
  record and index row agree.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

import molexp as me
from molexp.workspace import AssetKind, Liveness, RunStatus, StorageError
from molexp_storage_s3.testing import MotoServer, fake_credentials

BUCKET = "reliability"

#: A fault for one request: None (forward it), ("error", status, code), ("delay", seconds) or
#: ("reset",) (close the connection without an answer).
Fault = tuple[Any, ...] | None
_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _ProxyServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base's name
        pass

    def _body(self) -> bytes | None:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline().strip():
                        pass  # trailers
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = self.headers.get("Content-Length")
        return self.rfile.read(int(length)) if length else None

    def _handle(self) -> None:
        proxy = self.server.proxy
        body = self._body()
        fault = proxy.decide(self.command, self.path)
        if fault is not None and fault[0] == "reset":
            self.close_connection = True
            self.connection.setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
            )
            self.connection.close()
            return
        if fault is not None and fault[0] == "error":
            _, status, code = fault
            payload = (
                f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{code}</Code>'
                f"<Message>injected by the test proxy</Message><RequestId>t</RequestId></Error>"
            ).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/xml")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
            return
        if fault is not None and fault[0] == "delay":
            time.sleep(fault[1])
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP}
        if body is not None:
            headers["Content-Length"] = str(len(body))
        upstream = http.client.HTTPConnection(proxy.host, proxy.port, timeout=60)
        try:
            upstream.request(self.command, self.path, body=body, headers=headers)
            response = upstream.getresponse()
            data = response.read()
        finally:
            upstream.close()
        self.send_response(response.status, response.reason)
        for name, value in response.getheaders():
            if name.lower() in _HOP or (
                name.lower() == "content-length" and self.command != "HEAD"
            ):
                continue
            self.send_header(name, value)
        if self.command != "HEAD":
            self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _handle  # noqa: N815 - http.server's names


class _ProxyServer(ThreadingHTTPServer):
    daemon_threads = True
    proxy: FaultProxy


class FaultProxy:
    """An HTTP proxy to ``upstream`` that applies ``fault(method, path)`` to each request."""

    def __init__(self, upstream: str) -> None:
        parts = urlsplit(upstream)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.fault: Callable[[str, str], Fault] = lambda method, path: None
        self.seen: list[tuple[str, str, str]] = []
        self._lock = threading.Lock()
        self._server = _ProxyServer(("127.0.0.1", 0), _Handler)
        self._server.proxy = self
        self.endpoint = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def decide(self, method: str, path: str) -> Fault:
        with self._lock:
            fault = self.fault(method, path)
            self.seen.append((method, path, "forwarded" if fault is None else str(fault[0])))
            return fault

    def heal(self) -> None:
        self.fault = lambda method, path: None

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture(scope="module")
def moto() -> Iterator[MotoServer]:
    with fake_credentials(), MotoServer() as server:
        server.create_bucket(BUCKET)
        yield server


@pytest.fixture
def proxy(moto: MotoServer) -> Iterator[FaultProxy]:
    proxy = FaultProxy(moto.endpoint)
    yield proxy
    proxy.close()


@pytest.fixture
def url(moto: MotoServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh workspace prefix; catalog caches in this test's directory."""
    monkeypatch.setenv("MOLEXP_CACHE_DIR", str(tmp_path / "cache"))
    return f"s3://{BUCKET}/{uuid.uuid4().hex[:12]}"


def direct(url: str, moto: MotoServer, tmp_path: Path) -> me.Workspace:
    """The workspace as a healthy client sees it: straight to the server, a fresh cache."""
    os.environ["MOLEXP_CACHE_DIR"] = str(tmp_path / f"cache-{uuid.uuid4().hex[:6]}")
    return me.Workspace.load(url, storage_options={"endpoint_url": moto.endpoint})


def fail_all(status: int = 503, code: str = "SlowDown") -> Callable[[str, str], Fault]:
    return lambda method, path: ("error", status, code)


# -- errors: bounded retries, a clear error, the last whole record ------------------------------

CHILD = textwrap.dedent(
    """
    import json, sys, time
    import molexp as me
    from molexp.workspace import StorageError

    url, endpoint = sys.argv[1], sys.argv[2]
    options = {"endpoint_url": endpoint, "max_attempts": 3, "connect_timeout": 1,
               "read_timeout": 2}
    ws = me.Workspace(url, storage_options=options)
    run = ws.Project("p").Experiment("e").Run(id="r")
    with run.start(heartbeat_interval=3600) as ctx:
        ctx.set_result("a", 1)
        ctx.artifact.save("before.json", {"x": 1})
        print("ready", flush=True)
        sys.stdin.readline()
        started = time.monotonic()
        try:
            ctx.set_result("b", 2)
        except StorageError as exc:
            print(json.dumps({"error": str(exc), "seconds": time.monotonic() - started}),
                  flush=True)
            sys.stdin.readline()  # the parent counts the requests, then lets us die
            raise
        print(json.dumps({"error": None}), flush=True)
    """
)


def test_server_errors_mid_run_are_retried_a_bounded_number_of_times(
    url: str, proxy: FaultProxy, moto: MotoServer, tmp_path: Path
) -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, url, proxy.endpoint],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ),
    )
    try:
        assert child.stdout is not None and child.stdin is not None
        assert child.stdout.readline().strip() == "ready", child.stderr and child.stderr.read()
        before = len(proxy.seen)
        proxy.fault = fail_all()
        child.stdin.write("go\n")
        child.stdin.flush()
        outcome = json.loads(child.stdout.readline())
        tried = proxy.seen[before:]
        child.stdin.write("die\n")
        child.stdin.flush()
        child.wait(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        for stream in (child.stdin, child.stdout, child.stderr):
            if stream is not None:
                stream.close()
    proxy.heal()

    message = outcome["error"]
    assert message is not None
    assert f"S3 write of {url}/projects/p/experiments/e/runs/run-r/run.json failed" in message
    assert proxy.endpoint in message
    assert outcome["seconds"] < 30
    # One PUT of run.json: botocore's 3 attempts, twice at most (s3fs re-calls once).
    assert all(method == "PUT" and path.endswith("/run.json") for method, path, _ in tried)
    assert 3 <= len(tried) <= 6, tried
    assert child.returncode != 0
    print(
        f"\n503 on every request: {len(tried)} PUTs of run.json, then a StorageError after "
        f"{outcome['seconds']:.1f} s"
    )

    # In the bucket: the last whole run.json; the process is gone, so the run is dead.
    ws = direct(url, moto, tmp_path)
    run = ws.project("p").experiment("e").get_run("r")
    assert run.results == {"a": 1}
    assert run.status == RunStatus.RUNNING and run.liveness() == Liveness.DEAD
    assert run.mark_failed_if_dead()
    with run.start() as ctx:
        ctx.set_result("b", 2)
    assert run.reload().status == RunStatus.SUCCEEDED
    assert run.results == {"a": 1, "b": 2}
    (before_json,) = ws.catalog.query_assets(kind=AssetKind.ARTIFACT, run=run)
    assert before_json.load() == {"x": 1}


def test_transient_errors_are_retried_without_the_run_noticing(
    url: str, proxy: FaultProxy, moto: MotoServer, tmp_path: Path
) -> None:
    ws = me.Workspace(url, storage_options={"endpoint_url": proxy.endpoint, "max_attempts": 4})
    run = ws.Project("p").Experiment("e").Run(id="r")
    failures = {"left": 0}

    def two_then_fine(method: str, path: str) -> Fault:
        if failures["left"] > 0:
            failures["left"] -= 1
            return ("error", 500, "InternalError")
        return None

    proxy.fault = two_then_fine
    with run.start(heartbeat_interval=3600) as ctx:
        for i in range(2):
            failures["left"] = 2
            ctx.set_result(f"r{i}", i)
            failures["left"] = 2
            ctx.artifact.save(f"a{i}.json", {"i": i})
    assert sum(1 for *_, outcome in proxy.seen if outcome == "error") == 8
    fresh = direct(url, moto, tmp_path)
    run = fresh.project("p").experiment("e").get_run("r")
    assert run.status == RunStatus.SUCCEEDED
    assert run.results == {"r0": 0, "r1": 1}
    loaded = {a.name: a.load() for a in fresh.catalog.query_assets(kind="artifact", run=run)}
    assert loaded == {f"a{i}.json": {"i": i} for i in range(2)}


# -- a slow server ------------------------------------------------------------------------------


def test_a_slow_server_is_waited_for_within_the_timeout_then_a_clear_error(
    url: str, proxy: FaultProxy, moto: MotoServer, tmp_path: Path
) -> None:
    options = {"endpoint_url": proxy.endpoint, "max_attempts": 2, "read_timeout": 1.5}
    ws = me.Workspace(url, storage_options=options)
    run = ws.Project("p").Experiment("e").Run(id="r")
    with run.start(heartbeat_interval=3600) as ctx:
        proxy.fault = lambda method, path: ("delay", 0.4)  # slow, within the timeout
        ctx.set_result("slow", 1)
        ctx.artifact.save("slow.json", {"slow": True})
        proxy.fault = lambda method, path: ("delay", 3.0)  # past the timeout
        started = time.monotonic()
        with pytest.raises(StorageError) as info:
            ctx.set_result("late", 2)
        elapsed = time.monotonic() - started
        proxy.heal()
    assert "did not answer within 1.5 s" in str(info.value)
    assert proxy.endpoint in str(info.value)
    assert elapsed < 15, elapsed  # 2 attempts x 2 tries x 1.5 s, plus backoff
    print(f"\nserver slower than read_timeout=1.5 s: a StorageError after {elapsed:.1f} s")
    time.sleep(3.5)  # let the delayed requests reach the server, as they would

    fresh = direct(url, moto, tmp_path)
    run = fresh.project("p").experiment("e").get_run("r")  # whole, old or new: never torn
    assert run.results in ({"slow": 1}, {"slow": 1, "late": 2})
    (slow,) = fresh.catalog.query_assets(kind="artifact", run=run)
    assert slow.load() == {"slow": True}


# -- a connection cut during a multipart upload ---------------------------------------------------


def test_a_connection_cut_during_a_multipart_upload_leaves_nothing_half_written(
    url: str, proxy: FaultProxy, moto: MotoServer, tmp_path: Path
) -> None:
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(12 << 20))
    options = {
        "endpoint_url": proxy.endpoint,
        "max_attempts": 2,
        "multipart_threshold": 5 << 20,
        "part_size": 5 << 20,
    }
    ws = me.Workspace(url, storage_options=options)
    run = ws.Project("p").Experiment("e").Run(id="r")
    with run.start(heartbeat_interval=3600) as ctx:
        ctx.artifact.save("big.bin", b"the first, small version")
        proxy.fault = lambda method, path: ("reset",) if "partNumber=2" in path else None
        with pytest.raises(StorageError) as info:
            ctx.artifact.save("big.bin", big)
        proxy.heal()
        message = str(info.value)
        assert f"S3 upload of {url}/{run.key}/artifacts/big.bin failed" in message
        assert proxy.endpoint in message
        # Nothing half-registered: no pending row; the artifact is the old one or none (its
        # old record was withdrawn before the upload), never a record over another payload.
        pending = ws.catalog.index.db.execute("SELECT count(*) FROM assets WHERE committed = 0")
        assert pending.fetchone() == (0,)
        ctx.artifact.save("big.bin", big)  # the network is back: saving again works
    assert big.read_bytes()  # the source is untouched

    fresh = direct(url, moto, tmp_path)
    run = fresh.project("p").experiment("e").get_run("r")
    (saved,) = fresh.catalog.query_assets(kind="artifact", run=run)
    assert saved.read_bytes() == big.read_bytes()
    storage: Any = fresh.storage
    uploads = storage.call("list_multipart_uploads", "", Prefix=storage.object_key(""))
    assert uploads.get("Uploads", []) == [], "a multipart upload was left open"


# -- the catalog journal unwritable ---------------------------------------------------------------


def test_an_unwritable_journal_is_a_clear_error_and_record_and_index_agree(
    url: str, proxy: FaultProxy, moto: MotoServer, tmp_path: Path
) -> None:
    ws = me.Workspace(url, storage_options={"endpoint_url": proxy.endpoint, "max_attempts": 2})
    run = ws.Project("p").Experiment("e").Run(id="r")
    with run.start(heartbeat_interval=3600) as ctx:
        proxy.fault = lambda method, path: (
            ("error", 503, "SlowDown") if method == "PUT" and "/.molexp/journal/" in path else None
        )
        try:
            with pytest.raises(StorageError) as info:
                ctx.artifact.save("a.json", {"a": 1})
        finally:
            proxy.heal()
        assert f"S3 write of {url}/.molexp/journal/" in str(info.value)
        assert proxy.endpoint in str(info.value)
    fresh = direct(url, moto, tmp_path)
    run = fresh.project("p").experiment("e").get_run("r")
    found = fresh.catalog.query_assets(kind="artifact", run=run)
    records = fresh.storage.list(f"{run.key}/.assets/artifact")
    assert [a.record.record.rsplit("/", 1)[1] for a in found] == records
    local = ws.catalog.query_assets(kind="artifact", run=run)
    assert [a.id for a in local] == [a.id for a in found]
