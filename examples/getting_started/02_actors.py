"""Actors: a producer streams samples to an analysis actor while the rest of the graph runs.

A task declares the channels it sends on (``emits=``); an actor declares what it consumes and
reads it with ``async for msg in ctx.receive(channel)``. The loop ends when every emitter of the
channel has finished, so the actor shuts down cleanly and returns its summary.

Usage::

    python examples/getting_started/02_actors.py

Needs ``molexp-workflow``. It writes nothing to disk.
"""

from __future__ import annotations

import asyncio
import math
import random

from molexp.workflow import TaskContext, workflow

wf = workflow(name="streaming-analysis")


@wf.task(emits="samples")
async def simulate(ctx: TaskContext) -> int:
    """Produce 200 noisy energies, one every millisecond, as a simulation would."""
    rng = random.Random(42)
    for step in range(200):
        ctx.emit("samples", {"step": step, "energy": -10.0 + rng.gauss(0.0, 0.5)})
        await asyncio.sleep(0.001)
    return 200


@wf.actor(consumes="samples", emits="alerts")
async def watch(ctx: TaskContext):
    """A streaming actor (an async generator): what it yields is emitted on "alerts"."""
    async for sample in ctx.receive("samples"):
        if sample["energy"] > -9.0:
            yield f"step {sample['step']}: energy {sample['energy']:.2f} above -9"


@wf.actor(consumes="samples")
async def statistics(ctx: TaskContext) -> dict[str, float]:
    """A long-running actor: running mean and deviation (Welford), returned at the end."""
    count, mean, m2 = 0, 0.0, 0.0
    async for sample in ctx.receive("samples"):
        count += 1
        delta = sample["energy"] - mean
        mean += delta / count
        m2 += delta * (sample["energy"] - mean)
    return {"count": count, "mean": mean, "std": math.sqrt(m2 / count)}


@wf.actor(consumes="alerts")
async def alerts(ctx: TaskContext) -> list[str]:
    """Collects what `watch` flagged."""
    return [alert async for alert in ctx.receive("alerts")]


@wf.task(depends_on=["statistics", "alerts", "simulate"])
async def report(ctx: TaskContext) -> str:
    stats, flagged = ctx.inputs["statistics"], ctx.inputs["alerts"]
    return (
        f"{stats['count']} of {ctx.inputs['simulate']} samples: mean {stats['mean']:.3f}, "
        f"std {stats['std']:.3f}; {len(flagged)} alerts"
    )


async def main() -> None:
    spec = wf.build()
    print(
        f"channels: {', '.join(f'{c} ({len(e)} emitter)' for c, (e, _) in spec.channels.items())}"
    )
    result = await spec.execute()
    print(f"status: {result.status.value} in {result.duration:.2f} s")
    for alert in result.outputs["alerts"][:3]:
        print(f"  alert: {alert}")
    print(result.outputs["report"])


if __name__ == "__main__":
    asyncio.run(main())
