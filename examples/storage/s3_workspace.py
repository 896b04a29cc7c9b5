"""A tracked sweep on an ``s3://`` workspace, then everything it stored in the bucket.

With no argument it starts a local S3 server (moto's standalone server, on 127.0.0.1) with fake
credentials and a bucket, and points the workspace at it through ``MOLEXP_STORAGE_OPTIONS`` — the
documented place for storage options of programs that are only given a URL. Given a URL it uses
that bucket with your own configuration (``MOLEXP_STORAGE_OPTIONS``, the ``AWS_*`` variables or
``~/.aws``).

It imports a data set as a workspace data asset, binds a small workflow to three experiments of
a learning-rate sweep, executes one run each (logs, checkpoints, artifacts, results), then prints
the runs, a catalog query, the request counts, and the objects in the bucket.

Usage::

    python examples/storage/s3_workspace.py                    # against a local moto server
    python examples/storage/s3_workspace.py s3://my-bucket/lab # against your own endpoint

Needs ``molexp-workflow`` and ``molexp-storage-s3`` (and ``moto[server]`` for the local server):
``pip install -e packages/molexp-workspace -e packages/molexp-workflow
-e packages/molexp-storage-s3 "moto[server]"``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import molexp as me
from molexp.workflow import TaskContext, Workflow, workflow
from molexp.workspace.storage import STORAGE_OPTIONS_ENV

wf = workflow(name="fit-energies")


@wf.task
async def load(ctx: TaskContext) -> list[float]:
    """The data set, found by name and read through the store (it has no local path on S3)."""
    dataset = ctx.find_asset("energies")
    if dataset is None:
        raise LookupError("import the 'energies' data asset first")
    return [float(x) for x in dataset.read_text().split()]


@wf.task(depends_on=["load"])
def fit(ctx: TaskContext) -> dict[str, float]:
    """Gradient descent on a constant model; every helper of a tracked run writes to S3."""
    data, lr = ctx.inputs, ctx.params["lr"]
    weight, loss = 0.0, 0.0
    log = ctx.log("train")
    for epoch in range(ctx.config.get("epochs", 200)):
        gradient = sum(weight - x for x in data) / len(data)
        weight -= lr * gradient
        loss = sum((weight - x) ** 2 for x in data) / len(data)
        log.append(f"epoch={epoch} loss={loss:.6f} weight={weight:.4f}")
        if epoch % 100 == 99:
            ctx.checkpoint("model", data={"epoch": epoch, "weight": weight})
    ctx.artifact.save("fit.json", {"weight": weight, "loss": loss})
    ctx.set_result("loss", round(loss, 6))
    return {"weight": weight, "loss": loss}


spec = wf.build()


@contextlib.contextmanager
def local_s3() -> Iterator[str]:
    """A moto server on 127.0.0.1 with a bucket; the workspace URL to use on it."""
    from molexp_storage_s3.testing import MotoServer, fake_credentials

    with fake_credentials(), MotoServer() as server:
        server.create_bucket("molexp-example")
        os.environ[STORAGE_OPTIONS_ENV] = json.dumps({"s3": {"endpoint_url": server.endpoint}})
        print(f"started a local S3 server at {server.endpoint} (moto, fake credentials)")
        print(f"{STORAGE_OPTIONS_ENV}={os.environ[STORAGE_OPTIONS_ENV]}")
        yield "s3://molexp-example/lab"


async def sweep(url: str) -> int:
    os.environ.setdefault("MOLEXP_CACHE_DIR", tempfile.mkdtemp(prefix="molexp-cache-"))
    ws = me.Workspace(url, name="S3 lab")  # storage options come from the environment
    print(f"workspace {ws.url}  (backend {type(ws.storage).__name__}, id {ws.id})")

    if not ws.catalog.query_assets(kind="data", name="energies"):
        source = Path(tempfile.mkdtemp()) / "energies.txt"
        source.write_text("\n".join(str(x) for x in (1.0, 2.0, 3.0, 4.5)))
        ws.data_assets.import_asset("energies", source, action="move")  # uploaded, then removed

    project = ws.Project("qm9")
    results = []
    for params in me.GridSpace({"lr": [0.01, 0.1, 0.5]}):
        exp = project.Experiment(f"lr-{params['lr']}", params=params, workflow_source=__file__)
        spec.bind_to(exp)
        run = exp.Run(parameters=params, id=f"lr-{params['lr']}")
        result = await Workflow.for_experiment(exp).execute(
            run=run, config={"epochs": 200}, profile_name="example"
        )
        results.append((run, result))

    print("\nruns:")
    for run, result in results:
        run.reload()
        print(
            f"  {run.id:<8} {run.status.value:<10} results={run.results}  "
            f"tasks: {', '.join(f'{n} {t.state.value}' for n, t in result.tasks.items())}"
        )

    print("\ncatalog (answered from the local cache of the index, no request to the bucket):")
    for asset in ws.catalog.query_assets(kind=["artifact", "log", "checkpoint"]):
        print(
            f"  {type(asset).__name__:<16} {asset.name:<9} run={asset.producer.run_id:<8} "
            f"{asset.size or 0:>6} bytes  {asset.url}"
        )
    log = ws.catalog.query_assets(kind="log", run="lr-0.1")[0]
    print(f"\nthe log of run lr-0.1, read back from S3: {len(log.read_text().splitlines())} lines,")
    print(f"  last: {log.tail(1)[0]}")

    storage = ws.storage
    requests = getattr(storage, "requests", None)
    if requests is not None:
        print(
            f"\nHTTP requests this process sent to the endpoint: {requests.total} "
            f"({dict(requests.by_method)}); 600 logged lines cost 3 PUTs, one per run"
        )

    keys: list[str] = []
    pending = [""]
    while pending:
        current = pending.pop()
        for name in storage.list(current):
            key = f"{current}/{name}" if current else name
            (pending if storage.is_dir(key) else keys).append(key)
    journal = [k for k in keys if k.startswith(".molexp/journal/")]
    print(f"\nobjects under {ws.url} (plain JSON and files, readable with any S3 tool):")
    for key in sorted(set(keys) - set(journal)):
        print(f"  {key}")
    print(f"  .molexp/journal/...  ({len(journal)} catalog journal entries, one per registration)")
    return 0 if all(result.ok for _, result in results) else 1


def main(argv: list[str]) -> int:
    if len(argv) > 1:
        return asyncio.run(sweep(argv[1]))
    with local_s3() as url:
        return asyncio.run(sweep(url))


if __name__ == "__main__":
    sys.exit(main(sys.argv))
