"""Two processes writing runs into one S3 workspace at once, and the server going away mid-run."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

import molexp as me
from molexp.workspace import AssetKind, RunStatus, StorageError
from molexp_storage_s3.testing import MotoServer, fake_credentials

WRITER = textwrap.dedent(
    """
    import sys
    import molexp as me

    url, worker = sys.argv[1], sys.argv[2]
    ws = me.Workspace(url)  # the endpoint comes from MOLEXP_STORAGE_OPTIONS
    exp = ws.Project("shared").Experiment("sweep", params={"n": 0})
    print("ready", flush=True)
    sys.stdin.readline()  # start together
    for i in range(3):
        run = exp.Run(parameters={"n": i}, id=f"{worker}-{i}")
        with run.start() as ctx:
            ctx.artifact.save("out.json", {"worker": worker, "i": i})
            ctx.log("train").append(f"{worker} {i}")
            ctx.set_result("i", i)
    """
)


def test_two_processes_write_runs_into_one_workspace(
    s3_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MOLEXP_CACHE_DIR", str(tmp_path / "cache"))
    procs = []
    for worker in ("a", "b"):
        env_cache = tmp_path / f"cache-{worker}"  # separate machines: separate catalog caches
        procs.append(
            subprocess.Popen(
                [sys.executable, "-c", WRITER, s3_url, worker],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                env={**os.environ, "MOLEXP_CACHE_DIR": str(env_cache)},
            )
        )
    try:
        for proc in procs:
            assert proc.stdout is not None and proc.stdout.readline().strip() == b"ready"
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write(b"go\n")
            proc.stdin.close()
        for proc in procs:
            assert proc.wait(timeout=60) == 0
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
            if proc.stdout is not None:
                proc.stdout.close()
            proc.wait()

    ws = me.Workspace.load(s3_url)
    runs = ws.project("shared").experiment("sweep").list_runs()
    assert sorted(r.id for r in runs) == sorted(f"{w}-{i}" for w in "ab" for i in range(3))
    assert all(r.status == RunStatus.SUCCEEDED for r in runs)
    artifacts = ws.catalog.query_assets(kind=AssetKind.ARTIFACT)
    assert len(artifacts) == 6
    assert {(a.load()["worker"], a.load()["i"]) for a in artifacts} == {
        (w, i) for w in "ab" for i in range(3)
    }
    assert len(ws.catalog.query_assets(kind=AssetKind.LOG)) == 6


def test_server_going_away_mid_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = tmp_path / "cache"
    monkeypatch.setenv("MOLEXP_CACHE_DIR", str(cache))
    result = tmp_path / "result.bin"
    result.write_bytes(b"hours of compute")
    with fake_credentials(), MotoServer() as server:
        server.create_bucket("outage")
        options: dict[str, Any] = {"endpoint_url": server.endpoint, "max_attempts": 2}
        ws = me.Workspace("s3://outage/lab", storage_options=options)
        run = ws.Project("p").Experiment("e").Run(id="r")

        def work() -> None:
            with run.start() as ctx:
                ctx.artifact.save("before.json", {"epoch": 1})
                ctx.log("train").append("epoch 1 done")
                server.stop()  # the endpoint goes away
                ctx.artifact.save("result.bin", result)

        started = time.monotonic()
        with pytest.raises(StorageError) as info:
            work()
    elapsed = time.monotonic() - started
    message = str(info.value)
    assert f"cannot connect to the S3 endpoint {server.endpoint}" in message
    assert elapsed < 20, elapsed  # bounded retries: a clear error, not a hang

    # Local state is kept: the file being saved, and the log lines that could not be sent.
    assert result.read_bytes() == b"hours of compute"
    spill = cache / "s3-unsent" / "outage" / f"lab/{run.key}/logs/train.log"
    assert f"the 13 unsent bytes of this log are kept in {spill}" in message
    assert spill.read_bytes() == b"epoch 1 done\n"

    # Nothing half-registered: the local catalog cache holds exactly what was stored before the
    # outage, with no row, not even a pending one, for the artifact that failed. (Read the cache
    # file directly: the catalog itself would first try to refresh from the gone endpoint.)
    with contextlib.closing(sqlite3.connect(ws.catalog.location)) as db:
        rows = db.execute("SELECT name, committed FROM assets ORDER BY name").fetchall()
    assert ("result.bin", 1) not in rows and ("result.bin", 0) not in rows
    assert ("before.json", 1) in rows
