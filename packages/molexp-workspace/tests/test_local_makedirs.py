"""``LocalStorage.makedirs`` and the parents of a new file: made one ``mkdir`` per missing level,
with the same outcome as ``os.makedirs(exist_ok=True)`` for every order of nested directories."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from molexp.workspace.storage import LocalStorage

_SEGMENT = st.sampled_from(["a", "b", "c"])
_KEYS = st.lists(st.lists(_SEGMENT, min_size=1, max_size=4).map("/".join), min_size=1, max_size=8)


@settings(max_examples=40, deadline=None)
@given(keys=_KEYS)
def test_makedirs_and_writes_make_every_level_in_any_order(keys: list[str]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        storage = LocalStorage(tmp)
        for i, key in enumerate(keys):
            if i % 2:
                storage.makedirs(key)
                assert storage.is_dir(key)
            else:
                file_key = f"{key}/f{i}.json"
                storage.write_bytes(file_key, b"{}")
                assert storage.read_bytes(file_key) == b"{}"
        made = {p.relative_to(tmp).as_posix() for p in Path(tmp).rglob("*") if p.is_dir()}
        expected = {"/".join(k.split("/")[: n + 1]) for k in keys for n in range(k.count("/") + 1)}
        assert made == expected


def test_a_file_in_the_way_is_an_error_and_nothing_is_made(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    storage.write_bytes("a/file", b"x")
    with pytest.raises(FileExistsError):
        storage.makedirs("a/file")
    with pytest.raises(NotADirectoryError):
        storage.makedirs("a/file/below")
    with pytest.raises(NotADirectoryError):
        storage.write_bytes("a/file/below/x.json", b"{}")
    assert sorted(os.listdir(tmp_path / "a")) == ["file"]
    assert storage.read_bytes("a/file") == b"x"
