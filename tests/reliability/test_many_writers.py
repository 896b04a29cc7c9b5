"""8 processes creating runs in one experiment and registering an asset per run, all at once
(DESIGN §3 "no shared index that every writer rewrites", issue 8).

Each process creates its runs, executes each (start, ``set_result``, finish) and saves one
artifact per run, which registers it in the shared catalog index. Afterwards every run is listed,
succeeded and carries its result, every artifact is in the catalog with its value, the catalog
equals a rebuild from the records, and no JSON file is torn.

It runs the full 8 x 1,000 = 8,000 runs (about a minute on 2 cores);
``MOLEXP_RELIABILITY_RUNS=N`` changes the runs per process.
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
from molexp.workspace import AssetKind, RunStatus

PROCESSES = 8

WRITER = textwrap.dedent(
    """
    import json, os, sys, time
    import molexp as me

    root, go, worker, n = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    ws = me.Workspace(root)
    exp = ws.Project("shared").Experiment("many", params={"w": -1, "i": -1})
    print("ready", flush=True)
    deadline = time.monotonic() + 120
    while not os.path.exists(go):
        if time.monotonic() > deadline:
            sys.exit("no go signal")
        time.sleep(0.005)
    made = []
    for i in range(n):
        run = exp.Run(parameters={"w": worker, "i": i})
        with run.start() as ctx:
            ctx.set_result("value", worker * 100_000 + i)
            ctx.artifact.save("out.json", {"w": worker, "i": i})
        made.append(run.id)
    print(json.dumps(made), flush=True)
    """
)


def test_8_processes_create_runs_and_register_assets_at_once(tmp_path: Path, many_runs: int):
    root = tmp_path / "lab"
    me.Workspace(root).Project("shared").Experiment("many", params={"w": -1, "i": -1})
    go = tmp_path / "go"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(root), str(go), str(w), str(many_runs)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for w in range(PROCESSES)
    ]
    try:
        for proc in procs:
            assert proc.stdout is not None
            line = proc.stdout.readline().strip()
            assert line == "ready", proc.stderr.read() if proc.stderr else line
        started = time.monotonic()
        go.touch()
        made: dict[int, list[str]] = {}
        for w, proc in enumerate(procs):
            out, err = proc.communicate(timeout=60 + many_runs * 2)
            assert proc.returncode == 0, err
            assert "Warning" not in err, err
            made[w] = json.loads(out.strip().splitlines()[-1])
        elapsed = time.monotonic() - started
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()

    total = PROCESSES * many_runs
    checking = time.monotonic()
    ws = me.Workspace.load(root)
    exp = ws.project("shared").experiment("many")
    runs = exp.list_runs()
    assert len(runs) == total
    assert sorted(r.id for r in runs) == sorted(i for ids in made.values() for i in ids)
    expected = {(w, i) for w in range(PROCESSES) for i in range(many_runs)}
    assert {(r.parameters["w"], r.parameters["i"]) for r in runs} == expected
    by_id = {r.id: r for r in runs}
    for run in runs:
        assert run.status == RunStatus.SUCCEEDED
        assert run.results == {"value": run.parameters["w"] * 100_000 + run.parameters["i"]}
        assert run.metadata.owner is None

    artifacts = ws.catalog.query_assets(kind=AssetKind.ARTIFACT, experiment=exp)
    assert len(artifacts) == total
    producers = [a.producer.run_id for a in artifacts if a.producer is not None]
    assert sorted(producers) == sorted(by_id)
    for asset in artifacts:
        run = by_id[asset.scope.run_id or ""]
        assert asset.load() == run.parameters
    assert ws.catalog.query_assets(kind=AssetKind.ARTIFACT, producer_run=runs[0]) == [
        a for a in artifacts if a.scope.run_id == runs[0].id
    ]
    pending = ws.catalog.index.db.execute("SELECT count(*) FROM assets WHERE committed = 0")
    assert pending.fetchone() == (0,)
    assert ws.catalog.rebuild() == total

    torn, temp = [], []
    for dirpath, _, files in os.walk(root):
        for name in files:
            path = Path(dirpath, name)
            if name.startswith(".") and name.endswith(".tmp"):
                temp.append(path)
            elif name.endswith(".json"):
                try:
                    json.loads(path.read_bytes())
                except ValueError:
                    torn.append(path)
    assert (torn, temp) == ([], [])
    print(
        f"\n{PROCESSES} processes x {many_runs} runs = {total} runs with an artifact each: "
        f"{elapsed:.1f} s to write ({total / elapsed:.0f} runs/s), "
        f"{time.monotonic() - checking:.1f} s to check"
    )
