"""S3Storage passes the storage conformance suite, plus what is specific to S3: multipart write
streams, chunked log streaming, conditional writes and request counts."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time
from typing import Any

import pytest

from molexp.workspace import StorageError
from molexp.workspace.storage import Storage
from molexp.workspace.storage.conformance import StorageConformance
from molexp_storage_s3 import S3Storage

MIB = 1 << 20


class TestS3Conformance(StorageConformance):
    """Every behaviour the workspace layer relies on, against the moto server over HTTP."""

    @pytest.fixture
    def storage(self, s3_url: str, options: dict[str, Any]) -> Storage:
        return S3Storage.from_url(s3_url, **options)


def _uploads(storage: S3Storage) -> list[Any]:
    listed = storage.call("list_multipart_uploads", "", Prefix=storage.prefix)
    return list(listed.get("Uploads", []))


# -- write streams ------------------------------------------------------------------------------


def test_small_write_stream_is_one_put(storage: S3Storage) -> None:
    with storage.requests.track() as sent, storage.open("w/small", "wb") as stream:
        for _ in range(100):
            stream.write(b"x" * 1000)
    assert [r.method for r in sent] == ["PUT"]
    assert storage.size("w/small") == 100_000


def test_large_write_stream_is_multipart_and_complete(s3_url: str, options: dict[str, Any]) -> None:
    storage = S3Storage.from_url(s3_url, **options, multipart_threshold=5 * MIB, part_size=5 * MIB)
    payload = bytes(range(256)) * (12 * MIB // 256 + 7)
    with storage.open("w/big", "wb") as stream:
        for start in range(0, len(payload), 1 << 20):
            stream.write(payload[start : start + (1 << 20)])
        assert not storage.exists("w/big")  # parts are uploaded, the object is not there yet
    assert storage.read_bytes("w/big") == payload
    assert _uploads(storage) == []


def test_failed_large_write_aborts_the_upload(s3_url: str, options: dict[str, Any]) -> None:
    storage = S3Storage.from_url(s3_url, **options, multipart_threshold=5 * MIB, part_size=5 * MIB)
    storage.write_bytes("w/big", b"old")

    def write_then_fail() -> None:
        with storage.open("w/big", "wb") as stream:
            stream.write(b"y" * (11 * MIB))  # two parts are on the server by now
            raise RuntimeError("the writer failed")

    with pytest.raises(RuntimeError):
        write_then_fail()
    assert storage.read_bytes("w/big") == b"old"
    assert _uploads(storage) == []
    assert storage.list("w") == ["big"]


def test_dropped_write_stream_is_never_committed(storage: S3Storage) -> None:
    stream = storage.open("w/dropped", "wb")
    stream.write(b"incomplete")
    del stream
    assert not storage.exists("w/dropped")


# -- conditional writes -------------------------------------------------------------------------


def test_exclusive_writes_race_one_winner(storage: S3Storage) -> None:
    winners: list[int] = []
    losers: list[int] = []
    barrier = threading.Barrier(8)

    def claim(n: int) -> None:
        barrier.wait()
        try:
            storage.write_bytes("claim.json", str(n).encode(), exclusive=True)
            winners.append(n)
        except FileExistsError:
            losers.append(n)

    threads = [threading.Thread(target=claim, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(winners) == 1 and len(losers) == 7
    assert storage.read_bytes("claim.json") == str(winners[0]).encode()


def test_exclusive_large_write_refuses_existing(s3_url: str, options: dict[str, Any]) -> None:
    storage = S3Storage.from_url(s3_url, **options, multipart_threshold=5 * MIB, part_size=5 * MIB)
    storage.write_bytes("big", b"first", exclusive=True)
    with pytest.raises(FileExistsError):
        storage.write_bytes("big", b"z" * (6 * MIB), exclusive=True)
    assert storage.read_bytes("big") == b"first"
    assert _uploads(storage) == []


def test_without_conditional_writes_exclusive_still_refuses_existing(
    s3_url: str, options: dict[str, Any]
) -> None:
    storage = S3Storage.from_url(s3_url, **options, conditional_writes=False)
    storage.write_bytes("f", b"first", exclusive=True)
    with pytest.raises(FileExistsError):
        storage.write_bytes("f", b"second", exclusive=True)


# -- log streaming ------------------------------------------------------------------------------


def test_thousand_appended_lines_make_a_handful_of_requests(storage: S3Storage) -> None:
    with storage.requests.track() as sent:
        with storage.open("logs/train.log", "ab") as stream:
            for i in range(1000):
                stream.write(f"step {i:4d} loss {1 / (i + 1):.6f}\n".encode())
                stream.flush()  # as LogHandle does after every line
        size = storage.size("logs/train.log")
    assert len(sent) <= 3, sent  # HEAD at open, one PUT at close, HEAD for the size
    lines = storage.read_bytes("logs/train.log").decode().splitlines()
    assert len(lines) == 1000 and lines[-1].startswith("step  999")
    assert size == len("".join(f"{line}\n" for line in lines).encode())


def test_log_is_read_back_whole_while_open(storage: S3Storage) -> None:
    stream = storage.open("logs/a.log", "ab")
    stream.write(b"one\n")
    assert storage.read_bytes("logs/a.log") == b"one\n"  # this process reads its own writes
    stream.write(b"two\n")
    assert storage.size("logs/a.log") == 8
    with storage.open("logs/a.log", "rb") as reader:
        assert reader.read() == b"one\ntwo\n"
    stream.close()


def test_idle_log_is_flushed_in_the_background(s3_url: str, options: dict[str, Any]) -> None:
    writer = S3Storage.from_url(s3_url, **options, log_flush_seconds=0.2)
    other = S3Storage.from_url(s3_url, **options)  # another reader: sees only what was uploaded
    stream = writer.open("logs/idle.log", "ab")
    stream.write(b"waiting for the next step\n")
    deadline = time.monotonic() + 5
    while not other.exists("logs/idle.log") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert other.read_bytes("logs/idle.log") == b"waiting for the next step\n"
    stream.close()


def test_log_past_five_mib_is_composed_on_the_server(s3_url: str, options: dict[str, Any]) -> None:
    storage = S3Storage.from_url(s3_url, **options, log_flush_bytes=1 * MIB)
    block = b"0123456789abcde\n" * (MIB // 16)
    with storage.open("logs/long.log", "ab") as stream:
        for _ in range(6):
            stream.write(block)
    with storage.requests.track() as sent, storage.open("logs/long.log", "ab") as stream:
        stream.write(b"the last line\n")
    methods = [r.method for r in sent]
    assert "GET" not in methods  # the 6 MiB already stored are copied on the server, not re-read
    assert storage.read_bytes("logs/long.log") == block * 6 + b"the last line\n"
    assert _uploads(storage) == []


def test_killed_writer_leaves_a_readable_log(
    s3_url: str, options: dict[str, Any], tmp_path: Any
) -> None:
    script = textwrap.dedent(
        f"""
        import sys, time
        from molexp_storage_s3 import S3Storage
        storage = S3Storage.from_url({s3_url!r}, endpoint_url={options["endpoint_url"]!r},
                                     log_flush_seconds=0.1)
        stream = storage.open("logs/killed.log", "ab")
        i = 0
        while True:
            stream.write(b"line %06d\\n" % i)
            stream.flush()
            i += 1
            if i == 50:
                print("ready", flush=True)
            time.sleep(0.002)
        """
    )
    with subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, stdin=subprocess.DEVNULL
    ) as proc:
        try:
            assert proc.stdout is not None
            assert proc.stdout.readline().strip() == b"ready"
            time.sleep(0.6)
        finally:
            proc.kill()  # SIGKILL: no close(), no atexit, no flush
    storage = S3Storage.from_url(s3_url, **options)
    lines = storage.read_bytes("logs/killed.log").decode().splitlines()
    assert len(lines) >= 1
    assert lines == [f"line {i:06d}" for i in range(len(lines))]  # whole lines, none missing


def test_a_store_on_a_whole_bucket(moto: Any, options: dict[str, Any]) -> None:
    moto.create_bucket("whole-bucket")
    storage = S3Storage.from_url("s3://whole-bucket", **options)
    assert storage.url == "s3://whole-bucket" and storage.exists("") and storage.is_dir("")
    storage.write_bytes("workspace.json", b"{}")
    storage.write_bytes("projects/p/project.json", b"{}")
    assert storage.list("") == ["projects", "workspace.json"]
    assert storage.url_for("projects/p") == "s3://whole-bucket/projects/p"
    storage.remove("projects", recursive=True)
    assert storage.list("") == ["workspace.json"]
    with pytest.raises(StorageError, match="refusing to remove s3://whole-bucket"):
        storage.remove("", recursive=True)
