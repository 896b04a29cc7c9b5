"""Workspace.collect_garbage: the debris of interrupted writers is removed, nothing else is.

Debris is made two ways: on local disk by really killing (SIGKILL) a process between writing a
payload and its record, or between writing a temporary file and renaming it; and, on each
backend, by creating the exact files such an interrupted write leaves. Ages are set by
back-dating the files (``os.utime``; the in-memory filesystem's own modification times).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import molexp as me
from molexp.workspace import GarbageReport, RunStatus
from molexp.workspace._gc import TEMPORARY
from molexp.workspace.storage import LocalStorage, Storage
from molexp.workspace.storage._fsspec import _MoveOnClose
from molexp.workspace.storage._local import _tmp_path


@pytest.fixture(autouse=True)
def _private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOLEXP_CACHE_DIR", str(tmp_path / "cache"))


def files(storage: Storage, key: str = "") -> dict[str, bytes]:
    """Every file of the store (symlinks as their target's text), by key."""
    found: dict[str, bytes] = {}
    pending = [key]
    while pending:
        current = pending.pop()
        for name, is_dir in storage.list_entries(current):
            child = f"{current}/{name}" if current else name
            local = storage.local_path(child)
            if local is not None and local.is_symlink():
                found[child] = os.readlink(local).encode()
            elif is_dir:
                pending.append(child)
            else:
                found[child] = storage.read_bytes(child)
    return found


def backdate(ws: me.Workspace, hours: float) -> None:
    """Make every file and directory of the workspace look ``hours`` old."""
    stamp = time.time() - hours * 3600
    root = ws.storage.local_path("")
    if root is not None:
        for dirpath, dirnames, filenames in os.walk(root):
            for name in dirnames + filenames:
                os.utime(os.path.join(dirpath, name), (stamp, stamp), follow_symlinks=False)
        return
    fs = ws.storage.fs  # type: ignore[attr-defined]
    prefix = f"{ws.storage.root}/"  # type: ignore[attr-defined]
    for path, entry in fs.store.items():
        if path.startswith(prefix):
            entry.modified = datetime.fromtimestamp(stamp, UTC)


def temp_name(ws: me.Workspace, name: str) -> str:
    """What an interrupted atomic write of ``name`` leaves on this backend."""
    if isinstance(ws.storage, LocalStorage):
        return f".{name}.4242.0badc0de.tmp"
    return f".{name}.0badc0de.tmp"


def populate(ws: me.Workspace, tmp_path: Path) -> me.Run:
    """Live content of every kind, some of it named like debris (it must all stay)."""
    src = tmp_path / "src"
    (src / "dir" / "sub").mkdir(parents=True)
    (src / "file.bin").write_bytes(b"data" * 100)
    (src / "dir" / "sub" / ".keep.0badc0de.tmp").write_bytes(b"user content, not debris")
    project = ws.Project("p")
    exp = project.Experiment("e")
    ws.data_assets.import_asset("top", src / "file.bin")
    project.data_assets.import_asset("mid", src / "dir")
    exp.data_assets.import_asset("low", src / "file.bin")
    run = exp.Run(id="r")
    with run.start() as ctx:
        ctx.set_result("loss", 0.5)
        ctx.artifact.save("a.json", {"x": 1})
        ctx.artifact.save("tree", src / "dir")
        ctx.artifact.save(".named.0badc0de.tmp", b"an artifact named like a temporary")
        ctx.checkpoint("m", {"w": 1})
        ctx.checkpoint("m", src / "file.bin")
        ctx.log("train").append("epoch 1")
    ws.storage.write_bytes(f"{run.key}/work/.scratch.0badc0de.tmp", b"the run's own scratch")
    return run


def make_debris(ws: me.Workspace, run: me.Run) -> dict[str, str]:
    """The exact files interrupted writes leave; returns the key and kind of each item."""
    storage = ws.storage
    rk = run.key
    exp_key = "projects/p/experiments/e"
    recorded = storage.list(f"{exp_key}/data_assets")[0]
    debris = {
        temp_name(ws, "workspace.json"): "temporary",
        f"projects/p/{temp_name(ws, 'project.json')}": "temporary",
        f"{exp_key}/{temp_name(ws, 'experiment.json')}": "temporary",
        f"{rk}/{temp_name(ws, 'run.json')}": "temporary",
        f"{rk}/.assets/artifact/{temp_name(ws, 'b.json.json')}": "temporary",
        f"{rk}/execution/{temp_name(ws, 'state.json')}": "temporary",
        f"{rk}/.ckpt/m/{temp_name(ws, '000003')}": "temporary",
        f"{rk}/artifacts/{temp_name(ws, 'b.bin')}": "temporary",
        f"{exp_key}/data_assets/{recorded}/{temp_name(ws, 'asset.json')}": "temporary",
        f"{rk}/artifacts/lost.bin": "artifact",
        f"{rk}/artifacts/lost-tree": "artifact",
        f"{rk}/.ckpt/m/000003.pt": "checkpoint",
        "data_assets/lost-0badc0de": "data-asset",
        f"{exp_key}/data_assets/half-0badc0de": "data-asset",
    }
    for key, kind in debris.items():
        if key.endswith("lost-tree") or kind == "data-asset":
            storage.write_bytes(f"{key}/payload/part/one.bin", b"1" * 1000)
            storage.write_bytes(f"{key}/payload/part/{temp_name(ws, 'two.bin')}", b"2" * 10)
        else:
            storage.write_bytes(key, b"{ half written")
    return debris


def below(keys: set[str], gone: dict[str, str]) -> set[str]:
    return {k for k in keys if any(k == g or k.startswith(f"{g}/") for g in gone)}


def check_everything_live(ws: me.Workspace, run: me.Run) -> None:
    """Every listing and query works and every live asset loads."""
    fresh = me.Workspace.load(ws.url)
    [project] = fresh.list_projects()
    [exp] = project.list_experiments()
    [again] = exp.list_runs()
    assert again.status == RunStatus.SUCCEEDED and again.results == {"loss": 0.5}
    assets = fresh.catalog.query_assets()
    assert sorted(a.name for a in assets) == sorted(
        [".named.0badc0de.tmp", "a.json", "low", "m", "m", "mid", "top", "train", "tree"]
    )
    assert fresh.catalog.rebuild() == len(assets)
    assert {a.id for a in fresh.catalog.query_assets()} == {a.id for a in assets}
    by_name = {a.name: a for a in assets}
    assert by_name["a.json"].load() == {"x": 1}
    assert by_name["train"].lines() == ["epoch 1"]
    assert [c.step for c in fresh.catalog.query_assets(kind="checkpoint")] == [1, 2]
    assert exp.data_assets.get("low").name == "low"


def test_debris_is_removed_and_everything_live_kept(ws: me.Workspace, tmp_path: Path) -> None:
    run = populate(ws, tmp_path)
    debris = make_debris(ws, run)
    before = files(ws.storage)
    backdate(ws, 2)

    preview = ws.collect_garbage(dry_run=True)
    assert preview.dry_run and not preview.failed
    assert {i.key: i.kind for i in preview.removed} == debris
    assert files(ws.storage) == before, "a dry run changed the workspace"

    report = ws.gc()
    assert isinstance(report, GarbageReport) and not report.dry_run
    assert {i.key: i.kind for i in report.removed} == debris
    assert not report.failed
    sizes = {i.key: i.size for i in report.removed}
    assert sizes["data_assets/lost-0badc0de"] == 1010
    assert sizes[f"{run.key}/artifacts/lost.bin"] == len(b"{ half written")
    assert report.total_bytes == sum(sizes.values())
    assert all(i.modified < datetime.now(UTC) - timedelta(hours=1) for i in report.removed)

    after = files(ws.storage)
    gone = below(set(before), debris)
    assert after == {k: v for k, v in before.items() if k not in gone}
    check_everything_live(ws, run)
    assert ws.gc(older_than=timedelta(0)).items == ()


def test_young_debris_is_kept_until_older_than_allows(ws: me.Workspace, tmp_path: Path) -> None:
    run = populate(ws, tmp_path)
    debris = make_debris(ws, run)
    before = files(ws.storage)
    assert ws.gc().items == ()  # just written: a writer may still be at work
    backdate(ws, 0.5)
    assert ws.gc(older_than=timedelta(hours=1)).items == ()
    assert files(ws.storage) == before
    report = ws.gc(older_than=timedelta(minutes=10))
    assert {i.key for i in report.removed} == set(debris)


def test_payloads_of_a_run_that_is_running_are_left_alone(ws: me.Workspace) -> None:
    run = ws.Project("p").Experiment("e").Run(id="live")
    unrecorded = f"{run.key}/artifacts/being-saved.bin"
    with run.start():
        ws.storage.write_bytes(unrecorded, b"payload, record still to come")
        backdate(ws, 2)
        assert ws.gc().items == ()
        assert ws.storage.exists(unrecorded)
    backdate(ws, 2)
    assert [i.key for i in ws.gc().removed] == [unrecorded]


def test_a_workspace_never_written_has_nothing_to_collect(ws: me.Workspace) -> None:
    report = ws.gc(older_than=timedelta(0))
    assert report.items == () and report.total_bytes == 0
    assert not ws.is_materialized


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"older_than": timedelta(hours=-1)}, "older_than must be a datetime.timedelta"),
        ({"older_than": "1h"}, "older_than must be a datetime.timedelta"),
        ({"dry_run": "yes"}, "dry_run must be True or False"),
    ],
)
def test_bad_arguments_are_refused_and_change_nothing(
    ws: me.Workspace, tmp_path: Path, kwargs: dict[str, object], message: str
) -> None:
    run = populate(ws, tmp_path)
    make_debris(ws, run)
    backdate(ws, 2)
    before = files(ws.storage)
    with pytest.raises((ValueError, TypeError), match=message):
        ws.collect_garbage(**kwargs)  # type: ignore[arg-type]
    assert files(ws.storage) == before


# -- local disk only: real kills, links, a removal that fails ------------------------------------

KILLED_WRITER = """
import os, signal, sys
from pathlib import Path
import molexp as me
from molexp.workspace import _accessors

root, point, src = sys.argv[1], sys.argv[2], Path(sys.argv[3])


def die(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)


ws = me.Workspace(root)
exp = ws.project("p").experiment("e")
if point == "artifact":  # the payload is written, its record not yet
    with exp.get_run("r").start() as ctx:
        _accessors.register_run_asset = die
        ctx.artifact.save("lost.bin", src)
elif point == "import":  # the payload is copied, its record not yet
    ws.catalog.register = die
    exp.data_assets.import_asset("lost", src)
elif point == "rename":  # the temporary is written and fsynced, not yet renamed
    os.replace = die
    ws.save()
"""


def kill_during(root: Path, point: str, src: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", KILLED_WRITER, str(root), point, str(src)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr


def test_what_killed_writers_leave_is_removed(tmp_path: Path) -> None:
    ws = me.Workspace(tmp_path / "lab", name="Lab")
    run = populate(ws, tmp_path)
    src = tmp_path / "big.bin"
    src.write_bytes(os.urandom(300_000))
    before = files(ws.storage)
    for point in ("artifact", "import", "rename"):
        kill_during(ws.root, point, src)  # type: ignore[arg-type]
    assert ws.gc().items == ()  # young: the writers might still be at work

    backdate(ws, 2)
    report = ws.gc()
    found = sorted((i.kind, i.key) for i in report.removed)
    assert [kind for kind, _ in found] == ["artifact", "data-asset", "temporary"], found
    assert found[0][1] == f"{run.key}/artifacts/lost.bin"
    assert found[1][1].startswith("projects/p/experiments/e/data_assets/lost-")
    assert found[2][1].startswith(".workspace.json.")
    assert all(i.size == 300_000 for i in report.removed if i.kind != "temporary")
    assert not report.failed
    after = files(ws.storage)
    assert not any(key.startswith((found[0][1], found[1][1], found[2][1])) for key in after)
    # Everything that was there before the kills is still there.
    assert set(before) <= set(after)
    run.reload()
    assert run.mark_failed_if_dead()
    with run.start() as ctx:
        ctx.set_result("loss", 0.5)
    check_everything_live(ws, run)


def test_orphans_made_of_links_are_left_alone(tmp_path: Path) -> None:
    """A hard link or symlink frees nothing, and may be an import still hashing what it linked."""
    ws = me.Workspace(tmp_path / "lab", name="Lab")
    lib = ws.storage.local_path("data_assets")
    assert lib is not None
    src = tmp_path / "big.bin"
    src.write_bytes(b"x" * 1000)
    ws.materialize()
    (lib / "linked-0badc0de" / "payload").mkdir(parents=True)
    os.link(src, lib / "linked-0badc0de" / "payload" / "big.bin")
    (lib / "symlinked-0badc0de" / "payload").mkdir(parents=True)
    os.symlink(src, lib / "symlinked-0badc0de" / "payload" / "big.bin")
    backdate(ws, 2)
    assert ws.gc().items == ()
    assert (lib / "linked-0badc0de" / "payload" / "big.bin").exists()
    assert (lib / "symlinked-0badc0de" / "payload" / "big.bin").is_symlink()


class _Refusing(LocalStorage):
    """A local store on which removing one key fails (as on a read-only mount)."""

    refused = ""

    def remove(self, key: str, *, recursive: bool = False) -> None:
        if key == self.refused:
            raise PermissionError(13, "Read-only file system", self.url_for(key))
        super().remove(key, recursive=recursive)


def test_a_removal_that_fails_is_reported_and_the_others_still_happen(tmp_path: Path) -> None:
    ws = me.Workspace(tmp_path / "lab", name="Lab")
    run = populate(ws, tmp_path)
    debris = make_debris(ws, run)
    backdate(ws, 2)
    storage = _Refusing(ws.storage.url)
    storage.refused = "data_assets/lost-0badc0de"
    ws.storage = storage
    report = ws.gc()
    [failed] = report.failed
    assert failed.key == storage.refused and "Read-only file system" in (failed.error or "")
    assert {i.key for i in report.removed} == set(debris) - {storage.refused}
    assert report.total_bytes == sum(i.size for i in report.removed)
    assert storage.exists(storage.refused)


@given(st.text(min_size=1, max_size=60).filter(lambda n: "/" not in n and "\x00" not in n))
def test_every_temporary_name_molexp_writes_is_recognised(name: str) -> None:
    local = _tmp_path(f"/root/{name}").rsplit("/", 1)[-1]
    assert TEMPORARY.match(local)


def test_the_fsspec_temporary_name_is_recognised() -> None:
    from fsspec.implementations.memory import MemoryFileSystem

    fs = MemoryFileSystem()
    stream = _MoveOnClose(fs, f"/gc-{os.getpid()}/dir/run.json")
    try:
        [temp] = [p.rsplit("/", 1)[-1] for p in fs.ls(f"/gc-{os.getpid()}/dir", detail=False)]
        assert TEMPORARY.match(temp), temp
    finally:
        stream.close()
        fs.rm(f"/gc-{os.getpid()}", recursive=True)
