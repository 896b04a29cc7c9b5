"""``molexp run --executor slurm`` on a real single-node Slurm (munged, slurmctld and slurmd on
127.0.0.1, started by tools/slurm/start.sh): a job array, a failing job, a job that never
executes its run, a cancelled job, a resubmission."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.usefixtures("slurm")


def _squeue(job_id: str) -> str:
    """The state squeue shows for a job (or array task); '' once it left the queue."""
    out = subprocess.run(
        ["squeue", "-h", "-r", "-t", "all", "-j", job_id.split("_")[0], "-o", "%i %T"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    ).stdout
    states = dict(line.split() for line in out.splitlines() if line.strip())
    return states.get(job_id, "")


def _submission(sweep, record) -> dict:
    run_dir = Path(sweep.lab) / f"projects/p/experiments/sweep/runs/run-{record['id']}"
    return json.loads((run_dir / "submission.json").read_text())


def _wait_for(predicate, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def test_a_sweep_as_a_job_array_then_a_resubmission(cli, sweep):
    sweep.fail_once(1)
    first = cli(
        "run", str(sweep.script), "--executor", "slurm", "--array", "--jobs", "2", "--wait",
    )  # fmt: skip
    assert first.code == 1, first
    assert "executor: slurm (job array, at most 2 at once, --wait)" in first.out
    assert "ValueError: replica 1 failed on purpose" in first.out
    assert "3 succeeded, 1 not" in first.out
    records = sweep.records()
    assert [records[r]["status"] for r in range(4)] == [
        "succeeded",
        "failed",
        "succeeded",
        "succeeded",
    ]
    array_ids = set()
    for replica, record in records.items():
        (attempt,) = record["execution_history"]
        labels = attempt["labels"]
        submission = _submission(sweep, record)
        assert labels["molexp.executor"] == "slurm"
        assert labels["slurm.array_task_id"] == str(replica) == str(submission["array_task_id"])
        assert labels["slurm.array_job_id"] == submission["array_job_id"]
        assert submission["job_id"] == f"{submission['array_job_id']}_{replica}"
        assert labels["slurm.node"] == "localhost"
        array_ids.add(submission["array_job_id"])
    assert len(array_ids) == 1  # one array for the sweep
    (array_id,) = array_ids

    listed = cli("runs", "list", "--workspace", sweep.lab)
    assert listed.code == 0, listed
    assert "JOB" in listed.out
    assert f"{array_id}_1 " in listed.out

    # Resubmitting (--resume) submits the failed run only, and it resumes.
    again = cli("run", str(sweep.script), "--executor", "slurm", "--array", "--resume", "--wait")
    assert again.code == 0, again
    assert "1 executed (1 succeeded, 0 not), 3 skipped (already succeeded)" in again.out
    records = sweep.records()
    assert {r["status"] for r in records.values()} == {"succeeded"}
    assert [len(records[r]["execution_history"]) for r in range(4)] == [1, 2, 1, 1]
    retry = records[1]["execution_history"][1]["labels"]
    assert retry["slurm.job_id"] != records[1]["execution_history"][0]["labels"]["slurm.job_id"]
    assert "slurm.array_job_id" not in retry  # one run left: one job, not an array
    assert _submission(sweep, records[1])["array_job_id"] is None


def test_a_job_that_never_executes_its_run_is_settled_from_the_record(cli, make_sweep, tmp_path):
    sweep = make_sweep(tmp_path, replicas=2)
    (tmp_path / "molcfg.yaml").write_text(
        "version: 1\nexecutor:\n  slurm:\n    python: /nonexistent/python3\n"
    )
    result = cli("run", str(sweep.script), "--executor", "slurm", "--wait")
    assert result.code == 1, result
    # Each run: its progress line and its line in the summary.
    assert result.out.count("ended (FAILED) before executing the run") == 4, result
    assert "/nonexistent/python3" in result.out  # the job's own output, shown
    assert {r["status"] for r in sweep.records().values()} == {"created"}

    # The runs were never executed: a later submission with a working Python executes them.
    (tmp_path / "molcfg.yaml").unlink()
    fixed = cli("run", str(sweep.script), "--executor", "slurm", "--wait")
    assert fixed.code == 0, fixed
    assert {r["status"] for r in sweep.records().values()} == {"succeeded"}


def test_cancel_a_running_and_a_queued_job(cli, make_sweep, tmp_path):
    sweep = make_sweep(tmp_path, replicas=3)
    sweep.block(0)
    submitted = cli("run", str(sweep.script), "--executor", "slurm", "--array", "--jobs", "1")
    assert submitted.code == 0, submitted  # submitted, not waited for
    assert "3 submitted to Slurm" in submitted.out
    assert "molexp runs list" in submitted.out
    sweep.wait_started(0)
    records = sweep.records()
    running, queued = records[0], records[1]
    running_job = _submission(sweep, running)["job_id"]
    queued_job = _submission(sweep, queued)["job_id"]
    _wait_for(lambda: sweep.records()[0]["status"] == "running", "replica 0 to be running")

    # Submitting again while the jobs are queued or running queues nothing twice.
    again = cli("run", str(sweep.script), "--executor", "slurm", "--array")
    assert again.code == 1, again  # replica 0 is running: reported as not succeeded
    assert f"Slurm job {queued_job} is pending" in again.out
    assert "submitted to Slurm" not in again.out

    listed = cli("runs", "list", "--workspace", sweep.lab, "--json")
    jobs = {r["parameters"]["replica"]: r["job"] for r in listed.json()}
    assert jobs[0] == {"executor": "slurm", "id": running_job, "state": "RUNNING"}
    assert jobs[1]["state"] == "PENDING"

    # A queued job: removed from the queue, the run cancelled at once.
    cancel_queued = cli("runs", "cancel", queued["id"], "--workspace", sweep.lab)
    assert cancel_queued.code == 0, cancel_queued
    assert f"cancelled Slurm job {queued_job} (pending); the run is cancelled" in cancel_queued.out
    assert sweep.records()[1]["status"] == "cancelled"
    assert _squeue(queued_job) in ("", "CANCELLED")

    # A running job: the run stops and records its cancellation; the job ends.
    cancel_running = cli("runs", "cancel", running["id"], "--workspace", sweep.lab)
    assert cancel_running.code == 0, cancel_running
    assert "the run is cancelled" in cancel_running.out
    record = sweep.records()[0]
    assert record["status"] == "cancelled"
    assert record["execution_history"][0]["labels"]["slurm.job_id"]
    _wait_for(lambda: _squeue(running_job) not in ("RUNNING", "COMPLETING"), "the job to end")

    # The other array task is unaffected.
    assert _squeue(_submission(sweep, records[2])["job_id"]) in ("PENDING", "RUNNING", "COMPLETED")
    _wait_for(lambda: sweep.records()[2]["status"] == "succeeded", "replica 2", timeout=90)
    cancelled_again = cli("runs", "cancel", queued["id"], "--workspace", sweep.lab)
    assert cancelled_again.code == 1
    assert "already finished (cancelled)" in cancelled_again.err


def test_slurm_flags_and_settings_are_checked(cli, sweep, tmp_path):
    local = cli("run", str(sweep.script), "--partition", "debug")
    assert local.code == 2
    assert "--partition only apply to --executor slurm" in local.err
    bad_time = cli("run", str(sweep.script), "--executor", "slurm", "--time", "soon")
    assert bad_time.code == 2
    assert "'soon' is not a Slurm time limit" in bad_time.err
    (tmp_path / "molcfg.yaml").write_text(
        "version: 1\nprofiles:\n  hpc:\n    executor:\n      slurm:\n        partiton: gpu\n"
    )
    typo = cli("run", str(sweep.script), "--profile", "hpc")
    assert typo.code == 1
    assert "executor.slurm: unknown key 'partiton' (did you mean 'partition'?)" in typo.err
    assert str(tmp_path / "molcfg.yaml") in typo.err
    bad_partition = cli(
        "run", str(sweep.script), "--executor", "slurm", "--partition", "nosuchpartition",
    )  # fmt: skip
    assert bad_partition.code == 1
    assert "invalid partition" in bad_partition.err.lower()
    assert "Traceback" not in bad_partition.err
