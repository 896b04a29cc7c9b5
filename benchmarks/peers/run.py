"""molexp side by side with signac, MLflow, Prefect and Dask: one command, one machine, one run.

    python benchmarks/peers/run.py            # the full comparison (about an hour on 2 vCPUs)
    python benchmarks/peers/run.py --quick    # smaller sizes, fewer repetitions (a few minutes)
    python benchmarks/peers/run.py --parts tracking --peers signac   # molexp vs signac only

The first call creates ``.bench-venv/`` at the repository root (never the development
environment) and installs into it molexp's packages from ``packages/*`` (editable) and the peers
(signac, MLflow, Prefect, Dask with distributed) and matplotlib; later calls reuse it until a
requirement or one of molexp's ``pyproject.toml`` changes (``--reinstall`` forces it). The
command then re-runs itself with that environment's Python and measures, on temporary
directories of the same disk:

* **tracking**: creating runs with 4 parameters, one small artifact and a final status
  (molexp with fsync on and off, signac, MLflow with its file store and its SQLite store), in
  interleaved blocks; opening one run by id; finding the runs with a given parameter value; at
  each size (1,000 and 10,000 runs, or ``--runs``);
* **workflow**: per-task overhead of a 1,000-task chain and a 1,000-wide fan-out, and 100
  concurrent 0.1 s tasks (molexp, plain asyncio, Dask delayed, Dask distributed, Prefect);
* **catalog**: molexp's catalog queries over 100,000 assets against walking the tree;
* **cli**: ``molexp --help`` and ``molexp runs list`` against ``python -c pass``.

It prints the tables and, for a full run of every part, writes ``docs/benchmarks.md`` and
``docs/img/benchmarks-tracking.png`` (``--write-docs`` / ``--no-docs`` override).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
VENV = REPO / ".bench-venv"
STAMP = VENV / "molexp-bench-stamp.json"
MOLEXP_PACKAGES = ["molexp-workspace", "molexp-workflow", "molexp-cli"]
REQUIRED = ["matplotlib"]
PEERS = {
    "signac": ["signac"],
    "mlflow": ["mlflow"],
    # Prefect 3.8 passes `min_items=` to fastapi.Body, which FastAPI 0.155 stopped accepting
    # (its ephemeral server then fails to import): keep FastAPI below it for Prefect.
    "prefect": ["prefect", "fastapi<0.155"],
    "dask": ["dask[distributed]"],
}
DOC = REPO / "docs" / "benchmarks.md"
PLOT = REPO / "docs" / "img" / "benchmarks-tracking.png"
RAW = REPO / "docs" / "benchmarks.json"
PARTS = ("tracking", "workflow", "catalog", "cli")


# -- the separate environment -----------------------------------------------------------------


def venv_python() -> Path:
    return VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def inside_venv() -> bool:
    return Path(sys.prefix).resolve() == VENV.resolve()


def wanted_stamp() -> dict[str, Any]:
    digest = hashlib.sha256()
    for name in MOLEXP_PACKAGES:
        digest.update((REPO / "packages" / name / "pyproject.toml").read_bytes())
    return {
        "python": sys.version.split()[0],
        "required": REQUIRED,
        "peers": PEERS,
        "molexp": digest.hexdigest(),
    }


def pip(*args: str) -> bool:
    cmd = [str(venv_python()), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    cmd += args
    print("  $", " ".join(cmd[3:]), flush=True)
    return subprocess.run(cmd, cwd=REPO, check=False).returncode == 0


def ensure_venv(reinstall: bool) -> None:
    """Create or refresh ``.bench-venv``; a peer that fails to install is recorded, not fatal."""
    wanted = wanted_stamp()
    have = json.loads(STAMP.read_text()) if STAMP.is_file() else None
    if have is not None and not reinstall and {k: have.get(k) for k in wanted} == wanted:
        return
    if not venv_python().is_file():
        print(f"creating {VENV.relative_to(REPO)}/ (a separate environment for the peers)")
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    print("installing molexp (editable) and matplotlib into it")
    editable = [arg for name in MOLEXP_PACKAGES for arg in ("-e", f"packages/{name}")]
    if not pip(*editable, *REQUIRED):
        sys.exit("could not install molexp's packages into .bench-venv (see pip's output above)")
    failed = {}
    for name, requirements in PEERS.items():
        print(f"installing {name}")
        if not pip(*requirements):
            quoted = " ".join(f"'{r}'" for r in requirements)
            failed[name] = f"`pip install {quoted}` failed in .bench-venv"
    STAMP.write_text(json.dumps({**wanted, "failed": failed}, indent=2))


def install_failures() -> dict[str, str]:
    if not STAMP.is_file():
        return {}
    return dict(json.loads(STAMP.read_text()).get("failed", {}))


# -- worker processes -------------------------------------------------------------------------


class WorkerError(RuntimeError):
    pass


class Worker:
    """One system's adapter in its own process (``worker.py``), driven by JSON lines."""

    def __init__(
        self, name: str, target: str, kwargs: dict[str, Any], log: Path, env: dict[str, str]
    ) -> None:
        self.name = name
        self.log = log
        self.stderr = open(log, "w")  # noqa: SIM115 - closed in close()
        self.proc = subprocess.Popen(
            [sys.executable, str(HERE / "worker.py"), target, json.dumps(kwargs)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.stderr,
            text=True,
            env={**os.environ, **env},
            cwd=log.parent,
        )
        self._answer()

    def _answer(self) -> Any:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait()
            raise WorkerError(
                f"{self.name}: the worker exited ({self.proc.returncode})\n{self.tail()}"
            )
        answer = json.loads(line)
        if "error" in answer:
            raise WorkerError(f"{self.name}: {answer['error']}")
        return answer["ok"]

    def call(self, op: str, **args: Any) -> Any:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"op": op, "args": args}) + "\n")
        self.proc.stdin.flush()
        return self._answer()

    def tail(self, lines: int = 30) -> str:
        self.stderr.flush()
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                assert self.proc.stdin is not None
                self.proc.stdin.write(json.dumps({"op": "exit"}) + "\n")
                self.proc.stdin.close()
                self.proc.wait(timeout=60)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()
        self.stderr.close()


def start_workers(
    specs: Sequence[tuple[str, str, dict[str, Any], dict[str, str]]],
    logs: Path,
    unavailable: dict[str, str],
) -> list[Worker]:
    """Start one worker per system; a system whose worker cannot start is recorded as such."""
    workers = []
    for name, target, kwargs, env in specs:
        slug = "".join(c if c.isalnum() else "-" for c in name.lower())
        try:
            workers.append(Worker(name, target, kwargs, logs / f"{slug}.log", env))
        except WorkerError as exc:
            reason = str(exc).strip().splitlines()[-1]
            unavailable[name] = reason
            print(f"  {name}: not measured ({reason})", flush=True)
    return workers


def rotated(items: Sequence[Any], k: int) -> list[Any]:
    """``items`` starting at position ``k``: who goes first changes from one round to the next."""
    if not items:
        return []
    k %= len(items)
    return [*items[k:], *items[:k]]


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def load() -> str:
    return " / ".join(f"{x:.2f}" for x in os.getloadavg())


# -- results ----------------------------------------------------------------------------------


@dataclass
class Results:
    quick: bool
    started: str = ""
    machine: dict[str, str] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    unavailable: dict[str, str] = field(default_factory=dict)
    loads: dict[str, str] = field(default_factory=dict)
    tracking: dict[str, Any] = field(default_factory=dict)
    workflow: dict[str, Any] = field(default_factory=dict)
    catalog: dict[str, Any] = field(default_factory=dict)
    cli: dict[str, Any] = field(default_factory=dict)


# -- tracking ---------------------------------------------------------------------------------

# MLflow 3.7+ refuses a file store unless told that it is wanted (it is in maintenance mode).
MLFLOW_FILE_ENV = {"MLFLOW_ALLOW_FILE_STORE": "true"}
TRACKING_SYSTEMS = [
    ("molexp", "tracking:MolexpTracking", {"fsync": True}, "molexp", {}),
    ("molexp (fsync off)", "tracking:MolexpTracking", {"fsync": False}, "molexp", {}),
    ("signac", "tracking:SignacTracking", {}, "signac", {}),
    ("MLflow file store", "tracking:MlflowTracking", {"store": "file"}, "mlflow", MLFLOW_FILE_ENV),
    ("MLflow SQLite", "tracking:MlflowTracking", {"store": "sqlite"}, "mlflow", {}),
]


def bench_tracking(base: Path, res: Results, sizes: list[int], block: int, lookups: int) -> None:
    print(f"\n== tracking: {', '.join(f'{n:,}' for n in sizes)} runs, blocks of {block}")
    specs = []
    for name, target, kwargs, peer, env in TRACKING_SYSTEMS:
        if peer in res.unavailable:
            res.unavailable.setdefault(name, res.unavailable[peer])
            continue
        slug = "".join(c if c.isalnum() else "-" for c in name.lower())
        specs.append((name, target, {"root": str(base / slug), **kwargs}, env))
    workers = start_workers(specs, base, res.unavailable)
    out: dict[str, Any] = {
        "sizes": sizes,
        "block": block,
        "lookups": lookups,
        "blocks": {w.name: [] for w in workers},
        "at": {},
    }
    res.tracking = out
    rng = random.Random(8)
    try:
        for w in list(workers):
            if survive(workers, w, res, "warm_up", k=20) is None:
                del out["blocks"][w.name]
        done, round_no = 0, 0
        started = time.perf_counter()
        for n in sizes:
            while done < n:
                k = min(block, n - done)
                for w in rotated(workers, round_no):
                    seconds = survive(workers, w, res, "create", start=done, k=k)
                    if seconds is None:
                        del out["blocks"][w.name]
                        continue
                    out["blocks"][w.name].append([done + k, seconds / k])
                done += k
                round_no += 1
                if done % max(block, sizes[-1] // 10) == 0 or done == n:
                    print(
                        f"  {done:>7,} runs each, {time.perf_counter() - started:6.0f} s, "
                        f"load {load()}",
                        flush=True,
                    )
            out["at"][str(n)] = lookups_at(workers, n, lookups, rng, res)
            for name in set(out["blocks"]) - {w.name for w in workers}:
                del out["blocks"][name]
    finally:
        for w in workers:
            w.close()
        res.loads["tracking (end)"] = load()


def survive(workers: list[Worker], w: Worker, res: Results, op: str, **args: Any) -> Any:
    """``w.call(op, **args)``; if the system fails, it is dropped (and said so), not faked."""
    try:
        return w.call(op, **args)
    except WorkerError as exc:
        reason = str(exc).strip().splitlines()[-1]
        res.unavailable[w.name] = f"failed during the run ({op}): {reason}"
        print(f"  {w.name}: dropped, {res.unavailable[w.name]}", flush=True)
        workers.remove(w)
        w.close()
        return None


def lookups_at(
    workers: list[Worker], n: int, lookups: int, rng: random.Random, res: Results
) -> dict[str, Any]:
    """Open runs by id and find runs by parameter value, the systems taking turns."""
    picks = [rng.randrange(n) for _ in range(lookups)]
    opened: dict[str, list[float]] = {w.name: [] for w in workers}
    chunk = 20
    for turn, first in enumerate(range(0, lookups, chunk)):
        for w in rotated(workers, turn):
            times = survive(workers, w, res, "open", picks=picks[first : first + chunk])
            opened[w.name] += times or []
    found: dict[str, list[float]] = {w.name: [] for w in workers}
    hits: dict[str, int] = {}
    reps = 5 if n >= 5000 else 9
    for turn in range(reps):
        for w in rotated(workers, turn):
            answer = survive(workers, w, res, "find", value="m3", reps=1)
            if answer is not None:
                found[w.name] += answer[0]
                hits[w.name] = answer[1]
    alive = {w.name for w in workers}
    opened = {name: t for name, t in opened.items() if name in alive}
    found = {name: t for name, t in found.items() if name in alive}
    hits = {name: h for name, h in hits.items() if name in alive}
    if len(set(hits.values())) > 1:
        raise SystemExit(f"the systems disagree on the runs with model=m3: {hits}")
    result = {
        "open_ms": {name: median(t) * 1e3 for name, t in opened.items()},
        "find_ms": {name: median(t) * 1e3 for name, t in found.items()},
        "find_reps": reps,
        "hits": next(iter(hits.values()), 0),
    }
    print(f"  at {n:,} runs: open by id (median of {lookups}) and find model=m3 (median of {reps})")
    for name in opened:
        print(
            f"    {name:<20} open {result['open_ms'][name]:8.2f} ms   "
            f"find {result['find_ms'][name]:9.1f} ms ({result['hits']} hits)",
            flush=True,
        )
    return result


# -- workflow ---------------------------------------------------------------------------------

WORKFLOW_SYSTEMS = [
    ("asyncio floor", "workflow:FloorWorkflow", {}, None),
    ("molexp", "workflow:MolexpWorkflow", {}, None),
    ("Dask delayed (threads)", "workflow:DaskWorkflow", {}, "dask"),
    ("Dask distributed", "workflow:DaskWorkflow", {"distributed": True}, "dask"),
    ("Prefect", "workflow:PrefectWorkflow", {}, "prefect"),
]
WORKFLOW_SCENARIOS = [
    ("chain", "chain"),
    ("fan-out + reduce", "fan"),
    ("100 x await asyncio.sleep(0.1)", "sleep_async"),
    ("100 x time.sleep(0.1)", "sleep_threads"),
]


def prefect_env(base: Path) -> dict[str, str]:
    """Prefect against its own ephemeral API server: a fresh home, no server URL, no telemetry."""
    home = base / "prefect-home"
    home.mkdir(exist_ok=True)
    return {
        "PREFECT_HOME": str(home),
        "PREFECT_API_URL": "",
        "PREFECT_SERVER_ALLOW_EPHEMERAL_MODE": "true",
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_LOGGING_LEVEL": "WARNING",  # no console line per task run
        "DO_NOT_TRACK": "1",
    }


def bench_workflow(base: Path, res: Results, n: int, reps: int) -> None:
    print(f"\n== workflow: {n:,}-task graphs and 100 sleeping tasks, {reps} repetitions each")
    specs = []
    for name, target, kwargs, peer in WORKFLOW_SYSTEMS:
        if peer is not None and peer in res.unavailable:
            res.unavailable.setdefault(name, res.unavailable[peer])
            continue
        env = prefect_env(base) if peer == "prefect" else {}
        specs.append((name, target, kwargs, env))
    workers = start_workers(specs, base, res.unavailable)
    out: dict[str, Any] = {"n": n, "reps": reps, "seconds": {}, "failed": {}}
    res.workflow = out
    try:
        for label, op in WORKFLOW_SCENARIOS:
            size = n if op in ("chain", "fan") else 100
            times: dict[str, list[float]] = {}
            for turn in range(-1, reps):  # turn -1 warms up (first-call costs), not recorded
                for w in rotated(workers, turn):
                    if (w.name, op) in out["failed"]:
                        continue
                    try:
                        seconds = w.call(op, n=size)
                        if turn >= 0:
                            times.setdefault(w.name, []).append(seconds)
                    except WorkerError as exc:
                        if "has no attribute" in str(exc):
                            out["failed"][(w.name, op)] = "not applicable"
                        else:
                            out["failed"][(w.name, op)] = str(exc).strip().splitlines()[-1]
                            print(f"  {w.name} {op}: {out['failed'][(w.name, op)]}")
            out["seconds"][label] = {name: sorted(t) for name, t in times.items()}
            print(f"  {label} ({size:,} tasks), median seconds; load {load()}")
            for name, t in times.items():
                print(f"    {name:<24} {median(t):8.3f}  (min {min(t):.3f})", flush=True)
        dask = next((w for w in workers if w.name == "Dask delayed (threads)"), None)
        if dask is not None:
            out["dask_default_pool_s"] = dask.call("sleep_threads_default_pool", n=100)
    finally:
        for w in workers:
            w.close()
        out["failed"] = {f"{name}: {op}": why for (name, op), why in out["failed"].items()}
        res.loads["workflow (end)"] = load()


# -- catalog ----------------------------------------------------------------------------------


def bench_catalog_part(base: Path, res: Results, runs: int, reps: int) -> None:
    import bench_catalog

    total = runs * bench_catalog.ASSETS_PER_RUN
    workers = max(2, os.cpu_count() or 2)
    print(f"\n== catalog: {total:,} assets ({runs:,} runs), built with {workers} processes")
    root = base / "catalog"
    build_s = bench_catalog.build(root, runs, workers, False)
    print(f"  built in {build_s:.0f} s; load {load()}", flush=True)
    rows = bench_catalog.bench_queries(root, runs, reps, 1 if total >= 50_000 else 3)
    res.catalog = {
        "assets": total,
        "runs": runs,
        "build_s": build_s,
        "reps": reps,
        "rows": [
            {
                "question": label,
                "hits": hits,
                "catalog_ms": med,
                "p95_ms": p95,
                "walk_ms": walk,
                "targeted_ms": targeted,
            }
            for label, hits, med, p95, walk, targeted in rows
        ],
    }
    for row in res.catalog["rows"]:
        walk = f"{row['walk_ms']:9.0f} ms" if row["walk_ms"] else f"{'-':>12}"
        print(f"  {row['question']:<42} {row['catalog_ms']:8.2f} ms   walk {walk}")
    shutil.rmtree(root, ignore_errors=True)
    res.loads["catalog (end)"] = load()


# -- CLI start-up -----------------------------------------------------------------------------


def bench_cli_part(base: Path, res: Results, rounds: int) -> None:
    import bench_cli

    print(f"\n== cli: start-up, median of {rounds} alternating rounds")
    workdir = base / "cli"
    workdir.mkdir()
    bench_cli.small_workspace(workdir)
    bindir = Path(sys.executable).parent
    commands = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "molexp --help": [bench_cli.molexp_executable(), "--help"],
        "molexp runs list": [bench_cli.molexp_executable(), "runs", "list"],
    }
    for peer in ("signac", "mlflow", "prefect"):
        exe = bindir / peer
        if peer not in res.unavailable and exe.is_file():
            commands[f"{peer} --help"] = [str(exe), "--help"]
    for cmd in commands.values():  # warm the file cache and the .pyc files
        bench_cli.wall(cmd, workdir)
    times: dict[str, list[float]] = {name: [] for name in commands}
    for turn in range(rounds):
        for name in rotated(list(commands), turn):
            times[name].append(bench_cli.wall(commands[name], workdir))
    res.cli = {"rounds": rounds, "ms": {name: median(t) * 1e3 for name, t in times.items()}}
    floor = res.cli["ms"]["python -c pass"]
    for name, ms in res.cli["ms"].items():
        print(f"  {name:<20} {ms:7.0f} ms  {ms / floor:5.1f}x python -c pass", flush=True)
    res.loads["cli (end)"] = load()


# -- the machine and the versions -------------------------------------------------------------


def read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def disk_of(path: Path) -> str:
    try:
        out = subprocess.run(
            ["findmnt", "-n", "-o", "SOURCE,FSTYPE", "-T", str(path)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    source, fstype = ([*out, "?", "?"])[:2]
    device = Path(source).name
    base = device.rstrip("0123456789") if not device.startswith("nvme") else device.split("p")[0]
    rotational = read(f"/sys/block/{base}/queue/rotational").strip()
    kind = {"0": "non-rotational (SSD or virtual)", "1": "rotational (HDD)"}.get(rotational, "")
    if base.startswith("vd"):
        kind = "virtio virtual disk" + (", reports non-rotational" if rotational == "0" else "")
    return f"{source} ({fstype}), {kind or 'type unknown'}"


def machine_info(base: Path) -> dict[str, str]:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in read("/proc/cpuinfo").splitlines()
            if line.startswith("model name")
        ),
        platform.processor() or "unknown",
    )
    mem_kb = next(
        (int(line.split()[1]) for line in read("/proc/meminfo").splitlines() if "MemTotal" in line),
        0,
    )
    os_name = next(
        (
            line.split("=", 1)[1].strip('"')
            for line in read("/etc/os-release").splitlines()
            if line.startswith("PRETTY_NAME=")
        ),
        platform.system(),
    )
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "CPU": cpu,
        "cores": f"{os.cpu_count()} logical ({usable} usable by this process)",
        "memory": f"{mem_kb / 1024 / 1024:.1f} GiB" if mem_kb else "unknown",
        "disk (temporary directories)": f"{base.parent}: {disk_of(base)}",
        "OS": f"{os_name}, {platform.system()} {platform.release()} ({platform.machine()})",
        "Python": f"{platform.python_implementation()} {sys.version.split()[0]}",
    }


def versions() -> dict[str, str]:
    from importlib import metadata

    names = [*MOLEXP_PACKAGES, "signac", "mlflow", "prefect", "dask", "distributed"]
    names += ["sqlalchemy", "pydantic", "matplotlib"]
    found = {}
    for name in names:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    git = ["git", "-C", str(REPO)]
    commit = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run([*git, "status", "--porcelain", "--", "packages"], capture_output=True)
    if commit.returncode == 0:
        found["molexp source"] = f"git {commit.stdout.strip()}" + (
            " with uncommitted changes in packages/" if dirty.stdout.strip() else ""
        )
    return found


def publish(res: Results, *, write: bool) -> None:
    """Print the tables and the summary; with ``write``, rewrite docs/benchmarks.md, its plot and
    docs/benchmarks.json (the raw results, for ``--from-results``)."""
    import report

    print("\n" + report.summary(res))
    if not write:
        return
    DOC.parent.mkdir(parents=True, exist_ok=True)
    PLOT.parent.mkdir(parents=True, exist_ok=True)
    if res.tracking:
        report.plot(res, PLOT)
    DOC.write_text(report.markdown(res, PLOT.relative_to(DOC.parent)))
    RAW.write_text(json.dumps(res.__dict__, indent=1, default=str) + "\n")
    written = [DOC, RAW] + ([PLOT] if res.tracking else [])
    print("\nwrote " + ", ".join(str(p.relative_to(REPO)) for p in written))


# -- entry point ------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes, fewer repetitions")
    parser.add_argument("--parts", default=",".join(PARTS), help=f"subset of {','.join(PARTS)}")
    parser.add_argument(
        "--peers", default=",".join(PEERS), help=f"peers to measure, a subset of {','.join(PEERS)}"
    )
    parser.add_argument("--runs", default=None, help="tracking sizes (default 1000,10000)")
    parser.add_argument("--block", type=int, default=None, help="runs per interleaved block")
    parser.add_argument("--lookups", type=int, default=None, help="runs opened by id per size")
    parser.add_argument("--tasks", type=int, default=None, help="workflow graph size (1000)")
    parser.add_argument("--reps", type=int, default=None, help="workflow repetitions (5)")
    parser.add_argument("--catalog-runs", type=int, default=None, help="x 100 assets (1000)")
    parser.add_argument("--dir", default=None, help="parent of the temporary directories")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directories")
    parser.add_argument("--reinstall", action="store_true", help="reinstall .bench-venv")
    docs = parser.add_mutually_exclusive_group()
    docs.add_argument("--write-docs", action="store_true", help="write docs/ even if partial")
    docs.add_argument("--no-docs", action="store_true", help="do not write docs/")
    parser.add_argument(
        "--from-results",
        type=Path,
        default=None,
        help="measure nothing: rewrite docs/ from the results JSON a run saved",
    )
    args = parser.parse_args(argv)

    if not inside_venv():
        ensure_venv(args.reinstall)
        python = str(venv_python())
        os.execv(python, [python, str(Path(__file__).resolve()), *sys.argv[1:]])

    sys.path[:0] = [str(HERE), str(HERE.parent)]
    if args.from_results is not None:
        res = Results(**json.loads(args.from_results.read_text()))
        publish(res, write=not args.no_docs)
        return 0
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    if unknown := set(parts) - set(PARTS):
        parser.error(f"unknown parts: {', '.join(sorted(unknown))}")
    peers = {p.strip() for p in args.peers.split(",") if p.strip()}
    if unknown := peers - set(PEERS):
        parser.error(f"unknown peers: {', '.join(sorted(unknown))} (known: {', '.join(PEERS)})")
    quick = args.quick
    sizes = [int(x) for x in (args.runs or ("200,2000" if quick else "1000,10000")).split(",")]
    block = args.block or (50 if quick else 100)
    lookups = args.lookups or (60 if quick else 200)
    tasks = args.tasks or (200 if quick else 1000)
    reps = args.reps or (3 if quick else 5)
    catalog_runs = args.catalog_runs or (100 if quick else 1000)
    complete = parts == list(PARTS) and peers == set(PEERS)
    write_docs = args.write_docs or (not args.no_docs and not quick and complete)

    base = Path(tempfile.mkdtemp(prefix="molexp-peers-", dir=args.dir))
    res = Results(quick=quick, started=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"))
    res.machine = machine_info(base)
    res.versions = versions()
    res.unavailable = {peer: why for peer, why in install_failures().items() if peer in PEERS}
    for peer in PEERS:
        if peer not in res.unavailable and res.versions.get(peer) == "not installed":
            res.unavailable[peer] = "not installed in .bench-venv"
        if peer not in peers:
            res.unavailable.setdefault(peer, "left out (--peers)")
    res.loads["start"] = load()
    print(
        f"molexp vs peers: {res.machine['CPU']}, {res.machine['cores']}, "
        f"Python {sys.version.split()[0]}"
    )
    print(f"temporary directories under {base}; load average (1/5/15 min) {res.loads['start']}")
    for peer, why in res.unavailable.items():
        print(f"  {peer}: not measured ({why})")
    steps: dict[str, Callable[[], None]] = {
        "tracking": lambda: bench_tracking(base / "tracking", res, sizes, block, lookups),
        "workflow": lambda: bench_workflow(base / "workflow", res, tasks, reps),
        "catalog": lambda: bench_catalog_part(base, res, catalog_runs, 50 if quick else 200),
        "cli": lambda: bench_cli_part(base, res, 5 if quick else 15),
    }
    started = time.perf_counter()
    try:
        for part in parts:
            if part in ("tracking", "workflow"):
                (base / part).mkdir()
            steps[part]()
    finally:
        res.loads["end"] = load()
        res.machine["duration"] = f"{(time.perf_counter() - started) / 60:.0f} min"
        raw = base.parent / f"{base.name}.json"  # kept even when a part failed
        raw.write_text(json.dumps(res.__dict__, indent=1, default=str))
        print(f"\nraw results: {raw}")
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)
        else:
            print(f"kept {base}")
    publish(res, write=write_docs)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
