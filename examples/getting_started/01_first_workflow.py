"""Your first workflow: declare tasks, compile them, execute the graph — no workspace needed.

Usage::

    python examples/getting_started/01_first_workflow.py

Needs ``molexp-workflow``: ``pip install -e packages/molexp-workspace -e packages/molexp-workflow``.
It writes nothing to disk.
"""

from __future__ import annotations

import asyncio
import statistics
import time

from molexp.workflow import TaskContext, workflow

# -- 1. Declare: decorating records tasks and runs nothing -------------------------------------
wf = workflow(name="demo")


@wf.task
async def fetch(ctx: TaskContext) -> list[float]:
    """A root task: no dependencies, so ctx.inputs is None."""
    await asyncio.sleep(0.1)  # stands in for I/O
    return [1.0, 4.0, 9.0, 16.0]


@wf.task(depends_on=["fetch"])
async def summarize(ctx: TaskContext) -> float:
    """One dependency: ctx.inputs is fetch's output."""
    return sum(ctx.inputs)


@wf.task(depends_on=["fetch"])
def spread(ctx: TaskContext) -> float:
    """A plain function: it runs in a worker thread, so it may block without stalling others."""
    time.sleep(0.1)  # stands in for CPU-bound or blocking work
    return statistics.pstdev(ctx.inputs)


@wf.task(depends_on=["summarize", "spread"], retries=2, timeout=5)
async def report(ctx: TaskContext) -> str:
    """Several dependencies: ctx.inputs is a dict by task name."""
    scale = ctx.config.get("scale", 1.0)
    return f"total={ctx.inputs['summarize'] * scale:g} spread={ctx.inputs['spread']:.3f}"


def main() -> None:
    # -- 2. Compile: validate the graph into a frozen Workflow with a deterministic id ---------
    spec = wf.build()
    print(f"compiled {spec!r}")
    print(f"  tasks in order: {', '.join(spec.tasks)}")
    print(f"  workflow_id:    {spec.workflow_id}  (the same in every process)")

    # -- 3. Execute: summarize and spread run at the same time, once fetch is done -------------
    result = spec.execute_sync(config={"scale": 2.0})  # in async code: await spec.execute(...)
    print(f"\nstatus: {result.status.value} in {result.duration:.2f} s")
    for name, task in result.tasks.items():
        print(f"  {name:<10} {task.state.value:<10} {task.duration:.3f} s  -> {task.output!r}")
    print(f"\nreport: {result.outputs['report']}")


if __name__ == "__main__":
    main()
