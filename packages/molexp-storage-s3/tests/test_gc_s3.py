"""Workspace.collect_garbage on ``s3://``: payloads that writers killed (SIGKILL) before their
record was written are found by their objects' ``LastModified`` and removed; nothing else is."""

from __future__ import annotations

import signal
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

import molexp as me
from molexp.workspace import RunStatus

KILLED_WRITER = """
import os, signal, sys
from pathlib import Path
import molexp as me
from molexp.workspace import _accessors

url, point, src = sys.argv[1], sys.argv[2], Path(sys.argv[3])


def die(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)


ws = me.Workspace(url)
exp = ws.project("p").experiment("e")
if point == "artifact":  # the payload is uploaded, its record not yet
    with exp.get_run("r").start() as ctx:
        _accessors.register_run_asset = die
        ctx.artifact.save("lost", src)
else:  # the payload is uploaded, its record not yet
    ws.catalog.register = die
    exp.data_assets.import_asset("lost", src)
"""


def objects(ws: me.Workspace) -> dict[str, bytes]:
    storage = ws.storage
    found: dict[str, bytes] = {}
    pending = [""]
    while pending:
        current = pending.pop()
        for name, is_dir in storage.list_entries(current):
            key = f"{current}/{name}" if current else name
            if is_dir:
                pending.append(key)
            else:
                found[key] = storage.read_bytes(key)
    return found


@pytest.fixture
def ws(s3_url: str, options: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("MOLEXP_CACHE_DIR", str(tmp_path / "cache"))
    return me.Workspace(s3_url, name="Lab", storage_options=options)


def test_payloads_of_killed_writers_are_removed_and_nothing_else(
    ws: me.Workspace, tmp_path: Path
) -> None:
    exp = ws.Project("p").Experiment("e")
    run = exp.Run(id="r")
    with run.start() as ctx:
        ctx.artifact.save("metrics.json", {"loss": 0.25})
        ctx.set_result("loss", 0.25)
    src = tmp_path / "data"
    (src / "sub").mkdir(parents=True)
    (src / "a.bin").write_bytes(b"a" * 3000)
    (src / "sub" / "b.bin").write_bytes(b"b" * 4000)
    exp.data_assets.import_asset("kept", src)
    before = objects(ws)
    for point in ("artifact", "import"):
        proc = subprocess.run(
            [sys.executable, "-c", KILLED_WRITER, ws.url, point, str(src)],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert proc.returncode == -signal.SIGKILL, proc.stderr
    killed = objects(ws)

    assert ws.gc().items == ()  # young: the writers might still be at work
    preview = ws.gc(dry_run=True, older_than=timedelta(0))
    found = sorted((item.kind, item.key) for item in preview.removed)
    assert [kind for kind, _ in found] == ["artifact", "data-asset"], found
    assert found[0][1] == f"{run.key}/artifacts/lost"
    assert found[1][1].startswith("projects/p/experiments/e/data_assets/lost-")
    assert all(item.size == 7000 for item in preview.removed)
    assert preview.total_bytes == 14_000

    report = ws.gc(older_than=timedelta(0))
    assert sorted((i.kind, i.key) for i in report.removed) == found and not report.failed
    after = objects(ws)
    assert not any(key.startswith((found[0][1], found[1][1])) for key in after)
    gone = (found[0][1] + "/", found[1][1] + "/")
    assert after == {k: v for k, v in killed.items() if not k.startswith(gone)}
    assert set(before) <= set(after)

    fresh = me.Workspace.load(ws.url)
    again = fresh.project("p").experiment("e").get_run("r")
    assert again.status == RunStatus.RUNNING and again.mark_failed_if_dead()
    assert again.results == {"loss": 0.25}
    names = sorted(a.name for a in fresh.catalog.query_assets())
    assert names == ["kept", "metrics.json"]
    assert fresh.catalog.rebuild() == 2
    assert fresh.project("p").experiment("e").data_assets.get("kept").size == 7000
