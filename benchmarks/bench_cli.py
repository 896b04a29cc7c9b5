"""Benchmark: how fast the `molexp` command starts, and how fast `molexp run` skips finished work.

1. **Start-up** (issue 5's bar: at most 4x `python -c pass`). The wall time of

   * ``python -c pass`` (the floor: an interpreter that does nothing),
   * ``python -c "import molexp"`` (for reference: what the workspace layer's import costs),
   * ``molexp --help``,
   * ``molexp runs list`` on a small workspace (2 experiments, 10 runs),

   each run ``--repeat`` times in alternating rounds (so load on the machine hits all alike),
   reported as the median and as a ratio to the floor. The same two commands are also timed with
   ``molexp`` imported as a *lazy* package (its ``__init__`` not executed), which is what they would
   cost if ``molexp/__init__.py`` imported the workspace layer on first use instead of eagerly.

2. **Skipping a finished sweep** (bar: under 2 s for 1,000 runs). A script declaring a sweep of
   1,000 runs is executed once with ``molexp run`` (every run succeeds; its time per run is
   reported too), then ``molexp run`` is timed again on it: everything is skipped. Reported: the
   command's wall time, and inside it the time to import the script (which declares the 1,000
   experiments) and the time to decide (derive the ids, read the records, decide to skip).
   Two layouts: 1,000 experiments x 1 replica, and 10 experiments x 100 replicas.

Usage::

    python benchmarks/bench_cli.py                 # both parts (about 1-2 minutes)
    python benchmarks/bench_cli.py --quick         # 5 start-up rounds, a 200-run sweep
    python benchmarks/bench_cli.py --part startup  # or: --part sweep
    python benchmarks/bench_cli.py --runs 2000 --repeat 30

Needs ``molexp-cli`` installed (the ``molexp`` executable next to this Python, or on PATH).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

STARTUP_TARGET = 4.0
SKIP_TARGET_S = 2.0

LAZY = """\
import os, runpy, sys, types
m = types.ModuleType("molexp")
m.__path__ = [os.path.join(p, "molexp") for p in sys.path]
m.__path__ = [p for p in m.__path__ if os.path.isdir(p)]
sys.modules["molexp"] = m
sys.argv = ["molexp", *sys.argv[1:]]
runpy.run_module("molexp.cli", run_name="__main__")
"""

SWEEP = """\
import molexp as me
from molexp.workflow import TaskContext, workflow

wf = workflow(name="sweep")


@wf.task
def work(ctx: TaskContext) -> float:
    ctx.set_result("value", ctx.params["x"] * 2)
    return ctx.params["x"] * 2


spec = wf.build()
ws = me.Workspace("./lab")
project = ws.Project("sweep")
for i in range({experiments}):
    spec.bind_to(project.Experiment(f"x-{{i}}", params={{"x": i}}, n_replicas={replicas}))
me.entry(ws)
"""

DECIDE = """\
import json, sys, time
from pathlib import Path
t0 = time.perf_counter()
from molexp.cli._plan import plan_runs
from molexp.cli._profiles import load_profile
from molexp.cli._script import import_script
t1 = time.perf_counter()
loaded = import_script(Path(sys.argv[1]))
t2 = time.perf_counter()
plan = plan_runs(loaded.workspaces, load_profile(search=[Path.cwd()]))
t3 = time.perf_counter()
assert all(p.action.value == "skip" for p in plan.runs), "not everything was skipped"
times = {"imports": t1 - t0, "script": t2 - t1, "decide": t3 - t2}
print(json.dumps({"runs": len(plan.runs), **times}))
"""


def molexp_executable() -> str:
    beside = Path(sys.executable).parent / "molexp"
    if beside.is_file():
        return str(beside)
    found = shutil.which("molexp")
    if found is None:
        sys.exit("the molexp executable is not installed: pip install -e packages/molexp-cli")
    return found


def wall(cmd: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, check=False)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr.decode()[-2000:]}")
    return elapsed


def small_workspace(root: Path) -> None:
    import molexp as me

    ws = me.Workspace(root / "lab", name="bench")
    project = ws.Project("bench")
    for e in range(2):
        exp = project.Experiment(f"exp-{e}", params={"lr": 10.0**-e})
        for r in range(5):
            run = exp.Run(parameters={"lr": 10.0**-e, "seed": r}, id=f"run-{e}-{r}")
            with run.start(profile_config={"epochs": 3}, profile_name="smoke") as ctx:
                ctx.set_result("loss", 0.1 * r)


def bench_startup(repeat: int, workdir: Path) -> bool:
    molexp = molexp_executable()
    small_workspace(workdir)
    py = sys.executable
    commands = {
        "python -c pass": [py, "-c", "pass"],
        'python -c "import molexp"': [py, "-c", "import molexp"],
        "molexp --help": [molexp, "--help"],
        "molexp runs list": [molexp, "runs", "list"],
        "molexp --help (lazy molexp)": [py, "-c", LAZY, "--help"],
        "molexp runs list (lazy molexp)": [py, "-c", LAZY, "runs", "list"],
    }
    for cmd in commands.values():  # warm the file cache and the .pyc files
        wall(cmd, workdir)
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(repeat):
        for name, cmd in commands.items():
            times[name].append(wall(cmd, workdir))
    floor = statistics.median(times["python -c pass"])
    print(f"\nStart-up: median of {repeat} rounds (alternating), ratio to `python -c pass`")
    print(f"{'command':<34} {'median':>9} {'min':>9} {'ratio':>7}")
    ok = True
    for name, samples in times.items():
        median = statistics.median(samples)
        ratio = median / floor
        mark = ""
        if name in ("molexp --help", "molexp runs list"):
            ok &= ratio <= STARTUP_TARGET
            mark = "  ok" if ratio <= STARTUP_TARGET else f"  over {STARTUP_TARGET:.0f}x"
        print(
            f"{name:<34} {median * 1e3:>7.0f}ms {min(samples) * 1e3:>7.0f}ms {ratio:>6.1f}x{mark}"
        )
    return ok


def bench_sweep(n_runs: int, workdir: Path, layouts: list[tuple[int, int]]) -> bool:
    molexp = molexp_executable()
    ok = True
    print(f"\nSkipping a finished sweep of {n_runs} runs (target: under {SKIP_TARGET_S:.0f} s)")
    for experiments, replicas in layouts:
        here = workdir / f"sweep-{experiments}x{replicas}"
        here.mkdir()
        script = here / "sweep.py"
        script.write_text(SWEEP.format(experiments=experiments, replicas=replicas))
        first = wall([molexp, "run", "sweep.py"], here)
        rerun = [wall([molexp, "run", "sweep.py"], here) for _ in range(3)]
        proc = subprocess.run(
            [sys.executable, "-c", DECIDE, str(script)],
            cwd=here,
            capture_output=True,
            text=True,
            check=True,
        )
        parts = json.loads(proc.stdout)
        assert parts["runs"] == experiments * replicas
        median = statistics.median(rerun)
        ok &= median < SKIP_TARGET_S
        print(
            f"  {experiments} experiments x {replicas} replicas: first `molexp run` "
            f"{first:.1f} s ({first / parts['runs'] * 1e3:.1f} ms per run executed); "
            f"again: {median:.2f} s wall (median of 3) "
            f"{'ok' if median < SKIP_TARGET_S else 'OVER TARGET'}\n"
            f"      inside: imports {parts['imports'] * 1e3:.0f} ms, script (declares the sweep) "
            f"{parts['script'] * 1e3:.0f} ms, decide to skip {parts['decide'] * 1e3:.0f} ms "
            f"({parts['decide'] / parts['runs'] * 1e6:.0f} us per run)"
        )
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=15, help="start-up rounds (default 15)")
    parser.add_argument("--runs", type=int, default=1000, help="sweep size (default 1000)")
    parser.add_argument("--part", choices=["startup", "sweep", "all"], default="all")
    parser.add_argument("--quick", action="store_true", help="5 rounds, a 200-run sweep")
    parser.add_argument("--dir", type=Path, help="where to make the temporary directories")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directories")
    args = parser.parse_args()
    repeat, n_runs = (5, 200) if args.quick else (args.repeat, args.runs)
    workdir = Path(tempfile.mkdtemp(prefix="molexp-bench-cli-", dir=args.dir))
    print(f"python {sys.version.split()[0]} on {sys.platform}, {os.cpu_count()} CPUs; in {workdir}")
    try:
        ok = True
        if args.part in ("startup", "all"):
            ok &= bench_startup(repeat, workdir)
        if args.part in ("sweep", "all"):
            layouts = [(n_runs, 1), (max(1, n_runs // 100), min(100, n_runs))]
            ok &= bench_sweep(n_runs, workdir, layouts)
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    print("\nall targets met" if ok else "\nsome targets missed (see above)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
