"""The runtime without a run: inputs, concurrency, threads, retries, timeouts, fail-fast."""

from __future__ import annotations

import asyncio
import itertools
import threading
import time

import pytest

from molexp.workflow import (
    RunRequiredError,
    TaskContext,
    TaskState,
    TaskTimeoutError,
    WorkflowError,
    workflow,
)


async def test_inputs_are_none_one_value_or_a_mapping():
    wf = workflow(name="shapes")
    seen = {}

    @wf.task
    async def root(ctx: TaskContext) -> int:
        seen["root"] = ctx.inputs
        return 1

    @wf.task
    def other(ctx: TaskContext) -> int:
        return 2

    @wf.task(depends_on=["root"])
    async def single(ctx: TaskContext) -> int:
        seen["single"] = ctx.inputs
        return 3

    @wf.task(depends_on=["root", "other"])
    async def several(ctx: TaskContext) -> int:
        seen["several"] = ctx.inputs
        return 4

    result = await wf.build().execute()
    assert seen == {"root": None, "single": 1, "several": {"root": 1, "other": 2}}
    assert result.outputs == {"root": 1, "other": 2, "single": 3, "several": 4}
    assert all(task.state == TaskState.SUCCEEDED for task in result.tasks.values())
    assert result.tasks["root"].attempts == 1
    assert result.tasks["root"].duration is not None
    assert result.run_id is None
    assert result.execution_id is None


async def test_config_and_params_are_read_only_and_empty_by_default():
    wf = workflow(name="cfg")

    @wf.task
    async def look(ctx: TaskContext) -> dict:
        with pytest.raises(TypeError):
            ctx.config["scale"] = 3  # type: ignore[index]
        return {"config": dict(ctx.config), "params": dict(ctx.params), "rc": ctx.run_context}

    spec = wf.build()
    assert (await spec.execute()).outputs["look"] == {"config": {}, "params": {}, "rc": None}
    given = await spec.execute(config={"scale": 2}, params={"lr": 0.1})
    assert given.outputs["look"] == {"config": {"scale": 2}, "params": {"lr": 0.1}, "rc": None}


@pytest.mark.parametrize(
    ("helper", "call"),
    [
        ("set_result", lambda ctx: ctx.set_result("loss", 1.0)),
        ("artifact", lambda ctx: ctx.artifact.save("a.json", {})),
        ("log", lambda ctx: ctx.log("train").append("x")),
        ("checkpoint", lambda ctx: ctx.checkpoint("model", data=b"x")),
        ("find_asset", lambda ctx: ctx.find_asset("data")),
        ("get_data_dir", lambda ctx: ctx.get_data_dir("data")),
    ],
)
async def test_workspace_helpers_need_a_run(helper, call):
    wf = workflow(name="helpers")
    wf.task(name="use")(call)
    result = await wf.build().execute()
    assert result.status == "failed"
    assert isinstance(result.error, RunRequiredError)
    assert f"ctx.{helper} needs a run" in str(result.error)
    assert "execute(run=run)" in str(result.error)


async def test_independent_async_tasks_overlap():
    wf = workflow(name="wide")

    async def nap(ctx: TaskContext) -> None:
        await asyncio.sleep(0.2)

    for i in range(20):
        wf.task(name=f"nap{i}")(nap)
    start = time.perf_counter()
    result = await wf.build().execute()
    elapsed = time.perf_counter() - start
    assert result.ok
    assert elapsed < 1.0  # the serial sum is 4 s


async def test_a_task_starts_when_its_own_dependencies_finish():
    wf = workflow(name="events")
    started: dict[str, float] = {}

    @wf.task
    async def quick(ctx: TaskContext) -> None:
        await asyncio.sleep(0.01)

    @wf.task
    async def slow(ctx: TaskContext) -> None:
        await asyncio.sleep(0.3)

    @wf.task(depends_on=["quick"])
    async def after_quick(ctx: TaskContext) -> None:
        started["after_quick"] = time.perf_counter()

    begin = time.perf_counter()
    await wf.build().execute()
    assert started["after_quick"] - begin < 0.2  # did not wait for `slow`


async def test_sync_bodies_run_off_the_event_loop_and_overlap():
    wf = workflow(name="threads")
    loop_thread = threading.get_ident()

    def doze(ctx: TaskContext) -> int:
        time.sleep(0.2)
        return threading.get_ident()

    for i in range(20):
        wf.task(name=f"doze{i}")(doze)

    ticks = 0

    async def heartbeat() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    beat = asyncio.create_task(heartbeat())
    start = time.perf_counter()
    result = await wf.build().execute()
    elapsed = time.perf_counter() - start
    beat.cancel()
    assert result.ok
    assert elapsed < 1.0  # the serial sum is 4 s; the pool is sized by the workflow
    assert loop_thread not in set(result.outputs.values())
    assert ticks >= 5  # the loop kept turning while the bodies slept


async def test_max_concurrency_limits_running_tasks():
    running = 0
    peak = 0

    async def track(ctx: TaskContext) -> None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.02)
        running -= 1

    wf = workflow(name="limited", max_concurrency=3)
    for i in range(12):
        wf.task(name=f"t{i}")(track)
    spec = wf.build()
    assert (await spec.execute()).ok
    assert peak == 3
    peak = 0
    assert (await spec.execute(max_concurrency=1)).ok
    assert peak == 1


async def test_retries_with_backoff():
    attempts: list[float] = []
    wf = workflow(name="flaky")

    @wf.task(retries=2, retry_delay=0.05)
    async def flaky(ctx: TaskContext) -> int:
        attempts.append(time.perf_counter())
        if len(attempts) < 3:
            raise RuntimeError(f"attempt {ctx.attempt} failed")
        return ctx.attempt

    result = await wf.build().execute()
    assert result.ok
    assert result.outputs == {"flaky": 3}
    assert result.tasks["flaky"].attempts == 3
    gaps = [b - a for a, b in itertools.pairwise(attempts)]
    assert gaps[0] >= 0.045
    assert gaps[1] >= 0.095  # the delay doubles


async def test_retries_run_out():
    wf = workflow(name="broken")

    @wf.task(retries=1, retry_delay=0)
    def broken(ctx: TaskContext) -> None:
        raise ValueError(f"no luck on attempt {ctx.attempt}")

    result = await wf.build().execute()
    assert result.status == "failed"
    assert result.failed_task == "broken"
    assert str(result.error) == "no luck on attempt 2"
    assert result.tasks["broken"].attempts == 2


async def test_async_timeout_cancels_the_attempt():
    wf = workflow(name="slow")

    @wf.task(timeout=0.05)
    async def slow(ctx: TaskContext) -> None:
        await asyncio.sleep(5)

    start = time.perf_counter()
    result = await wf.build().execute()
    assert time.perf_counter() - start < 1
    assert isinstance(result.error, TaskTimeoutError)
    assert "task 'slow' timed out after 0.05 s (attempt 1 of 1)" in str(result.error)


async def test_sync_timeout_gives_up_on_the_thread_but_waits_for_it(tmp_path):
    wf = workflow(name="slow-sync")

    @wf.task(timeout=0.05, retries=1, retry_delay=0)
    def slow(ctx: TaskContext) -> None:
        time.sleep(0.3)
        (tmp_path / f"attempt-{ctx.attempt}").write_text("returned")

    result = await wf.build().execute()
    assert isinstance(result.error, TaskTimeoutError)
    assert "(attempt 2 of 2)" in str(result.error)
    # No body outlives the execution: both threads returned before execute() did.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["attempt-1", "attempt-2"]


async def test_worker_threads_get_the_threading_trace_hook():
    seen: set[str] = set()

    def tracer(frame, event, arg):
        if event == "call":
            seen.add(frame.f_code.co_name)

    def traced_body(ctx: TaskContext) -> int:
        return 1

    wf = workflow(name="traced")
    wf.task(traced_body)
    previous = threading.gettrace()
    threading.settrace(tracer)
    try:
        assert (await wf.build().execute()).ok
    finally:
        threading.settrace(previous)  # type: ignore[arg-type]
    assert "traced_body" in seen


async def test_a_chain_of_sync_tasks_reuses_one_thread():
    wf = workflow(name="sync-chain")

    def ident(ctx: TaskContext) -> list[int]:
        return [*(ctx.inputs or []), threading.get_ident()]

    for i in range(20):
        wf.task(name=f"t{i}", depends_on=[f"t{i - 1}"] if i else None)(ident)
    idents = (await wf.build().execute()).outputs["t19"]
    assert len(set(idents)) == 1


async def test_a_timeout_error_raised_by_the_body_is_not_a_task_timeout():
    wf = workflow(name="own-timeout")

    @wf.task(timeout=10)
    async def own(ctx: TaskContext) -> None:
        raise TimeoutError("the service did not answer")

    result = await wf.build().execute()
    assert type(result.error) is TimeoutError


async def test_fail_fast_cancels_siblings_and_keeps_finished_outputs():
    wf = workflow(name="fail-fast")
    reached = []

    @wf.task
    async def done_early(ctx: TaskContext) -> str:
        return "kept"

    @wf.task
    async def sibling(ctx: TaskContext) -> None:
        try:
            await asyncio.sleep(5)
        finally:
            reached.append("sibling stopped")

    @wf.task
    async def boom(ctx: TaskContext) -> None:
        await asyncio.sleep(0.05)
        raise ValueError("boom")

    @wf.task(depends_on=["boom"])
    async def downstream(ctx: TaskContext) -> None:
        reached.append("downstream ran")

    start = time.perf_counter()
    result = await wf.build().execute()
    assert time.perf_counter() - start < 1
    assert result.status == "failed"
    assert result.failed_task == "boom"
    assert isinstance(result.error, ValueError)
    assert result.outputs == {"done_early": "kept"}
    states = {name: task.state for name, task in result.tasks.items()}
    assert states == {
        "done_early": TaskState.SUCCEEDED,
        "sibling": TaskState.CANCELLED,
        "boom": TaskState.FAILED,
        "downstream": TaskState.PENDING,
    }
    assert reached == ["sibling stopped"]


async def test_a_body_cancelled_by_someone_else_is_a_failure():
    wf = workflow(name="odd")

    @wf.task
    async def odd(ctx: TaskContext) -> None:
        raise asyncio.CancelledError

    result = await wf.build().execute()
    assert result.status == "failed"
    assert result.tasks["odd"].state == TaskState.FAILED


async def test_cancelling_the_execution_cancels_the_tasks():
    wf = workflow(name="long")
    stopped = asyncio.Event()

    @wf.task
    async def forever(ctx: TaskContext) -> None:
        try:
            await asyncio.sleep(10)
        finally:
            stopped.set()

    execution = asyncio.create_task(wf.build().execute())
    await asyncio.sleep(0.05)
    execution.cancel()
    with pytest.raises(asyncio.CancelledError):
        await execution
    assert stopped.is_set()


async def test_execute_sync_refuses_a_running_loop():
    wf = workflow(name="sync")
    wf.task(name="one")(lambda ctx: 1)
    with pytest.raises(WorkflowError, match=r"use `await spec\.execute"):
        wf.build().execute_sync()


def test_execute_sync_in_a_script():
    wf = workflow(name="sync")
    wf.task(name="one")(lambda ctx: 1)
    assert wf.build().execute_sync().outputs == {"one": 1}


async def test_async_callable_objects_and_partials_are_awaited():
    import functools

    class Call:
        async def __call__(self, ctx: TaskContext) -> str:
            return "object"

    async def scaled(ctx: TaskContext, factor: int) -> int:
        return factor

    wf = workflow(name="callables")
    wf.task(name="obj")(Call())
    wf.task(name="partial")(functools.partial(scaled, factor=7))
    assert (await wf.build().execute()).outputs == {"obj": "object", "partial": 7}


async def test_tasks_stopped_before_they_start_stay_pending():
    wf = workflow(name="instant")
    started = []

    @wf.task
    async def boom(ctx: TaskContext) -> None:
        raise ValueError("at once")

    @wf.task
    async def never(ctx: TaskContext) -> None:
        started.append("never")

    result = await asyncio.wait_for(wf.build().execute(), timeout=5)
    assert result.failed_task == "boom"
    assert result.tasks["never"].state == TaskState.PENDING
    assert started == []
