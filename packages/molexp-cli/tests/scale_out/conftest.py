"""Fixtures for the executor tests: a real single-node Slurm, a real Dask cluster, a local S3.

* ``slurm`` (session): ``tools/slurm/start.sh`` installs (from Debian's packages, once per
  machine) and starts munged, slurmctld and slurmd on 127.0.0.1. It runs only as root; as
  another user the Slurm tests are skipped with the reason. As root, a Slurm that cannot be
  started *fails* those tests, with the script's output. Daemons the fixture started are stopped
  by pid at the end of the session (``tools/slurm/stop.sh``); a Slurm that was already running is
  left alone.
* ``dask_cluster``: a ``distributed.LocalCluster`` of worker processes over TCP on 127.0.0.1,
  started in its own process (so that a test can kill one of its workers), with the address and
  the worker pids.
* ``moto``: a moto S3 server process on 127.0.0.1 (``molexp_storage_s3.testing``) with a bucket,
  and the environment that points every process (``molexp``, workers, jobs) at it.
* ``sweep``: writes a sweep script whose runs can be told, through files beside it, to block
  until released or to fail once.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[4]
START = REPO / "tools" / "slurm" / "start.sh"
STOP = REPO / "tools" / "slurm" / "stop.sh"
STATE_FILE = Path(os.environ.get("MOLEXP_SLURM_STATE", "/run/molexp-slurm")) / "pids"
CLUSTER_SCRIPT = Path(__file__).with_name("_cluster.py")


# -- Slurm -----------------------------------------------------------------------------------------


@dataclass
class SlurmInfo:
    """The local Slurm the tests use."""

    started_here: bool
    setup_seconds: float
    log: str


@pytest.fixture(scope="session")
def slurm() -> Iterator[SlurmInfo]:
    """A running single-node Slurm (see the module docstring)."""
    if os.geteuid() != 0:
        pytest.skip(
            "the Slurm tests need root to install and start slurm-wlm and munge "
            "(tools/slurm/start.sh); not root here"
        )
    had_state = STATE_FILE.is_file() and STATE_FILE.stat().st_size > 0
    began = time.perf_counter()
    try:
        proc = subprocess.run(
            ["bash", str(START)],
            capture_output=True,
            text=True,
            timeout=600,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"tools/slurm/start.sh did not finish within 600 s: {exc}", pytrace=False)
    seconds = time.perf_counter() - began
    output = proc.stdout + proc.stderr
    if proc.returncode != 0:
        pytest.fail(
            f"could not start the local Slurm (tools/slurm/start.sh exited {proc.returncode}):\n"
            f"{output}",
            pytrace=False,
        )
    started_here = not had_state and STATE_FILE.is_file() and STATE_FILE.stat().st_size > 0
    try:
        yield SlurmInfo(started_here, seconds, output)
    finally:
        if started_here:
            subprocess.run(["bash", str(STOP)], capture_output=True, timeout=120, check=False)


# -- Dask ------------------------------------------------------------------------------------------


@dataclass
class DaskCluster:
    """A LocalCluster running in its own process."""

    address: str
    workers: dict[str, int]
    """Worker address -> pid of the worker process."""
    process: subprocess.Popen[str]
    log: Path
    log_file: Any = None

    def stop(self) -> None:
        """Close the cluster (and its process)."""
        if self.process.poll() is None:
            assert self.process.stdin is not None
            self.process.stdin.close()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        for stream in (self.process.stdin, self.process.stdout, self.log_file):
            if stream is not None:
                stream.close()


def start_cluster(workers: int, log: Path, env: dict[str, str] | None = None) -> DaskCluster:
    """Start a LocalCluster of ``workers`` worker processes; wait until it is up."""
    err = log.open("w")
    process = subprocess.Popen(
        [sys.executable, str(CLUSTER_SCRIPT), str(workers)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=err,
        text=True,
        env={**os.environ, **(env or {})},
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line:
        process.wait(timeout=30)
        process.stdout.close()
        assert process.stdin is not None
        process.stdin.close()
        err.close()
        pytest.fail(f"the Dask LocalCluster did not start:\n{log.read_text()}", pytrace=False)
    info = json.loads(line)
    return DaskCluster(info["address"], info["workers"], process, log, err)


# -- S3 --------------------------------------------------------------------------------------------


@dataclass
class S3:
    """A local S3 server and the environment that reaches it."""

    endpoint: str
    bucket: str
    env: dict[str, str] = field(default_factory=dict)


@pytest.fixture(scope="module")
def moto() -> Iterator[S3]:
    """A moto S3 server with the bucket ``scale-out``; ``env`` points processes at it."""
    from molexp_storage_s3.testing import TEST_CREDENTIALS, MotoServer

    with MotoServer() as server:
        server.create_bucket("scale-out")
        env = {
            **TEST_CREDENTIALS,
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "MOLEXP_STORAGE_OPTIONS": json.dumps({"s3": {"endpoint_url": server.endpoint}}),
        }
        yield S3(server.endpoint, "scale-out", env)


# -- the sweep -------------------------------------------------------------------------------------

SWEEP = '''\
"""A sweep for the executor tests: files beside it steer each replica."""

import os
import socket
import time
from pathlib import Path

import molexp as me
from molexp.workflow import TaskContext, workflow

HERE = Path(__file__).resolve().parent
wf = workflow(name="scale")


@wf.task
def work(ctx: TaskContext) -> int:
    replica = ctx.params["replica"]
    (HERE / f"started-{{replica}}").write_text(str(os.getpid()))
    if (HERE / f"block-{{replica}}").exists():
        deadline = time.monotonic() + 90
        while not (HERE / "release").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
    failing = HERE / f"fail-{{replica}}"
    if failing.exists():
        failing.unlink()  # fails once
        raise ValueError(f"replica {{replica}} failed on purpose")
    ctx.log("work").append(f"replica {{replica}} on {{socket.gethostname()}}")
    ctx.artifact.save("out.json", {{"replica": replica, "pid": os.getpid()}})
    ctx.set_result("square", replica * replica)
    return replica


@wf.task(depends_on=["work"])
def report(ctx: TaskContext) -> int:
    ctx.set_result("reported", True)
    return ctx.inputs


spec = wf.build()
ws = me.Workspace({lab!r}, name="Sweep")
exp = ws.Project("p").Experiment("{experiment}", params={{"k": 1}}, n_replicas={replicas})
spec.bind_to(exp)
me.entry(ws)
'''


@dataclass
class Sweep:
    """A sweep script in ``directory`` (see :data:`SWEEP`)."""

    directory: Path
    script: Path
    lab: str

    def block(self, *replicas: int) -> None:
        """These replicas wait (up to 90 s) until :meth:`release`."""
        for replica in replicas:
            (self.directory / f"block-{replica}").write_text("")

    def release(self) -> None:
        """Let blocked replicas go on."""
        (self.directory / "release").write_text("")

    def fail_once(self, *replicas: int) -> None:
        """These replicas fail at their next attempt, then succeed."""
        for replica in replicas:
            (self.directory / f"fail-{replica}").write_text("")

    def started(self, replica: int) -> bool:
        """Whether this replica's task started (at least once)."""
        return (self.directory / f"started-{replica}").exists()

    def wait_started(self, replica: int, timeout: float = 60.0) -> None:
        """Wait until this replica's task started."""
        deadline = time.monotonic() + timeout
        while not self.started(replica):
            if time.monotonic() > deadline:
                raise AssertionError(f"replica {replica} did not start within {timeout} s")
            time.sleep(0.05)

    def records(self) -> dict[int, dict[str, Any]]:
        """Every local run.json of the sweep, by replica."""
        found = {}
        for path in Path(self.lab).glob("projects/*/experiments/*/runs/run-*/run.json"):
            record = json.loads(path.read_text())
            found[record["parameters"]["replica"]] = record
        return found


def write_sweep(
    directory: Path, *, replicas: int = 4, lab: str | None = None, experiment: str = "sweep"
) -> Sweep:
    """Write ``sweep.py`` into ``directory`` (its workspace at ``lab``, default ``./lab``)."""
    directory.mkdir(parents=True, exist_ok=True)
    lab = lab or str(directory / "lab")
    script = directory / "sweep.py"
    script.write_text(
        textwrap.dedent(SWEEP).format(lab=lab, experiment=experiment, replicas=replicas)
    )
    return Sweep(directory, script, lab)


@pytest.fixture
def sweep(tmp_path: Path) -> Sweep:
    """A sweep of four replicas with its workspace in ``tmp_path / "lab"``."""
    return write_sweep(tmp_path)


@pytest.fixture(scope="session")
def make_sweep() -> Any:
    """:func:`write_sweep`, for tests that need several sweeps or a remote workspace."""
    return write_sweep


@pytest.fixture(scope="session")
def make_cluster() -> Any:
    """:func:`start_cluster`, for tests that need a cluster of their own."""
    return start_cluster
