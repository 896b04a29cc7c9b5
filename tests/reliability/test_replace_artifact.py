"""Saving an artifact name again, interrupted (the defect test_kill9.py found, issue 8).

Before the fix the new payload replaced the old one before the new record was written, so a
process killed in between left the old record (size, hash, encoding) over the new payload. Now the
old asset is withdrawn first (row pending, record removed, row dropped); a kill leaves the old
artifact, the new one, or none (test_kill9.py). A save that *fails* (rather than being killed)
while writing a file puts the old asset back: its payload was never touched.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import molexp as me
from molexp.workspace import _accessors


def test_a_failed_replacement_keeps_the_old_artifact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = me.Workspace(tmp_path / "lab")
    run = ws.Project("p").Experiment("e").Run(id="r")
    source = tmp_path / "new.bin"
    source.write_bytes(b"new bytes")

    def broken_copy(*args: object) -> None:
        raise OSError("disk full while copying")

    with run.start() as ctx:
        old = ctx.artifact.save("model.bin", b"old bytes")
        monkeypatch.setattr(_accessors, "copy_in", broken_copy)
        with pytest.raises(OSError, match="disk full"):
            ctx.artifact.save("model.bin", source)
        monkeypatch.undo()
        (kept,) = ws.catalog.query_assets(run=run, name="model.bin")
        assert kept.id == old.id and kept.load() == b"old bytes"
        assert ws.storage.exists(old.record.record)
        new = ctx.artifact.save("model.bin", source)
    fresh = me.Workspace.load(ws.url)
    (saved,) = fresh.catalog.query_assets(run=run, name="model.bin")
    assert saved.id == new.id and saved.load() == b"new bytes"
    assert fresh.catalog.rebuild() == 1
