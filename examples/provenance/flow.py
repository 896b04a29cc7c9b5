"""The workflow of the provenance example: featurize a data set, then fit a one-weight model.

``walkthrough.py`` copies this file into a fresh git repository, executes it once, changes
``SHRINK`` (a module constant a task reads: the task code hash, the source hash and the git diff
all tell the two versions apart) and executes it again. Run by hand it executes one
run::

    python flow.py LAB RUN_ID [LR]
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import molexp as me
from molexp.workflow import TaskContext, workflow

SHRINK = 1.0
"""How strongly the fitted weight is pulled towards zero (the example edits this line)."""

wf = workflow(name="fit-weight")


@wf.task
def featurize(ctx: TaskContext) -> list[float]:
    """Read the data set found by name (recorded as this task's input) and save the features."""
    dataset = ctx.find_asset("measurements")
    if dataset is None:
        raise LookupError("import the 'measurements' data asset first")
    values = [float(line) for line in dataset.read_text().split()]
    ctx.artifact.save("features.json", {"values": values})
    return values


@wf.task(depends_on=["featurize"])
def fit(ctx: TaskContext) -> float:
    """Fit the weight; the model and its metrics record features.json as their input."""
    ctx.get_data_dir("features.json")
    values = ctx.inputs
    weight = sum(values) / len(values) / (1.0 + SHRINK * ctx.params["lr"])
    ctx.set_result("weight", round(weight, 6))
    ctx.artifact.save("metrics.json", {"weight": round(weight, 6)})
    ctx.checkpoint("model", data={"weight": weight})
    return weight


spec = wf.build()


def execute(lab: Path, run_id: str, lr: float) -> me.Run:
    """Execute one run of demo/fit with learning rate ``lr``."""
    ws = me.Workspace(lab, name="Provenance example")
    if not ws.catalog.query_assets(name="measurements"):
        data = lab.parent / "measurements.txt"
        data.write_text("1.0\n2.0\n4.0\n")
        ws.data_assets.import_asset("measurements", data)
    exp = ws.Project("demo").Experiment("fit", workflow_source=__file__)
    run = exp.Run(parameters={"lr": lr}, id=run_id)
    asyncio.run(spec.execute(run=run, config={"epochs": 1}, profile_name="example"))
    return run


if __name__ == "__main__":
    lab, run_id = Path(sys.argv[1]), sys.argv[2]
    lr = float(sys.argv[3]) if len(sys.argv) > 3 else 0.1
    run = execute(lab, run_id, lr)
    print(f"{run_id}: {run.status.value}, weight {run.results.get('weight')}")
