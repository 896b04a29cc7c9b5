"""Tables, the plot and ``docs/benchmarks.md`` from the results of ``run.py``.

Ratios are always *the other system's time / molexp's time*: above 1 molexp is faster, below 1
it is slower. Every statement of the summary is computed from the figures of the same run.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

COMMAND = "python benchmarks/peers/run.py"
MOLEXP, MOLEXP_NOSYNC = "molexp", "molexp (fsync off)"
FLOOR = "asyncio floor"


def fmt_ms(ms: float) -> str:
    if math.isnan(ms):
        return "-"
    if ms >= 100:
        return f"{ms:,.0f}"
    if ms >= 10:
        return f"{ms:.1f}"
    return f"{ms:.2f}" if ms >= 0.1 else f"{ms:.3f}"


def fmt_ratio(other: float, ours: float) -> str:
    if not ours or math.isnan(other) or math.isnan(ours):
        return "-"
    r = other / ours
    return f"{r:.2f}" if r < 10 else f"{r:.0f}"


def versus(ours: float, other: float) -> str:
    """'2.3x faster than' / '1.8x slower than' / 'on par with' (ours vs other, times)."""
    r = other / ours
    if r >= 1.1:
        return f"{r:.1f}x faster than" if r < 10 else f"{r:.0f}x faster than"
    if r <= 1 / 1.1:
        return f"{1 / r:.1f}x slower than" if r > 0.1 else f"{1 / r:.0f}x slower than"
    return "on par with"


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def median(values: list[float]) -> float:
    values = sorted(values)
    if not values:
        return float("nan")
    mid = len(values) // 2
    return values[mid] if len(values) % 2 else (values[mid - 1] + values[mid]) / 2


# -- tracking ---------------------------------------------------------------------------------


def create_ms(blocks: list[list[float]], upto: int) -> float:
    return median([cost for end, cost in blocks if end <= upto]) * 1e3


def growth(blocks: list[list[float]], window: int) -> float:
    costs = [cost for _, cost in blocks]
    return median(costs[-window:]) / median(costs[:window])


def tracking_tables(t: dict[str, Any]) -> list[str]:
    sizes, blocks = t["sizes"], t["blocks"]
    names = list(blocks)
    window = max(1, sizes[0] // t["block"])
    ref = {n: create_ms(blocks[MOLEXP], n) for n in sizes} if MOLEXP in blocks else {}
    ref_ns = (
        {n: create_ms(blocks[MOLEXP_NOSYNC], n) for n in sizes} if MOLEXP_NOSYNC in blocks else {}
    )
    header = ["system"]
    for n in sizes:
        header += [f"ms/run, runs 1-{n:,}", "x molexp", "x molexp (fsync off)"]
    header += [f"growth (last {window * t['block']:,} / first {window * t['block']:,})"]
    rows = []
    for name in names:
        row = [name]
        for n in sizes:
            ms = create_ms(blocks[name], n)
            row += [
                fmt_ms(ms),
                fmt_ratio(ms, ref.get(n, math.nan)),
                fmt_ratio(ms, ref_ns.get(n, math.nan)),
            ]
        row.append(f"{growth(blocks[name], window):.2f}")
        rows.append(row)
    lines = [
        (
            "**Creating runs** (median per-run cost over blocks of "
            f"{t['block']} runs; the systems take turns block by block). Growth compares the "
            "last blocks with the first: the load of the machine changes during the run and "
            "moves every system alike, so compare the systems' growth with one another (below 1 "
            "means the machine got quieter, not that the system got faster)."
        ),
        "",
    ]
    lines += table(header, rows)

    for key, title, unit in (
        (
            "open_ms",
            (
                "**Opening one run by id** and reading its parameters and status (median of "
                f"{t['lookups']} lookups, a fresh handle each time)"
            ),
            "ms",
        ),
        (
            "find_ms",
            (
                '**Finding the runs with `model = "m3"`** (1 run in 7; median over '
                "repetitions, a fresh handle each time)"
            ),
            "ms",
        ),
    ):
        header = ["system"]
        for n in sizes:
            header += [f"{unit} at {n:,} runs", "x molexp"]
        rows = []
        for name in names:
            row = [name]
            for n in sizes:
                at = t["at"].get(str(n))
                if not at:
                    row += ["-", "-"]
                    continue
                ms = at[key][name]
                row += [fmt_ms(ms), fmt_ratio(ms, at[key].get(MOLEXP, math.nan))]
            rows.append(row)
        lines += ["", title, "", *table(header, rows)]
    hits = {n: t["at"][str(n)]["hits"] for n in sizes if str(n) in t["at"]}
    lines += ["", "Hits: " + ", ".join(f"{h:,} of {n:,}" for n, h in hits.items()) + "."]
    return lines


# -- workflow ---------------------------------------------------------------------------------


def workflow_tables(w: dict[str, Any]) -> list[str]:
    n = w["n"]
    seconds = w["seconds"]
    names: list[str] = []
    for per_system in seconds.values():
        names += [name for name in per_system if name not in names]
    header = ["scenario", *names]
    rows = []
    for label, per_system in seconds.items():
        per_task = label in ("chain", "fan-out + reduce")
        ours = median(per_system.get(MOLEXP, []))
        row = [f"{label} ({n:,} tasks), µs/task" if per_task else f"{label}, s"]
        for name in names:
            if name not in per_system:
                row.append("n/a")
                continue
            s = median(per_system[name])
            value = f"{s / n * 1e6:,.0f}" if per_task else f"{s:.3f}"
            row.append(value if name == MOLEXP else f"{value} ({fmt_ratio(s, ours)}x)")
        rows.append(row)
    lines = [
        (
            f"Median of {w['reps']} repetitions, the systems taking turns; in brackets the "
            "ratio to molexp's time (above 1: molexp is faster)."
        ),
        "",
    ]
    lines += table(header, rows)
    if "dask_default_pool_s" in w:
        lines += [
            "",
            (
                f"Dask's threaded scheduler with its default pool (one thread per core) takes "
                f"{w['dask_default_pool_s']:.2f} s for the 100 `time.sleep(0.1)` tasks; the table "
                "gives it 100 threads (`num_workers=100`), as molexp's pool and Prefect's "
                "`ThreadPoolTaskRunner(max_workers=100)` have."
            ),
        ]
    failed = {k: v for k, v in (w.get("failed") or {}).items() if v != "not applicable"}
    if any(v == "not applicable" for v in (w.get("failed") or {}).values()):
        lines += [
            "",
            "n/a: a Dask task is a plain function call; Dask has no coroutine tasks to await.",
        ]
    if failed:
        lines += ["", "Not measured: " + "; ".join(f"{k} ({v})" for k, v in failed.items())]
    return lines


# -- catalog and CLI --------------------------------------------------------------------------


def catalog_tables(c: dict[str, Any]) -> list[str]:
    rows = []
    for r in c["rows"]:
        walk = r["walk_ms"]
        rows.append(
            [
                r["question"],
                f"{r['hits']:,}",
                fmt_ms(r["catalog_ms"]),
                fmt_ms(r["p95_ms"]),
                fmt_ms(walk) if walk else "-",
                fmt_ratio(walk, r["catalog_ms"]) if walk else "-",
                fmt_ms(r["targeted_ms"]) if r["targeted_ms"] else "-",
            ]
        )
    header = ["question", "hits", "catalog ms (median)", "p95 ms", "full walk ms", "walk / catalog"]
    header.append("targeted walk ms")
    return [
        (
            f"{c['assets']:,} assets ({c['runs']:,} runs x 100) built through the real API "
            f"in {c['build_s']:.0f} s (fsync off for the build); query medians over "
            f"{c['reps']} random targets on a fresh `Workspace`; walks read every asset record "
            "under the workspace (the full walk) or only the subtree that holds the answer "
            "(targeted)."
        ),
        "",
        *table(header, rows),
    ]


def cli_tables(c: dict[str, Any]) -> list[str]:
    floor = c["ms"]["python -c pass"]
    rows = [[f"`{name}`", f"{ms:,.0f}", f"{ms / floor:.1f}"] for name, ms in c["ms"].items()]
    return [
        f"Wall time of the command, median of {c['rounds']} rounds taking turns.",
        "",
        *table(["command", "ms", "x `python -c pass`"], rows),
    ]


# -- summary: where molexp wins and loses -----------------------------------------------------


def findings(res: Any) -> dict[str, list[str]]:
    """Every comparison with a peer, sorted into wins, ties and losses, and molexp's own
    overheads (against the asyncio floor and ``python -c pass``), all from this run's figures."""
    found: dict[str, list[str]] = {"wins": [], "par": [], "losses": [], "overheads": []}

    def add(ours: float, other: float, text: str) -> None:
        if math.isnan(ours) or math.isnan(other):
            return
        verdict = versus(ours, other)
        key = "wins" if "faster" in verdict else "losses" if "slower" in verdict else "par"
        found[key].append(text.format(v=verdict))

    t = res.tracking
    if t and MOLEXP in t.get("blocks", {}):
        n = t["sizes"][-1]
        blocks = t["blocks"]
        for peer in blocks:
            if peer.startswith("molexp"):
                continue
            for mine in (MOLEXP, MOLEXP_NOSYNC):
                if mine in blocks:
                    add(
                        create_ms(blocks[mine], n),
                        create_ms(blocks[peer], n),
                        f"creating {n:,} runs: {mine} is {{v}} {peer}",
                    )
        at = t["at"].get(str(n), {})
        for key, what in (
            ("open_ms", "opening a run by id"),
            ("find_ms", "finding runs by a parameter value"),
        ):
            for peer, ms in at.get(key, {}).items():
                if not peer.startswith("molexp") and MOLEXP in at[key]:
                    add(at[key][MOLEXP], ms, f"{what} at {n:,} runs: molexp is {{v}} {peer}")
    w = res.workflow
    for label, per_system in (w.get("seconds") or {}).items():
        if MOLEXP not in per_system:
            continue
        ours = median(per_system[MOLEXP])
        for peer, times in per_system.items():
            if peer == FLOOR:
                found["overheads"].append(
                    f"workflow, {label}: molexp takes {ours / median(times):.2f}x the time of "
                    "the plain-asyncio floor"
                )
            elif peer != MOLEXP:
                add(ours, median(times), f"workflow, {label}: molexp is {{v}} {peer}")
    c = res.catalog
    for r in c.get("rows", []):
        if r["walk_ms"]:
            add(
                r["catalog_ms"],
                r["walk_ms"],
                f"catalog, {r['question']}: the catalog is {{v}} walking the tree",
            )
    cli = res.cli
    if cli:
        floor = cli["ms"]["python -c pass"]
        for name in ("molexp --help", "molexp runs list"):
            found["overheads"].append(
                f"`{name}` takes {cli['ms'][name] / floor:.1f}x the time of `python -c pass`"
            )
        for name, ms in cli["ms"].items():
            if name.endswith("--help") and not name.startswith("molexp"):
                add(
                    cli["ms"]["molexp --help"],
                    ms,
                    f"CLI start-up: `molexp --help` is {{v}} `{name}`",
                )
    return found


def summary(res: Any) -> str:
    parts = []
    if res.tracking:
        parts += ["Tracking", "", *tracking_tables(res.tracking), ""]
    if res.workflow:
        parts += ["Workflow", "", *workflow_tables(res.workflow), ""]
    if res.catalog:
        parts += ["Catalog", "", *catalog_tables(res.catalog), ""]
    if res.cli:
        parts += ["CLI start-up", "", *cli_tables(res.cli), ""]
    found = findings(res)
    for key, title, mark in (
        ("wins", "molexp wins", "+"),
        ("par", "on par (within 10%)", "="),
        ("losses", "molexp loses", "-"),
        ("overheads", "molexp's own overheads", "*"),
    ):
        parts += [f"{title}:", *(f"  {mark} {x}" for x in found[key])] + (
            [] if found[key] else ["  (none)"]
        )
    return "\n".join(parts)


# -- the plot ---------------------------------------------------------------------------------


def rolling_median(values: list[float], width: int) -> list[float]:
    half = width // 2
    return [median(values[max(0, i - half) : i + half + 1]) for i in range(len(values))]


def plot(res: Any, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = res.tracking
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.8), gridspec_kw={"width_ratios": [3, 2]})
    for name, blocks in t["blocks"].items():
        ends = [end for end, _ in blocks]
        costs = rolling_median([cost * 1e3 for _, cost in blocks], 5)
        left.plot(ends, costs, label=name, linewidth=1.4)
    left.set_xlabel("runs in the store")
    left.set_ylabel("ms per run created (rolling median of 5 blocks)")
    left.set_yscale("log")
    left.set_title("Cost of creating one run as the store grows")
    left.grid(True, which="both", alpha=0.3)
    left.legend(fontsize=8)
    sizes = [n for n in t["sizes"] if str(n) in t["at"]]
    for name in t["blocks"]:
        right.plot(sizes, [t["at"][str(n)]["find_ms"][name] for n in sizes], marker="o", label=name)
    right.set_xscale("log")
    right.set_yscale("log")
    right.set_xlabel("runs in the store")
    right.set_ylabel("ms (median)")
    right.set_title('Finding the runs with model = "m3"')
    right.grid(True, which="both", alpha=0.3)
    fig.suptitle(f"{res.machine.get('CPU', '')}, {res.machine.get('cores', '')}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# -- docs/benchmarks.md -----------------------------------------------------------------------

FAIRNESS = """\
* **One machine, one disk, one command.** Every system writes to temporary directories on the same
  disk, in the same invocation. Each system runs in its own worker process (no peer's imports,
  threads or logging in another's way), and the controller makes them take turns: run creation
  goes in blocks, one block per system in a rotating order, so a burst of load from elsewhere on
  the machine hits all of them alike; lookups, queries and workflow repetitions alternate the same
  way. Figures are medians (of blocks, lookups or repetitions), not best cases.
* **Durability is not the same.** molexp's default writes every record atomically (temporary file,
  `fsync`, rename; the catalog index is SQLite in WAL mode with `synchronous=NORMAL`). signac and
  MLflow's file store do not `fsync` at all; MLflow's SQLite store commits with SQLite's default
  `synchronous=FULL` (an `fsync` per transaction, several transactions per run). `molexp (fsync
  off)` (`storage_options={"fsync": False}`: still atomic renames, not durable across a power
  cut) is the like-for-like comparison with signac and the MLflow file store.
* **The work recorded is not the same.** Per run, molexp writes the run record through its
  lifecycle (created, running, succeeded, with timestamps and the attempt's provenance: host,
  Python, command line, and a reference to the list of installed distributions, which is stored
  once per workspace), the artifact with its content hash, an asset record, and a catalog entry;
  signac writes the state point and the job document; MLflow writes the run's metadata, tags
  (user, source, git commit), the 4 parameters, the artifact and the end status. MLflow is driven
  through its fluent API (`mlflow.start_run`, `log_params`, `log_text`), as its documentation
  does.
* **Queries.** molexp answers `exp.find_runs({"model": "m3"})` from its run-parameter index (a
  derived SQLite file: each query lists the experiment's runs once, indexes runs it has not seen,
  then reads only the hits' `run.json` to check them); the first query after the runs were created
  builds the index, and the median is over the repetitions. signac's `find_jobs` and MLflow's file
  store scan; MLflow's SQLite store answers with SQL. Lookups and queries start from a fresh handle
  (`Workspace.load`, `signac.get_project`, `MlflowClient`) every time.
* **Workflows.** molexp executes the graph in memory (`spec.execute()`, no run: nothing written).
  Dask: the threaded scheduler is Dask's default for `delayed`; `Dask distributed` is an in-process
  `LocalCluster` (one worker, 100 threads). Prefect runs with its defaults against the ephemeral
  API server it starts by itself (a fresh `PREFECT_HOME` in a temporary directory, no
  `PREFECT_API_URL`), with its console log level set to WARNING so that it does not print a line
  per task; every flow and task run is recorded through that server, which molexp's in-memory
  execution does not do (`bench_workflow.py` times molexp's tracked execution separately).
* **A shared machine.** The machine was shared with other jobs; the load averages (1, 5 and 15
  minutes) at the start and at the end of each part are listed below. Absolute figures move with
  the load; the ratios of one run are what to compare.
"""


def markdown(res: Any, plot_path: Path) -> str:
    lines = [
        "# Benchmarks: molexp side by side with signac, MLflow, Prefect and Dask",
        "",
        (
            f"Generated by `{COMMAND}{' --quick' if res.quick else ''}` on {res.started} "
            f"({res.machine.get('duration', '?')}); do not edit by hand, run the command again. It "
            "installs the peers into `.bench-venv/` (never the development environment), measures "
            "every system in one run on one machine, and rewrites this page and its plot. "
            "Ratios are *the other system's time / molexp's time*: above 1 molexp is faster, "
            "below 1 it is slower."
        ),
        "",
        "```bash",
        f"{COMMAND}            # everything (this page)",
        f"{COMMAND} --quick    # smaller sizes, prints the tables only",
        f"{COMMAND} --parts tracking --runs 1000,10000,30000 --no-docs",
        "```",
        "",
    ]
    found = findings(res)
    lines += ["## Summary", ""]
    for key, title in (
        ("wins", "Where molexp wins"),
        ("losses", "Where molexp loses"),
        ("par", "On par (within 10%)"),
        ("overheads", "molexp's own overheads"),
    ):
        if found[key]:
            lines += [f"{title}:", "", *(f"- {x}" for x in found[key]), ""]
    if res.unavailable:
        lines += ["", "Not measured (could not be installed or run here):", ""]
        lines += [f"- {name}: {why}" for name, why in res.unavailable.items()]
    if res.tracking:
        lines += ["", "## Tracking runs", "", *tracking_tables(res.tracking), ""]
        lines += [f"![per-run cost against the number of runs]({plot_path.as_posix()})"]
    if res.workflow:
        lines += ["", "## Workflow runtime", "", *workflow_tables(res.workflow)]
    if res.catalog:
        lines += ["", "## Asset catalog", "", *catalog_tables(res.catalog)]
    if res.cli:
        lines += ["", "## CLI start-up", "", *cli_tables(res.cli)]
    lines += ["", "## How it was measured, and what is not equal", "", FAIRNESS.rstrip()]
    lines += ["", "## Machine", ""]
    lines += table(["", ""], [[k, v] for k, v in res.machine.items()])
    lines += ["", "Load average (1 / 5 / 15 min): "]
    lines[-1] += "; ".join(f"{k} {v}" for k, v in res.loads.items()) + "."
    lines += ["", "## Versions", ""]
    lines += table(["package", "version"], [[k, v] for k, v in res.versions.items()])
    lines += [
        "",
        (
            "The per-issue benchmarks in [`benchmarks/`](../benchmarks/README.md) measure each "
            "part of molexp in more detail (against its own floors and targets)."
        ),
        "",
    ]
    return "\n".join(lines)
