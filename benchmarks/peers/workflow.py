"""Workflow runtimes, the same graphs in molexp, plain asyncio, Dask and Prefect.

Every adapter answers the same four commands, each returning the wall time of one execution:

* ``chain(n)``: ``n`` tasks, each depending on the one before, trivial bodies (return 1);
* ``fan(n)``: one root, ``n - 2`` tasks after it, one reduce after all of them;
* ``sleep_async(n)``: ``n`` independent tasks of ``await asyncio.sleep(0.1)``;
* ``sleep_threads(n)``: ``n`` independent tasks of ``time.sleep(0.1)``, with as many threads as
  tasks where the system asks for a pool size (Dask's default pool is the number of cores).

What is timed is the execution of a graph built beforehand: ``spec.execute()`` for molexp (the
spec from ``wf.build()``), ``dask.compute`` for Dask (the ``delayed`` graph already built), the
flow call for Prefect (its flow run, task runs and states reported to the API), and the floor's
scheduler (``benchmarks/bench_workflow.py``'s ``floor_execute``: an asyncio task per node). The
adapters run inside ``worker.py`` processes, one per system.
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Callable
from typing import Any

import bench_workflow as bw  # the floor scheduler and the molexp graphs of bench_workflow.py


def timed(call: Callable[[], Any]) -> float:
    """Wall time of ``call()`` after a garbage collection (what ``bench_workflow.timed`` does for
    a coroutine, for the systems that are called synchronously)."""
    gc.collect()
    begin = time.perf_counter()
    call()
    return time.perf_counter() - begin


def one(*_: Any) -> int:
    return 1


def doze(*_: Any) -> None:
    time.sleep(0.1)


class FloorWorkflow:
    """Plain asyncio: the least a DAG scheduler can do (``bench_workflow.floor_execute``)."""

    def chain(self, n: int) -> float:
        deps = [[i - 1] if i else [] for i in range(n)]
        return bw.timed(lambda: bw.floor_execute(deps, bw.floor_body))

    def fan(self, n: int) -> float:
        deps = [[]] + [[0] for _ in range(n - 2)] + [list(range(1, n - 1))]
        return bw.timed(lambda: bw.floor_execute(deps, bw.floor_body))

    def sleep_async(self, n: int) -> float:
        async def nap(_: Any) -> None:
            await asyncio.sleep(0.1)

        return bw.timed(lambda: bw.floor_execute([[] for _ in range(n)], nap))

    def sleep_threads(self, n: int) -> float:
        from concurrent.futures import ThreadPoolExecutor

        pool = ThreadPoolExecutor(max_workers=n)

        async def all_of_them() -> None:
            loop = asyncio.get_running_loop()
            await asyncio.gather(*(loop.run_in_executor(pool, doze) for _ in range(n)))

        try:
            return bw.timed(all_of_them)
        finally:
            pool.shutdown()


class MolexpWorkflow:
    """``spec.execute()`` of the graphs ``bench_workflow.py`` builds (no run: in memory)."""

    def __init__(self) -> None:
        self.specs: dict[tuple[str, int], Any] = {}

    def _spec(self, kind: str, n: int) -> Any:
        key = (kind, n)
        if key not in self.specs:
            if kind == "chain":
                self.specs[key] = bw.chain(n)[0]
            elif kind == "fan":
                self.specs[key] = bw.fan_out(n)[0]
            else:
                self.specs[key] = bw.sleeping(n, sync=kind == "threads")
        return self.specs[key]

    def _run(self, kind: str, n: int) -> float:
        spec = self._spec(kind, n)
        return bw.timed(spec.execute)

    def chain(self, n: int) -> float:
        return self._run("chain", n)

    def fan(self, n: int) -> float:
        return self._run("fan", n)

    def sleep_async(self, n: int) -> float:
        return self._run("async", n)

    def sleep_threads(self, n: int) -> float:
        return self._run("threads", n)


class DaskWorkflow:
    """``dask.delayed`` graphs computed with the local threaded scheduler (Dask's default for
    delayed), or with ``distributed`` on an in-process ``LocalCluster`` (one worker, threads)."""

    def __init__(self, distributed: bool = False) -> None:
        import dask

        self.dask = dask
        self.client = None
        self.distributed = distributed
        if distributed:
            from dask.distributed import Client, LocalCluster

            cluster = LocalCluster(
                n_workers=1, threads_per_worker=100, processes=False, dashboard_address=None
            )
            self.client = Client(cluster)

    def _compute(self, graph: Any, **options: Any) -> float:
        if self.client is not None:  # the client is Dask's default scheduler once created
            return timed(lambda: self.dask.compute(graph))
        return timed(lambda: self.dask.compute(graph, scheduler="threads", **options))

    def chain(self, n: int) -> float:
        x = self.dask.delayed(one)(None)
        for _ in range(n - 1):
            x = self.dask.delayed(one)(x)
        return self._compute(x)

    def fan(self, n: int) -> float:
        root = self.dask.delayed(one)(None)
        middle = [self.dask.delayed(one)(root) for _ in range(n - 2)]
        return self._compute(self.dask.delayed(one)(middle))

    def sleep_threads(self, n: int, num_workers: int | None = None) -> float:
        graph = [self.dask.delayed(doze)(i) for i in range(n)]
        options = {} if self.distributed else {"num_workers": num_workers or n}
        return self._compute(graph, **options)

    def sleep_threads_default_pool(self, n: int) -> float:
        """The same with the threaded scheduler's default pool (one thread per core)."""
        graph = [self.dask.delayed(doze)(i) for i in range(n)]
        return self._compute(graph)

    def close(self) -> None:
        if self.client is not None:
            cluster = self.client.cluster
            self.client.close()
            cluster.close()


class PrefectWorkflow:
    """Prefect flows and tasks with its defaults, against the ephemeral API server Prefect starts
    by itself when no ``PREFECT_API_URL`` is set (the controller gives it a fresh
    ``PREFECT_HOME`` in a temporary directory, so its SQLite database starts empty)."""

    def __init__(self) -> None:
        from prefect import flow, task
        from prefect.task_runners import ThreadPoolTaskRunner

        t_one = task(one, name="one")
        t_doze = task(doze, name="doze")

        @task(name="nap")
        async def nap() -> None:
            await asyncio.sleep(0.1)

        @flow(name="chain")
        def chain_flow(n: int) -> Any:
            x = t_one(None)
            for _ in range(n - 1):
                x = t_one(x)
            return x

        @flow(name="fan")
        def fan_flow(n: int) -> Any:
            root = t_one(None)
            middle = [t_one.submit(root) for _ in range(n - 2)]
            return t_one.submit(middle).result()

        @flow(name="naps")
        async def naps_flow(n: int) -> None:
            await asyncio.gather(*(nap() for _ in range(n)))

        @flow(name="dozes", task_runner=ThreadPoolTaskRunner(max_workers=100))
        def dozes_flow(n: int) -> None:
            for future in [t_doze.submit(i) for i in range(n)]:
                future.result()

        self.flows: dict[str, Callable[[int], Any]] = {
            "chain": chain_flow,
            "fan": fan_flow,
            "async": naps_flow,
            "threads": dozes_flow,
        }
        self.flows["chain"](2)  # starts the ephemeral server: not measured

    def _run(self, kind: str, n: int) -> float:
        flow = self.flows[kind]
        if kind == "async":
            return timed(lambda: asyncio.run(flow(n)))
        return timed(lambda: flow(n))

    def chain(self, n: int) -> float:
        return self._run("chain", n)

    def fan(self, n: int) -> float:
        return self._run("fan", n)

    def sleep_async(self, n: int) -> float:
        return self._run("async", n)

    def sleep_threads(self, n: int) -> float:
        return self._run("threads", n)
