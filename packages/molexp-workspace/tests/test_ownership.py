"""Ownership of a running run (DESIGN §3): who runs it, whether that owner is still there, and
how other processes deal with it, with real child processes where a process has to die or live.

Subprocess tests use the local backend (a ``memory://`` store cannot be shared between
processes); the tests that forge owner records run against both backends.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import uuid4

import fsspec
import pytest

import molexp as me
from molexp.workspace import Liveness, RunStateError, RunStatus
from molexp.workspace._ownership import boot_id, hostname, process_start

MEMFS = fsspec.filesystem("memory")


def _forget_memory(root: str) -> None:
    """Drop everything at or below ``root`` from the process-wide in-memory filesystem."""
    for key in [k for k in MEMFS.store if k == root or k.startswith(root + "/")]:
        MEMFS.store.pop(key, None)
    MEMFS.pseudo_dirs[:] = [
        d for d in MEMFS.pseudo_dirs if d != root and not d.startswith(root + "/")
    ]


TIMEOUT = 60

# -- child processes ---------------------------------------------------------------------------

# Enters the run, records a result, says "ready", then dies without any cleanup (os._exit) or
# sleeps until the parent kills it.
DIES = """
import os, sys, time
from molexp.workspace import RunContext
with RunContext.open(sys.argv[1]) as ctx:
    ctx.set_result("partial", 41)
    print("ready", flush=True)
    if sys.argv[2] == "exit":
        os._exit(1)
    time.sleep(60)
"""

# Holds the run until the go file appears, then checks for cancellation in a loop.
HOLDS = """
import os, sys, time
from pathlib import Path
from molexp.workspace import RunContext
go = Path(sys.argv[2])
deadline = time.monotonic() + 30
with RunContext.open(sys.argv[1]) as ctx:
    ctx.set_result("before", 1)
    print("ready", flush=True)
    while not go.exists():
        if time.monotonic() > deadline:
            os._exit(3)
        time.sleep(0.01)
    while True:
        ctx.check_cancelled()
        if time.monotonic() > deadline:
            os._exit(4)
        time.sleep(0.01)
print("left", flush=True)
"""

# Holds the run with a fast heartbeat and never checks for cancellation itself.
BEATS = """
import os, sys, time
from pathlib import Path
from molexp.workspace import RunContext
go = Path(sys.argv[2])
deadline = time.monotonic() + 30
run = RunContext.open(sys.argv[1]).run
with run.start(heartbeat_interval=0.05) as ctx:
    ctx.set_result("before", 1)
    print("ready", flush=True)
    while not go.exists():
        if time.monotonic() > deadline:
            os._exit(3)
        time.sleep(0.01)
print("left", run.status.value, flush=True)
"""


def _spawn(script: str, *args: object) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(script), *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    if line != "ready":
        proc.kill()
        _, err = proc.communicate()
        pytest.fail(f"child did not start: {line!r} {err}")
    return proc


@pytest.fixture
def children():
    """Child processes to clean up, whatever happens in the test."""
    procs: list[subprocess.Popen[str]] = []
    yield procs
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


@pytest.fixture
def local_run(tmp_path):
    ws = me.Workspace(tmp_path / "lab")
    return ws.Project("P").Experiment("E").Run(parameters={"x": 1})


def _on_disk(run: me.Run) -> dict:
    return json.loads(Path(run.run_dir, "run.json").read_text())


# -- an owner that died ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("death", "recover"),
    [
        ("exit", "mark_failed_if_dead"),
        ("exit", "start"),
        ("exit", "cancel"),
        ("sigkill", "mark_failed_if_dead"),
    ],
)
def test_run_whose_owner_died_is_dead_and_can_be_recovered(local_run, children, death, recover):
    run = local_run
    child = _spawn(DIES, run.run_dir, death)
    children.append(child)
    if death == "sigkill":
        os.kill(child.pid, signal.SIGKILL)
    child.communicate(timeout=TIMEOUT)
    assert child.returncode in (1, -signal.SIGKILL)

    assert run.reload().status == RunStatus.RUNNING
    assert run.results == {"partial": 41}  # set_result was durable before the death
    owner = run.metadata.owner
    assert owner is not None and owner.pid == child.pid and owner.host == hostname()
    assert owner.process_start is not None
    assert run.liveness() == Liveness.DEAD

    if recover == "mark_failed_if_dead":
        assert run.mark_failed_if_dead() is True
        assert run.status == RunStatus.FAILED
        assert run.error is not None and run.error.type == "OwnerLost"
        assert f"pid {child.pid}" in run.error.message
        record = _on_disk(run)
        assert record["status"] == "failed" and record["owner"] is None
        assert record["error"]["type"] == "OwnerLost"
        assert record["error"]["execution_id"] == owner.execution_id
        assert record["execution_history"][0]["status"] == "failed"
        assert record["execution_history"][0]["finished_at"] is not None
        assert run.mark_failed_if_dead() is False  # nothing left to mark
        assert run.liveness() == Liveness.NOT_RUNNING
    elif recover == "cancel":
        run.cancel("owner gone")
        assert run.status == RunStatus.CANCELLED
        assert _on_disk(run)["status"] == "cancelled"
        assert not Path(run.run_dir, "cancel-request.json").exists()

    with run.start() as ctx:
        assert ctx.get_result("partial") == 41
        ctx.set_result("second", 2)
    record = _on_disk(run)
    assert record["status"] == "succeeded" and record["error"] is None
    assert record["results"] == {"partial": 41, "second": 2}
    history = run.metadata.execution_history
    assert len(history) == 2
    first_status = RunStatus.CANCELLED if recover == "cancel" else RunStatus.FAILED
    assert [h.status for h in history] == [first_status, RunStatus.SUCCEEDED]
    assert history[0].pid == child.pid and history[1].pid == os.getpid()
    assert history[0].execution_id == owner.execution_id != history[1].execution_id
    if recover != "cancel":
        assert history[0].error is not None and history[0].error.type == "OwnerLost"


def test_owner_killed_but_not_yet_reaped_is_dead(local_run, children):
    """A killed owner whose parent has not waited for it yet is a zombie: it still has a pid
    and a /proc entry, but it is gone and will never finish the run."""
    run = local_run
    child = _spawn(DIES, run.run_dir, "sleep")
    children.append(child)
    os.kill(child.pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while Path(f"/proc/{child.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
        assert time.monotonic() < deadline, "the child did not become a zombie"
        time.sleep(0.01)
    assert run.liveness() == Liveness.DEAD
    assert run.mark_failed_if_dead() is True


# -- an owner that is alive --------------------------------------------------------------------


def test_live_owner_keeps_its_run_and_honours_a_cancel_request(local_run, children, tmp_path):
    run = local_run
    go = tmp_path / "go"
    child = _spawn(HOLDS, run.run_dir, go)
    children.append(child)
    run_json = Path(run.run_dir, "run.json")
    request_file = Path(run.run_dir, "cancel-request.json")

    assert run.reload().status == RunStatus.RUNNING
    assert run.metadata.owner is not None and run.metadata.owner.pid == child.pid
    assert run.liveness() == Liveness.ALIVE
    assert run.mark_failed_if_dead() is False
    assert run.mark_failed_if_dead(include_stale=True) is False
    before = run_json.read_bytes()
    with pytest.raises(RunStateError) as info, run.start():
        pass
    assert f"pid {child.pid}" in str(info.value) and hostname() in str(info.value)

    run.cancel("stop please")
    # The owner is the only writer of run.json: the request is a separate file.
    assert run_json.read_bytes() == before
    request = json.loads(request_file.read_text())
    assert request["reason"] == "stop please" and request["pid"] == os.getpid()
    assert run.cancel_requested
    assert run.status == RunStatus.RUNNING

    go.touch()
    out, err = child.communicate(timeout=TIMEOUT)
    assert child.returncode == 0, err
    assert out.strip() == "left"

    run.reload()
    assert run.status == RunStatus.CANCELLED
    assert run.error is not None and run.error.type == "Cancelled"
    assert run.error.message == "stop please"
    assert not request_file.exists()
    assert run.results == {"before": 1}
    assert run.metadata.owner is None
    assert [h.status for h in run.metadata.execution_history] == [RunStatus.CANCELLED]
    assert run.liveness() == Liveness.NOT_RUNNING


def test_heartbeat_advances_and_a_cancel_request_is_honoured_unasked(local_run, children, tmp_path):
    run = local_run
    go = tmp_path / "go"
    child = _spawn(BEATS, run.run_dir, go)
    children.append(child)
    run_json = Path(run.run_dir, "run.json")

    first = json.loads(run_json.read_text())["owner"]
    assert first["heartbeat_interval"] == 0.05
    # Every read sees a whole record while the owner rewrites it 20 times a second.
    beats = set()
    deadline = time.monotonic() + 10
    while len(beats) < 4:
        assert time.monotonic() < deadline, "the heartbeat did not advance"
        record = json.loads(run_json.read_bytes())
        assert record["status"] == "running" and record["results"] == {"before": 1}
        beats.add(record["owner"]["heartbeat_at"])
        time.sleep(0.005)
    assert max(beats) > first["heartbeat_at"]

    run.cancel("via heartbeat")
    assert run.status == RunStatus.RUNNING
    # The owner honours the request although its body never checks for one.
    go.touch()
    out, err = child.communicate(timeout=TIMEOUT)
    assert child.returncode == 0, err
    assert out.split() == ["left", "cancelled"]
    run.reload()
    assert run.status == RunStatus.CANCELLED and run.error is not None
    assert run.error.message == "via heartbeat"
    assert run.results == {"before": 1}
    assert not Path(run.run_dir, "cancel-request.json").exists()


# -- forged owner records (both backends) ------------------------------------------------------


@pytest.fixture(params=["local", "memory"])
def any_ws(request, tmp_path):
    if request.param == "local":
        yield me.Workspace(tmp_path / "lab")
        return
    ws = me.Workspace(f"memory://t-{uuid4().hex}")
    yield ws
    _forget_memory(ws.storage.root)  # type: ignore[attr-defined]


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _forge_owner(run: me.Run, **fields: object) -> bytes:
    """Make a run that no process executes look like it is running under ``fields``."""
    key = f"{run.key}/run.json"
    record = json.loads(run.storage.read_bytes(key))
    now = datetime.now(UTC)
    owner = {
        "host": "node-17.cluster.example",
        "pid": 4242,
        "process_start": "12345",
        "boot_id": "0b5e55ed-0000-4000-8000-000000000000",
        "execution_id": "20250101T000000-abcdef",
        "heartbeat_at": now.isoformat(),
        "heartbeat_interval": 30.0,
    }
    owner.update(fields)
    record.update(
        status="running",
        started_at=now.isoformat(),
        owner=owner,
        execution_history=[
            {
                "execution_id": owner["execution_id"],
                "status": "running",
                "started_at": now.isoformat(),
                "host": owner["host"],
                "pid": owner["pid"],
            }
        ],
    )
    data = json.dumps(record, indent=2).encode()
    run.storage.write_bytes(key, data)
    run.reload()
    return data


def _ago(seconds: float) -> str:
    return (datetime.now(UTC) - timedelta(seconds=seconds)).isoformat()


@pytest.mark.parametrize(
    ("age", "expected"),
    [(0, Liveness.ALIVE), (60, Liveness.ALIVE), (100, Liveness.STALE), (7200, Liveness.STALE)],
)
def test_remote_owner_is_alive_or_stale_never_dead(any_ws, age, expected):
    run = any_ws.Project("P").Experiment("E").Run()
    # The pid does not exist here: that says nothing about a process on another host.
    data = _forge_owner(run, pid=_dead_pid(), heartbeat_at=_ago(age), heartbeat_interval=30.0)
    key = f"{run.key}/run.json"

    assert run.liveness() == expected
    assert run.mark_failed_if_dead() is False
    assert run.storage.read_bytes(key) == data
    assert run.reload().status == RunStatus.RUNNING
    with pytest.raises(RunStateError, match=r"node-17\.cluster\.example"), run.start():
        pass
    assert run.storage.read_bytes(key) == data

    marked = run.mark_failed_if_dead(include_stale=True)
    assert marked is (expected == Liveness.STALE)
    record = json.loads(run.storage.read_bytes(key))
    if marked:
        assert record["status"] == "failed" and record["owner"] is None
        assert record["error"]["type"] == "OwnerLost"
        assert "node-17.cluster.example" in record["error"]["message"]
        assert "stale" in record["error"]["message"]
        assert record["execution_history"][0]["status"] == "failed"
    else:
        assert run.storage.read_bytes(key) == data


def test_cancel_of_a_remote_run_is_a_request_not_a_rewrite(any_ws):
    run = any_ws.Project("P").Experiment("E").Run()
    data = _forge_owner(run)
    run.cancel("from the login node")
    assert run.storage.read_bytes(f"{run.key}/run.json") == data
    assert run.cancel_requested
    request = json.loads(run.storage.read_bytes(f"{run.key}/cancel-request.json"))
    assert request["reason"] == "from the login node" and request["host"] == hostname()
    assert run.reload().status == RunStatus.RUNNING


@pytest.mark.parametrize(
    "case",
    ["dead-pid", "reused-pid", "previous-boot", "alive"],
)
def test_owner_on_this_host(any_ws, case):
    run = any_ws.Project("P").Experiment("E").Run()
    me_pid = os.getpid()
    fields: dict[str, object] = {
        "host": hostname(),
        "boot_id": boot_id(),
        "pid": me_pid,
        "process_start": process_start(me_pid),
        "heartbeat_at": _ago(7200),
    }
    if case == "dead-pid":
        fields["pid"] = _dead_pid()
    elif case == "reused-pid":  # our pid, but another process started under it back then
        fields["process_start"] = "1"
    elif case == "previous-boot":
        fields["boot_id"] = "0b5e55ed-0000-4000-8000-000000000000"
    data = _forge_owner(run, **fields)
    key = f"{run.key}/run.json"

    if case == "alive":
        # A live local owner is alive however old its heartbeat (a long blocking call).
        assert run.liveness() == Liveness.ALIVE
        assert run.mark_failed_if_dead(include_stale=True) is False
        assert run.storage.read_bytes(key) == data
        with pytest.raises(RunStateError, match=f"pid {me_pid}"), run.start():
            pass
        return
    assert run.liveness() == Liveness.DEAD
    assert run.mark_failed_if_dead() is True
    record = json.loads(run.storage.read_bytes(key))
    assert record["status"] == "failed" and record["error"]["type"] == "OwnerLost"
    assert f"pid {fields['pid']}" in record["error"]["message"]


def test_cancel_of_a_run_whose_owner_is_dead_cancels_at_once(any_ws):
    run = any_ws.Project("P").Experiment("E").Run()
    _forge_owner(run, host=hostname(), boot_id=boot_id(), pid=_dead_pid())
    run.cancel("cleanup")
    record = json.loads(run.storage.read_bytes(f"{run.key}/run.json"))
    assert record["status"] == "cancelled" and record["owner"] is None
    assert record["error"] == {**record["error"], "type": "Cancelled", "message": "cleanup"}
    assert record["execution_history"][0]["status"] == "cancelled"
    assert not run.storage.exists(f"{run.key}/cancel-request.json")


def test_succeeded_run_cannot_be_cancelled(any_ws):
    run = any_ws.Project("P").Experiment("E").Run()
    with run.start():
        pass
    before = run.storage.read_bytes(f"{run.key}/run.json")
    with pytest.raises(RunStateError, match="already succeeded"):
        run.cancel()
    assert run.storage.read_bytes(f"{run.key}/run.json") == before
