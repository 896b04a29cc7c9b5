"""Drive experiments from the command line: `molexp run` with profiles from molcfg.yaml.

This script only *declares*: a workflow, a small learning-rate sweep (one experiment per rate,
two replicas each) bound to that workflow, and ``me.entry(ws)`` so that the CLI can find them.
Importing it executes nothing. The ``molexp`` command does the rest::

    molexp run examples/getting_started/04_cli_and_profiles/train.py --profile smoke
    molexp run examples/getting_started/04_cli_and_profiles/train.py --profile smoke   # all skipped
    molexp run examples/getting_started/04_cli_and_profiles/train.py --profile smoke \\
        -o train.epochs=5                                                     # new runs
    molexp runs list --sort results.final_loss
    molexp ls

Each run gets the profile's merged config (``ctx.config``) and its own parameters
(``ctx.params``: the experiment's ``lr`` plus ``seed`` and ``replica``). The workspace is
``./lab`` in the directory you run from (``MOLEXP_EXAMPLE_LAB`` to put it elsewhere).

Needs ``molexp-cli``: ``pip install -e packages/molexp-workspace -e packages/molexp-workflow
-e packages/molexp-cli``.
"""

from __future__ import annotations

import os
import random

import molexp as me
from molexp.workflow import TaskContext, workflow

wf = workflow(name="toy-regression")


@wf.task
def make_data(ctx: TaskContext) -> list[list[float]]:
    """A noisy line y = 3x + 1, as large as the profile says (seeded by the replica's seed)."""
    data = ctx.config["data"]
    rng = random.Random(ctx.params["seed"])
    points = []
    for _ in range(data["n_points"]):
        x = rng.uniform(-1, 1)
        points.append([x, 3 * x + 1 + rng.gauss(0, data["noise"])])
    return points


@wf.task(depends_on=["make_data"])
def fit(ctx: TaskContext) -> dict[str, float]:
    """Gradient descent on (w, b): the learning rate is the experiment's, the epochs the
    profile's."""
    points, lr = ctx.inputs, ctx.params["lr"]
    w = b = 0.0
    log = ctx.log("train")
    for epoch in range(ctx.config["train"]["epochs"]):
        grad_w = sum(2 * (w * x + b - y) * x for x, y in points) / len(points)
        grad_b = sum(2 * (w * x + b - y) for x, y in points) / len(points)
        w, b = w - lr * grad_w, b - lr * grad_b
        loss = sum((w * x + b - y) ** 2 for x, y in points) / len(points)
        log.append(f"epoch={epoch} loss={loss:.5f} w={w:.3f} b={b:.3f}")
    ctx.set_result("final_loss", round(loss, 6))
    ctx.artifact.save("model.json", {"w": w, "b": b})
    return {"w": w, "b": b, "loss": loss}


@wf.task(depends_on=["fit"])
def report(ctx: TaskContext) -> str:
    verdict = "good fit" if ctx.inputs["loss"] < ctx.config["report"]["good_loss"] else "underfit"
    ctx.set_result("verdict", verdict)
    return verdict


spec = wf.build()

ws = me.Workspace(os.environ.get("MOLEXP_EXAMPLE_LAB", "./lab"), name="CLI example")
project = ws.Project("toy-regression")
for params in me.GridSpace({"lr": [0.05, 0.2, 0.5]}):
    experiment = project.Experiment(f"lr-{params['lr']}", params=params, n_replicas=2)
    spec.bind_to(experiment)

me.entry(ws)

if __name__ == "__main__":
    # `molexp run` imports this file as a module, so this block only runs with `python train.py`.
    print("Declare-only script: run it with\n")
    print(f"    molexp run {__file__} --profile smoke\n")
