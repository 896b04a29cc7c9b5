"""Helpers of the server tests: a real workspace with a real sweep, and a real server process.

The workspace is made with the workspace API alone (runs started with ``run.start()``, results,
logs, artifacts and a failing run), as a user's script would make it. The server runs as a
separate process (``python -m molexp.server`` on a free loopback port), so the tests see exactly
what a browser or a script sees: HTTP, headers, and nothing shared in memory.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import struct
import subprocess
import sys
import threading
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

import molexp as me

LRS = [1e-4, 1e-3, 1e-2, 1e-1]
DEPTHS = [2, 4]
TOKEN = "test-token-0123456789abcdef"


def tiny_png(width: int = 24, height: int = 16) -> bytes:
    """A real PNG image (a colour gradient), made without any imaging library."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    rows = b"".join(
        b"\x00" + b"".join(bytes((x * 10 % 256, y * 15 % 256, 160)) for x in range(width))
        for y in range(height)
    )
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def loss_of(lr: float, depth: int) -> float:
    """A made-up but smooth loss surface, so the chart has a shape."""
    import math

    return round(0.2 + 0.05 * (math.log10(lr) + 2.5) ** 2 + 0.03 * depth, 6)


@dataclass
class Sweep:
    """What the sweep fixture made: ids to look things up by."""

    root: Path
    project: str = "molecules"
    experiment: str = "lr-sweep"
    run_ids: list[str] = field(default_factory=list)
    failed: str = ""
    created: str = ""
    params: dict[str, dict[str, Any]] = field(default_factory=dict)
    assets: dict[str, str] = field(default_factory=dict)


def build_sweep(root: Path) -> Sweep:
    """A workspace with a project, a grid sweep of 8 runs (one failing), an untouched run, and a
    second experiment; artifacts of every content class the server treats differently."""
    ws = me.Workspace(root, name="Lab")
    project = ws.Project("Molecules", description="QM9 property models", owner="ada")
    exp = project.Experiment(
        "lr-sweep", params={"lr": 1e-3, "depth": 2, "model": "gcn"}, n_replicas=1
    )
    sweep = Sweep(root=root)
    for lr in LRS:
        for depth in DEPTHS:
            params = {"lr": lr, "depth": depth, "model": "gcn"}
            run = exp.Run(parameters=params)
            sweep.run_ids.append(run.id)
            sweep.params[run.id] = params
            fail = lr == 1e-1 and depth == 4
            try:
                with run.start(
                    profile_config={"epochs": 3, "device": "cpu"}, profile_name="smoke"
                ) as ctx:
                    log = ctx.log("train")
                    for epoch in range(3):
                        log.append(
                            f"epoch={epoch} loss={loss_of(lr, depth) + 0.1 * (2 - epoch):.4f}"
                        )
                    if fail:
                        raise FloatingPointError(f"loss diverged at lr={lr}")
                    ctx.set_result("loss", loss_of(lr, depth))
                    ctx.set_result("accuracy", round(1 - loss_of(lr, depth) / 2, 6))
                    metrics = ctx.artifact.save(
                        "metrics.json", {"loss": loss_of(lr, depth), "lr": lr}
                    )
                    if not sweep.assets:
                        sweep.assets["json"] = metrics.id
                        sweep.assets["text"] = ctx.artifact.save(
                            "notes.txt", "all good\n<b>not html</b>\n"
                        ).id
                        sweep.assets["png"] = ctx.artifact.save("curve.png", tiny_png()).id
                        sweep.assets["html"] = ctx.artifact.save(
                            "report.html", "<html><script>alert('x')</script><h1>hi</h1></html>"
                        ).id
                        sweep.assets["svg"] = ctx.artifact.save(
                            "figure.svg",
                            '<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
                        ).id
                        sweep.assets["bin"] = ctx.artifact.save("weights.bin", bytes(range(256))).id
                        sweep.assets["log"] = log.asset.id if log.asset else ""
            except FloatingPointError:
                sweep.failed = run.id
    untouched = exp.Run(parameters={"lr": 5e-3, "depth": 3, "model": "gat"})
    sweep.created = untouched.id
    sweep.run_ids.append(untouched.id)
    baseline = project.Experiment("baseline", params={"lr": 1e-3})
    with baseline.Run().start() as ctx:
        ctx.set_result("loss", 0.5)
    ws.Project("Empty project")
    return sweep


# ------------------------------------------------------------------------------------------------
# The server process
# ------------------------------------------------------------------------------------------------


@dataclass
class Response:
    """An HTTP response, fully read."""

    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


@dataclass
class Server:
    """A running ``python -m molexp.server`` process."""

    process: subprocess.Popen[str]
    url: str
    token: str | None = None
    log: list[str] = field(default_factory=list)
    drain: threading.Thread | None = None

    @property
    def port(self) -> int:
        port = urlsplit(self.url).port
        assert port is not None
        return port

    def request(
        self,
        method: str,
        path: str,
        *,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        auth: bool = True,
    ) -> Response:
        """One request on a fresh connection; ``path`` is sent exactly as given (no cleanup)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        sent = dict(headers or {})
        if auth and self.token and "Authorization" not in sent:
            sent["Authorization"] = f"Bearer {self.token}"
        try:
            conn.request(method, path, body=body, headers=sent)
            resp = conn.getresponse()
            return Response(resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read())
        finally:
            conn.close()

    def get(self, path: str, **kwargs: Any) -> Response:
        return self.request("GET", path, **kwargs)

    def get_json(self, path: str) -> Any:
        resp = self.get(path)
        assert resp.status == 200, (resp.status, resp.text)
        return resp.json()

    def post_json(self, path: str, payload: Any, **kwargs: Any) -> Response:
        headers = {"Content-Type": "application/json", **kwargs.pop("headers", {})}
        return self.request(
            "POST", path, body=json.dumps(payload).encode(), headers=headers, **kwargs
        )


def start_server(
    workspace: Path | str,
    *,
    token: str | None = None,
    host: str = "127.0.0.1",
    extra: list[str] | None = None,
    timeout: float = 30.0,
) -> Server:
    """Start the server on a free port (``--port 0``) and wait until it answers."""
    env = {k: v for k, v in os.environ.items() if k != "MOLEXP_SERVE_TOKEN"}
    cmd = [sys.executable, "-m", "molexp.server", str(workspace), "--host", host, "--port", "0"]
    if token:
        cmd += ["--token", token]
    cmd += extra or []
    process = subprocess.Popen(
        cmd, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
        text=True, env=env,
    )  # fmt: skip
    assert process.stderr is not None
    deadline = time.monotonic() + timeout
    url = None
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        if not line:
            if process.poll() is not None:
                break
            continue
        match = re.search(r"molexp serve: (\S+)", line)
        if match:
            url = match.group(1)
            break
    if url is None:
        process.kill()
        rest = process.stderr.read() if process.stderr else ""
        pytest.fail(f"the server did not start: {rest}", pytrace=False)
    server = Server(process, url.split("?")[0], token)
    # Keep reading stderr, so the server never blocks on a full pipe; kept for failure reports.
    server.drain = threading.Thread(target=_drain, args=(process, server.log), daemon=True)
    server.drain.start()
    while time.monotonic() < deadline:
        try:
            if server.get("/api/health").status == 200:
                return server
        except OSError:
            time.sleep(0.05)
    stop_server(server)
    pytest.fail("the server did not answer /api/health in time", pytrace=False)


def _drain(process: subprocess.Popen[str], sink: list[str]) -> None:
    assert process.stderr is not None
    for line in process.stderr:
        sink.append(line)


def stop_server(server: Server) -> None:
    """Stop the server process (SIGINT, as Ctrl-C would; then kill if it lingers)."""
    if server.process.poll() is None:
        server.process.send_signal(signal.SIGINT)
        try:
            server.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait()
    if server.drain is not None:
        server.drain.join(timeout=5)
    if server.process.stderr is not None:
        server.process.stderr.close()
