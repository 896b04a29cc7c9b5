"""A reusable conformance suite for storage backends (needs pytest).

Subclass :class:`StorageConformance` in a test module and provide a ``storage`` fixture that
returns a fresh, empty store of your backend; every ``test_*`` method then runs against it::

    class TestMyBackend(StorageConformance):
        @pytest.fixture
        def storage(self) -> Storage:
            return MyStorage.from_url("my://bucket/some-unique-prefix")
"""

from __future__ import annotations

import gc
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from molexp.workspace._errors import StorageError
from molexp.workspace.storage._base import Storage


class StorageConformance:
    """The behaviour every :class:`Storage` backend must show; the workspace layer relies on it."""

    def test_write_then_read_round_trips(self, storage: Storage) -> None:
        storage.write_bytes("a/b/c.json", b'{"x": 1}')
        assert storage.read_bytes("a/b/c.json") == b'{"x": 1}'
        assert storage.read_json("a/b/c.json") == {"x": 1}

    def test_write_replaces_whole_content(self, storage: Storage) -> None:
        storage.write_bytes("f", b"a much longer first version")
        storage.write_bytes("f", b"short")
        assert storage.read_bytes("f") == b"short"

    def test_exclusive_write_refuses_existing_and_keeps_it(self, storage: Storage) -> None:
        storage.write_bytes("f", b"first", exclusive=True)
        with pytest.raises(FileExistsError):
            storage.write_bytes("f", b"second", exclusive=True)
        assert storage.read_bytes("f") == b"first"

    def test_read_missing_raises_file_not_found(self, storage: Storage) -> None:
        with pytest.raises(FileNotFoundError):
            storage.read_bytes("nope/missing.json")

    def test_exists_and_is_dir(self, storage: Storage) -> None:
        storage.write_bytes("d/f", b"x")
        assert storage.exists("d/f") and not storage.is_dir("d/f")
        assert storage.exists("d") and storage.is_dir("d")
        assert not storage.exists("e") and not storage.is_dir("e")

    def test_list_gives_sorted_direct_children(self, storage: Storage) -> None:
        for key in ("d/b", "d/a", "d/sub/deep", "other"):
            storage.write_bytes(key, b"x")
        assert storage.list("d") == ["a", "b", "sub"]
        assert storage.list("missing") == []

    def test_makedirs_then_write_inside(self, storage: Storage) -> None:
        storage.makedirs("x/y")
        storage.makedirs("x/y")
        storage.write_bytes("x/y/z", b"1")
        assert storage.list("x/y") == ["z"]

    def test_remove_file_dir_and_missing(self, storage: Storage) -> None:
        storage.write_bytes("r/f", b"x")
        storage.write_bytes("r/sub/g", b"y")
        storage.remove("r/f")
        assert not storage.exists("r/f")
        storage.remove("r/never-there")
        storage.remove("r", recursive=True)
        assert not storage.exists("r/sub/g")
        assert storage.list("r") == []

    def test_remove_many_removes_exactly_the_keys_given(self, storage: Storage) -> None:
        # A key with glob characters is a literal name: "g[12]" must not take "g1" with it.
        for key in ("m/a", "m/b", "m/sub/c", "m/keep", "m/g[12]", "m/g1"):
            storage.write_bytes(key, b"x")
        storage.remove_many(["m/a", "m/sub/c", "m/never-there", "m/g[12]", "m/b"])
        assert [storage.exists(k) for k in ("m/a", "m/b", "m/sub/c", "m/g[12]")] == [False] * 4
        assert storage.read_bytes("m/keep") == b"x" and storage.read_bytes("m/g1") == b"x"
        storage.remove_many([])
        storage.remove_many(["m/a", "m/never-there"])  # all gone already: nothing to do

    @pytest.mark.parametrize("bad", ["../escape", "", "a//b"])
    def test_remove_many_checks_every_key_before_removing_any(
        self, storage: Storage, bad: str
    ) -> None:
        storage.write_bytes("m/keep", b"x")
        with pytest.raises(StorageError, match="storage key"):
            storage.remove_many(["m/keep", bad])
        assert storage.read_bytes("m/keep") == b"x"

    def test_size(self, storage: Storage) -> None:
        storage.write_bytes("s", b"12345")
        assert storage.size("s") == 5

    def test_modified_is_when_the_file_was_written(self, storage: Storage) -> None:
        # Second-granular stamps (S3) and a server clock a little off are within the margin.
        margin = timedelta(seconds=5)
        before = datetime.now(UTC)
        storage.write_bytes("m/f", b"x")
        stamp = storage.modified("m/f")
        if stamp is not None:
            assert stamp.tzinfo is not None
            assert before - margin <= stamp <= datetime.now(UTC) + margin
        with pytest.raises(FileNotFoundError):
            storage.modified("m/missing")

    def test_put_file_copies_a_local_file(self, storage: Storage, tmp_path: Path) -> None:
        src = tmp_path / "payload.bin"
        src.write_bytes(bytes(range(256)) * 100)
        storage.put_file(src, "p/payload.bin")
        assert storage.read_bytes("p/payload.bin") == src.read_bytes()

    def test_open_write_is_visible_only_after_close(self, storage: Storage) -> None:
        stream = storage.open("w/file", "wb")
        stream.write(b"part one, ")
        stream.write(b"part two")
        assert not storage.exists("w/file")
        stream.close()
        assert storage.read_bytes("w/file") == b"part one, part two"

    def test_open_write_failing_keeps_the_old_content(self, storage: Storage) -> None:
        storage.write_bytes("w/file", b"old")

        def write_then_fail() -> None:
            with storage.open("w/file", "wb") as stream:
                stream.write(b"new but incomplete")
                raise RuntimeError("writer failed")

        with pytest.raises(RuntimeError):
            write_then_fail()
        assert storage.read_bytes("w/file") == b"old"
        assert [n for n in storage.list("w") if n != "file"] == []

    def test_open_write_dropped_without_close_keeps_the_old_content(self, storage: Storage) -> None:
        storage.write_bytes("w/file", b"old")
        stream = storage.open("w/file", "wb")
        stream.write(b"half")
        del stream
        gc.collect()
        assert storage.read_bytes("w/file") == b"old"
        assert [n for n in storage.list("w") if n != "file"] == []

    def test_open_read_streams(self, storage: Storage) -> None:
        storage.write_bytes("big", b"0123456789" * 1000)
        with storage.open("big", "rb") as stream:
            assert stream.read(10) == b"0123456789"
            assert len(stream.read()) == 9990

    def test_append_adds_to_the_end(self, storage: Storage) -> None:
        with storage.open("log/a.log", "ab") as stream:
            stream.write(b"one\n")
        with storage.open("log/a.log", "ab") as stream:
            stream.write(b"two\n")
        assert storage.read_bytes("log/a.log") == b"one\ntwo\n"

    @pytest.mark.parametrize("key", ["../escape", "/abs", "a/../../b", "a//b", "a\\b", "a\x00b"])
    def test_keys_that_escape_are_refused(self, storage: Storage, key: str) -> None:
        with pytest.raises(StorageError, match="storage key"):
            storage.write_bytes(key, b"x")
        with pytest.raises(StorageError, match="storage key"):
            storage.read_bytes(key)

    def test_url_for_names_the_key(self, storage: Storage) -> None:
        assert storage.url_for("a/b.json").endswith("a/b.json")
