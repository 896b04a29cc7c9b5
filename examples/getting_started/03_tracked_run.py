"""A tracked run: the same kind of workflow, executed under a Run, leaves a durable record.

It imports a data set as a workspace data asset, binds a workflow to an experiment, executes one
run (results, artifacts, a log and checkpoints saved through the task context), then prints the
run's on-disk layout and the fields saved in its ``run.json``. Executing the same run again
resumes it: the tasks that already succeeded are reused, not run again.

Usage::

    python examples/getting_started/03_tracked_run.py          # in a fresh temporary directory
    python examples/getting_started/03_tracked_run.py ./lab    # workspace ./lab (again: resumes)

Needs ``molexp-workflow``: ``pip install -e packages/molexp-workspace -e packages/molexp-workflow``.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
from pathlib import Path

import molexp as me
from molexp.workflow import TaskContext, Workflow, workflow

wf = workflow(name="train-demo")


@wf.task
async def fetch(ctx: TaskContext) -> list[float]:
    """Find the training data by name: run → experiment → project → workspace."""
    dataset = ctx.find_asset("training-data")
    if dataset is None or dataset.path is None:
        raise LookupError("import the 'training-data' asset first")
    return [float(line) for line in dataset.path.read_text().split()]


@wf.task(depends_on=["fetch"])
def train(ctx: TaskContext) -> dict[str, float]:
    """A plain function (it runs in a worker thread), using every helper of a tracked run."""
    data, lr = ctx.inputs, ctx.params["lr"]
    weight = 0.0
    for epoch in range(ctx.config.get("epochs", 3)):
        gradient = sum(weight - x for x in data) / len(data)
        weight -= lr * 100 * gradient
        loss = sum((weight - x) ** 2 for x in data) / len(data)
        ctx.log("train").append(f"epoch={epoch} loss={loss:.4f}")
        ctx.checkpoint("model", data={"epoch": epoch, "weight": weight})
    ctx.set_result("final_loss", round(loss, 6))
    ctx.artifact.save("metrics.json", {"loss": loss, "weight": weight})
    return {"loss": loss, "weight": weight}


@wf.task(depends_on=["train"])
async def evaluate(ctx: TaskContext) -> str:
    verdict = "converging" if ctx.inputs["loss"] < 10 else "diverging"
    ctx.set_result("verdict", verdict)
    return verdict


spec = wf.build()


def tree(root: Path) -> None:
    for path in sorted(root.rglob("*")):
        depth = len(path.relative_to(root).parts) - 1
        print(f"  {'    ' * depth}{path.name}{'/' if path.is_dir() else ''}")


async def main(argv: list[str]) -> int:
    root = Path(argv[1]) if len(argv) > 1 else Path(tempfile.mkdtemp(prefix="molexp-example-"))
    ws = me.Workspace(root)
    print(f"workspace: {ws.root}")

    if ws.catalog.query_assets(kind="data", name="training-data") == []:
        source = Path(tempfile.mkdtemp()) / "energies.txt"
        source.write_text("\n".join(str(x) for x in (1.0, 2.0, 3.0, 4.0)))
        ws.data_assets.import_asset("training-data", source, action="move")

    project = ws.Project("qm9")
    exp = project.Experiment("baseline", params={"lr": 1e-3}, workflow_source=__file__)
    spec.bind_to(exp)  # CLI and server code find it again with Workflow.for_experiment(exp)

    run = exp.Run(parameters={"lr": 1e-3}, id="baseline-defaults")
    result = await Workflow.for_experiment(exp).execute(
        run=run, config={"epochs": 3}, profile_name="local"
    )
    print(f"\nstatus: {result.status.value}; tasks: ", end="")
    print(", ".join(f"{name} {task.state.value}" for name, task in result.tasks.items()))
    print(f"outputs: {result.outputs}")

    print(f"\non disk, {Path(run.run_dir).relative_to(ws.root)}/:")
    tree(Path(run.run_dir))

    saved = json.loads((Path(run.run_dir) / "run.json").read_text())
    print("\nrun.json:")
    for field in ("id", "status", "parameters", "profile_name", "config", "config_hash", "results"):
        print(f"  {field:<18} {json.dumps(saved[field])}")
    snapshot = json.dumps(saved["workflow_snapshot"], indent=2).replace("\n", "\n" + " " * 21)
    print(f"  {'workflow_snapshot':<18} {snapshot}")
    print("  execution_history:")
    for record in saved["execution_history"]:
        print(f"    {record['execution_id']}  {record['status']}  pid {record['pid']}")

    print("\nassets the run produced (from the catalog):")
    for asset in ws.catalog.query_assets(producer_run=run):
        print(f"  {type(asset).__name__:<20} {asset.name:<18} task={asset.producer.task}")
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv)))
