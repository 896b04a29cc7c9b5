"""Data-asset libraries (import at workspace/project/experiment scope) and asset lookup from runs.

Tests that do not depend on local links run on local disk and on fsspec's in-memory filesystem.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

import molexp as me
from molexp.workspace import (
    ArtifactAsset,
    AssetRecord,
    DataAsset,
    HardlinkFallbackWarning,
    InvalidNameError,
    NotFoundError,
    ScopeLevel,
    StorageError,
)
from molexp.workspace.storage import Storage


@pytest.fixture(autouse=True)
def _private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOLEXP_CACHE_DIR", str(tmp_path / "cache"))


def is_local(ws: me.Workspace) -> bool:
    return ws.storage.local_path("") is not None


def tree(storage: Storage, key: str = "") -> set[str]:
    found: set[str] = set()
    pending = [key]
    while pending:
        current = pending.pop()
        for child in storage.list(current):
            child_key = f"{current}/{child}" if current else child
            if storage.is_dir(child_key) and not os.path.islink(
                storage.local_path(child_key) or ""
            ):
                pending.append(child_key)
            else:
                found.add(child_key)
    return found


@pytest.fixture(params=["workspace", "project", "experiment"])
def scope(request: pytest.FixtureRequest, ws: me.Workspace):
    """(library, expected scope level, key prefix of its data_assets/, scope object)."""
    if request.param == "workspace":
        return ws.data_assets, ScopeLevel.WORKSPACE, "data_assets", ws
    project = ws.Project("QM9")
    if request.param == "project":
        return project.data_assets, ScopeLevel.PROJECT, "projects/qm9/data_assets", project
    exp = project.Experiment("baseline")
    return exp.data_assets, ScopeLevel.EXPERIMENT, f"{exp.key}/data_assets", exp


@pytest.fixture
def local_ws(tmp_path: Path) -> me.Workspace:
    """A workspace on local disk, for what only a local workspace can do."""
    return me.Workspace(tmp_path / "local-lab", name="Lab")


@pytest.fixture
def src_file(tmp_path: Path) -> Path:
    path = tmp_path / "source" / "qm9.csv"
    path.parent.mkdir()
    path.write_bytes(b"smiles,gap\nC,0.5\nCC,0.4\n")
    return path


@pytest.fixture
def src_dir(tmp_path: Path) -> Path:
    root = tmp_path / "source" / "features"
    (root / "shards").mkdir(parents=True)
    (root / "index.json").write_text('{"n": 2}')
    (root / "shards" / "0.bin").write_bytes(b"\x00" * 100)
    (root / "shards" / "1.bin").write_bytes(b"\x01" * 50)
    return root


@pytest.fixture
def other_device_dir(tmp_path: Path) -> Iterator[Path]:
    """A directory on another filesystem than ``tmp_path`` (a tmpfs such as /dev/shm)."""
    here = os.stat(tmp_path).st_dev
    for candidate in ("/dev/shm", "/run/shm", "/run/user", tempfile.gettempdir()):
        usable = os.path.isdir(candidate) and os.access(candidate, os.W_OK)
        if usable and os.stat(candidate).st_dev != here:
            path = Path(candidate) / f"molexp-test-{uuid.uuid4().hex}"
            path.mkdir()
            yield path
            shutil.rmtree(path, ignore_errors=True)
            return
    pytest.skip("no writable directory on a second device (e.g. /dev/shm) on this machine")


def sha(data: bytes) -> str:
    return f"sha256:{hashlib.sha256(data).hexdigest()}"


def check_imported(
    ws: me.Workspace, asset: DataAsset, level: ScopeLevel, prefix: str, name: str
) -> None:
    """The layout and record every import shares, whatever its action."""
    asset_key = f"{prefix}/{asset.id}"
    assert asset.record.payload == f"{asset_key}/payload/{name}"
    assert asset.record.record == f"{asset_key}/asset.json"
    assert asset.scope.level == level
    on_disk = AssetRecord.model_validate_json(ws.storage.read_bytes(f"{asset_key}/asset.json"))
    assert on_disk == asset.record
    assert ws.catalog.get(asset.id) == asset


# -- the actions ------------------------------------------------------------------------------


def test_copy_keeps_the_source(ws: me.Workspace, scope, src_file: Path) -> None:
    library, level, prefix, _ = scope
    asset = library.import_asset("qm9", src_file, meta={"license": "CC-BY"}, tags=["raw"])
    check_imported(ws, asset, level, prefix, "qm9.csv")
    assert src_file.read_bytes() == b"smiles,gap\nC,0.5\nCC,0.4\n"
    assert asset.read_bytes() == src_file.read_bytes()
    assert asset.files() == ["qm9.csv"]
    assert asset.size == src_file.stat().st_size
    assert asset.content_hash == sha(src_file.read_bytes())
    assert asset.meta == {"license": "CC-BY", "source": str(src_file), "action": "copy"}
    assert asset.tags == ["raw"]
    assert library.list() == [asset]
    assert library.get("qm9") == asset
    assert len(library) == 1


def test_move_removes_the_source_and_keeps_the_file_name(
    ws: me.Workspace, scope, src_file: Path
) -> None:
    library, level, prefix, _ = scope
    content = src_file.read_bytes()
    asset = library.import_asset("qm9", src_file, action="move")
    check_imported(ws, asset, level, prefix, "qm9.csv")
    assert not src_file.exists()
    assert asset.read_bytes() == content
    assert asset.content_hash == sha(content)


def test_move_of_a_directory(ws: me.Workspace, scope, src_dir: Path) -> None:
    library, level, prefix, _ = scope
    asset = library.import_asset("features", src_dir, action="move")
    check_imported(ws, asset, level, prefix, "features")
    assert not src_dir.exists()
    assert asset.files() == [
        "features/index.json",
        "features/shards/0.bin",
        "features/shards/1.bin",
    ]
    assert asset.size == len('{"n": 2}') + 150


def test_copy_of_a_directory(ws: me.Workspace, scope, src_dir: Path) -> None:
    library, level, prefix, _ = scope
    asset = library.import_asset("features", src_dir)
    check_imported(ws, asset, level, prefix, "features")
    assert asset.files() == [
        "features/index.json",
        "features/shards/0.bin",
        "features/shards/1.bin",
    ]
    payload = asset.record.payload
    assert ws.storage.read_bytes(f"{payload}/shards/1.bin") == b"\x01" * 50
    assert (src_dir / "shards" / "1.bin").exists()


@pytest.mark.parametrize("kind", ["file", "dir"])
def test_symlink_links_to_the_source(ws: me.Workspace, scope, src_file, src_dir, kind) -> None:
    library, level, prefix, _ = scope
    src = src_file if kind == "file" else src_dir
    if not is_local(ws):
        with pytest.raises(StorageError, match=r"'symlink' needs a local workspace.*'copy'"):
            library.import_asset("data", src, action="symlink")
        assert tree(ws.storage, prefix) == set()
        assert src.exists()
        return
    asset = library.import_asset("data", src, action="symlink")
    check_imported(ws, asset, level, prefix, src.name)
    assert asset.path.is_symlink()
    assert os.readlink(asset.path) == str(src)
    assert src.exists()
    if kind == "file":
        assert asset.read_bytes() == src_file.read_bytes()
    else:
        assert (asset.path / "shards" / "0.bin").read_bytes() == b"\x00" * 100


@pytest.mark.parametrize("kind", ["file", "dir"])
def test_hardlink_shares_the_inode(ws: me.Workspace, scope, src_file, src_dir, kind) -> None:
    library, level, prefix, _ = scope
    src = src_file if kind == "file" else src_dir
    if not is_local(ws):
        with pytest.raises(StorageError, match="'hardlink' needs a local workspace"):
            library.import_asset("data", src, action="hardlink")
        assert tree(ws.storage, prefix) == set()
        return
    asset = library.import_asset("data", src, action="hardlink")
    check_imported(ws, asset, level, prefix, src.name)
    assert "hardlink_fallback" not in asset.meta
    if kind == "file":
        assert os.stat(asset.path).st_ino == os.stat(src_file).st_ino
    else:
        assert not asset.path.is_symlink()
        for rel in ("index.json", "shards/0.bin", "shards/1.bin"):
            assert os.stat(asset.path / rel).st_ino == os.stat(src_dir / rel).st_ino


@pytest.mark.parametrize("kind", ["file", "dir"])
def test_hardlink_across_devices_falls_back_to_a_copy_and_says_so(
    local_ws: me.Workspace, other_device_dir: Path, kind: str
) -> None:
    ws = local_ws
    if kind == "file":
        src = other_device_dir / "big.bin"
        src.write_bytes(b"z" * 4096)
    else:
        src = other_device_dir / "tree"
        (src / "sub").mkdir(parents=True)
        (src / "sub" / "x.bin").write_bytes(b"x" * 10)
    with pytest.warns(HardlinkFallbackWarning, match="another device.*copied instead"):
        asset = ws.data_assets.import_asset("big", src, action="hardlink")
    check_imported(ws, asset, ScopeLevel.WORKSPACE, "data_assets", src.name)
    assert asset.meta["hardlink_fallback"] == "copy"
    assert asset.meta["action"] == "hardlink"
    assert src.exists()
    if kind == "file":
        assert os.stat(asset.path).st_ino != os.stat(src).st_ino
        assert asset.read_bytes() == b"z" * 4096
    else:
        assert asset.files() == ["tree/sub/x.bin"]
        assert (asset.path / "sub" / "x.bin").read_bytes() == b"x" * 10


# -- failures leave everything as it was ------------------------------------------------------


def test_a_missing_source_is_a_clear_error_and_writes_nothing(
    ws: me.Workspace, tmp_path: Path
) -> None:
    missing = tmp_path / "no" / "such.csv"
    with pytest.raises(NotFoundError, match=str(missing)):
        ws.data_assets.import_asset("ghost", missing)
    assert not ws.is_materialized
    assert tree(ws.storage) == set()
    exp = ws.Project("QM9").Experiment("baseline")
    before = tree(ws.storage)
    with pytest.raises(NotFoundError, match=r"ghost.*does not exist"):
        exp.data_assets.import_asset("ghost", missing, action="move")
    assert tree(ws.storage) == before
    assert ws.assets.list() == []


def test_an_unknown_action_lists_the_actions(ws: me.Workspace, src_file: Path) -> None:
    with pytest.raises(ValueError, match=r"copy, move, symlink, hardlink.*'teleport'"):
        ws.data_assets.import_asset("qm9", src_file, action="teleport")
    assert tree(ws.storage) == set()
    assert src_file.exists()


@pytest.mark.parametrize("name", ["a/b", "..", ".", "x\x00y", "", "../../etc", "/abs"])
def test_unsafe_data_asset_names_are_refused(ws: me.Workspace, src_file: Path, name: str) -> None:
    with pytest.raises(InvalidNameError, match="data asset name"):
        ws.data_assets.import_asset(name, src_file, action="move")
    assert src_file.exists()
    assert tree(ws.storage) == set()


def _dir_with_a_socket(parent: Path) -> tuple[Path, socket.socket]:
    """A directory whose last entry is a Unix socket: it lists like a file but cannot be read,
    so copying the directory fails half-way (after ``a.txt`` and ``b.txt``)."""
    src = parent / "dataset"
    src.mkdir()
    (src / "a.txt").write_text("A")
    (src / "b.txt").write_text("B")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(src / "z.sock"))
    return src, sock


def test_a_move_that_fails_half_way_never_loses_the_source(
    ws: me.Workspace, tmp_path: Path
) -> None:
    """Locally the move is a rename, undone when hashing the moved tree fails; in memory it is a
    copy that fails half-way. Either way the source stays whole and nothing is left behind."""
    _check_failed_move(ws, tmp_path)


def test_a_cross_device_move_that_fails_half_way_never_loses_the_source(
    local_ws: me.Workspace, other_device_dir: Path
) -> None:
    """Across devices the rename is refused (EXDEV), so the move copies, and the copy fails."""
    _check_failed_move(local_ws, other_device_dir)


def _check_failed_move(ws: me.Workspace, parent: Path) -> None:
    src, sock = _dir_with_a_socket(parent)
    try:
        ws.materialize()
        before = tree(ws.storage)
        with pytest.raises(OSError, match=r"z\.sock"):
            ws.data_assets.import_asset("dataset", src, action="move")
        assert sorted(os.listdir(src)) == ["a.txt", "b.txt", "z.sock"]
        assert (src / "a.txt").read_text() == "A" and (src / "b.txt").read_text() == "B"
        assert {k for k in tree(ws.storage) if not k.startswith(".molexp/")} == before
        assert ws.storage.list("data_assets") == []
        assert ws.assets.list() == []
    finally:
        sock.close()
    # Once the unreadable entry is gone, the same move succeeds.
    (src / "z.sock").unlink()
    asset = ws.data_assets.import_asset("dataset", src, action="move")
    assert not src.exists()
    assert asset.files() == ["dataset/a.txt", "dataset/b.txt"]


# -- lookup from a run ------------------------------------------------------------------------


@pytest.fixture
def layered(ws: me.Workspace, tmp_path: Path):
    """An asset called ``shared`` at each scope, each with its own content."""

    def file(text: str) -> Path:
        path = tmp_path / "src" / uuid.uuid4().hex / "shared.txt"
        path.parent.mkdir(parents=True)
        path.write_text(text)
        return path

    project = ws.Project("QM9")
    exp = project.Experiment("baseline")
    sibling_exp = project.Experiment("ablation")
    other_project = ws.Project("Other")
    found = {
        "workspace": ws.data_assets.import_asset("shared", file("workspace")),
        "project": project.data_assets.import_asset("shared", file("project")),
        "experiment-old": exp.data_assets.import_asset("shared", file("experiment-old")),
        "experiment": exp.data_assets.import_asset("shared", file("experiment")),
    }
    other_project.data_assets.import_asset("shared", file("other-project"))
    other_project.Experiment("baseline").data_assets.import_asset("shared", file("other-exp"))
    run = exp.Run(id="with-artifact")
    with run.start() as ctx:
        found["run"] = ctx.artifact.save("shared", "run")
    return {
        "found": found,
        "run": run,
        "plain_run": exp.Run(id="plain"),
        "sibling_run": sibling_exp.Run(id="sib"),
        "other_run": other_project.Experiment("elsewhere").Run(id="far"),
    }


def test_find_asset_walks_outward_and_the_nearest_wins(ws: me.Workspace, layered) -> None:
    def find(run: me.Run, **kwargs):
        with run.start() as ctx:
            return ctx.find_asset("shared", **kwargs)

    found = layered["found"]
    nearest = find(layered["run"])
    assert isinstance(nearest, ArtifactAsset) and nearest.id == found["run"].id
    # A run without its own asset sees its experiment's newest import, not the older one and
    # not the sibling run's artifact.
    from_exp = find(layered["plain_run"])
    assert isinstance(from_exp, DataAsset) and from_exp.id == found["experiment"].id
    assert from_exp.read_text() == "experiment"
    assert find(layered["sibling_run"]).id == found["project"].id
    assert find(layered["other_run"]).read_text() == "other-project"
    # A kind filter skips nearer assets of other kinds.
    assert find(layered["run"], kind="data").id == found["experiment"].id
    with layered["plain_run"].start() as ctx:
        assert ctx.find_asset("nothing-called-this") is None


def test_find_asset_reaches_the_workspace_scope(ws: me.Workspace, layered) -> None:
    lone = ws.Project("Lone").Experiment("e").Run(id="lone")
    with lone.start() as ctx:
        found = ctx.find_asset("shared")
    assert found.id == layered["found"]["workspace"].id
    assert found.scope.level == ScopeLevel.WORKSPACE


def test_get_data_dir_of_found_assets(ws: me.Workspace, layered, src_dir: Path) -> None:
    exp = layered["plain_run"].experiment
    exp.data_assets.import_asset("features", src_dir)
    with layered["plain_run"].start() as ctx:
        if not is_local(ws):
            with pytest.raises(StorageError, match="no local directory"):
                ctx.get_data_dir("shared")
            return
        file_dir = ctx.get_data_dir("shared")
        dir_dir = ctx.get_data_dir("features")
    assert file_dir.is_absolute() and file_dir.is_dir()
    assert (file_dir / "shared.txt").read_text() == "experiment"
    assert file_dir.name == "payload"
    assert dir_dir.is_absolute() and dir_dir.name == "features"
    assert sorted(p.name for p in dir_dir.iterdir()) == ["index.json", "shards"]


def test_get_data_dir_fallback(ws: me.Workspace, tmp_path: Path) -> None:
    run = ws.Project("QM9").Experiment("baseline").Run(id="r1")
    with run.start() as ctx:
        with pytest.raises(NotFoundError, match=r"no asset named 'cache'.*fallback="):
            ctx.get_data_dir("cache")
        if not is_local(ws):
            with pytest.raises(StorageError, match="local workspace"):
                ctx.get_data_dir("cache", fallback="scratch/cache")
            return
        made = ctx.get_data_dir("cache", fallback="scratch/cache")
        again = ctx.get_data_dir("cache", fallback="scratch/cache")
        outside = tmp_path / "outside"
        for escaping in ("../outside", str(outside), "scratch/../../outside"):
            with pytest.raises(InvalidNameError, match="outside the workspace root"):
                ctx.get_data_dir("cache", fallback=escaping)
    root = ws.storage.local_path("")
    assert made == again == root / "scratch" / "cache"
    assert made.is_dir() and made.is_absolute()
    assert not outside.exists()
