"""The unified asset model: import data, produce assets in a tracked run, query the catalog.

1. imports a small dataset into the workspace's data-asset library;
2. executes a tracked run whose first attempt finds the dataset by name, logs, checkpoints and
   then fails (leaving an error trace), and whose second attempt continues the checkpoint chain
   and saves its artifacts;
3. asks the workspace catalog questions across scopes and prints the answers.

Usage::

    python examples/workspace/assets.py          # in a fresh temporary directory
    python examples/workspace/assets.py ./lab    # in ./lab (running it again adds another run)

Needs only ``molexp-workspace`` (``pip install -e packages/molexp-workspace``).
"""

from __future__ import annotations

import csv
import sys
import tempfile
from pathlib import Path

import molexp as me
from molexp.workspace import CheckpointAsset, ErrorTraceAsset, NotFoundError


def heading(text: str) -> None:
    print(f"\n== {text} " + "=" * max(0, 72 - len(text)))


def make_dataset(folder: Path) -> Path:
    """A tiny stand-in for an external dataset: a CSV of molecules and a target value."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "qm9-sample.csv"
    rows = [("C", 0.504), ("CC", 0.419), ("CCO", 0.387), ("C=O", 0.281), ("CN", 0.370)]
    with path.open("w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(["smiles", "gap"])
        writer.writerows(rows)
    return path


def train(ctx: me.RunContext, *, fail_at_epoch: int | None) -> None:
    """A stand-in training loop that uses the run-time asset accessors."""
    with ctx.task_scope("train"):
        dataset = ctx.find_asset("qm9-sample")  # run -> experiment -> project -> workspace
        assert dataset is not None, "import the dataset first"
        data_dir = ctx.get_data_dir("qm9-sample")  # a real local directory holding the payload
        with (data_dir / "qm9-sample.csv").open() as stream:
            gaps = [float(row["gap"]) for row in csv.DictReader(stream)]
        log = ctx.log("train")
        log.append(f"dataset {dataset.name} ({dataset.id}): {len(gaps)} molecules from {data_dir}")

        # Resume from the newest checkpoint of this run, whatever attempt wrote it.
        done = ctx.run.assets.list(kind="checkpoint")
        start = done[-1].load()["epoch"] if done else 0
        log.append(f"attempt {ctx.execution_id}: starting after epoch {start}")
        estimate = sum(gaps) / len(gaps)
        for epoch in range(start + 1, 5):
            loss = round(abs(estimate - 0.4) / epoch, 5)
            log.append(f"epoch={epoch} loss={loss}")
            ctx.checkpoint("model", data={"epoch": epoch, "estimate": estimate, "loss": loss})
            if epoch == fail_at_epoch:
                raise RuntimeError(f"simulated preemption after epoch {epoch}")
        ctx.artifact.save("metrics.json", {"loss": loss, "epochs": 4}, tags=["final"])
        ctx.artifact.save("predictions.csv", "".join(f"{g},{estimate:.4f}\n" for g in gaps))
    ctx.set_result("loss", loss)


def main(argv: list[str]) -> int:
    root = Path(argv[1]) if len(argv) > 1 else Path(tempfile.mkdtemp(prefix="molexp-assets-"))
    print(f"workspace root: {root.resolve()}")
    ws = me.Workspace(root, name="Lab")

    # -- 1. External data enters through a data-asset library --------------------------------
    heading("1. ws.data_assets.import_asset(...) at workspace scope")
    try:
        dataset = ws.data_assets.get("qm9-sample")
        print(f"already imported: {dataset!r}")
    except NotFoundError:
        with tempfile.TemporaryDirectory(prefix="molexp-external-") as external:
            source = make_dataset(Path(external))
            dataset = ws.data_assets.import_asset(
                "qm9-sample", source, action="copy", meta={"license": "CC0"}, tags=["raw"]
            )
            print(f"imported {source} (copy; the source is kept: {source.exists()})")
    print(f"  {dataset!r}")
    print(f"  payload: {Path(dataset.path).relative_to(root.resolve())}")
    print(f"  size={dataset.size} bytes  hash={dataset.content_hash[:23]}...  meta={dataset.meta}")

    project = ws.Project("QM9")
    exp = project.Experiment("baseline", params={"lr": 1e-3})
    run = exp.Run(parameters={"lr": 1e-3, "seed": 0})

    # -- 2. A tracked run: the first attempt fails, the second resumes --------------------------
    heading(f"2. Run {run.id!r}: attempt 1 fails after epoch 2, attempt 2 resumes")
    try:
        with run.start() as ctx:
            train(ctx, fail_at_epoch=2)
    except RuntimeError as exc:
        print(f"attempt 1: {run.status.value} ({exc})")
    with run.start() as ctx:
        train(ctx, fail_at_epoch=None)
    print(f"attempt 2: {run.status.value}, results={run.results}")

    # -- 3. The catalog answers questions across scopes --------------------------------------
    catalog = ws.catalog
    heading("3. Everything this run produced: query_assets(producer_run=run)")
    for asset in catalog.query_assets(producer_run=run):
        task = asset.producer.task if asset.producer else None
        print(f"  {asset.kind.value:<16}{asset.name:<18}size={asset.size!s:<6}task={task}")

    heading("4. All failed-attempt stack traces in the experiment, in one call")
    for trace in catalog.query_assets(kind="error_trace", experiment=exp):
        assert isinstance(trace, ErrorTraceAsset)
        last_line = trace.traceback.strip().splitlines()[-1]
        print(f"  run {trace.producer.run_id} attempt {trace.producer.execution_id}: {last_line}")

    heading("5. The checkpoint chain, across both attempts")
    (latest,) = catalog.query_assets(
        kind="checkpoint", producer_run=run, newest_first=True, limit=1
    )
    assert isinstance(latest, CheckpointAsset)
    for ckpt in latest.chain():
        print(
            f"  step {ckpt.step}  epoch={ckpt.load()['epoch']}  "
            f"attempt={ckpt.producer.execution_id}  previous={ckpt.record.previous}"
        )

    heading("6. The log, read back")
    log = run.assets.get("train", kind="log")
    print(f"  {len(log.lines())} lines; the last three:")
    for line in log.tail(3):
        print(f"    {line}")

    heading("7. Lineage: what metrics.json was made from")
    metrics = run.assets.get("metrics.json")
    print(f"  metrics.json = {metrics.load()}")
    for source in catalog.lineage(metrics):
        print(f"  made from: {source!r}")
    derived = catalog.lineage(dataset, direction="down")
    print(f"  made from the dataset: {sorted(a.name for a in derived)}")

    heading("8. Scoped views and other filters")
    for label, view in [("ws", ws), ("project", project), ("exp", exp), ("run", run)]:
        print(f"  {label + '.assets':<16}{len(view.assets):>3} assets")
    print(f"  tagged 'final':   {[a.name for a in catalog.query_assets(tags='final')]}")
    print(f"  workspace scope:  {[a.name for a in catalog.query_assets(scope='workspace')]}")

    heading("9. The catalog is derived: rebuild it from the records")
    print(f"  index file: {catalog.location}")
    print(f"  rebuilt from the records beside the payloads: {catalog.rebuild()} assets")
    fresh = me.Workspace(root)
    print(f"  a fresh Workspace object sees {len(fresh.assets)} assets")

    heading("10. The run directory on disk")
    run_dir = Path(run.run_dir)
    for path in sorted(run_dir.rglob("*")):
        rel = path.relative_to(run_dir)
        print(f"  {'  ' * (len(rel.parts) - 1)}{rel.name}{'/' if path.is_dir() else ''}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
