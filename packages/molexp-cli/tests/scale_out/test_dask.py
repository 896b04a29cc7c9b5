"""``molexp run --executor dask`` on a real ``distributed.LocalCluster`` (worker processes, TCP on
127.0.0.1), with a local workspace and with an S3 workspace; a worker killed mid-run."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("distributed", reason="Dask is not installed (molexp-cli[dask])")

VOLATILE = {"created_at", "started_at", "finished_at", "execution_history", "labels", "id"}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, moto, make_cluster) -> Iterator:
    """Two worker processes, whose runs reach the module's S3 server too."""
    log = tmp_path_factory.mktemp("dask") / "cluster.log"
    started = make_cluster(2, log, env=moto.env)
    try:
        yield started
    finally:
        started.stop()


def _ppid(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat[stat.rfind(")") + 2 :].split()[1])


def test_sweep_on_a_cluster_matches_local_runs(cli, cluster, tmp_path, make_sweep):
    # The same sweep, once here and once on the cluster: the same records but for who ran them.
    here = make_sweep(tmp_path / "here")
    local = cli("run", str(here.script), "--jobs", "2", cwd=here.directory)
    assert local.code == 0, local

    remote = make_sweep(tmp_path / "remote")
    result = cli(
        "run", str(remote.script), "--executor", "dask", "--address", cluster.address,
        cwd=remote.directory,
    )  # fmt: skip
    assert result.code == 0, result
    assert f"executor: dask ({cluster.address})" in result.out
    assert result.out.count("succeeded  p/sweep/") == 4
    assert "summary: 4 run(s): 4 executed (4 succeeded, 0 not)" in result.out

    mine, theirs = here.records(), remote.records()
    assert set(mine) == set(theirs) == {0, 1, 2, 3}
    workers = set()
    for replica, record in theirs.items():
        assert record["status"] == "succeeded"
        assert record["results"] == {"square": replica * replica, "reported": True}
        assert set(record) == set(mine[replica])
        same = {k: v for k, v in record.items() if k not in VOLATILE}
        assert same.pop("workflow_snapshot").pop("source_file") == str(remote.script)
        expected = {k: v for k, v in mine[replica].items() if k not in VOLATILE}
        assert expected.pop("workflow_snapshot").pop("source_file") == str(here.script)
        assert same == expected
        (attempt,) = record["execution_history"]
        assert attempt["labels"]["molexp.executor"] == "dask"
        workers.add(attempt["labels"]["dask.worker"])
        run_dir = Path(remote.lab) / f"projects/p/experiments/sweep/runs/run-{record['id']}"
        assert json.loads((run_dir / "artifacts" / "out.json").read_text())["replica"] == replica
        assert (run_dir / "logs" / "work.log").read_text().startswith(f"replica {replica}")
        assert "molexp.executor" not in record["labels"]  # only on the attempt's record
    assert workers <= set(cluster.workers)
    for record in mine.values():
        assert "molexp.executor" not in record["execution_history"][0]["labels"]

    # Run ids do not depend on the executor: the local runs are found and skipped.
    again = cli(
        "run", str(here.script), "--executor", "dask", "--address", cluster.address,
        cwd=here.directory,
    )  # fmt: skip
    assert again.code == 0, again
    assert again.out.count("skipped    p/sweep/") == 4
    assert "4 skipped (already succeeded)" in again.out


def test_sweep_into_an_s3_workspace(cli, cluster, moto, tmp_path, make_sweep):
    lab = f"s3://{moto.bucket}/dask-{os.getpid()}-{time.monotonic_ns()}"
    sweep = make_sweep(tmp_path, lab=lab, replicas=2)  # one run per worker
    cli.env.update(moto.env)
    result = cli(
        "run", str(sweep.script), "--executor", "dask", "--address", cluster.address,
        "--json",
    )  # fmt: skip
    assert result.code == 0, result
    data = result.json()
    assert data["ok"] is True
    assert [r["status"] for r in data["runs"]] == ["succeeded"] * 2
    assert all(r["run_dir"].startswith(f"{lab}/projects/p/") for r in data["runs"])

    # What the workers wrote is in the bucket, read back through the workspace.
    listed = cli("runs", "list", "--workspace", lab, "--json")
    assert listed.code == 0, listed
    rows = listed.json()
    assert sorted(r["results"]["square"] for r in rows) == [0, 1]
    assert all(r["status"] == "succeeded" and r["job"] is None for r in rows)
    shown = cli("runs", "show", rows[0]["id"], "--workspace", lab, "--json")
    assert shown.code == 0, shown
    labels = shown.json()["execution_history"][-1]["labels"]
    assert labels["molexp.executor"] == "dask" and labels["dask.worker"] in cluster.workers
    found = cli("assets", "query", "--workspace", lab, "--kind", "artifact", "--json")
    assert found.code == 0, found
    assert sorted(a["name"] for a in found.json()) == ["out.json"] * 2


def test_a_worker_killed_mid_run_fails_that_run_only(cli, tmp_path, moto, make_cluster, make_sweep):
    # A cluster of its own: one of its workers dies.
    cluster = make_cluster(2, tmp_path / "cluster.log", env=moto.env)
    try:
        sweep = make_sweep(tmp_path / "sweep")
        sweep.block(0, 1, 2, 3)
        proc = cli.popen(
            "run", str(sweep.script), "--executor", "dask", "--address", cluster.address,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 60
            while not [r for r in range(4) if sweep.started(r)]:
                assert time.monotonic() < deadline, "no run started"
                time.sleep(0.05)
            victim = next(r for r in range(4) if sweep.started(r))
            runner = int((sweep.directory / f"started-{victim}").read_text())
            worker = _ppid(runner)
            assert worker in cluster.workers.values()
            os.kill(worker, signal.SIGKILL)
            time.sleep(1.0)
            sweep.release()
            out, _ = proc.communicate(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    finally:
        cluster.stop()

    records = sweep.records()
    others = [records[r] for r in range(4) if r != victim]
    assert all(r["status"] == "succeeded" for r in others), out
    assert all(len(r["execution_history"]) == 1 for r in others)
    killed = records[victim]
    first = killed["execution_history"][0]
    # Its first attempt is failed (its process died with the worker), never left "running".
    assert first["status"] == "failed", out
    assert first["error"]["type"] == "OwnerLost"
    if killed["status"] == "failed":
        # Reported as such, and --resume continues it.
        assert proc.returncode == 1
        assert "OwnerLost" in out
    else:
        # Dask rescheduled the task on another worker, which resumed the run.
        assert killed["status"] == "succeeded", out
        assert len(killed["execution_history"]) == 2
        assert proc.returncode == 0, out

    resumed = cli("run", str(sweep.script), "--resume", "--executor", "dask", "--jobs", "1")
    assert resumed.code == 0, resumed
    assert {r["status"] for r in sweep.records().values()} == {"succeeded"}


def test_a_local_cluster_started_for_the_command(cli, sweep):
    sweep.fail_once(2)
    result = cli("run", str(sweep.script), "--executor", "dask", "--jobs", "2")
    assert result.code == 1, result
    assert "executor: dask (LocalCluster, 2 workers)" in result.out
    assert "ValueError: replica 2 failed on purpose" in result.out
    records = sweep.records()
    assert [records[r]["status"] for r in range(4)] == [
        "succeeded",
        "succeeded",
        "failed",
        "succeeded",
    ]

    # Resubmitting executes the failed run only, resuming it.
    again = cli("run", str(sweep.script), "--executor", "dask", "--jobs", "1", "--resume")
    assert again.code == 0, again
    assert "1 executed (1 succeeded, 0 not), 3 skipped (already succeeded)" in again.out
    assert [len(sweep.records()[r]["execution_history"]) for r in range(4)] == [1, 1, 2, 1]


def test_dask_flags_are_checked(cli, sweep, make_cluster, tmp_path):
    wrong = cli("run", str(sweep.script), "--address", "tcp://127.0.0.1:1")
    assert wrong.code == 2
    assert "--address only applies to --executor dask" in wrong.err
    (sweep.directory / "molcfg.yaml").write_text(
        "version: 1\nexecutor:\n  dask:\n    worker_timeout: 2\n"
    )
    closed = cli("run", str(sweep.script), "--executor", "dask", "--address", "tcp://127.0.0.1:9")
    assert closed.code == 1, closed
    assert "cannot reach the Dask scheduler at tcp://127.0.0.1:9" in closed.err
    assert "Traceback" not in closed.err

    # A scheduler without workers: a clear error after worker_timeout, not a wait forever.
    empty = make_cluster(0, tmp_path / "empty.log")
    try:
        idle = cli("run", str(sweep.script), "--executor", "dask", "--address", empty.address)
    finally:
        empty.stop()
    assert idle.code == 1, idle
    assert f"no Dask worker connected to {empty.address} within 2 s" in idle.err
