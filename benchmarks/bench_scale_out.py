"""Benchmark: executing runs on a Dask cluster and through Slurm (`molexp run --executor ...`).

1. **Dask** (a 2-worker ``LocalCluster`` started by ``molexp run --executor dask --jobs 2``):

   * ``molexp execute`` itself: the median wall time of ``python -P -m molexp.cli execute RUN``
     on a created run of a trivial workflow, one after the other (what every remote unit of work
     costs wherever it runs);
   * **per-run overhead**: sweeps of 1 and N trivial runs (default 200) through Dask and through
     ``--executor local --jobs 2`` (child processes, the same unit of work); the cost of one run
     on one of the two slots is ``(T(N) - T(1)) * 2 / (N - 1)`` (the fixed costs, start-up and
     the cluster's start, cancel out), and the overhead is that minus ``molexp execute``'s time;
   * **speed-up** for runs that sleep 1 s: ``--executor local`` (in-process, one at a time) and
     ``--executor dask --jobs 2``, on M runs (default 20).

2. **Slurm** (the single-node Slurm of ``tools/slurm/start.sh``, started when needed as root):

   * ``sbatch --wrap true``: submit-to-finished latency of an empty job (the floor);
   * **per job**: one run, executed by plain ``sbatch --wrap "python -P -m molexp.cli execute
     RUN"`` (the run created beforehand, the queue polled every 0.1 s) and by ``molexp run
     --executor slurm --wait`` (everything included: start-up, planning, creating the run,
     submitting, following), alternating, median of R rounds;
   * **a 50-run job array**: the same two ways (``sbatch --array=0-49 --wrap ...`` reading a run
     table, against ``molexp run --executor slurm --array --wait``); molexp's added time per run
     is the difference divided by the number of runs (target: at most 0.5 s).

Usage::

    python benchmarks/bench_scale_out.py                 # both parts (about 5-8 minutes)
    python benchmarks/bench_scale_out.py --quick         # 40 Dask runs, 8 sleepers, 10-run array
    python benchmarks/bench_scale_out.py --part dask     # or: --part slurm
    python benchmarks/bench_scale_out.py --runs 400 --sleepers 40 --array 100 --rounds 7

Needs ``molexp-cli[dask]`` for the Dask part and root (or a running Slurm) for the Slurm part.
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

ROOT = Path(__file__).resolve().parents[1]
SLURM_ADDED_TARGET = 0.5

SWEEP = """\
import time

import molexp as me
from molexp.workflow import TaskContext, workflow

wf = workflow(name="bench")


@wf.task
def work(ctx: TaskContext) -> int:
    time.sleep(float(ctx.config.get("sleep", 0)))
    ctx.set_result("replica", ctx.params["replica"])
    return ctx.params["replica"]


spec = wf.build()
ws = me.Workspace({lab!r})
spec.bind_to(ws.Project("bench").Experiment({name!r}, n_replicas={runs}))
me.entry(ws)
"""

CREATE = """\
import json, sys
from pathlib import Path
from molexp.cli._execution import creation_labels
from molexp.cli._plan import plan_runs
from molexp.cli._profiles import load_profile
from molexp.cli._script import import_script

script = Path(sys.argv[1]).resolve()
profile = load_profile(None, search=[script.parent])
loaded = import_script(script)
dirs = []
for p in plan_runs(loaded.workspaces, profile).to_execute:
    labels = creation_labels(loaded, profile, p.replica)
    run = p.experiment.Run(parameters=p.parameters, id=p.run_id, labels=labels)
    dirs.append(str(run.run_dir))
print(json.dumps(dirs))
"""


def molexp_executable() -> str:
    beside = Path(sys.executable).parent / "molexp"
    if beside.is_file():
        return str(beside)
    found = shutil.which("molexp")
    if found is None:
        sys.exit("the molexp executable is not installed: pip install -e packages/molexp-cli")
    return found


class Bench:
    """A scratch directory and the commands run in it."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.molexp = molexp_executable()
        self.count = 0

    def sweep(self, runs: int, tag: str, config: str | None = None) -> Path:
        """A fresh sweep script of ``runs`` runs with its own workspace (and ``molcfg.yaml``)."""
        self.count += 1
        directory = self.workdir / f"{tag}-{self.count}"
        directory.mkdir()
        if config is not None:
            (directory / "molcfg.yaml").write_text(config)
        script = directory / "sweep.py"
        script.write_text(SWEEP.format(lab=str(directory / "lab"), name=tag, runs=runs))
        return script

    def run(self, cmd: list[str], cwd: Path) -> float:
        start = time.perf_counter()
        proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False)
        elapsed = time.perf_counter() - start
        if proc.returncode != 0:
            sys.exit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-3000:]}"
                     f"{proc.stderr[-3000:]}")  # fmt: skip
        return elapsed

    def molexp_run(self, runs: int, tag: str, *args: str, config: str | None = None) -> float:
        script = self.sweep(runs, tag, config)
        return self.run([self.molexp, "run", str(script), *args], script.parent)

    def created_runs(self, runs: int, tag: str) -> tuple[Path, list[str]]:
        """A sweep whose runs are created (not executed); the script and the run directories."""
        script = self.sweep(runs, tag)
        out = subprocess.run(
            [sys.executable, "-c", CREATE, str(script)],
            cwd=script.parent,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        return script, json.loads(out)


# -- Dask ------------------------------------------------------------------------------------------


def bench_dask(bench: Bench, n_runs: int, sleepers: int) -> None:
    try:
        import distributed  # noqa: F401
    except ImportError:
        print("\nDask: skipped (pip install 'molexp-cli[dask]')")
        return
    script, dirs = bench.created_runs(8, "execute")
    execute = [
        bench.run([sys.executable, "-P", "-m", "molexp.cli", "execute", d], script.parent)
        for d in dirs
    ]
    t_exec = statistics.median(execute)
    print(f"\nDask: a 2-worker LocalCluster; {n_runs} trivial runs; {sleepers} runs of 1 s")
    print(f"  molexp execute (one run, sequential, median of 8)      {t_exec:7.2f} s")

    rows = {}
    processes = "version: 1\nexecutor:\n  dask:\n    processes: true\n"
    for name, args, config in (
        ("dask (LocalCluster, 2 workers)", ["--executor", "dask", "--jobs", "2"], None),
        ("dask (2 worker processes)", ["--executor", "dask", "--jobs", "2"], processes),
        ("local, 2 child processes", ["--executor", "local", "--jobs", "2"], None),
    ):
        one = bench.molexp_run(1, "one", *args, config=config)
        many = bench.molexp_run(n_runs, "many", *args, config=config)
        slot = (many - one) * 2 / (n_runs - 1)
        rows[name] = (one, many, slot)
        print(
            f"  {name:<32} T(1) {one:6.2f} s  T({n_runs}) {many:7.2f} s  per run per slot "
            f"{slot:5.2f} s  overhead over molexp execute {slot - t_exec:+5.2f} s"
        )
    dask_slot, local_slot = (
        rows["dask (LocalCluster, 2 workers)"][2],
        rows["local, 2 child processes"][2],
    )
    print(
        f"  Dask's own cost per run over local child processes     {dask_slot - local_slot:+7.2f} s"
    )

    local = bench.molexp_run(sleepers, "sleep", "-o", "sleep=1")
    dask2 = bench.molexp_run(
        sleepers, "sleep", "-o", "sleep=1", "--executor", "dask", "--jobs", "2"
    )
    dask4 = bench.molexp_run(
        sleepers, "sleep", "-o", "sleep=1", "--executor", "dask", "--jobs", "4"
    )
    print(f"  {sleepers} runs sleeping 1 s: local (in-process) {local:6.2f} s")
    print(f"      dask, 2 workers {dask2:6.2f} s  speed-up {local / dask2:4.2f}x")
    print(f"      dask, 4 workers {dask4:6.2f} s  speed-up {local / dask4:4.2f}x")


# -- Slurm -----------------------------------------------------------------------------------------


def _squeue(job: str) -> dict[str, str]:
    out = subprocess.run(
        ["squeue", "-h", "-r", "-t", "all", "-j", job, "-o", "%i %T"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    return dict(line.split() for line in out.splitlines() if line.strip())


ACTIVE = {"PENDING", "CONFIGURING", "RUNNING", "COMPLETING"}


def _sbatch_and_wait(args: list[str], cwd: Path, tasks: int = 1) -> float:
    start = time.perf_counter()
    job = subprocess.run(
        ["sbatch", "--parsable", "--output=/dev/null", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    while True:
        states = _squeue(job)
        if len(states) >= tasks and not ACTIVE & set(states.values()):
            return time.perf_counter() - start
        time.sleep(0.1)


def ensure_slurm() -> bool | None:
    """True: a Slurm answers; False: none could be had; None: started here (stop it after)."""
    if (
        shutil.which("sbatch")
        and subprocess.run(["scontrol", "ping"], capture_output=True).returncode == 0
    ):
        return True
    if os.geteuid() != 0:
        print("\nSlurm: skipped (not root, and no Slurm answers)")
        return False
    start = time.perf_counter()
    proc = subprocess.run(
        ["bash", str(ROOT / "tools/slurm/start.sh")], capture_output=True, text=True
    )
    if proc.returncode != 0:
        print(f"\nSlurm: could not be started:\n{proc.stdout}{proc.stderr}")
        return False
    print(f"\n(started the local Slurm in {time.perf_counter() - start:.1f} s)")
    return None


def bench_slurm(bench: Bench, array: int, rounds: int) -> bool:
    available = ensure_slurm()
    if available is False:
        return True
    try:
        return _bench_slurm(bench, array, rounds)
    finally:
        if available is None:
            subprocess.run(["bash", str(ROOT / "tools/slurm/stop.sh")], capture_output=True)


def _bench_slurm(bench: Bench, array: int, rounds: int) -> bool:
    print(f"\nSlurm: single node ({os.cpu_count()} CPUs); latency median of {rounds}; "
          f"a {array}-run job array")  # fmt: skip
    empty = [_sbatch_and_wait(["--wrap", "true"], bench.workdir) for _ in range(rounds)]
    floor = statistics.median(empty)
    print(f"  sbatch --wrap true, submit to finished                  {floor:7.2f} s")
    plain, mine = [], []
    python = f"{sys.executable} -P -m molexp.cli execute"
    for _ in range(rounds):
        script, (run_dir,) = bench.created_runs(1, "plain")
        plain.append(_sbatch_and_wait(["--wrap", f"{python} {run_dir}"], script.parent))
        mine.append(bench.molexp_run(1, "one", "--executor", "slurm", "--wait"))
    p, m = statistics.median(plain), statistics.median(mine)
    print(f"  one run, plain sbatch --wrap 'molexp execute RUN'       {p:7.2f} s")
    print(f"  one run, molexp run --executor slurm --wait             {m:7.2f} s  (+{m - p:.2f} s)")

    script, dirs = bench.created_runs(array, "plain-array")
    table = script.parent / "runs.txt"
    table.write_text("".join(f"{d}\n" for d in dirs))
    wrap = f'{python} "$(sed -n "$((SLURM_ARRAY_TASK_ID + 1))p" {table})"'
    t_plain = _sbatch_and_wait([f"--array=0-{array - 1}", "--wrap", wrap], script.parent, array)
    t_mine = bench.molexp_run(array, "array", "--executor", "slurm", "--array", "--wait")
    added = (t_mine - t_plain) / array
    ok = added <= SLURM_ADDED_TARGET
    print(f"  {array}-run array, plain sbatch --array                  {t_plain:7.2f} s "
          f"({t_plain / array:.2f} s per run)")  # fmt: skip
    print(f"  {array}-run array, molexp run --executor slurm --array    {t_mine:7.2f} s "
          f"({t_mine / array:.2f} s per run)")  # fmt: skip
    print(f"  molexp adds {added:+.2f} s per run (target: at most {SLURM_ADDED_TARGET} s)"
          + ("  ok" if ok else "  over"))  # fmt: skip
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--part", choices=("dask", "slurm", "all"), default="all")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--runs", type=int, help="trivial runs for the Dask overhead (200)")
    parser.add_argument("--sleepers", type=int, help="1-second runs for the speed-up (20)")
    parser.add_argument("--array", type=int, help="runs in the Slurm job array (50)")
    parser.add_argument("--rounds", type=int, help="rounds of the Slurm latencies (5)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory")
    args = parser.parse_args()
    n_runs = args.runs or (40 if args.quick else 200)
    sleepers = args.sleepers or (8 if args.quick else 20)
    array = args.array or (10 if args.quick else 50)
    rounds = args.rounds or (3 if args.quick else 5)
    if os.environ.pop("PYTHONDONTWRITEBYTECODE", None):
        # Every `molexp execute` would compile molexp from source again (about 0.8 s here).
        print("(PYTHONDONTWRITEBYTECODE was set: unset for this benchmark, as in a normal install)")
    workdir = Path(tempfile.mkdtemp(prefix="molexp-bench-scale-"))
    load = os.getloadavg()[0]
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load {load:.1f}; in {workdir}")
    bench = Bench(workdir)
    ok = True
    try:
        if args.part in ("dask", "all"):
            bench_dask(bench, n_runs, sleepers)
        if args.part in ("slurm", "all"):
            ok = bench_slurm(bench, array, rounds)
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    print("\nall targets met" if ok else "\nsome targets missed (see above)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
