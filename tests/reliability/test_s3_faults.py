"""An S3 server that answers errors, answers slowly, or cuts connections during a run (issue 8).

The workspace talks to moto's S3 server (molexp_storage_s3.testing.MotoServer, as the plugin's
own tests do) through a small HTTP proxy in this process that injects faults into chosen
requests. What packages/molexp-storage-s3/tests already cover is not repeated here: a stopped
server during an artifact save (log spill, no pending row), a wrong endpoint, a missing bucket,
missing credentials, a frozen server on a read. Here:

* every request answered ``503 SlowDown`` while a run sets a result: bounded retries (counted at
  the proxy), a clear error naming the endpoint, ``run.json`` in the bucket still the last whole
  version; once the process is gone, the run is recognisably dead and a new attempt works;
* transient ``500`` errors: retried, invisible to the run;
* a slow server: waited for within ``read_timeout``, a clear error past it, nothing torn;
* the connection cut during a multipart upload: a clear error saying so, no object, no pending
  catalog row, no multipart upload left open;
* the catalog journal unwritable while artifacts are saved, re-saved and a project deleted: each
  operation succeeds (the records are the truth) with a ``CatalogJournalWarning``, and another
  machine sees exactly the records after a rebuild;
* two machines on one workspace, one with a stale catalog cache re-saving and deleting what the
  other registered: every catalog ends up agreeing with the records, and no record points at a
  missing or replaced payload.

The proxy is :class:`molexp_storage_s3.testing.FaultProxy`.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

import molexp as me
from molexp.workspace import AssetKind, CatalogJournalWarning, Liveness, RunStatus, StorageError
from molexp_storage_s3.testing import Fault, FaultProxy, MotoServer, fake_credentials

BUCKET = "reliability"


@pytest.fixture(scope="module")
def moto() -> Iterator[MotoServer]:
    with fake_credentials(), MotoServer() as server:
        server.create_bucket(BUCKET)
        yield server


@pytest.fixture
def proxy(moto: MotoServer) -> Iterator[FaultProxy]:
    proxy = FaultProxy(moto.endpoint)
    yield proxy
    proxy.close()


@pytest.fixture
def url(moto: MotoServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh workspace prefix; catalog caches in this test's directory."""
    monkeypatch.setenv("MOLEXP_CACHE_DIR", str(tmp_path / "cache"))
    return f"s3://{BUCKET}/{uuid.uuid4().hex[:12]}"


def direct(url: str, moto: MotoServer, tmp_path: Path) -> me.Workspace:
    """The workspace as a healthy client sees it: straight to the server, a fresh cache."""
    os.environ["MOLEXP_CACHE_DIR"] = str(tmp_path / f"cache-{uuid.uuid4().hex[:6]}")
    return me.Workspace.load(url, storage_options={"endpoint_url": moto.endpoint})


def fail_all(status: int = 503, code: str = "SlowDown") -> Callable[[str, str], Fault]:
    return lambda method, path: ("error", status, code)


# -- errors: bounded retries, a clear error, the last whole record ------------------------------

CHILD = textwrap.dedent(
    """
    import json, sys, time
    import molexp as me
    from molexp.workspace import StorageError

    url, endpoint = sys.argv[1], sys.argv[2]
    options = {"endpoint_url": endpoint, "max_attempts": 3, "connect_timeout": 1,
               "read_timeout": 2}
    ws = me.Workspace(url, storage_options=options)
    run = ws.Project("p").Experiment("e").Run(id="r")
    with run.start(heartbeat_interval=3600) as ctx:
        ctx.set_result("a", 1)
        ctx.artifact.save("before.json", {"x": 1})
        print("ready", flush=True)
        sys.stdin.readline()
        started = time.monotonic()
        try:
            ctx.set_result("b", 2)
        except StorageError as exc:
            print(json.dumps({"error": str(exc), "seconds": time.monotonic() - started}),
                  flush=True)
            sys.stdin.readline()  # the parent counts the requests, then lets us die
            raise
        print(json.dumps({"error": None}), flush=True)
    """
)


def test_server_errors_mid_run_are_retried_a_bounded_number_of_times(
    url: str, proxy: FaultProxy, moto: MotoServer, tmp_path: Path
) -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, url, proxy.endpoint],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ),
    )
    try:
        assert child.stdout is not None and child.stdin is not None
        assert child.stdout.readline().strip() == "ready", child.stderr and child.stderr.read()
        before = len(proxy.seen)
        proxy.fault = fail_all()
        child.stdin.write("go\n")
        child.stdin.flush()
        outcome = json.loads(child.stdout.readline())
        tried = proxy.seen[before:]
        child.stdin.write("die\n")
        child.stdin.flush()
        child.wait(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        for stream in (child.stdin, child.stdout, child.stderr):
            if stream is not None:
                stream.close()
    proxy.heal()

    message = outcome["error"]
    assert message is not None
    assert f"S3 write of {url}/projects/p/experiments/e/runs/run-r/run.json failed" in message
    assert proxy.endpoint in message
    # The wording says what happened, how often, and which option allows more retries.
    said = re.search(r"kept answering 503 SlowDown \(busy\) after (\d+) attempts", message)
    assert said is not None, message
    assert int(said.group(1)) == len(tried)
    assert "storage option 'max_attempts', now 3" in message
    assert "Errno" not in message
    assert outcome["seconds"] < 30
    # One PUT of run.json: botocore's 3 attempts, twice at most (s3fs re-calls once).
    assert all(method == "PUT" and path.endswith("/run.json") for method, path, _ in tried)
    assert 3 <= len(tried) <= 6, tried
    assert child.returncode != 0
    print(
        f"\n503 on every request: {len(tried)} PUTs of run.json, then a StorageError after "
        f"{outcome['seconds']:.1f} s"
    )

    # In the bucket: the last whole run.json; the process is gone, so the run is dead.
    ws = direct(url, moto, tmp_path)
    run = ws.project("p").experiment("e").get_run("r")
    assert run.results == {"a": 1}
    assert run.status == RunStatus.RUNNING and run.liveness() == Liveness.DEAD
    assert run.mark_failed_if_dead()
    with run.start() as ctx:
        ctx.set_result("b", 2)
    assert run.reload().status == RunStatus.SUCCEEDED
    assert run.results == {"a": 1, "b": 2}
    (before_json,) = ws.catalog.query_assets(kind=AssetKind.ARTIFACT, run=run)
    assert before_json.load() == {"x": 1}


def test_transient_errors_are_retried_without_the_run_noticing(
    url: str, proxy: FaultProxy, moto: MotoServer, tmp_path: Path
) -> None:
    ws = me.Workspace(url, storage_options={"endpoint_url": proxy.endpoint, "max_attempts": 4})
    run = ws.Project("p").Experiment("e").Run(id="r")
    failures = {"left": 0}

    def two_then_fine(method: str, path: str) -> Fault:
        if failures["left"] > 0:
            failures["left"] -= 1
            return ("error", 500, "InternalError")
        return None

    proxy.fault = two_then_fine
    with run.start(heartbeat_interval=3600) as ctx:
        for i in range(2):
            failures["left"] = 2
            ctx.set_result(f"r{i}", i)
            failures["left"] = 2
            ctx.artifact.save(f"a{i}.json", {"i": i})
    assert sum(1 for *_, outcome in proxy.seen if outcome == "error") == 8
    fresh = direct(url, moto, tmp_path)
    run = fresh.project("p").experiment("e").get_run("r")
    assert run.status == RunStatus.SUCCEEDED
    assert run.results == {"r0": 0, "r1": 1}
    loaded = {a.name: a.load() for a in fresh.catalog.query_assets(kind="artifact", run=run)}
    assert loaded == {f"a{i}.json": {"i": i} for i in range(2)}


# -- a slow server ------------------------------------------------------------------------------


def test_a_slow_server_is_waited_for_within_the_timeout_then_a_clear_error(
    url: str, proxy: FaultProxy, moto: MotoServer, tmp_path: Path
) -> None:
    options = {"endpoint_url": proxy.endpoint, "max_attempts": 2, "read_timeout": 1.5}
    ws = me.Workspace(url, storage_options=options)
    run = ws.Project("p").Experiment("e").Run(id="r")
    with run.start(heartbeat_interval=3600) as ctx:
        proxy.fault = lambda method, path: ("delay", 0.4)  # slow, within the timeout
        ctx.set_result("slow", 1)
        ctx.artifact.save("slow.json", {"slow": True})
        proxy.fault = lambda method, path: ("delay", 3.0)  # past the timeout
        started = time.monotonic()
        with pytest.raises(StorageError) as info:
            ctx.set_result("late", 2)
        elapsed = time.monotonic() - started
        proxy.heal()
    assert "did not answer within 1.5 s" in str(info.value)
    assert proxy.endpoint in str(info.value)
    assert elapsed < 15, elapsed  # 2 attempts x 2 tries x 1.5 s, plus backoff
    print(f"\nserver slower than read_timeout=1.5 s: a StorageError after {elapsed:.1f} s")
    time.sleep(3.5)  # let the delayed requests reach the server, as they would

    fresh = direct(url, moto, tmp_path)
    run = fresh.project("p").experiment("e").get_run("r")  # whole, old or new: never torn
    assert run.results in ({"slow": 1}, {"slow": 1, "late": 2})
    (slow,) = fresh.catalog.query_assets(kind="artifact", run=run)
    assert slow.load() == {"slow": True}


# -- a connection cut during a multipart upload ---------------------------------------------------


def test_a_connection_cut_during_a_multipart_upload_leaves_nothing_half_written(
    url: str, proxy: FaultProxy, moto: MotoServer, tmp_path: Path
) -> None:
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(12 << 20))
    options = {
        "endpoint_url": proxy.endpoint,
        "max_attempts": 2,
        "multipart_threshold": 5 << 20,
        "part_size": 5 << 20,
    }
    ws = me.Workspace(url, storage_options=options)
    run = ws.Project("p").Experiment("e").Run(id="r")
    with run.start(heartbeat_interval=3600) as ctx:
        ctx.artifact.save("big.bin", b"the first, small version")
        proxy.fault = lambda method, path: ("reset",) if "partNumber=2" in path else None
        with pytest.raises(StorageError) as info:
            ctx.artifact.save("big.bin", big)
        proxy.heal()
        message = str(info.value)
        assert f"S3 upload of {url}/{run.key}/artifacts/big.bin failed" in message
        assert (
            f"the connection to the S3 endpoint {proxy.endpoint} was reset during the request "
            "(ConnectionResetError)"
        ) in message
        assert "the write did not complete, and nothing half-written is visible" in message
        assert "cannot connect" not in message
        # Nothing half-registered: no pending row; the artifact is the old one or none (its
        # old record was withdrawn before the upload), never a record over another payload.
        pending = ws.catalog.index.db.execute("SELECT count(*) FROM assets WHERE committed = 0")
        assert pending.fetchone() == (0,)
        ctx.artifact.save("big.bin", big)  # the network is back: saving again works
    assert big.read_bytes()  # the source is untouched

    fresh = direct(url, moto, tmp_path)
    run = fresh.project("p").experiment("e").get_run("r")
    (saved,) = fresh.catalog.query_assets(kind="artifact", run=run)
    assert saved.read_bytes() == big.read_bytes()
    storage: Any = fresh.storage
    uploads = storage.call("list_multipart_uploads", "", Prefix=storage.object_key(""))
    assert uploads.get("Uploads", []) == [], "a multipart upload was left open"


# -- several machines, each with its own catalog cache ---------------------------------------------


class Machine:
    """One machine on the workspace: its own catalog cache directory (``MOLEXP_CACHE_DIR``),
    refreshed from the journal only when asked, so that it can be stale."""

    def __init__(
        self, name: str, url: str, endpoint: str, tmp_path: Path, *, create: bool = False
    ) -> None:
        self.cache = tmp_path / f"cache-{name}"
        options: dict[str, Any] = {"endpoint_url": endpoint, "max_attempts": 2}
        with self._cache():
            if create:
                self.ws = me.Workspace(url, storage_options=options)
                self.ws.materialize()
            else:
                self.ws = me.Workspace.load(url, storage_options=options)
            self.ws.catalog.query_assets()  # the cache is built now, in this machine's directory
            self.ws.catalog.refresh_interval = 3600

    @contextmanager
    def _cache(self) -> Iterator[None]:
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("MOLEXP_CACHE_DIR", str(self.cache))
            yield

    @contextmanager
    def active(self) -> Iterator[me.Workspace]:
        """A block in which this machine's catalog cache is the one in use."""
        with self._cache():
            yield self.ws

    def artifacts(self) -> dict[str, Any]:
        """``{name: payload}`` of every artifact this machine's catalog lists, after a refresh."""
        with self.active() as ws:
            ws.catalog.refresh()
            found = ws.catalog.query_assets(kind=AssetKind.ARTIFACT)
            named = {asset.name: asset.load() for asset in found}
            assert len(named) == len(found), f"two assets share a name: {found}"
            return named


def assert_records_match_payloads(ws: me.Workspace) -> None:
    """Every asset record in the store describes a payload that is there, with its hash."""
    for asset in ws.catalog.query_assets():
        record = asset.record
        assert ws.storage.exists(record.payload), f"{record.record} points at a missing payload"
        if record.content_hash is not None and record.encoding != "directory":
            digest = hashlib.sha256(ws.storage.read_bytes(record.payload)).hexdigest()
            assert record.content_hash.endswith(digest), f"{record.record}: payload replaced"


# -- the catalog journal unwritable ---------------------------------------------------------------


def refuse_journal(method: str, path: str) -> Fault:
    """503 SlowDown to every write of a catalog journal entry; everything else goes through."""
    return ("error", 503, "SlowDown") if method == "PUT" and "/.molexp/journal/" in path else None


def test_an_unwritable_journal_fails_no_save_and_a_rebuild_shows_everything(
    url: str, proxy: FaultProxy, moto: MotoServer, tmp_path: Path
) -> None:
    a = Machine("a", url, proxy.endpoint, tmp_path, create=True)
    b = Machine("b", url, moto.endpoint, tmp_path)
    with a.active() as ws:
        run = ws.Project("p").Experiment("e").Run(id="r")
        with run.start(heartbeat_interval=3600) as ctx:
            proxy.fault = refuse_journal
            try:
                with pytest.warns(CatalogJournalWarning) as first:
                    saved = ctx.artifact.save("a.json", {"a": 1})
                with pytest.warns(CatalogJournalWarning) as again:
                    ctx.artifact.save("a.json", {"a": 2})  # withdraw (forget) and register
            finally:
                proxy.heal()
        assert run.reload().status == RunStatus.SUCCEEDED
        assert saved.load() == {"a": 1} or saved.load() == {"a": 2}
        assert {x.name: x.load() for x in ws.catalog.query_assets(kind="artifact")} == {
            "a.json": {"a": 2}
        }

    (warned,) = [str(w.message) for w in first]
    record_url = f"{url}/{run.key}/.assets/artifact/a.json.json"
    assert warned.startswith(f"artifact 'a.json' is saved (its record is {record_url}), but the ")
    assert f"catalog journal entry {url}/.molexp/journal/" in warned
    assert "kept answering 503 SlowDown (busy)" in warned
    assert "other machines could not be written" in warned
    assert warned.endswith(
        "they will see the change only after their next catalog rebuild: run `molexp reindex` "
        "(or ws.catalog.rebuild()) on them"
    )
    assert sorted(str(w.message).split(",")[0] for w in again) == [
        "artifact 'a.json' is saved (its record is " + record_url + ")",
        f"the assets of record_key='{run.key}/.assets/artifact/a.json.json' are withdrawn",
    ]
    # Each entry was tried twice, under the same name, with botocore's attempts each time.
    refused = [path for method, path, outcome in proxy.seen if outcome == "error"]
    said = re.search(r"after (\d+) attempts", warned)
    assert said is not None
    per_try = int(said.group(1))
    assert len(refused) == 3 * 2 * per_try
    assert len(set(refused)) == 3

    # The journal never told machine B; its next rebuild does, and agrees with the records.
    assert b.artifacts() == {}
    with b.active() as other:
        assert other.catalog.rebuild() == 1
    assert b.artifacts() == {"a.json": {"a": 2}}
    assert Machine("c", url, moto.endpoint, tmp_path).artifacts() == {"a.json": {"a": 2}}

    # Deleting the project with the journal refused: done, with a warning; B rebuilds to match.
    with a.active() as ws:
        proxy.fault = refuse_journal
        try:
            with pytest.warns(CatalogJournalWarning, match="the assets of project_id='p'"):
                ws.delete_project("p")
        finally:
            proxy.heal()
        assert ws.list_projects() == [] and ws.catalog.query_assets() == []
    with b.active() as other:
        assert other.catalog.rebuild() == 0
    assert b.artifacts() == {}


def test_a_stale_cache_never_leaves_a_record_over_a_missing_or_replaced_payload(
    url: str, proxy: FaultProxy, moto: MotoServer, tmp_path: Path
) -> None:
    a = Machine("a", url, proxy.endpoint, tmp_path, create=True)
    with a.active() as ws:
        ws.Project("p").Experiment("e")
    b = Machine("b", url, moto.endpoint, tmp_path)

    # B registers two artifacts; A's cache has not heard of them.
    with b.active() as ws:
        run_b = ws.project("p").experiment("e").Run(id="r")
        with run_b.start(heartbeat_interval=3600) as ctx:
            ctx.artifact.save("model.json", {"by": "b"})
            ctx.artifact.save("notes.json", {"notes": "b"})
    with a.active() as ws:
        assert ws.catalog.query_assets() == []  # stale, as a cache between refreshes is

        # A re-saves model.json in that run: B's record is withdrawn before the payload changes.
        with ws.project("p").experiment("e").get_run("r").start(heartbeat_interval=3600) as ctx:
            before = len(proxy.seen)
            ctx.artifact.save("model.json", {"by": "a"})
            sent = [(method, path.split("?")[0]) for method, path, _ in proxy.seen[before:]]
    run_path = f"/{url.removeprefix('s3://')}/{run_b.key}"  # as the proxy sees the keys
    payload_written = sent.index(("PUT", f"{run_path}/artifacts/model.json"))
    assert ("DELETE", f"{run_path}/.assets/artifact/model.json.json") in sent[:payload_written]
    expected = {"model.json": {"by": "a"}, "notes.json": {"notes": "b"}}
    assert b.artifacts() == expected
    c = Machine("c", url, moto.endpoint, tmp_path)
    assert c.artifacts() == expected
    with c.active() as ws:
        assert_records_match_payloads(ws)

    # B registers more; A, still stale, deletes the project and is cut off after withdrawing
    # the records (every later delete refused): no record is left over a deleted payload.
    with b.active() as ws:
        run_b2 = ws.project("p").experiment("e").Run(id="r2")
        with run_b2.start(heartbeat_interval=3600) as ctx:
            ctx.artifact.save("more.json", {"more": True})
    deletes = {"count": 0}

    def refuse_after_first_delete(method: str, path: str) -> Fault:
        if method == "POST" and path.endswith("?delete"):
            deletes["count"] += 1
            return ("error", 403, "AccessDenied") if deletes["count"] > 1 else None
        return None

    with a.active() as ws:
        proxy.fault = refuse_after_first_delete
        try:
            with pytest.raises(StorageError, match="access denied"):
                ws.delete_project("p")
        finally:
            proxy.heal()
        assert deletes["count"] == 2  # one batch for every record, then the refused tree delete
    for machine in (a, b, Machine("d", url, moto.endpoint, tmp_path)):
        assert machine.artifacts() == {}
        with machine.active() as ws:
            assert [p.id for p in ws.list_projects()] == ["p"]  # deleting again finishes it
    records = [k for k in _keys(a.ws, "projects/p") if "/.assets/" in k]
    assert records == []
    payloads = [k for k in _keys(a.ws, "projects/p") if "/artifacts/" in k]
    assert len(payloads) == 3  # left for the next delete, described by no record

    with a.active() as ws:
        ws.delete_project("p")
    for machine in (a, b):
        with machine.active() as ws:
            assert ws.list_projects() == []
    assert _keys(a.ws, "projects/p") == []


def _keys(ws: me.Workspace, key: str) -> list[str]:
    """Every file key below ``key``."""
    found = []
    for name, is_dir in ws.storage.list_entries(key):
        child = f"{key}/{name}"
        found.extend(_keys(ws, child) if is_dir else [child])
    return found
