"""Many real processes writing into one workspace at once lose nothing (DESIGN §3).

Local backend only: an fsspec ``memory://`` store lives inside one process, so it cannot be
shared between processes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import molexp as me
from molexp.workspace import RunStatus

N_PROCS = 4
RUNS_PER_PROC = 50
TIMEOUT = 120

# Each child prints "ready", waits for the go file (so that all of them really overlap), works,
# and prints one JSON line describing what it did.
_PRELUDE = """
import json, os, sys, time
import molexp as me
root, go, worker, n = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
print("ready", flush=True)
deadline = time.monotonic() + 60
while not os.path.exists(go):
    if time.monotonic() > deadline:
        sys.exit("no go signal")
    time.sleep(0.001)
"""

CREATE_RUNS = (
    _PRELUDE
    + """
ws = me.Workspace(root)
exp = ws.Project("Shared Project").Experiment("Shared Experiment", params={"lr": 0.1})
made = []
for i in range(n):
    run = exp.Run(parameters={"lr": 0.1, "worker": worker, "i": i})
    with run.start() as ctx:
        ctx.set_result("value", worker * 1000 + i)
        ctx.set_result("pid", os.getpid())
    made.append(run.id)
print(json.dumps({"runs": made, "ws": ws.id, "project": exp.project.id, "experiment": exp.id}))
"""
)

RACE_CREATE = (
    _PRELUDE
    + """
ws = me.Workspace(root)
seen = []
for k in range(n):
    project = ws.Project(f"Project {k}", description="raced")
    exp = project.Experiment(f"Experiment {k}", params={"k": k}, n_replicas=3)
    seen.append([project.id, exp.id, exp.params["k"]])
print(json.dumps({"ws": ws.id, "seen": seen}))
"""
)


def _run_children(script: str, root: Path, n: int) -> list[dict]:
    go = root.parent / f"go-{root.name}"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(script), str(root), str(go), str(w), str(n)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for w in range(N_PROCS)
    ]
    try:
        for proc in procs:
            assert proc.stdout is not None
            line = proc.stdout.readline().strip()
            assert line == "ready", proc.stderr.read() if proc.stderr else line
        go.touch()
        outputs = []
        for proc in procs:
            out, err = proc.communicate(timeout=TIMEOUT)
            assert proc.returncode == 0, err
            assert "CorruptRecordWarning" not in err, err
            outputs.append(json.loads(out.strip().splitlines()[-1]))
        return outputs
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def _temp_files(root: Path) -> list[str]:
    return [
        os.path.join(d, f)
        for d, _, files in os.walk(root)
        for f in files
        if f.startswith(".") and f.endswith(".tmp")
    ]


def test_many_processes_creating_runs_in_one_experiment_lose_nothing(tmp_path):
    root = tmp_path / "lab"
    start = time.monotonic()
    outputs = _run_children(CREATE_RUNS, root, RUNS_PER_PROC)
    elapsed = time.monotonic() - start

    # Every process agreed on the workspace, project and experiment.
    assert len({o["ws"] for o in outputs}) == 1
    assert {(o["project"], o["experiment"]) for o in outputs} == {
        ("shared-project", "shared-experiment")
    }

    ws = me.Workspace.load(root)
    assert ws.id == outputs[0]["ws"]
    exp = ws.project("shared-project").experiment("shared-experiment")
    runs = exp.list_runs()
    assert len(runs) == N_PROCS * RUNS_PER_PROC, elapsed
    assert sorted(r.id for r in runs) == sorted(i for o in outputs for i in o["runs"])
    assert len(exp.list_runs(status="succeeded")) == N_PROCS * RUNS_PER_PROC
    seen = set()
    for run in runs:
        worker, i = run.parameters["worker"], run.parameters["i"]
        seen.add((worker, i))
        assert run.status == RunStatus.SUCCEEDED
        assert run.results["value"] == worker * 1000 + i
        assert [r.status for r in run.metadata.execution_history] == [RunStatus.SUCCEEDED]
        assert run.metadata.execution_history[0].pid == run.results["pid"]
        assert run.metadata.owner is None
    assert seen == {(w, i) for w in range(N_PROCS) for i in range(RUNS_PER_PROC)}

    # On disk: one run directory per run, each with a readable run.json, and no temp files.
    runs_dir = root / "projects" / "shared-project" / "experiments" / "shared-experiment" / "runs"
    run_dirs = sorted(runs_dir.iterdir())
    assert len(run_dirs) == N_PROCS * RUNS_PER_PROC
    for d in run_dirs:
        record = json.loads((d / "run.json").read_text())
        assert record["status"] == "succeeded" and d.name == f"run-{record['id']}"
    assert sorted(p.name for p in (root / "projects").iterdir()) == ["shared-project"]
    assert _temp_files(root) == []


def test_processes_racing_to_create_the_same_projects_and_experiments_agree(tmp_path):
    root = tmp_path / "lab"
    n = 15
    outputs = _run_children(RACE_CREATE, root, n)

    expected = [[f"project-{k}", f"experiment-{k}", k] for k in range(n)]
    assert [o["seen"] for o in outputs] == [expected] * N_PROCS
    assert len({o["ws"] for o in outputs}) == 1

    ws = me.Workspace.load(root)
    assert ws.id == outputs[0]["ws"]
    assert json.loads((root / "workspace.json").read_text())["id"] == ws.id
    assert sorted(p.name for p in root.iterdir()) == ["projects", "workspace.json"]
    projects = ws.list_projects()
    assert sorted(p.id for p in projects) == sorted(f"project-{k}" for k in range(n))
    for project in projects:
        k = int(project.id.rsplit("-", 1)[1])
        assert project.name == f"Project {k}" and project.description == "raced"
        assert sorted(os.listdir(root / "projects" / project.id)) == ["experiments", "project.json"]
        (exp,) = project.list_experiments()
        assert (exp.id, exp.name, exp.params, exp.n_replicas) == (
            f"experiment-{k}",
            f"Experiment {k}",
            {"k": k},
            3,
        )
        assert os.listdir(root / "projects" / project.id / "experiments" / exp.id) == [
            "experiment.json"
        ]
    assert _temp_files(root) == []
