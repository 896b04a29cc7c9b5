"""Benchmark: the workflow runtime against a minimal plain-asyncio DAG scheduler (the floor).

Measured in one process, side by side:

* **per-task overhead** on a 1,000-task chain and on a 1,000-wide fan-out + reduce, for
  ``spec.execute()`` and for the floor below (the same graph, trivial async bodies): time per task
  and the ratio molexp/floor (target: at most 3x);
* **concurrency**: 100 independent tasks that ``await asyncio.sleep(0.1)`` (target: at most
  0.11 s) and 100 that ``time.sleep(0.1)`` in the worker pool (target: at most 0.2 s);
* **tracked**: a 1,000-task fan-out executed under a run in a local workspace, every task state
  and output persisted to the run's execution state (target: under 0.5 s, lifecycle included).

The floor is what a DAG needs at the least: an asyncio task per node that runs the body, then
counts down its dependents and starts those that are ready. Timings are the best of several
repetitions (the floor and molexp alternate, so both see the same machine state).

Usage::

    python benchmarks/bench_workflow.py            # 1,000 tasks, 7 repetitions
    python benchmarks/bench_workflow.py --n 5000 --repeat 3
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import shutil
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import molexp as me
from molexp.workflow import TaskContext, Workflow, workflow

MAX_RATIO = 3.0

# -- the floor --------------------------------------------------------------------------------


async def floor_execute(deps: list[list[int]], body: Callable[[Any], Awaitable[Any]]) -> list[Any]:
    """Run a DAG given as dependency lists (indices), each node ``await body(inputs)``."""
    loop = asyncio.get_running_loop()
    n = len(deps)
    dependents: list[list[int]] = [[] for _ in range(n)]
    for i, ds in enumerate(deps):
        for d in ds:
            dependents[d].append(i)
    waiting = [len(ds) for ds in deps]
    outputs: list[Any] = [None] * n
    tasks = []
    done = loop.create_future()
    left = n

    async def run(i: int) -> None:
        nonlocal left
        ds = deps[i]
        if not ds:
            inputs = None
        elif len(ds) == 1:
            inputs = outputs[ds[0]]
        else:
            inputs = [outputs[d] for d in ds]
        outputs[i] = await body(inputs)
        left -= 1
        for j in dependents[i]:
            waiting[j] -= 1
            if waiting[j] == 0:
                tasks.append(loop.create_task(run(j)))
        if left == 0:
            done.set_result(None)

    for i in range(n):
        if not deps[i]:
            tasks.append(loop.create_task(run(i)))
    await done
    return outputs


async def floor_body(inputs: Any) -> int:
    return 1


# -- the graphs -------------------------------------------------------------------------------


async def molexp_body(ctx: TaskContext) -> int:
    return 1


def chain(n: int) -> tuple[Workflow, list[list[int]]]:
    wf = workflow(name=f"chain-{n}")
    for i in range(n):
        wf.task(name=f"t{i}", depends_on=[f"t{i - 1}"] if i else None)(molexp_body)
    return wf.build(), [[i - 1] if i else [] for i in range(n)]


def fan_out(n: int) -> tuple[Workflow, list[list[int]]]:
    """One root, ``n - 2`` parallel tasks after it, one reduce after all of them."""
    wf = workflow(name=f"fan-{n}")
    wf.task(name="root")(molexp_body)
    for i in range(n - 2):
        wf.task(name=f"t{i}", depends_on=["root"])(molexp_body)
    wf.task(name="reduce", depends_on=[f"t{i}" for i in range(n - 2)])(molexp_body)
    deps = [[]] + [[0] for _ in range(n - 2)] + [list(range(1, n - 1))]
    return wf.build(), deps


def best(repeat: int, fn: Callable[[], float]) -> float:
    return min(fn() for _ in range(repeat))


def timed(coro_fn: Callable[[], Awaitable[Any]]) -> float:
    async def once() -> float:
        gc.collect()
        start = time.perf_counter()
        await coro_fn()
        return time.perf_counter() - start

    return asyncio.run(once())


# -- the measurements -------------------------------------------------------------------------


def overhead_rows(n: int, repeat: int) -> list[tuple[str, float, float]]:
    rows = []
    for label, make in (("chain", chain), ("fan-out + reduce", fan_out)):
        spec, deps = make(n)
        floor_times, molexp_times = [], []
        for _ in range(repeat):
            floor_times.append(timed(lambda deps=deps: floor_execute(deps, floor_body)))
            molexp_times.append(timed(spec.execute))
        rows.append((f"{label} ({n:,} tasks)", min(floor_times) / n, min(molexp_times) / n))
    return rows


def sleeping(n: int, *, sync: bool) -> Workflow:
    wf = workflow(name=f"sleep-{'sync' if sync else 'async'}")

    async def nap(ctx: TaskContext) -> None:
        await asyncio.sleep(0.1)

    def doze(ctx: TaskContext) -> None:
        time.sleep(0.1)

    for i in range(n):
        wf.task(name=f"s{i}")(doze if sync else nap)
    return wf.build()


def tracked(n: int, repeat: int) -> float:
    async def quick(ctx: TaskContext) -> dict[str, int]:
        return {"value": 1}

    wf = workflow(name=f"tracked-fan-{n}")
    for i in range(n):
        wf.task(name=f"t{i}")(quick)
    spec = wf.build()
    root = Path(tempfile.mkdtemp(prefix="molexp-bench-"))
    try:
        exp = me.Workspace(root / "lab").Project("bench").Experiment("tracked")
        times = []
        for _ in range(repeat):
            run = exp.Run()
            times.append(timed(lambda run=run: spec.execute(run=run)))
            state = json.loads((Path(run.run_dir) / "execution" / "state.json").read_text())
            saved = [
                e for e in state["tasks"].values() if e["state"] == "succeeded" and e["stored"]
            ]
            assert run.status == "succeeded" and len(saved) == n, (run.status, len(saved))
        return min(times)
    finally:
        shutil.rmtree(root)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=1000, help="tasks per graph (default 1,000)")
    parser.add_argument("--repeat", type=int, default=7, help="repetitions (best is shown)")
    args = parser.parse_args()

    print(f"{'graph':<28} {'floor µs/task':>14} {'molexp µs/task':>15} {'ratio':>7}  target")
    for label, floor, ours in overhead_rows(args.n, args.repeat):
        ratio = ours / floor
        verdict = "ok" if ratio <= MAX_RATIO else "OVER"
        print(
            f"{label:<28} {floor * 1e6:>14.1f} {ours * 1e6:>15.1f} {ratio:>6.2f}x  "
            f"<= {MAX_RATIO:g}x {verdict}"
        )
    print()
    print(f"{'scenario':<44} {'seconds':>8}  target")
    scenarios = [
        ("100 tasks, await asyncio.sleep(0.1)", sleeping(100, sync=False).execute, 0.11),
        ("100 tasks, time.sleep(0.1) in the pool", sleeping(100, sync=True).execute, 0.2),
    ]
    for label, execute, target in scenarios:
        seconds = best(args.repeat, lambda execute=execute: timed(execute))
        verdict = "ok" if seconds <= target else "OVER"
        print(f"{label:<44} {seconds:>8.3f}  <= {target:g} {verdict}")
    seconds = tracked(args.n, max(1, args.repeat // 2))
    verdict = "ok" if seconds < 0.5 else "OVER"
    label = f"tracked {args.n:,}-task fan-out, states persisted"
    print(f"{label:<44} {seconds:>8.3f}  < 0.5 {verdict}")


if __name__ == "__main__":
    main()
