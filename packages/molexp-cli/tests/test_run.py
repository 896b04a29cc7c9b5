"""`molexp run` and `molexp execute`, driven through the real executable."""

from __future__ import annotations

import json
from pathlib import Path

import molexp.cli as mcli


def _ids(out: str, word: str) -> set[str]:
    """Run ids on the lines of ``out`` that start with ``word`` (``skipped``, ``would``...)."""
    found = set()
    for line in out.splitlines():
        parts = line.split()
        if line.startswith(word) or (parts and parts[0].startswith("[") and parts[1:2] == [word]):
            found.update(p.rsplit("/", 1)[1] for p in parts if p.count("/") == 2)
    return found


def test_run_records_runs_and_a_second_run_skips_them(cli, train, records, calls, tmp_path):
    first = cli("run", "train.py")
    assert first.code == 0, first
    runs = records()
    assert len(runs) == 2
    assert {r["status"] for r in runs.values()} == {"succeeded"}
    assert not (tmp_path / "main-block-ran").exists()
    for run_id, record in runs.items():
        replica = record["parameters"]["replica"]
        assert record["parameters"]["lr"] == 0.5
        assert isinstance(record["parameters"]["seed"], int)
        assert record["profile_name"] is None
        assert record["config"] == {"train": {"epochs": 3}}  # the defaults reach the run
        assert record["results"]["epochs"] == 3  # ... and the tasks, as ctx.config
        assert record["labels"]["molexp.script"] == str(train)
        assert len(record["labels"]["molexp.script_sha256"]) == 64
        assert record["workflow_snapshot"]["name"] == "train"
        assert run_id == mcli.derive_run_id(
            project="demo",
            experiment="baseline",
            parameters=record["parameters"],
            replica=replica,
            profile_name=None,
            config_hash=record["config_hash"],
        )
    assert sorted(calls()) == ["0", "1"]

    second = cli("run", "train.py")
    assert second.code == 0, second
    assert _ids(second.out, "skipped") == set(runs)
    assert "succeeded" in second.out
    assert records().keys() == runs.keys()
    assert all(len(r["execution_history"]) == 1 for r in records().values())
    assert sorted(calls()) == ["0", "1"]  # nothing executed again


def test_profile_and_override_changes_make_new_runs(cli, train, records):
    assert cli("run", "train.py").code == 0
    defaults = set(records())

    smoke = cli("run", "train.py", "--profile", "smoke")
    assert smoke.code == 0, smoke
    smoke_ids = set(records()) - defaults
    assert len(smoke_ids) == 2
    for run_id in smoke_ids:
        record = records()[run_id]
        assert record["profile_name"] == "smoke"
        assert record["config"] == {"train": {"epochs": 1}}
        assert record["results"]["epochs"] == 1

    dry = cli("run", "train.py", "--profile", "long", "-o", "train.lr=1e-3", "--dry-run")
    assert dry.code == 0, dry
    assert dry.out.count("would run") == 2 and "new" in dry.out
    assert set(records()) == defaults | smoke_ids  # a dry run changes nothing

    override = cli("run", "train.py", "--profile", "long", "-o", "train.lr=1e-3")
    assert override.code == 0, override
    new_ids = set(records()) - defaults - smoke_ids
    assert len(new_ids) == 2
    for run_id in new_ids:
        config = records()[run_id]["config"]
        assert config == {"train": {"epochs": 10, "lr": 0.001}}  # 1e-3 is a float
    again = cli("run", "train.py", "--profile", "long", "-o", "train.lr=1e-3")
    assert again.code == 0
    assert _ids(again.out, "skipped") == new_ids


def test_failed_runs_are_reported_then_resumed(cli, train, records, calls, tmp_path):
    (tmp_path / "make-fail").write_text("")
    first = cli("run", "train.py")
    assert first.code == 1, first
    failed = set(records())
    assert {r["status"] for r in records().values()} == {"failed"}
    assert "did not succeed" in first.out
    for run_id in failed:
        assert run_id in first.out
        assert "ValueError: fit failed on purpose" in first.out
    assert "Traceback" not in first.err

    plain = cli("run", "train.py")  # never a silent skip of a failed run
    assert plain.code == 1, plain
    assert _ids(plain.out, "skipped") == failed
    assert "--resume" in plain.out

    dry = cli("run", "train.py", "--resume", "--dry-run")
    assert dry.code == 0 and dry.out.count("would resume") == 2, dry

    resumed = cli("run", "train.py", "--resume")
    assert resumed.code == 0, resumed
    assert set(records()) == failed  # the same runs, a new attempt each
    for record in records().values():
        assert record["status"] == "succeeded"
        assert [a["status"] for a in record["execution_history"]] == ["failed", "succeeded"]
    assert sorted(calls()) == ["0", "1"]  # `prepare` finished before: reused, not run again


def test_rerun_starts_every_run_over(cli, train, records, calls):
    assert cli("run", "train.py").code == 0
    before = records()
    rerun = cli("run", "train.py", "--rerun")
    assert rerun.code == 0, rerun
    assert set(records()) == set(before)
    assert all(len(r["execution_history"]) == 2 for r in records().values())
    assert sorted(calls()) == ["0", "0", "1", "1"]  # every task ran again

    both = cli("run", "train.py", "--rerun", "--resume")
    assert both.code == 2 and both.err.startswith("error: --resume and --rerun"), both


def test_jobs_run_in_separate_processes_and_a_crash_stays_contained(cli, script, records):
    script(
        "sweep.py",
        """
        import os
        import signal

        wf = workflow(name="sweep")


        @wf.task
        def work(ctx: TaskContext) -> int:
            if ctx.params["replica"] == 1:
                os.kill(os.getpid(), signal.SIGKILL)  # a hard crash: no exception, no cleanup
            ctx.set_result("pid", os.getpid())
            return os.getpid()


        spec = wf.build()
        ws = me.Workspace(HERE / "lab")
        spec.bind_to(ws.Project("p").Experiment("e", n_replicas=3))
        me.entry(ws)
        """,
    )
    result = cli("run", "sweep.py", "--jobs", "2")
    assert result.code == 1, result
    by_replica = {r["parameters"]["replica"]: r for r in records().values()}
    assert by_replica[1]["status"] == "failed"
    assert by_replica[1]["error"]["type"] == "OwnerLost"
    assert by_replica[1]["id"] in result.out.split("did not succeed")[1]
    assert "signal 9" in result.out
    for replica in (0, 2):
        assert by_replica[replica]["status"] == "succeeded"
    pids = {by_replica[r]["results"]["pid"] for r in (0, 2)}
    assert len(pids) == 2  # each run in its own process


def test_execute_runs_an_existing_run_from_its_directory(cli, train, records, calls, tmp_path):
    (tmp_path / "make-fail").write_text("")
    assert cli("run", "train.py", "--profile", "smoke").code == 1
    run_id, record = next(iter(records().items()))
    run_dir = tmp_path / f"lab/projects/demo/experiments/baseline/runs/run-{run_id}"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()

    done = cli("execute", str(run_dir), cwd=elsewhere)
    assert done.code == 0, done
    assert f"demo/baseline/{run_id}: succeeded" in done.out
    after = records()[run_id]
    assert after["status"] == "succeeded"
    assert after["config_hash"] == record["config_hash"]  # the recorded profile, unchanged
    assert after["config"] == {"train": {"epochs": 1}}
    assert after["profile_name"] == "smoke"
    assert len(after["execution_history"]) == 2
    assert not (elsewhere / "lab").exists()

    by_id = cli("execute", run_id[:6], "--fresh", env={"MOLEXP_WORKSPACE": str(tmp_path / "lab")})
    assert by_id.code == 0, by_id
    assert records()[run_id]["config_hash"] == record["config_hash"]


def test_execute_exits_non_zero_when_the_run_fails(cli, train, tmp_path, records):
    (tmp_path / "make-fail").write_text("")
    assert cli("run", "train.py").code == 1
    for marker in tmp_path.glob("fail-once-*"):
        marker.unlink()  # so that it fails again
    run_id = next(iter(records()))
    failed = cli("execute", run_id)
    assert failed.code == 1, failed
    assert "failed" in failed.out and "ValueError: fit failed on purpose" in failed.out
    assert "traceback:" in failed.out
    assert "Traceback" not in failed.err
    assert records()[run_id]["status"] == "failed"


def test_run_json_output(cli, train):
    result = cli("run", "train.py", "--json")
    assert result.code == 0, result
    data = result.json()
    assert data["ok"] is True
    assert data["profile"] is None
    assert [r["status"] for r in data["runs"]] == ["succeeded", "succeeded"]
    assert {r["action"] for r in data["runs"]} == {"new"}
    dry = cli("run", "train.py", "--dry-run", "--json").json()
    assert {r["action"] for r in dry["runs"]} == {"skip"}
    assert all(r["reason"] == "succeeded" for r in dry["runs"])
    assert json.dumps(dry)


def test_the_script_directory_is_importable(cli, script, records, tmp_path):
    (tmp_path / "helpers.py").write_text("VALUE = 41\n")
    script(
        "uses_helpers.py",
        """
        import helpers

        wf = workflow(name="h")


        @wf.task
        def answer(ctx: TaskContext) -> int:
            ctx.set_result("answer", helpers.VALUE + 1)
            return helpers.VALUE + 1


        spec = wf.build()
        ws = me.Workspace(HERE / "lab")
        spec.bind_to(ws.Project("p").Experiment("e"))
        me.entry(ws)
        """,
    )
    other = tmp_path / "other"
    other.mkdir()
    result = cli("run", str(Path("..") / "uses_helpers.py"), cwd=other)
    assert result.code == 0, result
    assert [r["results"]["answer"] for r in records().values()] == [42]


EXAMPLE = (
    Path(__file__).resolve().parents[3] / "examples/getting_started/04_cli_and_profiles/train.py"
)


def test_the_cli_example_runs_with_the_smoke_profile(cli, records, tmp_path):
    result = cli("run", str(EXAMPLE), "--profile", "smoke")
    assert result.code == 0, result
    runs = records()
    assert len(runs) == 6
    for record in runs.values():
        assert record["status"] == "succeeded"
        assert record["profile_name"] == "smoke"
        assert record["config"]["train"]["epochs"] == 5
        assert "final_loss" in record["results"]
    again = cli("run", str(EXAMPLE), "--profile", "smoke")
    assert again.code == 0 and "6 skipped (already succeeded)" in again.out, again


def test_follow_the_log_of_a_live_run_then_cancel_one(cli, script, tmp_path):
    import json
    import subprocess
    import time

    script(
        "slow.py",
        """
        import asyncio

        wf = workflow(name="slow")


        @wf.task
        async def tick(ctx: TaskContext) -> int:
            for i in range(ctx.config["ticks"]):
                ctx.log("ticks").append(f"tick {i}")
                await asyncio.sleep(0.1)
            return 1


        spec = wf.build()
        ws = me.Workspace(HERE / "lab")
        spec.bind_to(ws.Project("p").Experiment("e"))
        me.entry(ws)
        """,
    )

    def start(ticks: int) -> tuple[subprocess.Popen[str], str]:
        before = set(tmp_path.glob("lab/projects/p/experiments/e/runs/run-*"))
        proc = cli.popen("run", "slow.py", "-o", f"ticks={ticks}")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            for run_dir in set(tmp_path.glob("lab/projects/p/experiments/e/runs/run-*")) - before:
                try:
                    record = json.loads((run_dir / "run.json").read_text())
                except (FileNotFoundError, ValueError):
                    continue  # being created
                if record["status"] == "running" and (run_dir / "logs/ticks.log").exists():
                    return proc, record["id"]
            time.sleep(0.05)
        proc.kill()
        proc.communicate()
        raise AssertionError("the run did not start")

    proc, run_id = start(ticks=15)
    followed = cli("logs", run_id, "ticks", "--follow")
    assert followed.code == 0, followed
    assert followed.out.splitlines() == [f"tick {i}" for i in range(15)]
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out

    proc, run_id = start(ticks=1000)
    cancelled = cli("runs", "cancel", run_id)
    assert cancelled.code == 0 and "cancel requested" in cancelled.out, cancelled
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 1, out
    assert f"p/e/{run_id}  cancelled" in out
    shown = cli("runs", "show", run_id, "--json").json()
    assert shown["status"] == "cancelled"
