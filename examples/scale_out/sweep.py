"""A parameter sweep that runs unchanged on this machine, on a Dask cluster or through Slurm.

The script only *declares* (a workflow, one experiment per grid point, three replicas each, and
``me.entry(ws)``); where the runs execute is chosen on the command line::

    molexp run examples/scale_out/sweep.py                                  # here, one by one
    molexp run examples/scale_out/sweep.py --jobs 4                         # here, 4 processes
    molexp run examples/scale_out/sweep.py --executor dask --jobs 2         # a LocalCluster
    molexp run examples/scale_out/sweep.py --executor dask --address tcp://HOST:8786
    molexp run examples/scale_out/sweep.py --executor slurm --array --jobs 4 --wait

The run ids do not depend on the executor: a run that succeeded on one is skipped on another,
and ``--resume`` continues failed runs wherever they execute next. ``molcfg.yaml`` beside this
file holds the Slurm and Dask settings (partition, time limit, extra ``#SBATCH`` lines).

Each run estimates pi by Monte Carlo (``ctx.config["mc"]["samples"]`` points, seeded by the
replica's seed), logs its progress, saves an artifact and sets results. The workspace is
``./lab`` (or ``MOLEXP_EXAMPLE_LAB``, which may be an ``s3://`` URL: every worker then reaches it
over the network, with the endpoint from ``MOLEXP_STORAGE_OPTIONS``).
"""

from __future__ import annotations

import math
import os
import random
import socket
import time

import molexp as me
from molexp.workflow import TaskContext, workflow

wf = workflow(name="monte-carlo-pi")


@wf.task
def sample(ctx: TaskContext) -> dict[str, int]:
    """Throw ``samples`` points into the unit square; count those inside the quarter circle."""
    mc = ctx.config.get("mc", {})
    samples = int(mc.get("samples", 20_000)) * int(ctx.params["scale"])
    rng = random.Random(ctx.params["seed"])
    inside = sum(1 for _ in range(samples) if rng.random() ** 2 + rng.random() ** 2 <= 1.0)
    time.sleep(float(mc.get("sleep", 0.0)))  # stands in for real work (benchmarks use it)
    ctx.log("progress").append(f"{samples} samples, {inside} inside, on {socket.gethostname()}")
    return {"samples": samples, "inside": inside}


@wf.task(depends_on=["sample"])
def estimate(ctx: TaskContext) -> float:
    """Pi from the counts, with its standard error; saved as results and as an artifact."""
    counts = ctx.inputs
    p = counts["inside"] / counts["samples"]
    pi = 4 * p
    error = 4 * math.sqrt(p * (1 - p) / counts["samples"])
    ctx.set_result("pi", round(pi, 6))
    ctx.set_result("stderr", round(error, 6))
    ctx.artifact.save("estimate.json", {"pi": pi, "stderr": error, **counts})
    return pi


spec = wf.build()

ws = me.Workspace(os.environ.get("MOLEXP_EXAMPLE_LAB", "./lab"), name="Scale-out example")
project = ws.Project("monte-carlo")
for params in me.GridSpace({"scale": [1, 2, 4]}):
    experiment = project.Experiment(f"scale-{params['scale']}", params=params, n_replicas=3)
    spec.bind_to(experiment)

me.entry(ws)

if __name__ == "__main__":
    print("Declare-only script: run it with\n")
    print(f"    molexp run {__file__} [--executor local|dask|slurm]\n")
