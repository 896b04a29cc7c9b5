"""The run lifecycle: RunContext enter/exit, results, failures, profiles, cancel and reopen."""

from __future__ import annotations

import pytest

import molexp as me
from molexp.workspace import RunCancelled, RunStateError


def _disk(run: me.Run) -> dict:
    record: dict = run.storage.read_json(f"{run.key}/run.json")
    return record


def test_enter_marks_running_with_owner_and_a_new_execution_record(exp: me.Experiment) -> None:
    run = exp.Run(id="r")
    with run.start() as ctx:
        record = _disk(run)
        assert record["status"] == "running"
        assert record["owner"]["execution_id"] == ctx.execution_id
        assert record["owner"]["pid"] > 0
        assert record["execution_history"][-1]["status"] == "running"
        assert run.storage.is_dir(f"{run.key}/artifacts")
        assert run.storage.is_dir(f"{run.key}/logs")
    record = _disk(run)
    assert record["status"] == "succeeded"
    assert record["owner"] is None
    assert record["finished_at"] is not None
    assert record["execution_history"][-1]["status"] == "succeeded"
    assert record["execution_history"][-1]["finished_at"] is not None


def test_results_are_durable_and_survive_later_updates(exp: me.Experiment) -> None:
    run = exp.Run(id="r")
    with run.start() as ctx:
        ctx.set_result("loss", 0.25)
        assert _disk(run)["results"] == {"loss": 0.25}
        run.set_workflow({"workflow_id": "w1"})
        ctx.set_result("acc", [0.9, 0.95])
        assert ctx.get_result("loss") == 0.25
    record = _disk(run)
    assert record["results"] == {"loss": 0.25, "acc": [0.9, 0.95]}
    assert record["workflow_snapshot"] == {"workflow_id": "w1"}


def test_results_of_earlier_attempts_are_loaded_on_enter(exp: me.Experiment) -> None:
    with exp.Run(id="r").start() as ctx:
        ctx.set_result("first", 1)
    fresh = me.Workspace.load(exp.workspace.url).project("qm9").experiment("baseline").get_run("r")
    with fresh.start() as ctx:
        assert ctx.get_result("first") == 1
        ctx.set_result("second", 2)
    assert _disk(fresh)["results"] == {"first": 1, "second": 2}
    assert [e["status"] for e in _disk(fresh)["execution_history"]] == ["succeeded", "succeeded"]


def test_non_finite_results_round_trip(exp: me.Experiment) -> None:
    run = exp.Run(id="r")
    with run.start() as ctx:
        ctx.set_result("loss", float("nan"))
        ctx.set_result("best", float("inf"))
    reread = me.Workspace.load(exp.workspace.url).project("qm9").experiment("baseline").get_run("r")
    assert reread.results["best"] == float("inf")
    assert reread.results["loss"] != reread.results["loss"]


def test_result_that_is_not_json_is_refused_and_not_written(exp: me.Experiment) -> None:
    run = exp.Run(id="r")
    with run.start() as ctx:
        with pytest.raises(TypeError, match="result 'model'"):
            ctx.set_result("model", object())
        with pytest.raises(ValueError, match="non-empty string"):
            ctx.set_result("", 1)
    assert _disk(run)["results"] == {}


def test_set_result_outside_a_run_is_a_clear_error(exp: me.Experiment) -> None:
    ctx = exp.Run(id="r").start()
    with pytest.raises(RunStateError, match=r"inside 'with run\.start"):
        ctx.set_result("x", 1)


def test_exception_marks_failed_with_traceback_file(exp: me.Experiment) -> None:
    run = exp.Run(id="r")

    def fail() -> None:
        with run.start() as ctx:
            ctx.set_result("partial", 1)
            _ = 1 / 0

    with pytest.raises(ZeroDivisionError):
        fail()
    record = _disk(run)
    assert record["status"] == "failed"
    assert record["results"] == {"partial": 1}
    error = record["error"]
    assert error["type"] == "ZeroDivisionError"
    assert error["message"] == "division by zero"
    execution_id = record["execution_history"][-1]["execution_id"]
    assert error["traceback_path"] == f"execution/{execution_id}/error.txt"
    traceback_text = run.storage.read_bytes(f"{run.key}/{error['traceback_path']}").decode()
    assert "ZeroDivisionError: division by zero" in traceback_text
    assert "Traceback" in traceback_text
    assert record["execution_history"][-1]["error"]["type"] == "ZeroDivisionError"
    assert run.error is not None and run.error.type == "ZeroDivisionError"


def test_record_failure_fails_the_run_without_raising(exp: me.Experiment) -> None:
    run = exp.Run(id="r")
    with run.start() as ctx:
        try:
            raise RuntimeError("task 'train' failed")
        except RuntimeError as exc:
            ctx.record_failure(exc)
        assert ctx.failed
    assert run.status == me.RunStatus.FAILED
    assert run.error is not None and run.error.message == "task 'train' failed"
    assert run.storage.exists(f"{run.key}/{run.error.traceback_path}")


def test_a_new_attempt_clears_the_error_but_keeps_history(exp: me.Experiment) -> None:
    run = exp.Run(id="r")
    with pytest.raises(RuntimeError), run.start():
        raise RuntimeError("first attempt")
    with run.start():
        pass
    record = _disk(run)
    assert record["status"] == "succeeded"
    assert record["error"] is None
    assert [e["status"] for e in record["execution_history"]] == ["failed", "succeeded"]
    assert record["execution_history"][0]["error"]["message"] == "first attempt"


def test_profile_config_and_hash_are_recorded(exp: me.Experiment) -> None:
    run = exp.Run(id="r")
    with run.start(profile_config={"b": 2, "a": {"x": 1}}, profile_name="smoke") as ctx:
        assert dict(ctx.config) == {"b": 2, "a": {"x": 1}}
        with pytest.raises(TypeError):
            ctx.config["b"] = 3  # type: ignore[index]
    record = _disk(run)
    assert record["profile_name"] == "smoke"
    assert record["config"] == {"b": 2, "a": {"x": 1}}
    assert record["config_hash"] == me.workspace.config_hash({"a": {"x": 1}, "b": 2})
    with run.start():
        pass
    assert _disk(run)["config_hash"] == record["config_hash"]


def test_params_and_chain_on_the_context(exp: me.Experiment) -> None:
    run = exp.Run(parameters={"lr": 0.5}, id="r")
    with run.start() as ctx:
        assert ctx.params == {"lr": 0.5}
        assert ctx.experiment is exp
        assert ctx.project is exp.project
        assert ctx.workspace is exp.workspace
        assert ctx.run_dir == run.run_dir


def test_context_cannot_be_entered_twice(exp: me.Experiment) -> None:
    run = exp.Run(id="r")
    with run.start(), pytest.raises(RunStateError, match="already executing in this process"):
        run.start().__enter__()


def test_cancel_a_created_run(exp: me.Experiment) -> None:
    run = exp.Run(id="r")
    run.cancel("not needed")
    record = _disk(run)
    assert record["status"] == "cancelled"
    assert record["error"]["message"] == "not needed"
    assert record["finished_at"] is not None


def test_cancel_a_succeeded_run_is_refused(exp: me.Experiment) -> None:
    run = exp.Run(id="r")
    with run.start():
        pass
    with pytest.raises(RunStateError, match="already succeeded"):
        run.cancel()
    assert _disk(run)["status"] == "succeeded"


def test_cancel_from_inside_the_process_ends_cancelled(exp: me.Experiment) -> None:
    run = exp.Run(id="r")
    with run.start() as ctx:
        ctx.set_result("kept", True)
        run.cancel("user pressed stop")
        with pytest.raises(RunCancelled, match="user pressed stop"):
            ctx.check_cancelled()
    record = _disk(run)
    assert record["status"] == "cancelled"
    assert record["results"] == {"kept": True}
    assert record["execution_history"][-1]["status"] == "cancelled"


def test_run_cancelled_exception_is_absorbed(exp: me.Experiment) -> None:
    run = exp.Run(id="r")
    with run.start() as ctx:
        run.cancel()
        ctx.check_cancelled()
        pytest.fail("check_cancelled should have raised")
    assert run.status == me.RunStatus.CANCELLED


def test_cancel_request_file_is_honoured_and_removed(exp: me.Experiment) -> None:
    run = exp.Run(id="r")
    with run.start() as ctx:
        run.storage.write_json(f"{run.key}/cancel-request.json", {"reason": "from elsewhere"})
        assert ctx.cancel_requested
    assert run.status == me.RunStatus.CANCELLED
    assert run.error is not None and run.error.message == "from elsewhere"
    assert not run.storage.exists(f"{run.key}/cancel-request.json")


def test_heartbeat_updates_the_owner_and_keeps_results(exp: me.Experiment) -> None:
    import time

    run = exp.Run(id="r")
    with run.start(heartbeat_interval=0.05) as ctx:
        ctx.set_result("x", 1)
        first = _disk(run)["owner"]["heartbeat_at"]
        deadline = time.monotonic() + 5
        while _disk(run)["owner"]["heartbeat_at"] == first and time.monotonic() < deadline:
            time.sleep(0.02)
        record = _disk(run)
        assert record["owner"]["heartbeat_at"] != first
        assert record["results"] == {"x": 1}
    assert _disk(run)["results"] == {"x": 1}


def test_open_rebuilds_the_chain_from_a_run_directory(exp: me.Experiment) -> None:
    run = exp.Run(parameters={"lr": 0.1}, id="r")
    with run.start(profile_config={"scale": 2}, profile_name="smoke"):
        pass
    ctx = me.RunContext.open(str(run.run_dir))
    assert ctx.workspace.id == exp.workspace.id
    assert ctx.project.id == "qm9"
    assert ctx.experiment.id == "baseline"
    assert ctx.run.id == "r"
    with ctx:
        assert ctx.params == {"lr": 0.1}
        assert dict(ctx.config) == {"scale": 2}
    record = _disk(run)
    assert record["profile_name"] == "smoke"
    assert len(record["execution_history"]) == 2


def test_open_refuses_a_path_that_is_not_a_run_directory(exp: me.Experiment) -> None:
    with pytest.raises(me.workspace.NotFoundError, match="is not a run directory"):
        me.RunContext.open(str(exp.experiment_dir))


def test_set_labels_marks_the_run_and_the_attempt(exp: me.Experiment) -> None:
    run = exp.Run(id="r")
    with run.start() as ctx:
        ctx.set_labels({"slurm.job_id": "1234"})
        assert _disk(run)["labels"] == {"slurm.job_id": "1234"}
        with pytest.raises(TypeError, match="non-empty strings to strings"):
            ctx.set_labels({"n": 1})  # type: ignore[dict-item]
    record = _disk(run)
    assert record["labels"] == {"slurm.job_id": "1234"}
    assert record["execution_history"][-1]["labels"] == {"slurm.job_id": "1234"}


def test_a_run_can_record_its_profile_when_created(exp: me.Experiment) -> None:
    run = exp.Run(id="r", profile_config={"scale": 2}, profile_name="smoke")
    record = _disk(run)
    assert record["profile_name"] == "smoke"
    assert record["config"] == {"scale": 2}
    assert record["config_hash"] == me.workspace.config_hash({"scale": 2})
    with run.start() as ctx:
        assert dict(ctx.config) == {"scale": 2}
    assert _disk(run)["config_hash"] == record["config_hash"]


def test_importing_molexp_defers_the_models() -> None:
    import subprocess
    import sys

    code = "import sys, molexp; print('pydantic' in sys.modules); molexp.Workspace; print('ok')"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "ok"]


def test_workdir_is_a_real_local_directory(exp: me.Experiment) -> None:
    run = exp.Run(id="r")
    ctx = run.start()
    with pytest.raises(RunStateError, match="workdir"):
        _ = ctx.workdir
    with ctx:
        workdir = ctx.workdir
        assert workdir.is_dir()
        (workdir / "scratch.txt").write_text("x")
        local = run.storage.local_path(run.key)
        if local is not None:
            assert workdir == local / "work"
    if run.storage.local_path("") is None:
        assert not workdir.exists()  # a remote store's scratch space goes once the run succeeded
    else:
        assert (workdir / "scratch.txt").read_text() == "x"
