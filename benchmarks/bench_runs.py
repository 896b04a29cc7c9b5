"""Benchmark: the cost of a run's lifecycle in a local workspace, against the bare I/O it needs.

For each fsync mode (on, the default; off, ``storage_options={"fsync": False}``) and each N:

* **molexp**: create N runs in one experiment, each with 4 parameters, then for each one
  ``with run.start() as ctx: ctx.set_result("loss", ...)`` (start, one result, finish).
* **floor**: the same N, done with nothing but the I/O the work needs: one ``mkdir`` and four
  atomic JSON writes per run (create, start, result, finish), each a temporary file, an optional
  ``fsync`` and an ``os.replace`` over the previous version. The floor runs in the same process,
  right before molexp, on the same disk, so the ratio molexp/floor is molexp's overhead.

Then, on the largest workspace: opening a run by id with ``exp.get_run(id)`` on a fresh
Workspace/Experiment (median over many lookups), next to a bare ``open`` + ``json.loads`` of the
same ``run.json``.

Usage::

    python benchmarks/bench_runs.py                   # N = 1,000 and 10,000, fsync on and off
    python benchmarks/bench_runs.py --runs 500,5000   # other sizes
    python benchmarks/bench_runs.py --quick           # N = 200 and 2,000, fewer lookups (~10 s)
    python benchmarks/bench_runs.py --dir /mnt/ssd    # where to make the temporary workspaces
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import molexp as me

TARGET_MS_PER_RUN = 2.0  # issue 2: at most 2 ms per run for 10,000 runs


@dataclass
class Row:
    fsync: bool
    n: int
    molexp_s: float
    floor_s: float

    @property
    def molexp_ms(self) -> float:
        return self.molexp_s / self.n * 1e3

    @property
    def floor_ms(self) -> float:
        return self.floor_s / self.n * 1e3

    @property
    def overhead(self) -> float:
        return self.molexp_ms / self.floor_ms if self.floor_ms else float("nan")


def params_for(i: int) -> dict[str, object]:
    """Four parameters of mixed JSON types, different for every run."""
    return {"lr": 10.0 ** -(1 + i % 4), "batch": 32 << (i % 3), "model": f"m{i % 7}", "seed": i}


# -- molexp -----------------------------------------------------------------------------------


class MolexpBench:
    """Runs in one experiment of a fresh workspace; :meth:`block` does the next ``k`` runs."""

    def __init__(self, root: Path, *, fsync: bool) -> None:
        ws = me.Workspace(root, name="bench", storage_options={"fsync": fsync})
        self.exp = ws.Project("bench").Experiment("sweep", params={"lr": 0.1})
        self.done = 0

    def block(self, k: int) -> float:
        exp, first = self.exp, self.done
        start = time.perf_counter()
        for i in range(first, first + k):
            run = exp.Run(parameters=params_for(i))
            with run.start() as ctx:
                ctx.set_result("loss", 1.0 / (i + 1))
        elapsed = time.perf_counter() - start
        self.done += k
        return elapsed


# -- floor: the same I/O, nothing else --------------------------------------------------------


def atomic_write(path: str, data: bytes, *, fsync: bool) -> None:
    tmp = f"{path}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        os.write(fd, data)
        if fsync:
            os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


class FloorBench:
    """Per run: one ``mkdir`` and four atomic JSON writes of ``run.json``; nothing else."""

    def __init__(self, root: Path, *, fsync: bool) -> None:
        self.base = (root / "runs").as_posix()
        os.makedirs(self.base)
        self.fsync = fsync
        self.done = 0

    def block(self, k: int) -> float:
        base, fsync, first = self.base, self.fsync, self.done
        start = time.perf_counter()
        for i in range(first, first + k):
            run_dir = f"{base}/run-{i:08d}"
            os.mkdir(run_dir)
            path = f"{run_dir}/run.json"
            doc: dict[str, object] = {"id": i, "status": "created", "parameters": params_for(i)}
            atomic_write(path, json.dumps(doc, indent=2).encode(), fsync=fsync)  # create
            doc["status"] = "running"
            atomic_write(path, json.dumps(doc, indent=2).encode(), fsync=fsync)  # start
            doc["results"] = {"loss": 1.0 / (i + 1)}
            atomic_write(path, json.dumps(doc, indent=2).encode(), fsync=fsync)  # result
            doc["status"] = "succeeded"
            atomic_write(path, json.dumps(doc, indent=2).encode(), fsync=fsync)  # finish
        elapsed = time.perf_counter() - start
        self.done += k
        return elapsed


def measure(base: Path, tag: str, n: int, *, fsync: bool, block: int) -> tuple[Row, me.Experiment]:
    """Floor and molexp side by side: alternating blocks, so disk hiccups hit both alike."""
    floor = FloorBench(base / f"floor-{tag}", fsync=fsync)
    mx = MolexpBench(base / f"ws-{tag}", fsync=fsync)
    floor_s = molexp_s = 0.0
    gc.collect()
    while mx.done < n:
        k = min(block, n - mx.done)
        floor_s += floor.block(k)
        molexp_s += mx.block(k)
    return Row(fsync, n, molexp_s, floor_s), mx.exp


def warm_up(base: Path) -> None:
    """Both code paths once, so first-call costs (imports, journal start) are not measured."""
    for fsync in (True, False):
        FloorBench(base / f"warm-floor-{fsync}", fsync=fsync).block(100)
        MolexpBench(base / f"warm-ws-{fsync}", fsync=fsync).block(100)
        shutil.rmtree(base / f"warm-floor-{fsync}")
        shutil.rmtree(base / f"warm-ws-{fsync}")


# -- lookups ----------------------------------------------------------------------------------


def bench_lookup(root: Path, ids: list[str], lookups: int) -> tuple[float, float, float]:
    """Median µs of: get_run on a fresh Experiment; the whole open chain; a bare read+parse."""
    rng = random.Random(0)
    picks = [rng.choice(ids) for _ in range(lookups)]
    get_run, chain, bare = [], [], []
    for run_id in picks:
        t0 = time.perf_counter()
        ws = me.Workspace.load(root)
        exp = ws.project("bench").experiment("sweep")
        t1 = time.perf_counter()
        run = exp.get_run(run_id)
        t2 = time.perf_counter()
        assert run.id == run_id
        get_run.append(t2 - t1)
        chain.append(t2 - t0)
    run_json = "{}/projects/bench/experiments/sweep/runs/run-{}/run.json"
    for run_id in picks:
        t0 = time.perf_counter()
        with open(run_json.format(root, run_id), "rb") as f:
            json.loads(f.read())
        bare.append(time.perf_counter() - t0)
    return (
        statistics.median(get_run) * 1e6,
        statistics.median(chain) * 1e6,
        statistics.median(bare) * 1e6,
    )


# -- main -------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", default=None, help="comma-separated Ns (default 1000,10000)")
    parser.add_argument("--quick", action="store_true", help="N = 200,2000 and 500 lookups")
    parser.add_argument("--lookups", type=int, default=None, help="lookups to time (default 5000)")
    parser.add_argument("--dir", default=None, help="parent directory of the temporary workspaces")
    parser.add_argument(
        "--block", type=int, default=100, help="runs per alternating floor/molexp block (100)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary workspaces")
    args = parser.parse_args(argv)

    sizes = [int(x) for x in (args.runs or ("200,2000" if args.quick else "1000,10000")).split(",")]
    lookups = args.lookups or (500 if args.quick else 5000)
    base = Path(tempfile.mkdtemp(prefix="molexp-bench-", dir=args.dir))
    print(f"molexp run-lifecycle benchmark: python {sys.version.split()[0]}, {os.cpu_count()} CPUs")
    print(f"temporary workspaces under {base}\n")

    warm_up(base)
    rows: list[Row] = []
    largest: tuple[Path, list[str]] | None = None
    try:
        for fsync in (True, False):
            for n in sizes:
                tag = f"{'fsync' if fsync else 'nofsync'}-{n}"
                row, exp = measure(base, tag, n, fsync=fsync, block=args.block)
                rows.append(row)
                print(
                    f"  done: fsync={'on ' if fsync else 'off'} N={n:>6,}  "
                    f"molexp {row.molexp_ms:6.3f} ms/run  floor {row.floor_ms:6.3f} ms/run",
                    flush=True,
                )
                if n == max(sizes) and fsync:
                    largest = (base / f"ws-{tag}", [r.id for r in exp.list_runs()])
                del exp
                if not args.keep:
                    shutil.rmtree(base / f"floor-{tag}")

        print()
        columns = ["fsync", "runs  ", "molexp ms/run", "floor ms/run"]
        columns += ["overhead (molexp/floor)", "molexp total s"]
        print("| " + " | ".join(columns) + " |")
        print("|" + "|".join("-" * (len(c) + 2) for c in columns) + "|")
        for r in rows:
            print(
                f"| {'on ' if r.fsync else 'off'}   | {r.n:>6,} | {r.molexp_ms:13.3f} | "
                f"{r.floor_ms:12.3f} | {r.overhead:22.2f}x | {r.molexp_s:14.2f} |"
            )

        if len(sizes) > 1:
            lo, hi = min(sizes), max(sizes)
            print(f"\nflatness: per-run cost at {hi:,} / per-run cost at {lo:,} runs (1.00 = flat)")
            for fsync in (True, False):
                a = next(r for r in rows if r.fsync == fsync and r.n == lo)
                b = next(r for r in rows if r.fsync == fsync and r.n == hi)
                print(
                    f"  fsync {'on ' if fsync else 'off'}: molexp {b.molexp_ms / a.molexp_ms:.2f}"
                    f"   floor {b.floor_ms / a.floor_ms:.2f}"
                )

        if largest is not None:
            root, ids = largest
            get_run_us, chain_us, bare_us = bench_lookup(root, ids, lookups)
            print(f"\nopen a run by id among {len(ids):,} runs (median of {lookups:,} lookups):")
            print(f"  exp.get_run(id) on a fresh Experiment ........ {get_run_us:8.1f} µs")
            print(f"  Workspace.load → project → experiment → get_run {chain_us:8.1f} µs")
            print(f"  floor: open + read + json.loads of run.json ... {bare_us:8.1f} µs")

        worst = max(r.molexp_ms for r in rows if r.fsync and r.n == max(sizes))
        verdict = "meets" if worst <= TARGET_MS_PER_RUN else "misses"
        print(
            f"\ntarget (issue 2): <= {TARGET_MS_PER_RUN} ms/run at 10,000 runs with the default "
            f"settings: {worst:.3f} ms/run at N={max(sizes):,} with fsync on ({verdict} it)"
        )
    finally:
        if args.keep:
            print(f"\nkept {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
