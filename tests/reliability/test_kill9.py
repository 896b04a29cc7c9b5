"""kill -9 at random instants (DESIGN §3 "atomic and durable", issue 8 "fault injection").

For each operation a child process (forked from a warm fork server, see _kill_driver.py) loops
doing it and appends a line to a "reported" file after each operation completes; the test kills it
with SIGKILL after a random delay (seeded), then checks, on a fresh view of the workspace:

* every JSON file parses (temporary ``.*.tmp`` files may remain, and nothing lists them);
* every listing and catalog query works, without a warning; the index matches a rebuild from the
  records, every indexed payload exists and matches its record's size and hash;
* nothing that was reported saved is missing, with its value (results, artifacts, log lines,
  checkpoints, data assets); a moved data asset is at its source or registered in the workspace;
* the killed run is recognisably not finished (running with a DEAD owner, which
  ``mark_failed_if_dead()`` marks failed; or, killed while entering the attempt, as it was before),
  and a new attempt on the same run succeeds.

Trials share one workspace that grows trial after trial (a fresh one every
``TRIALS_PER_WORKSPACE``). CI runs the counts in ``CI_TRIALS``; ``MOLEXP_RELIABILITY_TRIALS=500``
runs that many per operation, ``MOLEXP_RELIABILITY_SEED`` changes the random instants.
"""

from __future__ import annotations

import json
import os
import random
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

import molexp as me
from molexp.workspace import AssetKind, Liveness, NotFoundError, RunStatus
from molexp.workspace._payload import hash_local

DRIVER = Path(__file__).with_name("_kill_driver.py")

#: Trials per operation in CI, and the longest random delay (seconds) before the kill.
CI_TRIALS = {
    "create": 15,
    "lifecycle": 15,
    "artifact": 15,
    "log": 15,
    "checkpoint": 15,
    "import-copy": 15,
    "import-move": 15,
    "catalog": 15,
}
MAX_DELAY = {
    "create": 0.25,
    "lifecycle": 0.4,
    "artifact": 0.5,
    "log": 0.2,
    "checkpoint": 0.4,
    "import-copy": 0.4,
    "import-move": 0.4,
    "catalog": 0.6,
}
#: How many sources the test prepares per import-move trial (more than a child moves in time).
MOVE_SOURCES = 40
#: Trials share one workspace that grows, up to this many; then a fresh one (so that checking
#: everything after each trial stays cheap in the long variant).
TRIALS_PER_WORKSPACE = 25
READ_TIMEOUT = 60.0


# -- the fork server ------------------------------------------------------------------------------


class ForkServer:
    """``python _kill_driver.py``: forks one child per job; we kill the child."""

    def __init__(self, log: Path) -> None:
        self.log = log
        self._stderr = log.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, str(DRIVER)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
        )
        self._buffer = b""
        self._read("warm")

    def _fail(self, why: str) -> None:
        self._stderr.flush()
        pytest.fail(f"{why}\n--- fork server stderr ---\n{self.log.read_text(errors='replace')}")

    def _read(self, key: str) -> dict[str, Any]:
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + READ_TIMEOUT
        while b"\n" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                self._fail(f"no {key!r} message from the fork server within {READ_TIMEOUT} s")
            chunk = os.read(fd, 65536)
            if not chunk:
                self._fail(f"the fork server exited (waiting for {key!r})")
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        message: dict[str, Any] = json.loads(line)
        if "exit" in message and key != "exit":
            self._fail(f"a child exited by itself before it was killed: {message}")
        return message

    def kill_during(self, job: dict[str, Any], delay: float) -> None:
        """Run ``job`` in a fresh child; SIGKILL it ``delay`` seconds after it is ready."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(job).encode() + b"\n")
        self.proc.stdin.flush()
        pid = ready = None
        while pid is None or ready is None:
            message = self._read("ready")
            pid = message.get("pid", pid)
            ready = message.get("ready", ready)
        assert pid == ready
        time.sleep(delay)
        os.kill(pid, signal.SIGKILL)
        message = self._read("exit")
        status = message["status"]
        if not (os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL):
            self._fail(f"child {pid} ended with status {status}, not by SIGKILL")

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self._stderr.close()


@pytest.fixture(scope="module")
def fork_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ForkServer]:
    server = ForkServer(tmp_path_factory.mktemp("fork-server") / "stderr.log")
    yield server
    server.close()


# -- what every trial checks ----------------------------------------------------------------------


@dataclass
class Tally:
    """What one operation's trials did, for the summary line."""

    trials: int = 0
    reported: int = 0
    temp_files: int = 0
    collected: int = 0
    killed_running: int = 0
    killed_before_running: int = 0
    seconds: float = 0.0


def read_reported(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def check_files(root: Path) -> int:
    """Every JSON file parses; returns how many temporary files were left behind."""
    temp = 0
    for dirpath, _, files in os.walk(root):
        for name in files:
            path = Path(dirpath, name)
            if name.startswith(".") and name.endswith(".tmp"):
                temp += 1
            elif name.endswith(".json"):
                try:
                    json.loads(path.read_bytes())
                except ValueError as exc:
                    pytest.fail(f"torn JSON file {path}: {exc}")
    return temp


def check_listings(ws: me.Workspace) -> dict[str, me.Run]:
    """Every listing works (a warning would fail the test); returns every run by id."""
    runs: dict[str, me.Run] = {}
    for project in ws.list_projects():
        assert ws.project(project.id).name == project.name
        for exp in project.list_experiments():
            for run in exp.list_runs():
                assert run.status in RunStatus
                runs[run.id] = run
    return runs


def check_catalog(ws: me.Workspace, verified: set[tuple[str, str | None]]) -> None:
    """The index answers, matches a rebuild from the records, and points only at payloads that
    exist and match their records (each payload is hashed once: ``verified``)."""
    indexed = {a.id: a for a in ws.catalog.query_assets()}
    for kind in AssetKind:
        assert {a.id for a in ws.catalog.query_assets(kind=kind)} == {
            i for i, a in indexed.items() if a.kind == kind
        }
    storage = ws.storage
    for asset in indexed.values():
        record = asset.record
        assert storage.exists(record.record), f"indexed asset without a record: {record.record}"
        assert storage.exists(record.payload), f"indexed asset without a payload: {record}"
        if (asset.id, record.content_hash) in verified:
            continue
        if record.content_hash is not None and asset.kind != AssetKind.LOG:
            path = storage.local_path(record.payload)
            assert path is not None
            size, digest = hash_local(path)
            assert (size, digest) == (record.size, record.content_hash), (
                f"payload {record.payload} does not match its record {record.record}"
            )
        verified.add((asset.id, record.content_hash))
    ws.catalog.rebuild()
    assert {a.id for a in ws.catalog.query_assets()} == set(indexed), "index differs from rebuild"


def collect_and_check(root: Path) -> int:
    """``collect_garbage`` after the kills takes every temporary file and unrecorded payload they
    left, and nothing valid: every listing, record, result and payload is as before. Returns how
    many items it removed."""
    ws = me.Workspace.load(root)
    fresh = None
    try:
        results = {i: dict(run.results) for i, run in check_listings(ws).items()}
        assets = {a.id: a.record for a in ws.catalog.query_assets()}
        report = ws.collect_garbage(older_than=timedelta(0))
        assert not report.failed, report.failed
        check_files(root)
        for dirpath, _, names in os.walk(root):
            for name in names:
                if name.startswith(".") and name.endswith(".tmp"):
                    # Left only in an unrecorded data asset made of hard links (a move killed
                    # after linking): it frees nothing, so it is left alone on purpose.
                    asset_dir = Path(dirpath)
                    assert asset_dir.parent.name == "data_assets", f"{dirpath}/{name} left"
                    assert not (asset_dir / "asset.json").exists()
                    linked = (p.stat().st_nlink > 1 for p in asset_dir.rglob("*") if p.is_file())
                    assert any(linked), f"{dirpath}/{name} left"
        fresh = me.Workspace.load(root)
        assert {i: dict(run.results) for i, run in check_listings(fresh).items()} == results
        check_catalog(fresh, set())
        assert {a.id: a.record for a in fresh.catalog.query_assets()} == assets
        return len(report.removed)
    finally:
        ws.catalog.index.close()
        if fresh is not None:
            fresh.catalog.index.close()


def check_killed_run(ws: me.Workspace, run_id: str, started: bool, tally: Tally) -> me.Run:
    """The run the child was executing is recognisably not finished, and recoverable.

    Once the child reported the attempt started, ``run.json`` says running, with an owner that is
    now DEAD. Killed while entering it, the run keeps the state it had (created, or how an
    earlier attempt ended): the attempt never began as far as the record is concerned.
    """
    run = ws.project("p").experiment("e").get_run(run_id)
    if run.status == RunStatus.RUNNING:
        assert run.liveness() == Liveness.DEAD
        assert run.mark_failed_if_dead()
        assert run.status == RunStatus.FAILED and run.error is not None
        assert run.error.type == "OwnerLost"
        tally.killed_running += 1
    else:
        assert not started, f"run {run_id} was started, yet is {run.status.value}"
        assert not run.mark_failed_if_dead()
        tally.killed_before_running += 1
    return run


def find_run(ws: me.Workspace, run_id: str, reported: list[dict[str, Any]]) -> me.Run | None:
    """The run the child works in; it may not exist if the child was killed before making it."""
    exp = ws.project("p").experiment("e")
    try:
        return exp.get_run(run_id)
    except NotFoundError:
        assert not reported, f"run {run_id} lost"
        return None


def new_attempt(run: me.Run, trial: int) -> None:
    """A new attempt on the run works and keeps what earlier attempts recorded."""
    before = dict(run.reload().results)
    with run.start() as ctx:
        ctx.set_result("recovered", trial)
    run.reload()
    assert run.status == RunStatus.SUCCEEDED
    assert run.results == {**before, "recovered": trial}
    assert run.metadata.execution_history[-1].status == RunStatus.SUCCEEDED


def in_flight(reported: list[dict[str, Any]]) -> tuple[str | None, bool]:
    """The run the child was working on and not reported finished (if any), and whether its
    attempt was reported started."""
    current, started = None, False
    for entry in reported:
        if entry["op"] == "created":
            current, started = entry["run"], False
        elif entry["op"] == "started":
            current, started = entry["run"], True
        elif entry["op"] == "finished":
            current, started = None, False
    return current, started


def was_started(reported: list[dict[str, Any]]) -> bool:
    return any(entry["op"] == "started" for entry in reported)


# -- per operation: what was reported is there ----------------------------------------------------


def verify_create(ws: me.Workspace, reported: list[dict[str, Any]], **_: Any) -> None:
    project = ws.project("p")
    experiments = {e.id for e in project.list_experiments()}
    last = None
    for entry in reported:
        if entry["op"] == "experiment":
            assert entry["experiment"] in experiments
        else:
            run = project.experiment(entry["experiment"]).get_run(entry["run"])
            assert run.parameters == entry["params"]
            last = run
    if last is not None:
        new_attempt(last, -1)


def verify_lifecycle(
    ws: me.Workspace, reported: list[dict[str, Any]], trial: int, tally: Tally, **_: Any
) -> None:
    exp = ws.project("p").experiment("e")
    expected: dict[str, dict[str, Any]] = {}
    finished = set()
    for entry in reported:
        if entry["op"] == "result":
            expected.setdefault(entry["run"], {})[entry["key"]] = entry["value"]
        elif entry["op"] == "finished":
            finished.add(entry["run"])
    for run_id, results in expected.items():
        run = exp.get_run(run_id)
        for key, value in results.items():
            assert run.results.get(key) == value, f"result {key} of run {run_id} lost"
    for run_id in finished:
        assert exp.get_run(run_id).status == RunStatus.SUCCEEDED
    current, started = in_flight(reported)
    if current is not None:
        run = exp.get_run(current)
        if run.status != RunStatus.SUCCEEDED:  # else killed after the exit, before the report
            run = check_killed_run(ws, current, started, tally)
        new_attempt(run, trial)


def verify_artifact(
    ws: me.Workspace, reported: list[dict[str, Any]], trial: int, tally: Tally, **_: Any
) -> None:
    run_id = f"t{trial}"
    run = find_run(ws, run_id, reported)
    if run is None:
        return
    saved = {a.name: a for a in ws.catalog.query_assets(kind="artifact", run=run)}
    latest = None
    for entry in reported:
        if entry["op"] != "artifact":
            continue
        if entry["name"] == "latest.json":
            latest = entry["value"]
            continue
        asset = saved.get(entry["name"])
        assert asset is not None, f"artifact {entry['name']} of run {run_id} lost"
        assert asset.id == entry["id"]
        assert hash_local(asset.path)[1] == entry["sha"]
        if entry["value"] is not None:
            assert asset.load() == entry["value"]
    if latest is not None and "latest.json" in saved:
        # Saving a name again replaces it: killed meanwhile, the artifact is the last value
        # reported, the one being saved, or (between withdrawing the old record and registering
        # the new one) absent; its record always describes its payload (check_catalog).
        value = saved["latest.json"].load()
        assert value["trial"] == trial and value["i"] >= latest["i"]
    new_attempt(check_killed_run(ws, run_id, was_started(reported), tally), trial)


def verify_log(
    ws: me.Workspace, reported: list[dict[str, Any]], trial: int, tally: Tally, **_: Any
) -> None:
    run_id = f"t{trial}"
    lines = [e["text"] for e in reported if e["op"] == "line"]
    run = find_run(ws, run_id, reported)
    if run is None:
        return
    logs = ws.catalog.query_assets(kind="log", run=run)
    if lines:
        (log,) = logs
        on_disk = log.lines()
        assert on_disk[: len(lines)] == lines, "a reported log line is missing"
        extra = on_disk[len(lines) :]
        # At most the line being appended when the child was killed, and whole.
        assert extra in ([], [next_log_line(trial, len(lines))]), extra
    run = check_killed_run(ws, run_id, was_started(reported), tally)
    with run.start() as ctx:
        ctx.log("train").append("recovered")
    (log,) = ws.catalog.query_assets(kind="log", run=run)
    assert log.lines()[-1] == "recovered"
    assert log.lines()[: len(lines)] == lines
    new_attempt(run, trial)


def next_log_line(trial: int, i: int) -> str:
    """The driver's line ``i`` (its ``log_line``)."""
    return f"trial={trial} line={i} " + "x" * (i % 97)


def verify_checkpoint(
    ws: me.Workspace, reported: list[dict[str, Any]], trial: int, tally: Tally, **_: Any
) -> None:
    run = find_run(ws, "ckpt", reported)
    if run is None:
        return
    chain = ws.catalog.query_assets(kind="checkpoint", run=run)
    by_step = {c.step: c for c in chain}
    assert sorted(by_step) == list(range(1, len(chain) + 1)), "checkpoint steps have a gap"
    for step, ckpt in by_step.items():
        previous = ckpt.previous()
        assert (previous.step if previous else 0) == step - 1, f"chain broken at step {step}"
    for entry in reported:
        if entry["op"] != "checkpoint":
            continue
        ckpt = by_step.get(entry["step"])
        assert ckpt is not None and ckpt.id == entry["id"], f"checkpoint {entry} lost"
        assert hash_local(ckpt.path)[1] == entry["sha"]
        if entry["value"] is not None:
            assert ckpt.load() == entry["value"]
    run = check_killed_run(ws, "ckpt", was_started(reported), tally)
    with run.start() as ctx:
        assert ctx.checkpoint("model", {"recovered": trial}).step == len(chain) + 1
    new_attempt(run, trial)


def verify_import_copy(ws: me.Workspace, reported: list[dict[str, Any]], **_: Any) -> None:
    for entry in reported:
        asset = ws.catalog.get(entry["id"])
        assert asset is not None, f"imported data asset {entry['name']} lost"
        assert asset.content_hash == entry["sha"]
        assert Path(entry["source"]).exists(), "a copy removed its source"


def verify_import_move(
    ws: me.Workspace, reported: list[dict[str, Any]], sources: dict[str, str], **_: Any
) -> None:
    registered = {a.meta.get("source"): a for a in ws.catalog.query_assets(kind="data") if a.meta}
    moved = {e["source"]: e for e in reported}
    for source, digest in sources.items():
        path = Path(source)
        asset = registered.get(source)
        if source in moved:
            assert asset is not None and asset.id == moved[source]["id"]
            assert not path.exists(), f"a reported move left its source {source}"
        if asset is not None:
            # Recorded: the data is in the workspace; the source is gone, or still whole, or
            # partly removed (killed while removing it, after the move was recorded).
            assert hash_local(asset.path)[1] == digest
        else:
            assert path.exists(), (
                f"moved data asset {source} is neither at its source nor registered in the "
                "workspace"
            )
            assert hash_local(path)[1] == digest, f"source {source} changed"


def verify_catalog(
    ws: me.Workspace, reported: list[dict[str, Any]], trial: int, tally: Tally, **_: Any
) -> None:
    run_id = f"t{trial}"
    run = find_run(ws, run_id, reported)
    if run is None:
        return
    saved = {a.id: a for a in ws.catalog.query_assets(run=run)}
    projects = {p.id for p in ws.list_projects()}
    for entry in reported:
        if entry["op"] == "artifact":
            assert entry["id"] in saved, f"artifact {entry['name']} lost"
            assert saved[entry["id"]].load() == entry["value"]
        elif entry["op"] == "deleted":
            assert entry["project"] not in projects
            assert ws.catalog.query_assets(project=entry["project"]) == []
    new_attempt(check_killed_run(ws, run_id, was_started(reported), tally), trial)


VERIFY = {
    "create": verify_create,
    "lifecycle": verify_lifecycle,
    "artifact": verify_artifact,
    "log": verify_log,
    "checkpoint": verify_checkpoint,
    "import-copy": verify_import_copy,
    "import-move": verify_import_move,
    "catalog": verify_catalog,
}


def prepare_sources(directory: Path, trial: int, rng: random.Random) -> dict[str, str]:
    """Files and directories for one import-move trial, with their content hashes."""
    directory.mkdir(parents=True)
    found = {}
    for i in range(MOVE_SOURCES):
        path = directory / f"m-{trial:04d}-{i:03d}"
        if i % 5 == 4:
            (path / "inner").mkdir(parents=True)
            for k in range(3):
                (path / "inner" / f"{k}.bin").write_bytes(rng.randbytes(20_000 + k))
        else:
            path.write_bytes(rng.randbytes(40_000 + i))
        found[str(path)] = hash_local(path)[1]
    return found


@pytest.mark.parametrize("operation", list(CI_TRIALS))
def test_kill_9_at_random_instants(
    operation: str,
    fork_server: ForkServer,
    tmp_path: Path,
    kill_trials: int | None,
    kill_seed: int,
) -> None:
    trials = kill_trials or CI_TRIALS[operation]
    rng = random.Random(f"{kill_seed}-{operation}")
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    tally = Tally()
    started = time.monotonic()
    root = tmp_path
    verified: set[tuple[str, str | None]] = set()
    for trial in range(trials):
        if trial % TRIALS_PER_WORKSPACE == 0:
            if trial:
                tally.temp_files += check_files(root)
                tally.collected += collect_and_check(root)
            root = tmp_path / f"lab-{trial // TRIALS_PER_WORKSPACE}"
            me.Workspace(root).Project("p").Experiment("e")
            verified = set()
        reported_file = tmp_path / f"reported-{trial}.jsonl"
        job: dict[str, Any] = {
            "scenario": operation,
            "root": str(root),
            "reported": str(reported_file),
            "trial": trial,
            "scratch": str(scratch),
        }
        sources: dict[str, str] = {}
        if operation == "import-move":
            job["sources"] = str(tmp_path / f"sources-{trial}")
            sources = prepare_sources(Path(job["sources"]), trial, rng)
        fork_server.kill_during(job, rng.uniform(0.0, MAX_DELAY[operation]))

        reported = read_reported(reported_file)
        tally.trials += 1
        tally.reported += len(reported)
        check_files(root)
        ws = me.Workspace.load(root)
        try:
            check_listings(ws)
            check_catalog(ws, verified)
            VERIFY[operation](ws, reported, trial=trial, tally=tally, sources=sources)
            check_catalog(ws, verified)
        finally:
            ws.catalog.index.close()
    tally.temp_files += check_files(root)
    tally.collected += collect_and_check(root)
    tally.seconds = time.monotonic() - started
    print(
        f"\nkill -9 during {operation}: {tally.trials} trials, {tally.reported} operations "
        f"reported saved, killed runs running/not yet running {tally.killed_running}/"
        f"{tally.killed_before_running}, {tally.temp_files} temp files left, "
        f"{tally.collected} items collected by collect_garbage, {tally.seconds:.1f} s"
    )
