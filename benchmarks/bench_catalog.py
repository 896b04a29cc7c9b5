"""Benchmark: the workspace catalog over 100,000 assets, against walking the tree.

Builds a local workspace of RUNS runs x 100 assets (default 1,000 x 100 = 100,000) through the
real API — ``with run.start() as ctx:`` then ``ctx.artifact.save``, ``ctx.log(...).append``,
``ctx.checkpoint``, and a failure (error trace) in one run out of ten — in parallel worker
processes, then measures:

* **Selective queries** (median and p95 over many random targets, on a fresh ``Workspace``):
  by producer run (100 hits), by kind within one experiment (error traces: ~10 hits; checkpoints:
  200 hits), by a unique name (1 hit) and by a common name (one per run: RUNS hits).
* **Tree walks** answering the same questions by reading the asset records from disk: the whole
  tree (what a query must do without an index, since a producer can write outside its run) and
  a targeted walk of only the subtree that holds the answer where there is one.
* **Rebuilding the index** from scratch (``ws.catalog.rebuild()``, and the automatic rebuild
  the first query on a fresh ``Workspace`` does after ``.molexp/catalog.sqlite`` is deleted).
* **Registering one asset** (``ctx.artifact.save``) in a workspace holding 100 assets and in the
  big one, in alternating blocks so that disk hiccups hit both alike; fsync on and off.
* **Log appends**: ``ctx.log(name).append(line)`` lines per second on one log.

Usage::

    python benchmarks/bench_catalog.py                 # 1,000 runs x 100 assets (~2-3 minutes)
    python benchmarks/bench_catalog.py --quick         # 100 runs x 100 assets (~20 seconds)
    python benchmarks/bench_catalog.py --runs 300      # another size
    python benchmarks/bench_catalog.py --dir /mnt/ssd  # where to put the temporary workspaces
    python benchmarks/bench_catalog.py --keep          # leave the workspaces on disk

The big workspace is built with ``storage_options={"fsync": False}`` (atomic, not durable across
power loss) unless ``--build-fsync`` is given: the build is setup, not what is measured, and the
queries do not depend on it.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import molexp as me

TARGET_QUERY_MS = 20.0  # issue 3: selective query median at most 20 ms over 100,000 assets
TARGET_LOG_LINES_PER_S = 100_000
ASSETS_PER_RUN = 100
PROJECTS, EXPERIMENTS_PER_PROJECT = 2, 5
FAIL_EVERY = 10


# -- building the workspace ------------------------------------------------------------------


def layout(runs: int) -> list[tuple[str, str, str, bool]]:
    """(project, experiment, run id, fails) for every run, spread over the experiments."""
    experiments = [
        (f"p{p}", f"e{e}") for p in range(PROJECTS) for e in range(EXPERIMENTS_PER_PROJECT)
    ]
    n = len(experiments)
    return [
        (*experiments[i % n], f"run{i:05d}", (i // n) % FAIL_EVERY == FAIL_EVERY - 1)
        for i in range(runs)
    ]


def fill_run(exp: me.Experiment, run_id: str, fails: bool) -> None:
    """One run with exactly ASSETS_PER_RUN assets: a log, two checkpoints, a uniquely named
    summary, artifacts, and (if it fails) an error trace."""
    run = exp.Run(id=run_id, parameters={"run": run_id})
    artifacts = ASSETS_PER_RUN - 4 - (1 if fails else 0)
    try:
        with run.start() as ctx:
            log = ctx.log("train")
            for step in range(20):
                log.append(f"step={step} loss={1 / (step + 1):.4f}")
            ctx.checkpoint("model", data={"step": 1})
            ctx.checkpoint("model", data={"step": 2})
            ctx.artifact.save(f"summary-{run_id}.json", {"run": run_id})
            for k in range(artifacts):
                ctx.artifact.save(
                    f"a{k:03d}.json", {"k": k, "run": run_id}, tags=["bench", f"group-{k % 10}"]
                )
            if fails:
                raise RuntimeError(f"{run_id} diverged")
    except RuntimeError:
        pass


def build_worker(root: str, fsync: bool, todo: list[tuple[str, str, str, bool]]) -> None:
    ws = me.Workspace(root, storage_options={"fsync": fsync})
    for project, experiment, run_id, fails in todo:
        fill_run(ws.project(project).experiment(experiment), run_id, fails)


def build(root: Path, runs: int, workers: int, fsync: bool) -> float:
    """Build the workspace in ``workers`` processes; returns the elapsed seconds."""
    ws = me.Workspace(root, name="bench")
    for p in range(PROJECTS):
        project = ws.Project(f"P{p}")
        for e in range(EXPERIMENTS_PER_PROJECT):
            project.Experiment(f"E{e}")
    plan = layout(runs)
    chunks = [plan[i::workers] for i in range(workers)]
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=build_worker, args=(str(root), fsync, chunk)) for chunk in chunks]
    start = time.perf_counter()
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join()
    elapsed = time.perf_counter() - start
    if any(proc.exitcode != 0 for proc in procs):
        sys.exit(f"a build worker failed: exit codes {[p.exitcode for p in procs]}")
    return elapsed


# -- tree walks: the same questions answered from the records on disk -------------------------


def record_files(top: Path) -> Iterator[Path]:
    """Every asset record under ``top``: ``.assets/**.json`` of runs, ``asset.json`` of data."""
    stack = [top]
    while stack:
        current = stack.pop()
        try:
            entries = list(os.scandir(current))
        except (FileNotFoundError, NotADirectoryError):
            continue
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                if entry.name in ("artifacts", "logs", "execution", ".ckpt", "payload", ".molexp"):
                    continue
                stack.append(Path(entry.path))
            elif entry.name.endswith(".json") and (
                "/.assets/" in entry.path or entry.name == "asset.json"
            ):
                yield Path(entry.path)


def walk(top: Path, keep: Callable[[dict], bool]) -> list[dict]:
    found = []
    for path in record_files(top):
        record = json.loads(path.read_bytes())
        if keep(record):
            found.append(record)
    return found


# -- measuring --------------------------------------------------------------------------------


def timed(fn: Callable[[], object], reps: int) -> tuple[float, float, object]:
    """Median and p95 in milliseconds over ``reps`` calls, and the last result."""
    times = []
    result: object = None
    for _ in range(reps):
        start = time.perf_counter()
        result = fn()
        times.append((time.perf_counter() - start) * 1e3)
    times.sort()
    return statistics.median(times), times[min(len(times) - 1, int(len(times) * 0.95))], result


def bench_queries(root: Path, runs: int, reps: int, walk_reps: int) -> list[tuple]:
    ws = me.Workspace(root)
    catalog = ws.catalog
    plan = layout(runs)
    rng = random.Random(42)
    exps = {(p, e): ws.project(p).experiment(e) for p, e, _, _ in plan}
    run_objs = {
        run_id: exps[(p, e)].get_run(run_id)
        for p, e, run_id, _ in rng.sample(plan, min(len(plan), 50))
    }
    catalog.query_assets(limit=1)  # open the index
    rows: list[tuple] = []

    def pick_run() -> me.Run:
        return run_objs[rng.choice(list(run_objs))]

    def pick_exp() -> me.Experiment:
        return exps[rng.choice(list(exps))]

    def in_exp(kind: str) -> Callable[[me.Experiment], Callable[[dict], bool]]:
        return lambda x: (
            lambda r: (
                r["kind"] == kind
                and r["scope"]["experiment_id"] == x.id
                and r["scope"]["project_id"] == x.project.id
            )
        )

    # (label, pick a target, catalog query, full-walk predicate, targeted walk or None)
    questions: list[tuple] = [
        (
            "by producer run",
            pick_run,
            lambda run: catalog.query_assets(producer_run=run),
            lambda run: lambda r: (r.get("producer") or {}).get("run_id") == run.id,
            lambda run: walk(Path(run.run_dir) / ".assets", lambda r: True),
        ),
        (
            "error traces in one experiment",
            pick_exp,
            lambda x: catalog.query_assets(kind="error_trace", experiment=x),
            in_exp("error_trace"),
            lambda x: walk(Path(x.experiment_dir), lambda r: r["kind"] == "error_trace"),
        ),
        (
            "checkpoints in one experiment",
            pick_exp,
            lambda x: catalog.query_assets(kind="checkpoint", experiment=x),
            in_exp("checkpoint"),
            lambda x: walk(Path(x.experiment_dir), lambda r: r["kind"] == "checkpoint"),
        ),
        (
            "by unique name",
            lambda: f"summary-{rng.choice(plan)[2]}.json",
            lambda name: catalog.query_assets(name=name),
            lambda name: lambda r: r["name"] == name,
            None,
        ),
        (
            f"by common name ({runs:,} hits)",
            lambda: f"a{rng.randrange(90):03d}.json",
            lambda name: catalog.query_assets(name=name),
            lambda name: lambda r: r["name"] == name,
            None,
        ),
    ]
    for label, pick, query, predicate, targeted in questions:
        targets = iter([pick() for _ in range(reps)])
        median, p95, _ = timed(lambda q=query, t=targets: q(next(t)), reps)
        target = pick()
        hits = len(query(target))
        walk_median, _, walked = timed(lambda p=predicate, t=target: walk(root, p(t)), walk_reps)
        assert len(walked) == hits, (label, len(walked), hits)
        targeted_median = None
        if targeted is not None:
            targeted_median, _, found = timed(lambda w=targeted, t=target: w(t), max(3, walk_reps))
            assert len(found) == hits, (label, len(found), hits)
        rows.append((label, hits, median, p95, walk_median, targeted_median))

    # find_asset: the run -> experiment -> project -> workspace walk, for a workspace dataset.
    src = root.parent / "dataset.csv"
    src.write_text("x\n1\n")
    ws.data_assets.import_asset("dataset", src)
    run = pick_run()
    with run.start() as ctx:
        median, p95, found = timed(lambda: ctx.find_asset("dataset"), reps)
    assert found is not None and found.scope.level == "workspace"
    rows.append(("find_asset (4 scopes, found at the top)", 1, median, p95, None, None))
    return rows


def bench_rebuild(root: Path, total: int) -> tuple[float, float]:
    ws = me.Workspace(root)
    start = time.perf_counter()
    count = ws.catalog.rebuild()
    explicit = time.perf_counter() - start
    assert count == total + 1, (count, total)  # + the dataset find_asset looks for
    ws.catalog.index.close()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{ws.catalog.location}{suffix}").unlink(missing_ok=True)
    start = time.perf_counter()
    found = me.Workspace(root).catalog.query_assets(kind="error_trace")
    automatic = time.perf_counter() - start
    assert found
    return explicit, automatic


def bench_register(small: Path, big: Path, fsync: bool, saves: int, block: int) -> tuple:
    """Median per-save cost (ms) of ctx.artifact.save in the small and the big workspace."""
    contexts = []
    for root in (small, big):
        ws = me.Workspace(root, storage_options={"fsync": fsync})
        exp = ws.project("p0").experiment("e0")
        run = exp.Run(id=f"register-{'on' if fsync else 'off'}-{os.getpid()}")
        ctx = run.start()
        ctx.__enter__()
        ctx.artifact.save("warm-up", 0)
        contexts.append(ctx)
    times: list[list[float]] = [[], []]
    done = 0
    while done < saves:
        for which, ctx in enumerate(contexts):
            for k in range(done, done + block):
                start = time.perf_counter()
                ctx.artifact.save(f"r{k:05d}.json", {"k": k}, tags=["bench", f"group-{k % 10}"])
                times[which].append((time.perf_counter() - start) * 1e3)
        done += block
    for ctx in contexts:
        ctx.__exit__(None, None, None)
    return statistics.median(times[0]), statistics.median(times[1])


def bench_log(root: Path, lines: int) -> float:
    ws = me.Workspace(root)
    run = ws.project("p0").experiment("e0").Run(id=f"log-{os.getpid()}")
    best = 0.0
    with run.start() as ctx:
        for attempt in range(3):
            log = ctx.log(f"bench{attempt}")
            log.append("first line registers the asset")
            start = time.perf_counter()
            for i in range(lines):
                log.append(f"step={i} loss=0.1234")
            best = max(best, lines / (time.perf_counter() - start))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=1000, help="runs of 100 assets each")
    parser.add_argument("--quick", action="store_true", help="100 runs, fewer repetitions")
    parser.add_argument("--workers", type=int, default=max(2, os.cpu_count() or 2))
    parser.add_argument("--reps", type=int, default=200, help="repetitions per query")
    parser.add_argument("--saves", type=int, default=400, help="registrations per workspace")
    parser.add_argument("--log-lines", type=int, default=300_000)
    parser.add_argument("--build-fsync", action="store_true", help="build with fsync on")
    parser.add_argument("--dir", type=Path, default=None, help="where to make the workspaces")
    parser.add_argument("--keep", action="store_true", help="leave the workspaces on disk")
    args = parser.parse_args()
    if args.quick:
        args.runs, args.reps, args.saves, args.log_lines = 100, 50, 200, 100_000
    base = Path(tempfile.mkdtemp(prefix="molexp-bench-catalog-", dir=args.dir))
    total = args.runs * ASSETS_PER_RUN
    print(f"molexp catalog benchmark: {args.runs:,} runs x {ASSETS_PER_RUN} = {total:,} assets")
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, workspaces in {base}")
    try:
        big, small = base / "big", base / "small"
        elapsed = build(big, args.runs, args.workers, args.build_fsync)
        print(
            f"\nbuilt through the real API in {elapsed:.1f} s with {args.workers} processes "
            f"(fsync {'on' if args.build_fsync else 'off'}): {total / elapsed:,.0f} assets/s"
        )
        build(small, 1, 1, args.build_fsync)

        walk_reps = 1 if total >= 50_000 else 3
        rows = bench_queries(big, args.runs, args.reps, walk_reps)
        print(
            f"\nqueries over {total:,} assets (median of {args.reps}; walks: median of "
            f"{walk_reps} full, >=3 targeted)"
        )
        header = (
            f"{'question':<42}{'hits':>7}{'catalog ms':>12}{'p95 ms':>9}"
            f"{'full walk ms':>14}{'ratio':>9}{'targeted walk ms':>18}{'ratio':>8}"
        )
        print(header)
        print("-" * len(header))
        for label, hits, median, p95, full, targeted in rows:
            full_cols = f"{full:>14.0f}{full / median:>8.0f}x" if full else f"{'-':>14}{'-':>9}"
            targeted_cols = (
                f"{targeted:>18.1f}{targeted / median:>7.0f}x" if targeted else f"{'-':>18}{'-':>8}"
            )
            print(f"{label:<42}{hits:>7,}{median:>12.2f}{p95:>9.2f}{full_cols}{targeted_cols}")

        explicit, automatic = bench_rebuild(big, total)
        print(
            f"\nrebuild the index from the records: {explicit:.1f} s ({total / explicit:,.0f} "
            f"records/s); automatic rebuild on first query after deleting it: {automatic:.1f} s"
        )

        print("\nregister one asset (ctx.artifact.save, median ms)")
        print(f"{'fsync':<8}{'100 present':>14}{f'{total:,} present':>18}{'ratio':>8}")
        register = []
        for fsync in (False, True):
            few, many = bench_register(small, big, fsync, args.saves, 50)
            register.append((fsync, few, many))
            print(f"{'on' if fsync else 'off':<8}{few:>14.3f}{many:>18.3f}{many / few:>8.2f}")

        lines_per_s = bench_log(small, args.log_lines)
        print(
            f"\nctx.log(name).append(line): {lines_per_s:,.0f} lines/s "
            f"(best of 3 x {args.log_lines:,} lines)"
        )

        selective = [r for r in rows if r[1] <= 1000 and "common" not in r[0]]
        worst = max(r[2] for r in selective)
        print("\ntargets (issue 3):")
        print(
            f"  selective query median <= {TARGET_QUERY_MS:.0f} ms: worst {worst:.2f} ms "
            f"{'PASS' if worst <= TARGET_QUERY_MS else 'FAIL'}"
        )
        print(f"  rebuild in seconds: {explicit:.1f} s {'PASS' if explicit < 60 else 'FAIL'}")
        flat = max(many / few for _, few, many in register)
        print(
            f"  registration flat in workspace size: worst ratio {flat:.2f} "
            f"{'PASS' if flat < 1.5 else 'CHECK'}"
        )
        print(
            f"  log append >= {TARGET_LOG_LINES_PER_S:,}/s: {lines_per_s:,.0f}/s "
            f"{'PASS' if lines_per_s >= TARGET_LOG_LINES_PER_S else 'FAIL'}"
        )
        if args.keep:
            print(f"\nworkspaces kept in {base}")
    finally:
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
