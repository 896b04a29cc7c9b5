"""A local S3 server for tests, examples and benchmarks: moto's standalone server as a process.

``MotoServer()`` starts ``python -m moto.server`` on a free port of 127.0.0.1 (moto with its
``server`` extra must be installed: ``pip install "moto[server]"``), waits until it answers, and
stops it on :meth:`MotoServer.stop` or at the end of a ``with`` block. Code under test then talks
to it over HTTP through s3fs, exactly as to any S3-compatible endpoint::

    with MotoServer() as server, fake_credentials():
        server.create_bucket("lab")
        ws = molexp.Workspace("s3://lab/ws", storage_options={"endpoint_url": server.endpoint})

``FaultProxy(server.endpoint)`` stands between the code and the server and injects faults into
chosen requests (an error answer, a delay, a connection reset), as a flaky network or a busy
S3 would.

Nothing here imports moto, s3fs or botocore.
"""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

#: Credentials moto accepts; never real ones.
TEST_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "molexp-testing",
    "AWS_SECRET_ACCESS_KEY": "molexp-testing-secret",
    "AWS_DEFAULT_REGION": "us-east-1",
    # Never ask an instance-metadata service for credentials (no network to it here).
    "AWS_EC2_METADATA_DISABLED": "true",
}


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


#: AWS settings that would make the tests depend on the machine they run on (a developer's
#: default profile, endpoint or session token): cleared by :func:`fake_credentials`.
_MACHINE_SETTINGS = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
)


@contextmanager
def fake_credentials() -> Iterator[None]:
    """Use only :data:`TEST_CREDENTIALS` for the block: the machine's AWS profile, config files,
    endpoint and session token are hidden, and everything is restored afterwards."""
    names = (*TEST_CREDENTIALS, *_MACHINE_SETTINGS)
    saved = {name: os.environ.get(name) for name in names}
    for name in _MACHINE_SETTINGS:
        os.environ.pop(name, None)
    os.environ.update(TEST_CREDENTIALS)
    os.environ["AWS_CONFIG_FILE"] = os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


class MotoServer:
    """One ``python -m moto.server`` process; ``endpoint`` is its URL."""

    def __init__(self, port: int | None = None, *, startup_timeout: float = 30.0) -> None:
        self.port = port or free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._log = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed in stop()
            prefix="moto-server-", suffix=".log", delete=False
        )
        self.process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self._wait_until_up(startup_timeout)

    def _wait_until_up(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.stop()
                raise RuntimeError(f"moto server exited at start:\n{self.log_text()}")
            try:
                with urllib.request.urlopen(f"{self.endpoint}/moto-api/", timeout=1):
                    return
            except (urllib.error.URLError, OSError):
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"moto server did not answer within {timeout} s:\n{self.log_text()}")

    def log_text(self) -> str:
        """What the server printed."""
        return Path(self._log.name).read_text(errors="replace")

    def create_bucket(self, name: str) -> None:
        """Create ``name`` (moto accepts any credentials)."""
        request = urllib.request.Request(f"{self.endpoint}/{name}", method="PUT")
        with urllib.request.urlopen(request, timeout=10):
            pass

    def pause(self) -> None:
        """Freeze the server: connections are accepted but never answered."""
        os.kill(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        """Undo :meth:`pause`."""
        os.kill(self.process.pid, signal.SIGCONT)

    def stop(self) -> None:
        """Stop the process (and remove its log)."""
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGCONT)
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self._log.close()
        Path(self._log.name).unlink(missing_ok=True)

    def __enter__(self) -> MotoServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


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
            chunks: list[bytes] = []
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
            # SO_LINGER with a zero timeout: close() sends a TCP RST, as a dropped link does.
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
            if self.command != "HEAD":  # a HEAD answer has no body, errors included
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

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that gave up on a delayed answer (its read timeout) closed the connection:
        # expected here, not worth a traceback.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class FaultProxy:
    """An HTTP proxy to ``upstream`` (in this process) that applies ``fault(method, path)`` to
    each request; ``seen`` lists ``(method, path, outcome)`` of every request it received."""

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
        """The fault for this request (recorded in ``seen``)."""
        with self._lock:
            fault = self.fault(method, path)
            self.seen.append((method, path, "forwarded" if fault is None else str(fault[0])))
            return fault

    def heal(self) -> None:
        """Forward every request from now on."""
        self.fault = lambda method, path: None

    def close(self) -> None:
        """Stop serving."""
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FaultProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
