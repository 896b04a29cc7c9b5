"""A local S3 server for tests, examples and benchmarks: moto's standalone server as a process.

``MotoServer()`` starts ``python -m moto.server`` on a free port of 127.0.0.1 (moto with its
``server`` extra must be installed: ``pip install "moto[server]"``), waits until it answers, and
stops it on :meth:`MotoServer.stop` or at the end of a ``with`` block. Code under test then talks
to it over HTTP through s3fs, exactly as to any S3-compatible endpoint::

    with MotoServer() as server, fake_credentials():
        server.create_bucket("lab")
        ws = molexp.Workspace("s3://lab/ws", storage_options={"endpoint_url": server.endpoint})

Nothing here imports moto, s3fs or botocore.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

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
