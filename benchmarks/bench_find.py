"""Benchmark: finding the runs of an experiment by parameter value, with and without the index.

For each N (default 1,000 and 10,000), a local workspace holds N runs in one experiment, each with
the 4 parameters of ``bench_runs.params_for`` and executed once (``with run.start() as ctx:
ctx.set_result(...)``, so every ``run.json`` carries an attempt with its provenance). The question
is the one of the peer benchmark: the runs whose ``model`` is ``"m3"`` (N / 7 hits). Each figure
starts from a fresh ``Workspace.load(...)``, as a new session would:

* **brute force**: ``exp.list_runs()`` then a Python filter (every ``run.json`` read and
  validated);
* **find_runs, cold**: ``exp.find_runs({"model": "m3"})`` right after ``.molexp/runs.sqlite`` was
  deleted (the index is rebuilt from every ``run.json``);
* **find_runs, warm**: the same with the index in place (one listing of ``runs/``, one SQL query,
  and only the hits' ``run.json`` read);
* **after 1% new runs**: the first query after another session created N / 100 runs (they are
  indexed by that query);
* **warm + status**: ``exp.find_runs({"model": "m3"}, status="succeeded")``.

Usage::

    python benchmarks/bench_find.py                 # N = 1,000 and 10,000 (~1-2 minutes)
    python benchmarks/bench_find.py --quick         # N = 1,000 only, fewer repetitions
    python benchmarks/bench_find.py --runs 500,5000 # other sizes
    python benchmarks/bench_find.py --dir /mnt/ssd  # where to make the temporary workspaces

The workspaces are built with ``storage_options={"fsync": False}`` in ``--workers`` processes:
the build is set-up, not what is measured.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from bench_runs import params_for

import molexp as me

FIND = {"model": "m3"}


def build_worker(root: str, numbers: list[int]) -> None:
    exp = me.Workspace(root, storage_options={"fsync": False}).project("bench").experiment("sweep")
    for i in numbers:
        run = exp.Run(parameters=params_for(i))
        with run.start() as ctx:
            ctx.set_result("loss", 1.0 / (i + 1))


def build(root: Path, numbers: range, workers: int) -> float:
    """Runs ``numbers`` in ``workers`` processes; returns the elapsed seconds."""
    me.Workspace(root, name="bench").Project("bench").Experiment("sweep")
    todo = list(numbers)
    chunks = [todo[i::workers] for i in range(workers)]
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=build_worker, args=(str(root), chunk)) for chunk in chunks]
    start = time.perf_counter()
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join()
    if any(proc.exitcode != 0 for proc in procs):
        sys.exit(f"a build worker failed: exit codes {[p.exitcode for p in procs]}")
    return time.perf_counter() - start


def experiment(root: Path) -> Any:
    return me.Workspace.load(root).project("bench").experiment("sweep")


def drop_index(root: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{root}/.molexp/runs.sqlite{suffix}").unlink(missing_ok=True)


def timed(
    fn: Callable[[], list[Any]], reps: int, before: Callable[[], None] | None = None
) -> tuple:
    """Median milliseconds over ``reps`` calls (``before`` runs untimed before each), and the
    number of hits of the last call."""
    times, hits = [], 0
    for _ in range(reps):
        if before is not None:
            before()
        start = time.perf_counter()
        hits = len(fn())
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times), hits


def measure(root: Path, n: int, reps: int, workers: int) -> dict[str, Any]:
    brute_ms, brute_hits = timed(
        lambda: [r for r in experiment(root).list_runs() if r.parameters.get("model") == "m3"],
        max(3, reps // 3),
    )
    cold_ms, cold_hits = timed(
        lambda: experiment(root).find_runs(FIND), max(3, reps // 3), lambda: drop_index(root)
    )
    warm_ms, warm_hits = timed(lambda: experiment(root).find_runs(FIND), reps)
    status_ms, status_hits = timed(
        lambda: experiment(root).find_runs(FIND, status="succeeded"), reps
    )
    more = max(1, n // 100)
    build(root, range(n, n + more), workers)
    fresh_ms, fresh_hits = timed(lambda: experiment(root).find_runs(FIND), 1)
    expected = sum(1 for i in range(n + more) if params_for(i)["model"] == "m3")
    assert brute_hits == cold_hits == warm_hits == status_hits, (brute_hits, cold_hits, warm_hits)
    assert fresh_hits == expected, (fresh_hits, expected)
    return {
        "n": n,
        "hits": warm_hits,
        "brute": brute_ms,
        "cold": cold_ms,
        "warm": warm_ms,
        "status": status_ms,
        "fresh": fresh_ms,
        "more": more,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", default="1000,10000", help="comma-separated sizes")
    parser.add_argument("--quick", action="store_true", help="N = 1,000 only, fewer repetitions")
    parser.add_argument("--reps", type=int, default=9, help="repetitions of the warm queries")
    parser.add_argument("--workers", type=int, default=max(2, os.cpu_count() or 2))
    parser.add_argument("--dir", type=Path, default=None, help="where to make the workspaces")
    parser.add_argument("--keep", action="store_true", help="leave the workspaces on disk")
    args = parser.parse_args()
    sizes = [int(s) for s in args.runs.split(",")]
    if args.quick:
        sizes, args.reps = [1000], 5
    base = Path(tempfile.mkdtemp(prefix="molexp-bench-find-", dir=args.dir))
    print("molexp find-by-parameter benchmark: the runs with model = 'm3' (N / 7 hits)")
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, workspaces in {base}")
    rows = []
    try:
        for n in sizes:
            root = base / f"ws-{n}"
            elapsed = build(root, range(n), args.workers)
            print(f"\nbuilt {n:,} runs in {elapsed:.1f} s ({args.workers} processes, fsync off)")
            rows.append(measure(root, n, args.reps, args.workers))
        print(f"\nmedian ms from a fresh Workspace.load (warm: median of {args.reps})")
        header = (
            f"{'runs':>8}{'hits':>7}{'brute force':>13}{'cold':>9}{'warm':>9}{'+status':>9}"
            f"{'+1% new':>9}{'brute/warm':>12}{'brute/cold':>12}"
        )
        print(header)
        print("-" * len(header))
        for r in rows:
            print(
                f"{r['n']:>8,}{r['hits']:>7,}{r['brute']:>13.1f}{r['cold']:>9.1f}{r['warm']:>9.1f}"
                f"{r['status']:>9.1f}{r['fresh']:>9.1f}{r['brute'] / r['warm']:>11.1f}x"
                f"{r['brute'] / r['cold']:>11.2f}x"
            )
        if args.keep:
            print(f"\nworkspaces kept in {base}")
    finally:
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
