"""Executing under a run: lifecycle, snapshot, saved task states, failures, resume, cancel."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

import molexp as me
from molexp.workflow import TaskContext, TaskState, Workflow, WorkflowError, workflow
from molexp.workflow.snapshot_ref import WorkflowSnapshotRef
from molexp.workspace import RunStateError


def read_state(run: me.Run) -> dict:
    return json.loads((Path(run.run_dir) / "execution" / "state.json").read_text())


def demo() -> Workflow:
    wf = workflow(name="demo")

    @wf.task
    async def fetch(ctx: TaskContext) -> list[float]:
        return [1.0, 4.0, 9.0]

    @wf.task(depends_on=["fetch"])
    def train(ctx: TaskContext) -> dict:
        loss = sum(ctx.inputs) * ctx.params["lr"] * ctx.config.get("scale", 1)
        ctx.set_result("final_loss", loss)
        ctx.artifact.save("metrics.json", {"loss": loss})
        ctx.log("train").append(f"loss={loss}")
        return {"loss": loss}

    return wf.build()


async def test_tracked_execution_records_the_run(exp: me.Experiment):
    spec = demo()
    run = exp.Run(id="tracked")
    result = await spec.execute(run=run, config={"scale": 2}, profile_name="local")

    assert result.ok
    assert result.outputs == {"fetch": [1.0, 4.0, 9.0], "train": {"loss": 0.028}}
    assert result.run_id == "tracked"
    assert result.execution_id == run.metadata.execution_history[-1].execution_id

    reloaded = me.Workspace.load(exp.workspace.root).project("demo").experiment("baseline")
    on_disk = reloaded.get_run("tracked")
    assert on_disk.status == me.RunStatus.SUCCEEDED
    assert on_disk.results == {"final_loss": 0.028}
    assert on_disk.metadata.profile_name == "local"
    assert [r.status for r in on_disk.metadata.execution_history] == ["succeeded"]

    ref = WorkflowSnapshotRef.from_run(on_disk)
    assert ref is not None
    assert ref.workflow_id == spec.workflow_id
    assert ref.name == "demo"
    assert ref.code_hash == spec.code_hash()
    assert ref.config_hash == on_disk.metadata.config_hash
    assert ref.source_file == __file__
    assert ref.git_commit is None or len(ref.git_commit) == 40

    state = read_state(on_disk)
    assert state["workflow_id"] == spec.workflow_id
    assert state["tasks"]["fetch"]["state"] == "succeeded"
    assert state["tasks"]["train"]["output"] == {"loss": 0.028}
    assert (Path(run.run_dir) / "artifacts" / "metrics.json").exists()
    assert (Path(run.run_dir) / "logs" / "train.log").read_text() == "loss=0.028\n"


async def test_assets_are_attributed_to_the_task_that_saved_them(exp: me.Experiment):
    run = exp.Run()
    await demo().execute(run=run)
    artifacts = exp.workspace.catalog.query_assets(kind="artifact", producer_run=run)
    assert [(a.name, a.producer.task) for a in artifacts] == [("metrics.json", "train")]


async def test_joining_a_run_already_open(exp: me.Experiment):
    spec = demo()
    run = exp.Run()
    with run.start(profile_config={"scale": 10}) as rc:
        result = await spec.execute(run=run)
        assert run.status == me.RunStatus.RUNNING  # the caller owns the lifecycle
        assert result.execution_id == rc.execution_id
        with pytest.raises(RunStateError, match="already executing in this process"):
            await spec.execute(run=run, config={"scale": 1})
    assert run.status == me.RunStatus.SUCCEEDED
    assert result.outputs["train"] == {"loss": 0.14}
    assert len(run.metadata.execution_history) == 1


async def test_one_execution_at_a_time_per_attempt(exp: me.Experiment):
    wf = workflow(name="slow")
    wf.task(name="nap")(lambda ctx: __import__("time").sleep(0.2))
    spec = wf.build()
    run = exp.Run()
    with run.start():
        first = asyncio.create_task(spec.execute(run=run))
        await asyncio.sleep(0.05)
        with pytest.raises(RunStateError, match="already executing a workflow"):
            await spec.execute(run=run)
        assert (await first).ok


async def test_params_belong_to_the_run(exp: me.Experiment):
    with pytest.raises(WorkflowError, match="params= is for executing without a run"):
        await demo().execute(run=exp.Run(), params={"lr": 1})


async def test_a_failed_task_fails_the_run_with_its_traceback(exp: me.Experiment):
    wf = workflow(name="failing")

    @wf.task
    async def fine(ctx: TaskContext) -> int:
        return 1

    @wf.task(depends_on=["fine"], retries=1, retry_delay=0)
    async def explode(ctx: TaskContext) -> None:
        raise ValueError("the data is corrupt")

    run = exp.Run()
    result = await wf.build().execute(run=run)

    assert result.status == "failed"
    assert result.outputs == {"fine": 1}
    assert run.status == me.RunStatus.FAILED
    error = run.error
    assert error is not None
    assert (error.type, error.message) == ("ValueError", "the data is corrupt")
    trace = (Path(run.run_dir) / error.traceback_path).read_text()
    assert "task 'explode' of workflow 'failing' failed (attempt 2 of 2)" in trace
    assert 'raise ValueError("the data is corrupt")' in trace
    entry = read_state(run)["tasks"]["explode"]
    assert entry["state"] == "failed"
    assert entry["error"] == "ValueError: the data is corrupt"
    assert entry["attempts"] == 2


def resumable(marker: Path, calls, *, a_version: int = 1, a_output: int = 1) -> Workflow:
    """a → b → c, and d on its own; b fails while ``marker`` does not exist (and creates it)."""
    wf = workflow(name="resumable")

    @wf.task(name="a")
    def a(ctx: TaskContext) -> int:
        calls.hit("a")
        return a_output + 0 * a_version

    @wf.task(name="b", depends_on=["a"])
    def b(ctx: TaskContext) -> int:
        calls.hit("b")
        if not marker.exists():
            marker.write_text("failed once")
            raise RuntimeError("transient failure")
        return ctx.inputs + 10

    @wf.task(name="c", depends_on=["b"])
    async def c(ctx: TaskContext) -> int:
        calls.hit("c")
        return ctx.inputs * 2

    @wf.task(name="d")
    async def d(ctx: TaskContext) -> str:
        calls.hit("d")
        return "independent"

    return wf.build()


async def test_resume_after_a_failure_skips_what_succeeded(exp: me.Experiment, tmp_path, calls):
    marker = tmp_path / "marker"
    spec = resumable(marker, calls)
    run = exp.Run(id="resume")

    first = await spec.execute(run=run)
    assert first.status == "failed"
    assert run.status == me.RunStatus.FAILED
    assert first.outputs["a"] == 1
    assert (calls.count("a"), calls.count("b"), calls.count("c")) == (1, 1, 0)

    second = await spec.execute(run=run)
    assert second.ok
    assert run.status == me.RunStatus.SUCCEEDED
    assert second.outputs == {"a": 1, "b": 11, "c": 22, "d": "independent"}
    assert second.tasks["a"].state == TaskState.REUSED
    assert second.tasks["b"].state == TaskState.SUCCEEDED
    counts = {name: calls.count(name) for name in "abcd"}
    assert counts["a"] == 1  # not run again
    assert counts["b"] == 2
    assert counts["c"] == 1
    assert [r.status for r in run.metadata.execution_history] == ["failed", "succeeded"]

    third = await spec.execute(run=run)  # everything is reusable now
    assert {t.state for t in third.tasks.values()} == {TaskState.REUSED}
    assert third.outputs == second.outputs
    assert calls.count("b") == 2


async def test_resume_in_a_fresh_process_state(exp: me.Experiment, tmp_path, calls):
    """The saved state is all a later attempt needs: reopen the run from disk."""
    marker = tmp_path / "marker"
    run = exp.Run(id="reopen")
    await resumable(marker, calls).execute(run=run)
    reopened = me.RunContext.open(run.run_dir).run
    assert reopened is not run
    result = await resumable(marker, calls).execute(run=reopened)
    assert result.ok
    assert calls.count("a") == 1


async def test_changed_code_runs_again_but_unchanged_outputs_keep_downstream(
    exp: me.Experiment, tmp_path, calls
):
    marker = tmp_path / "marker"
    marker.write_text("never fail")
    run = exp.Run()
    await resumable(marker, calls).execute(run=run)

    # New code for `a`, same output: `a` runs again, `b` and `c` see the same input and are reused.
    again = await resumable(marker, calls, a_version=2).execute(run=run)
    assert again.tasks["a"].state == TaskState.SUCCEEDED
    assert again.tasks["b"].state == TaskState.REUSED
    assert calls.count("a") == 2
    assert calls.count("b") == 1

    # New output of `a`: everything downstream runs again.
    changed = await resumable(marker, calls, a_version=3, a_output=5).execute(run=run)
    assert changed.outputs["c"] == 30
    assert (calls.count("a"), calls.count("b"), calls.count("c")) == (3, 2, 2)
    assert calls.count("d") == 1


async def test_changed_config_runs_everything_again(exp: me.Experiment, tmp_path, calls):
    marker = tmp_path / "marker"
    marker.write_text("never fail")
    run = exp.Run()
    spec = resumable(marker, calls)
    await spec.execute(run=run, config={"scale": 1})
    await spec.execute(run=run, config={"scale": 2})
    assert calls.count("a") == 2
    await spec.execute(run=run, resume=False)
    assert calls.count("a") == 3


async def test_outputs_json_cannot_store_exactly_are_not_reused(exp: me.Experiment, calls):
    wf = workflow(name="lossy")

    @wf.task
    async def pair(ctx: TaskContext) -> tuple[int, int]:
        calls.hit("pair")
        return (1, 2)

    @wf.task(depends_on=["pair"])
    async def total(ctx: TaskContext) -> int:
        calls.hit("total")
        return sum(ctx.inputs)

    @wf.task
    async def plain(ctx: TaskContext) -> dict:
        calls.hit("plain")
        return {"ok": [1, 2.5, None, True, "x"]}

    spec = wf.build()
    run = exp.Run()
    first = await spec.execute(run=run)
    assert first.outputs["pair"] == (1, 2)
    entry = read_state(run)["tasks"]["pair"]
    assert entry["stored"] is False
    assert "tuple" in entry["reason"]
    assert "output" not in entry

    second = await spec.execute(run=run)
    assert second.outputs["pair"] == (1, 2)  # computed again, never a list
    assert second.tasks["pair"].state == TaskState.SUCCEEDED
    assert second.tasks["total"].state == TaskState.SUCCEEDED
    assert second.tasks["plain"].state == TaskState.REUSED
    assert (calls.count("pair"), calls.count("total"), calls.count("plain")) == (2, 2, 1)


@pytest.mark.parametrize(
    "value",
    [
        float("nan"),
        {1: "int key"},
        {1, 2},
        b"bytes",
        Path("p"),
        [[(1,)]],
        {"k": {"n": [float("inf")]}},
    ],
)
async def test_lossy_values_are_detected(exp: me.Experiment, value):
    wf = workflow(name="lossy")
    wf.task(name="value")(lambda ctx: value)
    run = exp.Run()
    await wf.build().execute(run=run)
    assert read_state(run)["tasks"]["value"]["stored"] is False


async def test_a_newer_state_format_is_a_clear_error(exp: me.Experiment):
    run = exp.Run()
    await demo().execute(run=run)
    path = Path(run.run_dir) / "execution" / "state.json"
    state = json.loads(path.read_text())
    state["format"] = 99
    path.write_text(json.dumps(state))
    with pytest.raises(WorkflowError, match="written by a newer molexp-workflow"):
        await demo().execute(run=run)
    assert run.status == me.RunStatus.FAILED


async def test_a_corrupt_state_is_named_and_resume_false_replaces_it(exp: me.Experiment):
    run = exp.Run()
    await demo().execute(run=run)
    path = Path(run.run_dir) / "execution" / "state.json"
    path.write_text('{"tasks": {')
    with pytest.raises(WorkflowError, match=r"state\.json is not valid JSON") as info:
        await demo().execute(run=run)
    assert "resume=False" in str(info.value)
    assert (await demo().execute(run=run, resume=False)).ok
    assert read_state(run)["tasks"]["train"]["state"] == "succeeded"


async def test_a_cancel_request_from_elsewhere_stops_the_run(exp: me.Experiment, ws):
    wf = workflow(name="cancellable")
    stopped = asyncio.Event()

    @wf.task
    async def sleeper(ctx: TaskContext) -> None:
        try:
            await asyncio.sleep(10)
        finally:
            stopped.set()

    @wf.task
    def requester(ctx: TaskContext) -> None:
        # Another handle on the same run, as another process would have: it writes a request.
        other = me.Workspace.load(ws.root).project("demo").experiment("baseline")
        other.get_run(ctx.run_context.run.id).cancel("enough")

    run = exp.Run()
    result = await asyncio.wait_for(wf.build().execute(run=run), timeout=5)
    assert stopped.is_set()
    assert result.status == "cancelled"
    assert result.tasks["sleeper"].state == TaskState.CANCELLED
    assert run.status == me.RunStatus.CANCELLED
    assert run.error is not None and run.error.message == "enough"
    assert read_state(run)["tasks"]["sleeper"]["state"] == "cancelled"


async def test_cancelling_a_tracked_execution_cancels_the_run(exp: me.Experiment):
    wf = workflow(name="long")

    @wf.task
    async def forever(ctx: TaskContext) -> None:
        await asyncio.sleep(10)

    run = exp.Run()
    execution = asyncio.create_task(wf.build().execute(run=run))
    await asyncio.sleep(0.1)
    execution.cancel()
    with pytest.raises(asyncio.CancelledError):
        await execution
    assert run.status == me.RunStatus.CANCELLED
    assert read_state(run)["tasks"]["forever"]["state"] == "cancelled"


async def test_task_states_are_saved_while_the_run_goes(exp: me.Experiment):
    wf = workflow(name="progress")

    @wf.task
    async def quick(ctx: TaskContext) -> int:
        return 1

    @wf.task(depends_on=["quick"])
    async def watch(ctx: TaskContext) -> dict:
        await asyncio.sleep(0.6)  # several save intervals
        saved = read_state(ctx.run_context.run)["tasks"]
        return {name: entry["state"] for name, entry in saved.items()}

    result = await wf.build().execute(run=exp.Run())
    assert result.outputs["watch"] == {"quick": "succeeded", "watch": "running"}


async def test_a_wide_tracked_fan_out_saves_every_state(exp: me.Experiment):
    wf = workflow(name="wide")

    async def quick(ctx: TaskContext) -> int:
        return 1

    for i in range(1000):
        wf.task(name=f"t{i}")(quick)
    run = exp.Run()
    result = await wf.build().execute(run=run)
    assert result.ok
    tasks = read_state(run)["tasks"]
    assert len(tasks) == 1000
    assert all(e["state"] == "succeeded" and e["output"] == 1 for e in tasks.values())
