"""The built-in backends pass the conformance suite; the registry finds backends by scheme."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from molexp.workspace.storage import LocalStorage, Storage, installed_backends, open_storage
from molexp.workspace.storage.conformance import StorageConformance


class TestLocalStorage(StorageConformance):
    @pytest.fixture
    def storage(self, tmp_path: Path) -> Storage:
        return open_storage(tmp_path / "store")


class TestLocalStorageWithoutFsync(StorageConformance):
    @pytest.fixture
    def storage(self, tmp_path: Path) -> Storage:
        return open_storage(f"file://{tmp_path}/store", fsync=False)


class TestMemoryStorage(StorageConformance):
    @pytest.fixture
    def storage(self) -> Iterator[Storage]:
        store = open_storage(f"memory://conformance-{uuid.uuid4().hex}")
        yield store
        store.remove("", recursive=True)


def test_plain_paths_and_file_urls_are_local(tmp_path: Path) -> None:
    assert isinstance(open_storage(tmp_path), LocalStorage)
    assert isinstance(open_storage(f"file://{tmp_path}"), LocalStorage)
    assert open_storage(f"file://{tmp_path}").url == str(tmp_path.resolve())


def test_installed_backends_list_builtins_with_their_distribution() -> None:
    backends = {b.scheme: b for b in installed_backends()}
    assert backends["file"].distribution == "molexp-workspace"
    assert backends["memory"].distribution == "molexp-workspace"
    assert backends["memory"].target == "molexp.workspace.storage._fsspec:FsspecStorage"


def test_local_write_leaves_no_temporary_files(tmp_path: Path) -> None:
    store = open_storage(tmp_path)
    for i in range(5):
        store.write_bytes("d/f.json", str(i).encode())
    store.write_bytes("d/g.json", b"x", exclusive=True)
    with pytest.raises(FileExistsError):
        store.write_bytes("d/g.json", b"y", exclusive=True)
    assert sorted(os.listdir(tmp_path / "d")) == ["f.json", "g.json"]


def test_importing_the_workspace_layer_does_not_import_s3_or_fsspec() -> None:
    import subprocess
    import sys

    code = (
        "import sys, molexp as me; me.Workspace('.');"
        "heavy = ('s3fs', 'botocore', 'boto3', 'fsspec', 'yaml', 'click');"
        "bad = [m for m in heavy if m in sys.modules];"
        "print(','.join(bad))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=os.getcwd()
    )
    assert out.stdout.strip() == ""
