"""Actors: producers streaming to consumers over declared channels, and clean shutdown."""

from __future__ import annotations

import asyncio
import time

import pytest

import molexp as me
from molexp.workflow import ChannelError, TaskContext, TaskState, WorkflowValidationError, workflow
from molexp.workspace import NotFoundError


def streaming(n: int = 20):
    wf = workflow(name="stream")

    @wf.task(emits="samples")
    async def produce(ctx: TaskContext) -> int:
        for i in range(n):
            ctx.emit("samples", i)
            await asyncio.sleep(0)
        return n

    @wf.actor(consumes="samples")
    async def analyse(ctx: TaskContext) -> dict:
        count = total = 0
        async for sample in ctx.receive("samples"):
            count += 1
            total += sample
        return {"count": count, "mean": total / count}

    @wf.task(depends_on=["analyse", "produce"])
    async def report(ctx: TaskContext) -> str:
        stats = ctx.inputs["analyse"]
        return f"{stats['count']} samples of {ctx.inputs['produce']}, mean {stats['mean']}"

    return wf.build()


async def test_a_producer_streams_to_an_analysis_actor():
    result = await asyncio.wait_for(streaming().execute(), timeout=5)
    assert result.ok
    assert result.outputs["analyse"] == {"count": 20, "mean": 9.5}
    assert result.outputs["report"] == "20 samples of 20, mean 9.5"


async def test_the_actor_processes_while_the_producer_is_still_running():
    wf = workflow(name="live")
    timeline: list[str] = []

    @wf.task(emits="ticks")
    async def produce(ctx: TaskContext) -> None:
        for i in range(3):
            ctx.emit("ticks", i)
            timeline.append(f"sent {i}")
            await asyncio.sleep(0.02)
        timeline.append("producer done")

    @wf.actor(consumes="ticks")
    async def watch(ctx: TaskContext) -> None:
        async for tick in ctx.receive("ticks"):
            timeline.append(f"got {tick}")
        timeline.append("actor done")

    assert (await wf.build().execute()).ok
    assert timeline.index("got 0") < timeline.index("sent 1")
    assert timeline[-2:] == ["producer done", "actor done"]


async def test_async_generator_actors_form_a_pipeline_with_several_producers():
    wf = workflow(name="pipeline")

    def make_producer(offset: int):
        async def produce(ctx: TaskContext) -> None:
            for i in range(5):
                ctx.emit("raw", offset + i)

        return produce

    wf.task(name="low", emits="raw")(make_producer(0))
    wf.task(name="high", emits="raw")(make_producer(100))

    @wf.actor(consumes="raw", emits="squared")
    async def square(ctx: TaskContext):
        async for value in ctx.receive("raw"):
            yield value * value

    @wf.actor(consumes="squared")
    async def collect(ctx: TaskContext) -> list[int]:
        return sorted([value async for value in ctx.receive("squared")])

    result = await asyncio.wait_for(wf.build().execute(), timeout=5)
    assert result.ok
    expected = sorted([i * i for i in range(5)] + [(100 + i) ** 2 for i in range(5)])
    assert result.outputs["collect"] == expected
    assert result.outputs["square"] is None


async def test_a_synchronous_producer_emits_from_its_worker_thread():
    wf = workflow(name="threaded")

    @wf.task(emits="numbers")
    def produce(ctx: TaskContext) -> None:
        for i in range(50):
            ctx.emit("numbers", i)
            time.sleep(0.001)

    @wf.actor(consumes="numbers")
    async def total(ctx: TaskContext) -> int:
        return sum([n async for n in ctx.receive("numbers")])

    result = await asyncio.wait_for(wf.build().execute(), timeout=5)
    assert result.outputs["total"] == sum(range(50))


async def test_every_consumer_of_a_channel_gets_every_message():
    wf = workflow(name="broadcast")

    @wf.task(emits="events")
    async def produce(ctx: TaskContext) -> None:
        for i in range(3):
            ctx.emit("events", i)

    @wf.actor(consumes="events")
    async def first(ctx: TaskContext) -> list[int]:
        return [e async for e in ctx.receive("events")]

    @wf.actor(consumes="events")
    async def second(ctx: TaskContext) -> list[int]:
        return [e async for e in ctx.receive("events")]

    result = await wf.build().execute()
    assert result.outputs["first"] == result.outputs["second"] == [0, 1, 2]


async def test_an_undeclared_channel_is_a_clear_error():
    wf = workflow(name="typo")

    @wf.task(emits="samples")
    async def produce(ctx: TaskContext) -> None:
        await asyncio.sleep(0.01)  # the actor is listening by now
        ctx.emit("sample", 1)

    wf.actor(consumes="samples", name="analyse")(drain_samples)
    result = await asyncio.wait_for(wf.build().execute(), timeout=5)
    assert result.status == "failed"
    assert isinstance(result.error, NotFoundError)
    assert "channel 'sample' is not declared" in str(result.error)
    assert "(declared: samples)" in str(result.error)
    assert result.tasks["analyse"].state == TaskState.CANCELLED


async def test_emitting_without_declaring_it_is_refused():
    wf = workflow(name="sneaky")

    @wf.task(emits="samples")
    async def produce(ctx: TaskContext) -> None:
        ctx.emit("samples", 1)

    @wf.task
    async def sneaky(ctx: TaskContext) -> None:
        ctx.emit("samples", 2)

    wf.actor(consumes="samples", name="analyse")(drain_samples)
    result = await asyncio.wait_for(wf.build().execute(), timeout=5)
    assert isinstance(result.error, ChannelError)
    assert "task 'sneaky' emits on channel 'samples' without declaring it" in str(result.error)


async def test_receiving_outside_an_actor_is_refused():
    wf = workflow(name="peek")

    @wf.task(emits="samples")
    async def produce(ctx: TaskContext) -> None:
        ctx.receive("samples")

    wf.actor(consumes="samples", name="analyse")(drain_samples)
    result = await asyncio.wait_for(wf.build().execute(), timeout=5)
    assert isinstance(result.error, ChannelError)
    assert "@wf.actor(consumes=['samples'])" in str(result.error)


def test_channel_declarations_are_checked_at_build():
    orphan = workflow(name="orphan")
    orphan.actor(consumes="nothing")(_consume)
    with pytest.raises(WorkflowValidationError, match="no task emits on it"):
        orphan.build()

    unheard = workflow(name="unheard")
    unheard.task(name="shout", emits="void")(lambda ctx: None)
    with pytest.raises(WorkflowValidationError, match="no actor consumes it"):
        unheard.build()

    plain = workflow(name="plain")
    plain.task(name="p", emits="c")(lambda ctx: None)
    plain.actor(consumes="c")(lambda ctx: None)
    with pytest.raises(WorkflowValidationError, match="must be `async def`"):
        plain.build()

    with pytest.raises(WorkflowValidationError, match="needs the channels it consumes"):
        workflow(name="bare").actor(_consume)

    deadlock = workflow(name="deadlock")
    deadlock.actor(consumes="c")(_consume)
    deadlock.task(name="late", emits="c", depends_on=["_consume"])(lambda ctx: None)
    with pytest.raises(WorkflowValidationError, match="via channel 'c'"):
        deadlock.build()


async def _consume(ctx: TaskContext) -> None:
    async for _ in ctx.receive("c"):
        pass


async def drain_samples(ctx: TaskContext) -> None:
    """An actor that reads channel "samples" to its end."""
    async for _ in ctx.receive("samples"):
        pass


async def test_a_failing_producer_stops_the_actor():
    wf = workflow(name="broken-stream")

    @wf.task(emits="samples")
    async def produce(ctx: TaskContext) -> None:
        ctx.emit("samples", 1)
        await asyncio.sleep(0.05)
        raise RuntimeError("sensor lost")

    wf.actor(consumes="samples", name="analyse")(drain_samples)
    result = await asyncio.wait_for(wf.build().execute(), timeout=5)
    assert result.failed_task == "produce"
    assert result.tasks["analyse"].state == TaskState.CANCELLED


async def test_actors_under_a_run_use_the_run_context_channels(exp: me.Experiment):
    wf = workflow(name="tracked-stream")

    @wf.task(emits="samples")
    def produce(ctx: TaskContext) -> int:
        for i in range(10):
            ctx.run_context.emit("samples", i)
        return 10

    @wf.actor(consumes="samples")
    async def analyse(ctx: TaskContext) -> int:
        seen = [s async for s in ctx.run_context.receive("samples")]
        ctx.set_result("seen", len(seen))
        return sum(seen)

    run = exp.Run()
    result = await asyncio.wait_for(wf.build().execute(run=run), timeout=5)
    assert result.outputs == {"produce": 10, "analyse": 45}
    assert run.results == {"seen": 10}
    with pytest.raises(NotFoundError, match="not declared"):
        run.start().emit("other", 1)
