"""The executor machinery without the engines: settings, Slurm command retries, job scripts,
follow-and-settle with a fake queue, the worker's labels and its SIGTERM handling."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from types import SimpleNamespace

import pytest

from molexp.cli._profiles import load_profile
from molexp.cli.executors import ExecutorFlags, apply_flags, settings_from_config, worker_labels
from molexp.cli.executors._jobs import describe_jobs
from molexp.cli.executors._options import resolve_settings
from molexp.cli.executors._settings import ExecutorConfigError, memory_bytes
from molexp.cli.executors._slurm_script import array_script, array_spec, single_script
from molexp.cli.executors._slurmctl import CommandResult, Slurm, SlurmError

# -- settings --------------------------------------------------------------------------------------


def test_executor_settings_merge_top_level_extends_chain_and_flags(tmp_path):
    config = tmp_path / "molcfg.yaml"
    config.write_text(
        """\
version: 1
defaults: {train: {epochs: 3}}
executor:
  kind: local
  mem: 2G
  slurm: {partition: debug, sbatch: ["--qos=low"]}
profiles:
  base:
    executor: {kind: slurm, slurm: {time: "00:30:00"}}
  gpu:
    extends: base
    train: {epochs: 1}
    executor:
      gpus: "1"
      slurm: {partition: gpu, array: true, array_limit: 8}
"""
    )
    profile = load_profile("gpu", config=config)
    assert profile.config == {"train": {"epochs": 1}}  # executor settings are not task config
    plain = load_profile("gpu", config=config)
    assert (
        plain.config_hash
        == load_profile(None, config=config, overrides=["train.epochs=1"]).config_hash
    )
    settings = resolve_settings(profile, ExecutorFlags(), jobs=None)
    assert settings.kind == "slurm"
    assert settings.mem == "2G" and settings.gpus == "1"
    assert settings.slurm.partition == "gpu"
    assert settings.slurm.time == "00:30:00"
    assert settings.slurm.sbatch == ("--qos=low",)
    assert settings.slurm.array is True and settings.slurm.array_limit == 8
    flagged = resolve_settings(
        profile, ExecutorFlags(partition="short", array=False, wait=True), jobs=3
    )
    assert flagged.slurm.partition == "short" and flagged.slurm.array is False
    assert flagged.wait is True and flagged.jobs == 3


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"kind": "k8s"}, "unknown executor 'k8s'; use one of local, dask, slurm"),
        ({"slurm": {"partiton": "x"}}, "unknown key 'partiton' (did you mean 'partition'?)"),
        ({"slurm": {"time": "tomorrow"}}, "'tomorrow' is not a Slurm time limit"),
        ({"slurm": {"array_limit": 0}}, "array_limit must be a positive integer"),
        ({"slurm": {"sbatch": "--a\n--b"}}, "spans several lines"),
        ({"mem": "lots"}, "memory 'lots' is not a size"),
        ({"dask": {"resources": {"GPU": -1}}}, "resources.GPU must be a positive number"),
        ({"jobs": True}, "jobs must be a positive integer"),
        ({"dask": "tcp://x"}, "executor.dask must be a mapping"),
    ],
)
def test_bad_executor_settings_name_the_file_and_key(section, message):
    with pytest.raises(ExecutorConfigError) as caught:
        settings_from_config(section, origin="molcfg.yaml")
    assert message in caught.value.message
    assert caught.value.message.startswith("molcfg.yaml: executor")


def test_flags_that_do_not_apply_are_usage_errors():
    settings = settings_from_config({}, origin="molcfg.yaml")
    with pytest.raises(Exception, match="--array, --partition only apply to --executor slurm"):
        apply_flags(settings, ExecutorFlags(kind="dask", array=True, partition="p"))
    with pytest.raises(Exception, match="--wait only applies to --executor slurm"):
        apply_flags(settings, ExecutorFlags(kind="dask", wait=True))
    with pytest.raises(Exception, match="use them with --executor dask or --executor slurm"):
        apply_flags(settings, ExecutorFlags(cpus=2))
    ok = apply_flags(settings, ExecutorFlags(kind="dask", cpus=2, gpus="a100:2", mem="1G"))
    assert ok.dask_resources() == {"CPU": 2.0, "GPU": 2.0, "MEMORY": float(1024**3)}


def test_memory_sizes():
    assert memory_bytes("4G") == 4 * 1024**3
    assert memory_bytes("500M") == 500 * 1024**2
    assert memory_bytes("1024") == 1024**3  # Slurm's default unit is MiB
    assert memory_bytes("1.5T") == int(1.5 * 1024**4)


# -- job scripts -----------------------------------------------------------------------------------


def test_job_scripts(tmp_path):
    settings = settings_from_config(
        {
            "cpus": 4,
            "mem": "8G",
            "gpus": "1",
            "slurm": {
                "partition": "gpu",
                "time": "01:00:00",
                "account": "lab",
                "sbatch": ["--qos=high", "#SBATCH --exclusive"],
                "setup": ["module load python"],
                "python": "/opt/py/bin/python3",
            },
        },
        origin="molcfg.yaml",
    )
    from molexp.cli.executors._slurm_script import RunLine

    script = single_script(
        settings, RunLine("/lab/run-a b", fresh=True), job_name="molexp-x", output="/o/x.out"
    )
    lines = script.splitlines()
    assert lines[0] == "#!/bin/bash"
    for expected in (
        "#SBATCH --job-name=molexp-x",
        "#SBATCH --output=/o/x.out",
        "#SBATCH --partition=gpu",
        "#SBATCH --time=01:00:00",
        "#SBATCH --account=lab",
        "#SBATCH --cpus-per-task=4",
        "#SBATCH --mem=8G",
        "#SBATCH --gpus=1",
        "#SBATCH --qos=high",
        "#SBATCH --exclusive",
        "module load python",
    ):
        assert expected in lines
    assert lines[-1] == "exec /opt/py/bin/python3 -P -m molexp.cli execute '/lab/run-a b' --fresh"
    assert array_spec(50, 10) == "0-49%10"
    assert array_spec(5, 10) == "0-4"
    assert array_spec(5, None) == "0-4"
    array = array_script(
        settings, count=3, table_path="/t/runs.tsv", job_name="n", output="/o/%a.out", limit=2
    )
    assert "#SBATCH --array=0-2%2" in array
    assert '"$((SLURM_ARRAY_TASK_ID + 1))p" /t/runs.tsv' in array


def test_an_array_task_executes_its_line_of_the_table(tmp_path):
    """The array script's shell, run for real (with a stand-in Python)."""
    from molexp.cli.executors._slurm_script import RunLine, runs_table

    fake = tmp_path / "python"
    fake.write_text('#!/bin/bash\necho "$@"\n')
    fake.chmod(0o755)
    settings = settings_from_config({"slurm": {"python": str(fake)}}, origin="molcfg.yaml")
    table = tmp_path / "runs.tsv"
    table.write_text(runs_table([RunLine("/lab/run one"), RunLine("s3://b/run-2", fresh=True)]))
    script = tmp_path / "array.sh"
    script.write_text(
        array_script(settings, count=2, table_path=str(table), job_name="n", output="o", limit=None)
    )
    said = []
    for task in ("0", "1", "2"):
        proc = subprocess.run(
            ["bash", str(script)],
            env={"SLURM_ARRAY_TASK_ID": task, "PATH": "/usr/bin:/bin"},
            capture_output=True,
            text=True,
            check=False,
        )
        said.append((proc.returncode, proc.stdout.strip()))
    assert said[0] == (0, "-P -m molexp.cli execute /lab/run one")
    assert said[1] == (0, "-P -m molexp.cli execute s3://b/run-2 --fresh")
    assert said[2][0] == 2


def test_describe_jobs():
    assert describe_jobs(["7_0", "7_1", "7_2", "9"]) == "7_[0-2], 9"
    assert describe_jobs(["7_3"]) == "7_3"
    assert describe_jobs([str(i) for i in range(10)], most=3) == "0, 1, 2 and 7 more"


# -- Slurm commands: timeouts, retries, backoff ----------------------------------------------------


@dataclass
class FakeSlurm:
    """Answers for the Slurm commands, in order, per command; records the calls."""

    answers: dict[str, list[object]]
    calls: list[list[str]] = field(default_factory=list)
    sleeps: list[float] = field(default_factory=list)

    def run(self, argv, timeout):
        self.calls.append(list(argv))
        answer = self.answers[argv[0]].pop(0)
        if answer == "timeout":
            raise subprocess.TimeoutExpired(argv, timeout)
        return answer

    def client(self, retries: int = 3) -> Slurm:
        return Slurm(timeout=1, retries=retries, runner=self.run, sleep=self.sleeps.append)


@pytest.fixture
def on_path(monkeypatch, tmp_path):
    """Stand-ins for sbatch/squeue/scancel on PATH (the fake runner answers for them)."""
    for name in ("sbatch", "squeue", "scancel"):
        path = tmp_path / name
        path.write_text("#!/bin/sh\nexit 99\n")
        path.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:/usr/bin:/bin")


def ok(stdout: str = "") -> CommandResult:
    return CommandResult(stdout, "", 0)


def err(stderr: str, code: int = 1) -> CommandResult:
    return CommandResult("", stderr, code)


def test_transient_errors_are_retried_with_backoff(on_path):
    fake = FakeSlurm(
        {
            "sbatch": [
                err("sbatch: error: Batch job submission failed: Socket timed out on send/recv"),
                err("sbatch: error: Slurm temporarily unable to accept job, sleeping and retrying"),
                ok("4127\n"),
            ],
            # Before each retry: is a job of that name queued after all? (No.)
            "squeue": [ok(""), ok("")],
        }
    )
    assert fake.client().submit("/s.sh", job_name="n") == "4127"
    assert fake.sleeps == [1, 2]
    assert [c[0] for c in fake.calls] == ["sbatch", "squeue", "sbatch", "squeue", "sbatch"]


def test_a_submission_that_timed_out_but_was_queued_is_not_submitted_twice(on_path):
    fake = FakeSlurm({"sbatch": ["timeout"], "squeue": [ok("4130\n")]})
    assert fake.client().submit("/s.sh", job_name="molexp-abc") == "4130"
    assert [c[0] for c in fake.calls] == ["sbatch", "squeue"]
    assert fake.calls[1][-3:] == ["molexp-abc", "-o", "%F"]


def test_retries_are_bounded_and_permanent_errors_are_not_retried(on_path):
    fake = FakeSlurm({"squeue": ["timeout"] * 3})
    with pytest.raises(SlurmError, match="failed 3 times: no answer within 1 s"):
        fake.client(retries=2).states(["12"])
    assert fake.sleeps == [1, 2]
    fake = FakeSlurm({"sbatch": [err("sbatch: error: invalid partition specified: nope")]})
    with pytest.raises(SlurmError, match="invalid partition specified: nope"):
        fake.client().submit("/s.sh", job_name="n")
    assert fake.sleeps == []


def test_squeue_answers_and_vanished_jobs(on_path):
    fake = FakeSlurm(
        {
            "squeue": [
                ok(
                    "12_0|COMPLETED|None|n1\n12_1|RUNNING|None|n1\n12_2|PENDING|JobArrayTaskLimit|\n"
                ),
                err("slurm_load_jobs error: Invalid job id specified"),
            ]
        }
    )
    states = fake.client().states(["12_0", "12_1", "12_2", "12_3"])
    assert states["12_1"].active and not states["12_0"].active
    assert states["12_2"].reason == "JobArrayTaskLimit"
    assert "12_3" not in states  # vanished: settled from the run's record
    assert fake.calls[0][fake.calls[0].index("-j") + 1] == "12"
    assert fake.client().states(["99"]) == {}


def test_missing_slurm_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(SlurmError, match="`sbatch` is not installed here"):
        Slurm().submit("/s.sh", job_name="n")


# -- following jobs --------------------------------------------------------------------------------


class FakeRun:
    """A run whose record says ``status`` (and never changes unless told)."""

    def __init__(self, status: str, owner=None) -> None:
        self.status = SimpleNamespace(value=status)
        self.error = None
        self.marked = 0
        attempts = [] if status == "created" else [SimpleNamespace(finished_at=None)]
        self.metadata = SimpleNamespace(owner=owner, execution_history=attempts)
        self.key = "runs/run-x"
        self.storage = SimpleNamespace(local_path=lambda key: None)  # a remote workspace

    def reload(self):
        return self

    def mark_failed_if_dead(self, include_stale: bool = False) -> bool:
        if include_stale:
            self.marked += 1
            self.status = SimpleNamespace(value="failed")
            self.error = SimpleNamespace(type="OwnerLost", message="gone")
        return include_stale


class Recorder:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def note(self, line):
        self.lines.append(line)

    def started(self, name, detail):
        self.lines.append(f"started {name}")

    def finished(self, name, outcome):
        self.lines.append(f"finished {name} {outcome.status}")


def _tracked(run, job_id):
    from molexp.cli.executors._slurm import Tracked

    planned = SimpleNamespace(
        run_id=job_id, qualified=f"p/e/{job_id}", reason="new", replica=0, seed=1
    )
    return Tracked(planned, run, job_id, None, submitted_at=0.0)


def test_follow_settles_from_the_record_and_never_waits_forever(monkeypatch):
    from molexp.cli.executors import ExecutionReport
    from molexp.cli.executors._slurm import follow
    from molexp.cli.executors._slurmctl import JobState

    monkeypatch.setattr("time.sleep", lambda s: None)
    done, vanished, never = FakeRun("succeeded"), FakeRun("failed"), FakeRun("created")
    answers = iter(
        [
            {"1": JobState("1", "RUNNING"), "2": JobState("2", "PENDING")},
            {"1": JobState("1", "COMPLETED")},  # 2 and 3 left the queue
        ]
    )

    class Queue:
        def states(self, ids):
            return next(answers)

    report, display = ExecutionReport(), Recorder()
    items = [_tracked(done, "1"), _tracked(vanished, "2"), _tracked(never, "3")]
    follow(items, Queue(), display, report, poll=0.01)
    assert {k: o.status for k, o in report.outcomes.items()} == {
        "1": "succeeded",
        "2": "failed",
        "3": "created",
    }
    assert "before executing the run" in report.outcomes["3"].error
    assert display.lines[0] == "started p/e/1"

    # A queue that stops answering: following gives up after the bound, reporting what it knew.
    class Silent:
        def states(self, ids):
            raise SlurmError("`squeue` failed 4 times: no answer within 30 s")

    report = ExecutionReport()
    stuck = _tracked(FakeRun("created"), "4")
    follow([stuck], Silent(), Recorder(), report, poll=0.01, give_up_after=0.0)
    assert report.outcomes["4"].status == "unknown"
    assert "Slurm stopped answering" in report.outcomes["4"].error


def test_a_job_gone_while_its_remote_owner_looks_alive_is_settled_after_the_heartbeat(
    monkeypatch,
):
    from molexp.cli.executors._slurm import settle

    owner = SimpleNamespace(heartbeat_interval=1.0)
    run = FakeRun("running", owner=owner)
    item = _tracked(run, "5")
    assert settle(item, None, now=100.0) is None  # the owner may still be writing
    assert settle(item, None, now=102.0) is None
    outcome = settle(item, None, now=100.0 + 3 + 5 + 0.1)
    assert outcome is not None and outcome.status == "failed" and run.marked == 1


def test_a_resubmitted_run_is_not_settled_by_its_old_record():
    from molexp.cli.executors._slurm import settle
    from molexp.cli.executors._slurmctl import JobState

    run = FakeRun("failed")  # the attempt that failed before this submission
    item = _tracked(run, "6")
    item.attempts = 1
    outcome = settle(item, JobState("6", "CANCELLED"), now=10.0)
    assert outcome is not None and not outcome.ok
    assert "ended (CANCELLED) before executing the run" in outcome.error
    run.metadata.execution_history.append(SimpleNamespace(finished_at=None))
    run.status = SimpleNamespace(value="succeeded")
    assert settle(item, None, now=10.0).status == "succeeded"


# -- the worker side -------------------------------------------------------------------------------


def test_worker_labels():
    env = {
        "SLURM_JOB_ID": "31",
        "SLURM_ARRAY_JOB_ID": "30",
        "SLURM_ARRAY_TASK_ID": "1",
        "SLURMD_NODENAME": "n7",
        "MOLEXP_ATTEMPT_LABELS": '{"extra": "x"}',
    }
    assert worker_labels(env) == {
        "molexp.executor": "slurm",
        "slurm.job_id": "31",
        "slurm.array_job_id": "30",
        "slurm.array_task_id": "1",
        "slurm.node": "n7",
        "extra": "x",
    }
    assert worker_labels({}) == {}
    assert worker_labels({"MOLEXP_ATTEMPT_LABELS": "not json"}) == {}


def test_sigterm_cancels_the_executing_run(cli, script, records, tmp_path):
    """``molexp execute`` records a SIGTERM (scancel, a time limit) as a cancellation."""
    import json
    import os
    import signal
    import time

    script(
        "slow.py",
        """
        import asyncio

        wf = workflow(name="slow")


        @wf.task
        async def wait(ctx: TaskContext) -> None:
            (HERE / "running").write_text("")
            await asyncio.sleep(60)


        spec = wf.build()
        ws = me.Workspace(HERE / "lab", name="Lab")
        spec.bind_to(ws.Project("p").Experiment("e"))
        me.entry(ws)
        """,
    )
    proc = cli.popen("run", "slow.py", "--jobs", "2")  # the run executes in `molexp execute`
    deadline = time.monotonic() + 60
    while not (tmp_path / "running").exists():
        assert time.monotonic() < deadline, "the run did not start"
        time.sleep(0.05)
    (run_json,) = tmp_path.glob("lab/projects/p/experiments/e/runs/run-*/run.json")
    os.kill(json.loads(run_json.read_text())["owner"]["pid"], signal.SIGTERM)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 1, out
    (record,) = records().values()
    assert record["status"] == "cancelled", out
    assert "SIGTERM" in record["error"]["message"]
    assert "cancelled" in out
