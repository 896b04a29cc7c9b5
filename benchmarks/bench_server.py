"""Benchmark: ``molexp serve`` on an experiment of 10,000 runs (issue 10's performance bar).

Builds a local workspace with one experiment of RUNS runs (default 10,000) through the real API
(``with run.start() as ctx:``, two results, one run in ten failing, a log in one run in a hundred)
in parallel worker processes, starts the server as a separate process (``python -m
molexp.server --no-warm`` on a free loopback port), and measures over HTTP, as a browser would:

* **First page of the runs table** (the HTML page, 50 runs, newest first): the *cold* request
  (the server's first look at the experiment: it builds its run index from the 10,000
  ``run.json``), then *warm* requests, each 0.55 s after the last (past the index's
  ``min_interval``, so each one also sets off a background refresh: a ``stat`` of every
  ``run.json``), with the default order, sorted by a result, filtered by a parameter and sorted by
  another, and the JSON API's page; and requests after 6 s of quiet (past ``max_stale``: the
  index is refreshed before the page is served). Target: under 300 ms.
* **After one run changes**: a run is executed again by this process, then, after 6 s, the first
  page is asked for (the refresh before serving re-reads that one file, the snapshot is rebuilt
  and the sorted selection recomputed). Target: under 300 ms.
* **Run page** (HTML, and the API's record) of random runs. Target: under 100 ms.
* **Memory while paging**: the server's resident memory before paging, after paging through all
  runs in pages of 50, and after a second pass. Target: flat (the second pass adds < 5 MiB).

Usage::

    python benchmarks/bench_server.py               # 10,000 runs (~1-2 minutes, mostly building)
    python benchmarks/bench_server.py --quick       # 2,000 runs
    python benchmarks/bench_server.py --runs 20000 --dir /mnt/ssd --keep
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

import molexp as me

TARGET_PAGE_MS = 300.0
TARGET_RUN_MS = 100.0
TARGET_MEMORY_GROWTH_MIB = 5.0
REFRESH_WAIT = 0.55  # a little over RunIndex.min_interval, so each timed request refreshes
LRS = [1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1]


def _build_part(args: tuple[str, int, int]) -> int:
    root, start, stop = args
    ws = me.Workspace(root, storage_options={"fsync": False})
    exp = ws.project("bench").experiment("big")
    for i in range(start, stop):
        lr = LRS[i % len(LRS)]
        depth = 2 + (i // len(LRS)) % 4
        run = exp.Run(
            parameters={"lr": lr, "depth": depth, "model": "gcn" if i % 3 else "gat", "seed": i},
            id=f"r{i:06d}",
        )
        try:
            with run.start(profile_config={"epochs": 10}, profile_name="bench") as ctx:
                if i % 100 == 0:
                    ctx.log("train").append(f"run {i} epoch 0")
                if i % 10 == 9:
                    raise RuntimeError(f"run {i} failed on purpose")
                ctx.set_result("loss", round(0.1 + abs(lr - 3e-3) * 10 + depth * 0.01, 6))
                ctx.set_result("accuracy", round(0.9 - depth * 0.01, 6))
        except RuntimeError:
            pass
    return stop - start


def build(root: Path, runs: int, workers: int) -> float:
    """Make the workspace; returns the seconds it took."""
    started = time.perf_counter()
    ws = me.Workspace(root, name="Bench", storage_options={"fsync": False})
    ws.Project("bench").Experiment("big", params={"lr": 1e-3, "depth": 2})
    chunk = -(-runs // workers)
    parts = [(str(root), s, min(runs, s + chunk)) for s in range(0, runs, chunk)]
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        done = 0
        for count in pool.imap_unordered(_build_part, parts):
            done += count
            print(f"  built {done}/{runs} runs", file=sys.stderr)
    return time.perf_counter() - started


class Server:
    """The server as a separate process, asked over HTTP."""

    def __init__(self, root: Path) -> None:
        cmd = [sys.executable, "-m", "molexp.server", str(root), "--port", "0", "--no-warm"]
        self.process = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
        assert self.process.stderr is not None
        line = self.process.stderr.readline()
        match = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
        if match is None:
            raise SystemExit(f"the server did not start: {line}{self.process.stderr.read()}")
        self.port = int(match.group(1))
        self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)

    def get(self, path: str) -> tuple[float, bytes]:
        """Milliseconds to the whole response, and its body (keep-alive connection)."""
        try:
            started = time.perf_counter()
            self.conn.request("GET", path)
            resp = self.conn.getresponse()
        except (http.client.RemoteDisconnected, ConnectionError):
            # uvicorn closes a keep-alive connection idle for 5 s; a browser reconnects too.
            self.conn.close()
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
            started = time.perf_counter()
            self.conn.request("GET", path)
            resp = self.conn.getresponse()
        body = resp.read()
        elapsed = (time.perf_counter() - started) * 1000
        if resp.status != 200:
            raise SystemExit(f"GET {path}: {resp.status} {body[:300]!r}")
        return elapsed, body

    def rss_mib(self) -> float:
        with open(f"/proc/{self.process.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        return float("nan")

    def stop(self) -> None:
        self.conn.close()
        self.process.terminate()
        self.process.wait(timeout=10)
        if self.process.stderr is not None:
            self.process.stderr.close()


def timed(server: Server, path: str, n: int, *, wait: float = REFRESH_WAIT) -> list[float]:
    """``n`` timings of ``path``, each after ``wait`` seconds (so the run index refreshes)."""
    times = []
    for _ in range(n):
        time.sleep(wait)
        times.append(server.get(path)[0])
    return times


def summary(times: list[float]) -> tuple[float, float]:
    ordered = sorted(times)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--quick", action="store_true", help="2,000 runs, fewer samples")
    parser.add_argument("--workers", type=int, default=max(1, min(4, os.cpu_count() or 1)))
    parser.add_argument("--samples", type=int, default=20)
    parser.add_argument("--dir", default=None, help="where to put the temporary workspace")
    parser.add_argument("--keep", action="store_true", help="leave the workspace on disk")
    args = parser.parse_args()
    runs = 2_000 if args.quick else args.runs
    samples = 8 if args.quick else args.samples
    tmp = Path(tempfile.mkdtemp(prefix="molexp-bench-server-", dir=args.dir))
    root = tmp / "lab"
    rows: list[tuple[str, str, str]] = []
    verdicts: list[bool] = []

    def report(label: str, times: list[float], target: float | None) -> None:
        median, p95 = summary(times)
        ok = target is None or median < target
        if target is not None:
            verdicts.append(ok)
        verdict = "" if target is None else ("PASS" if ok else "FAIL") + f" (< {target:.0f} ms)"
        figure = f"{median:8.1f} ms median, {p95:8.1f} ms p95 (n={len(times)})"
        rows.append((label, figure, verdict))

    try:
        print(f"building {runs} runs in {root} ...", file=sys.stderr)
        seconds = build(root, runs, args.workers)
        print(f"built in {seconds:.1f} s", file=sys.stderr)
        server = Server(root)
        try:
            base = "/p/bench/e/big"
            rss_start = server.rss_mib()
            cold, body = server.get(base)
            assert b"r000000" in body or b'data-run="' in body
            rows.append(("first page, cold (builds the run index)", f"{cold:8.1f} ms", ""))
            rss_indexed = server.rss_mib()
            report("first page (HTML, newest first)", timed(server, base, samples), TARGET_PAGE_MS)
            report(
                "first page sorted by result.loss",
                timed(server, f"{base}?sort=result.loss&order=asc", samples),
                TARGET_PAGE_MS,
            )
            flt = quote("param.lr>=0.003")
            report(
                "first page filtered param.lr>=0.003, sorted by param.depth",
                timed(server, f"{base}?filter={flt}&sort=param.depth&status=succeeded", samples),
                TARGET_PAGE_MS,
            )
            report(
                "API page of 100, sorted by result.accuracy",
                timed(
                    server,
                    "/api/projects/bench/experiments/big/runs?sort=result.accuracy&limit=100",
                    samples,
                ),
                TARGET_PAGE_MS,
            )
            report(
                "first page after 6 s idle (refreshed before serving)",
                timed(server, base, max(4, samples // 3), wait=6.0),
                TARGET_PAGE_MS,
            )
            report(
                "same page back to back (no refresh due)",
                timed(server, base, samples, wait=0.0),
                TARGET_PAGE_MS,
            )
            # One run changes: executed again by this process.
            changed = []
            exp = me.Workspace(root).project("bench").experiment("big")
            for k in range(max(4, samples // 3)):
                run = exp.get_run(f"r{random.randrange(runs):06d}")
                with run.start() as ctx:
                    ctx.set_result("rerun", k)
                time.sleep(6.0)
                changed.append(server.get(base)[0])
            report("first page after one run changed (refreshed first)", changed, TARGET_PAGE_MS)
            # Run pages.
            picks = [f"r{random.randrange(runs):06d}" for _ in range(samples * 3)]
            run_times = [server.get(f"{base}/r/{rid}")[0] for rid in picks]
            report("run page (HTML)", run_times, TARGET_RUN_MS)
            log_run = "r000100" if runs > 100 else "r000000"
            report(
                "run page with a log (HTML)",
                [server.get(f"{base}/r/{log_run}")[0] for _ in range(samples)],
                TARGET_RUN_MS,
            )
            api_times = [
                server.get(f"/api/projects/bench/experiments/big/runs/{rid}")[0] for rid in picks
            ]
            report("run record (API)", api_times, TARGET_RUN_MS)
            failed = f"r{(random.randrange(runs // 10) * 10 + 9) % runs:06d}"
            report(
                "failed run page with traceback (HTML)",
                [server.get(f"{base}/r/{failed}")[0] for _ in range(samples)],
                TARGET_RUN_MS,
            )
            # Memory while paging through everything, twice.
            pages = -(-runs // 50)
            passes = []
            for _ in range(2):
                page_times = []
                for p in range(pages):
                    page_times.append(server.get(f"{base}?offset={p * 50}&limit=50")[0])
                passes.append((server.rss_mib(), page_times))
            (rss_one, first_pass), (rss_two, second_pass) = passes
            report(f"every page of 50 ({pages} pages), first pass", first_pass, TARGET_PAGE_MS)
            report(f"every page of 50 ({pages} pages), second pass", second_pass, TARGET_PAGE_MS)
            growth = rss_two - rss_one
            ok = growth < TARGET_MEMORY_GROWTH_MIB
            verdicts.append(ok)
            rows.append(
                (
                    "server memory (RSS)",
                    (
                        f"start {rss_start:.0f} MiB, indexed {rss_indexed:.0f}, after pass 1 "
                        f"{rss_one:.0f}, after pass 2 {rss_two:.0f} (+{growth:.1f} MiB)"
                    ),
                    ("PASS" if ok else "FAIL") + f" (< {TARGET_MEMORY_GROWTH_MIB:.0f} MiB)",
                )
            )
            page_bytes = len(server.get(base)[1])
            rows.append(("first page size", f"{page_bytes / 1024:.0f} KiB of HTML", ""))
        finally:
            server.stop()
    finally:
        if args.keep:
            print(f"kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    width = max(len(r[0]) for r in rows)
    print(f"\nmolexp serve on an experiment of {runs} runs ({os.cpu_count()} CPUs)\n")
    for label, figure, verdict in rows:
        print(f"{label:<{width}}  {figure}  {verdict}")
    print(json.dumps({"runs": runs, "all_pass": all(verdicts)}))
    return 0 if all(verdicts) else 1


if __name__ == "__main__":
    sys.exit(main())
