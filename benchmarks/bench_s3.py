"""Benchmark: a workspace on ``s3://`` (molexp-storage-s3) against a local S3 server.

Starts moto's standalone server on 127.0.0.1 (or uses ``--endpoint``), then measures, in one run
(issue 6's performance bar):

* **Artifact upload**: ``ctx.artifact.save(name, path)`` of a 50 MB file inside a run, against a
  plain s3fs upload of the same file (``S3FileSystem.put_file``), alternating, median of
  ``--rounds``. Throughput in MB/s; **ratio** = molexp / plain (target: at least 0.8).
* **Log requests**: a run that appends 1,000 lines to ``ctx.log("train")`` — how many HTTP
  requests touch the log object, and how many the whole logging costs (with the log's asset
  record and catalog journal entries). Target: a handful.
* **Catalog queries** on a cloud-backed workspace of 10,000 assets, answered from the local
  cache of its index: median and p95 latency of selective queries, and the requests they send.
  The workspace is built through the real API on local disk (fast), uploaded to the bucket as is
  (the way a local workspace is moved to S3), and opened by URL on a fresh cache. ``--cold``
  also times the first query of a fresh machine, which rebuilds the cache from the records in
  the bucket; without it the cache is seeded from the local index (the same rows).

Usage::

    python benchmarks/bench_s3.py              # ~1-2 minutes
    python benchmarks/bench_s3.py --quick      # 10 MB, 3 rounds, 2,000 assets
    python benchmarks/bench_s3.py --cold       # also rebuild the 10,000-asset cache from S3
    python benchmarks/bench_s3.py --endpoint http://127.0.0.1:9000 --bucket lab   # another server

Needs molexp-storage-s3 and moto[server] (both in the hatch environment). Credentials: fake ones
for the moto server it starts; the usual AWS variables with ``--endpoint``.
"""

from __future__ import annotations

import argparse
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import molexp as me
from molexp.workspace import AssetKind
from molexp_storage_s3 import S3Storage
from molexp_storage_s3.testing import MotoServer, fake_credentials

TARGET_UPLOAD_RATIO = 0.8
TARGET_LOG_REQUESTS = 5
TARGET_QUERY_MS = 20.0
MB = 1_000_000


def _s3(ws: me.Workspace) -> S3Storage:
    assert isinstance(ws.storage, S3Storage)
    return ws.storage


# -- artifact upload ------------------------------------------------------------------------------


def bench_upload(url: str, options: dict[str, Any], size_mb: int, rounds: int, tmp: Path) -> bool:
    import s3fs

    source = tmp / "model.bin"
    with source.open("wb") as f:
        for _ in range(size_mb):
            f.write(random.randbytes(MB))
    plain = s3fs.S3FileSystem(endpoint_url=options.get("endpoint_url"), skip_instance_cache=True)
    bucket_path = url.removeprefix("s3://")
    ws = me.Workspace(url, storage_options=options)
    run = ws.Project("bench").Experiment("upload").Run(id="upload")
    molexp_s: list[float] = []
    plain_s: list[float] = []
    with run.start() as ctx:
        ctx.artifact.save("warm-up", source)
        plain.put_file(str(source), f"{bucket_path}/plain/warm-up")
        for i in range(rounds):
            order = ["molexp", "plain"] if i % 2 == 0 else ["plain", "molexp"]
            for who in order:
                started = time.perf_counter()
                if who == "molexp":
                    ctx.artifact.save(f"model-{i}.bin", source)
                    molexp_s.append(time.perf_counter() - started)
                else:
                    plain.put_file(str(source), f"{bucket_path}/plain/model-{i}.bin")
                    plain_s.append(time.perf_counter() - started)
    saved = ws.catalog.query_assets(kind=AssetKind.ARTIFACT, name="model-0.bin")[0]
    assert saved.size == size_mb * MB
    # Each round times both, in alternating order: the ratio of a pair is immune to the drift
    # of a shared 2-core machine, and the median of the pairs to the odd hiccup.
    ratio = statistics.median(p / m for m, p in zip(molexp_s, plain_s, strict=True))
    print(f"\n== artifact upload: {size_mb} MB file, {rounds} alternating rounds")
    for label, times in (("molexp ctx.artifact.save", molexp_s), ("plain s3fs put_file", plain_s)):
        print(
            f"  {label:26s} median {size_mb / statistics.median(times):6.1f} MB/s   "
            f"best {size_mb / min(times):6.1f} MB/s"
        )
    ok = ratio >= TARGET_UPLOAD_RATIO
    print(
        f"  throughput ratio molexp/plain (median of the rounds) {ratio:.2f}  "
        f"(target >= {TARGET_UPLOAD_RATIO})  {'OK' if ok else 'MISSED'}"
    )
    return ok


# -- log requests ---------------------------------------------------------------------------------


def bench_log(url: str, options: dict[str, Any], lines: int) -> bool:
    ws = me.Workspace(url, storage_options=options)
    run = ws.Project("bench").Experiment("log").Run(id="log")
    ws.catalog.query_assets()  # the catalog cache is built: count the log, not the first build
    ws.catalog.refresh_interval = 3600
    storage = _s3(ws)
    with run.start() as ctx:
        log = ctx.log("train")
        started = time.perf_counter()
        with storage.requests.track() as sent:
            for step in range(lines):
                log.append(f"step={step:5d} loss={1 / (step + 1):.6f} lr=1e-3")
            log.close()
        elapsed = time.perf_counter() - started
    on_log = [r for r in sent if r.key.endswith("/logs/train.log")]
    (asset,) = run.assets.list(kind=AssetKind.LOG)
    assert len(asset.lines()) == lines
    print(f"\n== log: {lines:,} lines appended with ctx.log('train').append(...)")
    print(
        f"  requests on the log object  {len(on_log):3d}  ({', '.join(r.method for r in on_log)})"
    )
    print(f"  requests in all             {len(sent):3d}  (with the log's record and journal)")
    print(f"  {lines / elapsed:,.0f} lines/s, {asset.size:,} bytes stored")
    ok = len(on_log) <= TARGET_LOG_REQUESTS
    print(f"  target: at most {TARGET_LOG_REQUESTS} on the log  {'OK' if ok else 'MISSED'}")
    return ok


# -- catalog queries ------------------------------------------------------------------------------


def build_local(root: Path, assets: int) -> me.Workspace:
    """A local workspace of ``assets`` assets: runs of 100 (artifacts, a log, checkpoints)."""
    ws = me.Workspace(root, storage_options={"fsync": False})
    per_run = 100
    for r in range(assets // per_run):
        exp = ws.Project(f"p{r % 2}").Experiment(f"e{r % 10}")
        with exp.Run(id=f"run{r:04d}").start() as ctx:
            log = ctx.log("train")
            for step in range(10):
                log.append(f"step {step}")
            ctx.checkpoint("state", {"step": 1})
            ctx.checkpoint("state", {"step": 2})
            ctx.artifact.save(f"summary-{r:04d}.json", {"run": r})
            for i in range(per_run - 4):
                ctx.artifact.save(f"metric-{i:02d}.json", {"i": i})
    return ws


HIERARCHY = {"workspace.json", "project.json", "experiment.json", "run.json"}


def upload_tree(local: Path, url: str, options: dict[str, Any], full: bool) -> int:
    """Copy a local workspace into the bucket as is (s3fs's concurrent bulk upload): every file
    with ``full``, else only the hierarchy's records (queries answered from the cache never read
    the asset records, and moto stores only ~100 objects a second)."""
    import s3fs

    fs = s3fs.S3FileSystem(endpoint_url=options.get("endpoint_url"), skip_instance_cache=True)
    files = [
        p
        for p in local.rglob("*")
        if p.is_file() and ".molexp" not in p.parts and (full or p.name in HIERARCHY)
    ]
    target = url.removeprefix("s3://")
    fs.put(
        [str(p) for p in files],
        [f"{target}/{p.relative_to(local).as_posix()}" for p in files],
        batch_size=64,
    )
    return len(files)


def bench_catalog(url: str, options: dict[str, Any], assets: int, cold: bool, tmp: Path) -> bool:
    local_root = tmp / "local-ws"
    started = time.perf_counter()
    local = build_local(local_root, assets)
    total = len(local.catalog.query_assets())
    built = time.perf_counter() - started
    started = time.perf_counter()
    objects = upload_tree(local_root, url, options, full=cold)
    uploaded = time.perf_counter() - started
    print(
        f"\n== catalog: {total:,} assets, built locally in {built:.1f} s; {objects:,} objects "
        f"uploaded in {uploaded:.1f} s"
    )

    os.environ["MOLEXP_CACHE_DIR"] = str(tmp / "fresh-cache")  # a machine that never saw it
    ws = me.Workspace(url, storage_options=options)
    storage = _s3(ws)
    if cold:
        started = time.perf_counter()
        with storage.requests.track() as sent:
            first = ws.catalog.query_assets(kind=AssetKind.LOG)
        print(
            f"  cold cache: first query rebuilt the index from the bucket in "
            f"{time.perf_counter() - started:.1f} s ({len(sent):,} requests)"
        )
    else:
        location = ws.catalog.location
        location.parent.mkdir(parents=True, exist_ok=True)
        source = sqlite3.connect(local_root / ".molexp" / "catalog.sqlite")
        with sqlite3.connect(location) as target:
            source.backup(target)  # the index as the local writers left it, WAL included
        source.close()
        first = ws.catalog.query_assets(kind=AssetKind.LOG)
        print(
            "  the cache is seeded from the local index: the same rows a rebuild from the "
            "bucket gives (--cold uploads every record and times that rebuild)"
        )
    assert len(first) == assets // 100
    assert len(ws.catalog.query_assets()) == total

    runs = [f"run{r:04d}" for r in range(assets // 100)]
    queries = {
        "by producer run (100 hits)": lambda r: ws.catalog.query_assets(producer_run=r),
        "checkpoints of one run (2)": lambda r: ws.catalog.query_assets(
            kind=AssetKind.CHECKPOINT, run=r
        ),
        "unique name (1 hit)": lambda r: ws.catalog.query_assets(name=f"summary-{r[3:]}.json"),
        "logs in the workspace": lambda r: ws.catalog.query_assets(kind=AssetKind.LOG),
    }
    ok = True
    with storage.requests.track() as sent:
        for label, query in queries.items():
            times = []
            hits = []
            for _ in range(200):
                run_id = random.choice(runs)
                started = time.perf_counter()
                found = query(run_id)
                times.append((time.perf_counter() - started) * 1000)
                hits.append(len(found))
            times.sort()
            median, p95 = statistics.median(times), times[int(len(times) * 0.95)]
            ok = ok and median <= TARGET_QUERY_MS and min(hits) > 0
            print(
                f"  {label:30s} median {median:7.2f} ms   p95 {p95:7.2f} ms   "
                f"hits {statistics.median(hits):g}"
            )
    print(
        f"  requests sent during {len(queries) * 200} queries: {len(sent)} "
        f"(journal refreshes, every {ws.catalog.refresh_interval:g} s)"
    )
    print(f"  target: median <= {TARGET_QUERY_MS:g} ms  {'OK' if ok else 'MISSED'}")
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--endpoint", help="an S3 endpoint to use instead of starting moto")
    parser.add_argument("--bucket", default="molexp-bench", help="bucket (created with moto)")
    parser.add_argument("--size-mb", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--lines", type=int, default=1000)
    parser.add_argument("--assets", type=int, default=10_000)
    parser.add_argument("--cold", action="store_true", help="rebuild the catalog cache from S3")
    parser.add_argument("--quick", action="store_true", help="10 MB, 3 rounds, 2,000 assets")
    args = parser.parse_args(argv)
    if args.quick:
        args.size_mb, args.rounds, args.assets = 10, 3, 2000

    with tempfile.TemporaryDirectory(prefix="molexp-bench-s3-") as tmp_dir:
        tmp = Path(tmp_dir)
        os.environ["MOLEXP_CACHE_DIR"] = str(tmp / "cache")
        server: MotoServer | None = None
        credentials = fake_credentials() if args.endpoint is None else None
        try:
            if credentials is not None:
                credentials.__enter__()
                server = MotoServer()
                server.create_bucket(args.bucket)
            endpoint = args.endpoint or (server.endpoint if server else None)
            options = {"endpoint_url": endpoint}
            prefix = f"s3://{args.bucket}/bench-{uuid.uuid4().hex[:8]}"
            print(
                f"S3 endpoint {endpoint} ({'moto, started here' if server else 'given'}); "
                f"workspaces under {prefix}; python {sys.version.split()[0]}, "
                f"{os.cpu_count()} CPUs"
            )
            results = [
                bench_upload(f"{prefix}/upload", options, args.size_mb, args.rounds, tmp),
                bench_log(f"{prefix}/log", options, args.lines),
                bench_catalog(f"{prefix}/catalog", options, args.assets, args.cold, tmp),
            ]
        finally:
            if server is not None:
                server.stop()
            if credentials is not None:
                credentials.__exit__(None, None, None)
    print("\nall targets met" if all(results) else "\nsome targets missed")
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
