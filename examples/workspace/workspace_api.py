"""Walk the workspace hierarchy: Workspace -> Project -> Experiment -> Run, and read it back.

Usage::

    python examples/workspace/workspace_api.py          # in a fresh temporary directory
    python examples/workspace/workspace_api.py ./lab    # in ./lab (re-running it adds attempts)

Needs only ``molexp-workspace`` (``pip install -e packages/molexp-workspace``).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import molexp as me


def heading(text: str) -> None:
    print(f"\n== {text} " + "=" * max(0, 72 - len(text)))


def fake_training(lr: float, seed: int) -> float:
    """Stands in for real work: a deterministic 'final loss' for these inputs."""
    return round(0.5 * lr * 1000 / (1 + seed % 7), 6)


def main(argv: list[str]) -> int:
    root = Path(argv[1]) if len(argv) > 1 else Path(tempfile.mkdtemp(prefix="molexp-example-"))
    print(f"workspace root: {root.resolve()}")

    # -- 1. A workspace is lazy: constructing one writes nothing ---------------------------------
    heading("1. Workspace(root, name=...) is lazy")
    ws = me.Workspace(root, name="Lab")
    print(f"ws = {ws!r}")
    print(
        f"workspace.json exists? {(root / 'workspace.json').exists()}  "
        f"(ws.is_materialized = {ws.is_materialized})"
    )
    if ws.is_materialized:
        print("(this root already held a workspace: it was opened; runs below get new attempts)")

    # -- 2. The first project materializes it ----------------------------------------------------
    heading("2. ws.Project('QM9') creates the project, and the workspace with it")
    project = ws.Project("QM9", description="Small-molecule property prediction", tags=["qm9"])
    print(f"project = {project!r}  (id is the slug of the name)")
    print(f"workspace.json exists? {(root / 'workspace.json').exists()}")
    print(f"project.project_dir = {Path(project.project_dir).relative_to(root.resolve())}")
    print(f"ws.id = {ws.id!r}, ws.name = {ws.name!r}")

    # -- 3. Factories are get-or-create, and return the same object in-process ------------------
    heading("3. Factory idempotence")
    print(f"ws.Project('QM9') is ws.Project('QM9')  -> {ws.Project('QM9') is ws.Project('QM9')}")
    print(f"ws.project('qm9') is project             -> {ws.project('qm9') is project}")

    # -- 4. An experiment: one repeatable definition -------------------------------------------
    heading("4. An experiment with params and replicas")
    exp = project.Experiment(
        "Baseline",
        params={"lr": 1e-3, "hidden": 128},
        n_replicas=3,
        workflow_source="train.py",
    )
    print(f"exp = {exp!r}")
    print(f"exp.params is exp.parameter_space -> {exp.params is exp.parameter_space}")
    print(
        f"exp.n_replicas = {exp.n_replicas}, exp.get_seeds() = {exp.get_seeds()}  "
        "(the deterministic default sequence)"
    )
    print(f"project.Experiment('Baseline') is exp -> {project.Experiment('Baseline') is exp}")

    # -- 5. Runs: one per seed, with explicit (stable) ids ---------------------------------------
    heading("5. Runs with explicit ids, executed under run.start(...)")
    profile = {"device": "cpu", "threads": 2}
    runs = []
    for seed in exp.get_seeds():
        run = exp.Run(parameters={**exp.params, "seed": seed}, id=f"baseline-seed-{seed}")
        runs.append(run)
        with run.start(profile_config=profile, profile_name="local") as ctx:
            loss = fake_training(ctx.params["lr"], ctx.params["seed"])
            ctx.set_result("final_loss", loss)
            ctx.set_result("epochs", 10)
            ctx.log("train").append(f"epoch=10 loss={loss}")
            ctx.artifact.save("metrics.json", {"final_loss": loss, "seed": seed})
        print(f"run {run.id:<24} status={run.status.value:<9} results={run.results}")
    run = runs[-1]
    print(f"same id, same object: exp.Run(id={run.id!r}) is run -> {exp.Run(id=run.id) is run}")
    print(
        f"artifacts of the last run: {[a.name for a in run.assets.list(kind='artifact')]}, "
        f"logs: {[a.name for a in run.assets.list(kind='log')]}"
    )
    print(
        f"profile recorded on the run: name={run.metadata.profile_name!r} "
        f"config={run.metadata.config} config_hash={run.metadata.config_hash!r}"
    )

    # -- 6. A run that fails ---------------------------------------------------------------------
    heading("6. A run that fails")
    bad = exp.Run(parameters={**exp.params, "lr": 10.0}, id="baseline-diverges")
    try:
        with bad.start(profile_config=profile, profile_name="local") as ctx:
            ctx.set_result("loss_at_step_1", 3.2)
            raise FloatingPointError("loss is NaN at step 2")
    except FloatingPointError as exc:
        print(f"the exception still propagates to the caller: {exc!r}")
    print(f"bad.status = {bad.status.value}")
    assert bad.error is not None
    print(f"bad.error  = type={bad.error.type!r} message={bad.error.message!r}")
    error_txt = Path(bad.run_dir) / str(bad.error.traceback_path)
    print(f"traceback in {error_txt.relative_to(root.resolve())}:")
    print("    " + error_txt.read_text().strip().splitlines()[-1])
    print(f"results set before the failure are kept: {bad.results}")

    # -- 7. Listing runs -----------------------------------------------------------------------
    heading("7. exp.list_runs()")
    for run in exp.list_runs():
        attempts = len(run.metadata.execution_history)
        print(f"  {run.id:<24} {run.status.value:<9} attempts={attempts} params={run.parameters}")
    print(f"failed only: {[r.id for r in exp.list_runs(status='failed')]}")
    seed = exp.get_seeds()[0]
    print(f"found by parameter: {[r.id for r in exp.find_runs({'seed': seed, 'lr': 0.001})]}")

    # -- 8. A parameter sweep makes one experiment per point -----------------------------------
    heading("8. GridSpace sweep -> one experiment per point")
    grid = me.GridSpace({"lr": [1e-3, 1e-4], "batch": [32, 64]})
    print(f"grid = {grid!r}")
    for params in grid:
        sweep_exp = project.Experiment(
            f"lr-{params['lr']}-batch-{params['batch']}", params=params, workflow_source="train.py"
        )
        print(f"  {sweep_exp.id:<22} params={sweep_exp.params}")
    print(f"experiments in {project.id!r}: {[e.id for e in project.list_experiments()]}")

    # -- 9. Reopen from disk -------------------------------------------------------------------
    heading("9. me.Workspace.load(root): the same data, read back from disk")
    ws2 = me.Workspace.load(root)
    print(f"ws2 = {ws2!r}  (a new object: ws2 is ws -> {ws2 is ws}; same id -> {ws2.id == ws.id})")
    p2 = ws2.project("QM9")
    print(f"projects: {[p.id for p in ws2.list_projects()]}, description={p2.description!r}")
    e2 = p2.experiment("baseline")
    print(
        f"experiment {e2.id!r}: params={e2.params} n_replicas={e2.n_replicas} "
        f"seeds={e2.get_seeds()}"
    )
    for run in e2.list_runs():
        print(f"  {run.id:<24} {run.status.value:<9} results={run.results}")
    assert [r.results for r in e2.list_runs()] == [r.results for r in exp.list_runs()]
    print("results read back == results written: True")

    # -- 10. On disk ---------------------------------------------------------------------------
    heading("10. The on-disk tree")
    resolved = root.resolve()
    for path in sorted(resolved.rglob("*")):
        rel = path.relative_to(resolved)
        suffix = "/" if path.is_dir() else ""
        print(f"  {'  ' * (len(rel.parts) - 1)}{rel.name}{suffix}")

    first = exp.list_runs()[0]
    heading("11. One run.json")
    print(f"{Path(first.run_dir).relative_to(resolved)}/run.json:")
    print((Path(first.run_dir) / "run.json").read_text().rstrip())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
