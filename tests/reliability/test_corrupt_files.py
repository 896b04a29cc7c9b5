"""Every entity file of a workspace truncated or corrupted in turn (DESIGN §7, issue 8).

A workspace with every kind of file is built once; each test copies it, damages one file
(truncated to half, overwritten with garbage, or emptied) and then uses the whole workspace, as a
fresh process would:

* the damaged entity is a clear error (or, in a listing, a warning) that names the file;
* everything else still lists, opens, executes and is found by catalog queries; a run can be
  created and executed next to the damage;
* the damaged file is left as it was (never silently overwritten), except the catalog index,
  which is derived from the records and is replaced by a rebuilt one, with a warning naming it.

The existing packages/molexp-workspace/tests/test_bad_input.py checks more kinds of damage
(wrong shapes, newer schema versions) for the hierarchy records with byte-exact snapshots; this
file covers every file the workspace writes, with the real ``molexp`` command for some.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

import molexp as me
from molexp.workflow import TaskContext, Workflow, WorkflowError, workflow
from molexp.workspace import CorruptRecordError, CorruptRecordWarning, RunStatus, load_environment

EXP_KEY = "projects/p/experiments/e"
R1 = f"{EXP_KEY}/runs/run-r1"


def _tracked() -> Workflow:
    wf = workflow(name="tracked")

    @wf.task
    def prepare(ctx: TaskContext) -> int:
        return 3

    @wf.task(depends_on=["prepare"])
    def fit(ctx: TaskContext) -> int:
        ctx.artifact.save("fit.json", {"n": ctx.inputs})
        return ctx.inputs * 2

    return wf.build()


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A workspace with every kind of file, and where its files are (by role)."""
    base = tmp_path_factory.mktemp("corrupt-template")
    root = base / "lab"
    src = base / "src"
    src.mkdir()
    (src / "ws.csv").write_text("a,b\n1,2\n")
    (src / "exp.csv").write_text("c\n3\n")
    ws = me.Workspace(root, name="Lab")
    p = ws.Project("P")
    e = p.Experiment("E", params={"lr": 0.1})
    with e.Run(id="r1").start() as ctx:
        ctx.set_result("loss", 0.5)
        ctx.artifact.save("a.json", {"a": 1})
        ctx.log("train").append("epoch 1")
        ctx.checkpoint("model", {"step": 1})
        ctx.checkpoint("model", {"step": 2})
        ctx.execution_state.save({"tasks": {}})
    with pytest.raises(RuntimeError), e.Run(id="r2").start():
        raise RuntimeError("boom")
    e.Run(id="r3")
    asyncio.run(_tracked().execute(run=e.Run(id="w1")))
    with p.Experiment("F").Run(id="s1").start() as ctx:
        ctx.artifact.save("s.json", {"s": 1})
    with ws.Project("Q").Experiment("G").Run(id="t1").start() as ctx:
        ctx.artifact.save("t.json", {"t": 1})
    ws_data = ws.data_assets.import_asset("wsdata", src / "ws.csv")
    exp_data = e.data_assets.import_asset("expdata", src / "exp.csv")
    total = len(ws.catalog.query_assets())
    ws.catalog.index.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    ws.catalog.index.close()

    def one(pattern: str) -> str:
        (found,) = sorted(root.glob(pattern))
        return found.relative_to(root).as_posix()

    roles = {
        "workspace.json": "workspace.json",
        "project.json": "projects/p/project.json",
        "experiment.json": f"{EXP_KEY}/experiment.json",
        "run.json": f"{R1}/run.json",
        "artifact record": f"{R1}/.assets/artifact/a.json.json",
        "log record": f"{R1}/.assets/log/train.json",
        "checkpoint record": f"{R1}/.assets/checkpoint/model/000002.json",
        "execution-state record": f"{R1}/.assets/execution_state/state.json",
        "error-trace record": one(f"{EXP_KEY}/runs/run-r2/.assets/error_trace/*.json"),
        "workspace data-asset record": ws_data.record.record,
        "experiment data-asset record": exp_data.record.record,
        "workflow execution state": f"{EXP_KEY}/runs/run-w1/execution/state.json",
        "attempt claim": f"{R1}/execution/attempt-000001.json",
        "environment": one(".molexp/environments/*.json"),
        "catalog index": ".molexp/catalog.sqlite",
    }
    return {"root": root, "roles": roles, "total": total}


def _damage(data: bytes, how: str) -> bytes:
    return {
        "truncated": data[: len(data) // 2],
        "garbage": b"\x00\xff\xfe garbage, not what was written \x01" * 20,
        "empty": b"",
    }[how]


ROLES = [
    "workspace.json",
    "project.json",
    "experiment.json",
    "run.json",
    "artifact record",
    "log record",
    "checkpoint record",
    "execution-state record",
    "error-trace record",
    "workspace data-asset record",
    "experiment data-asset record",
    "workflow execution state",
    "attempt claim",
    "environment",
    "catalog index",
]
ASSET_RECORDS = {
    "artifact record",
    "log record",
    "checkpoint record",
    "execution-state record",
    "error-trace record",
    "workspace data-asset record",
    "experiment data-asset record",
}


@contextmanager
def only_warnings_naming(where: str, *, expected: bool) -> Iterator[list[str]]:
    """Record the block's warnings: each must be a CorruptRecordWarning naming ``where`` (and
    at least one must come when ``expected``)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        messages: list[str] = []
        yield messages
    for warning in caught:
        assert warning.category is CorruptRecordWarning, warning
        assert where in str(warning.message), warning.message
        messages.append(str(warning.message))
    if expected:
        assert messages, f"no warning named {where}"


def named(info: pytest.ExceptionInfo[BaseException], where: str) -> None:
    assert where in str(info.value), info.value


def execute_next_to_the_damage(ws: me.Workspace) -> None:
    """A new run in an experiment the damage does not touch executes and is found."""
    run = ws.project("q").experiment("g").Run()
    with run.start() as ctx:
        ctx.set_result("ok", True)
        ctx.artifact.save("new.json", {"new": True})
        ctx.log("train").append("line")
        ctx.checkpoint("model", {"step": 1})
    assert run.reload().status == RunStatus.SUCCEEDED
    found = ws.catalog.query_assets(run=run)
    assert sorted(a.kind.value for a in found) == ["artifact", "checkpoint", "log"]
    assert ws.catalog.query_assets(run=run, name="new.json")[0].load() == {"new": True}


@pytest.mark.parametrize("how", ["truncated", "garbage", "empty"])
@pytest.mark.parametrize("role", ROLES)
def test_one_damaged_file_is_named_and_the_rest_still_works(
    template: dict[str, Any], tmp_path: Path, role: str, how: str
) -> None:
    root = tmp_path / "lab"
    shutil.copytree(template["root"], root)
    key = template["roles"][role]
    path = root / key
    damaged = _damage(path.read_bytes(), how)
    path.write_bytes(damaged)
    where = str(path)
    total = template["total"]

    if role == "workspace.json":
        # The root record holds the workspace's identity: opening it is refused, naming the
        # file, and nothing is written; repairing that one file restores everything.
        with pytest.raises(CorruptRecordError) as info:
            me.Workspace(root)
        named(info, where)
        with pytest.raises(CorruptRecordError) as info:
            me.Workspace.load(root)
        named(info, where)
        assert path.read_bytes() == damaged
        return

    index_damaged = role == "catalog index"
    with only_warnings_naming(where, expected=index_damaged and how != "empty"):
        ws = me.Workspace.load(root)
        # The catalog answers (a damaged index is rebuilt from the records).
        assert len(ws.catalog.query_assets()) == total
    project_ok = role != "project.json"
    with only_warnings_naming(where, expected=not project_ok):
        assert [p.id for p in ws.list_projects()] == (["p", "q"] if project_ok else ["q"])
    if not project_ok:
        with pytest.raises(CorruptRecordError) as info:
            ws.project("p")
        named(info, where)
    else:
        p = ws.project("p")
        exp_ok = role != "experiment.json"
        with only_warnings_naming(where, expected=not exp_ok):
            assert [e.id for e in p.list_experiments()] == (["e", "f"] if exp_ok else ["f"])
        assert [r.id for r in p.experiment("f").list_runs()] == ["s1"]
        if not exp_ok:
            with pytest.raises(CorruptRecordError) as info:
                p.experiment("e")
            named(info, where)
        else:
            exp = p.experiment("e")
            run_ok = role != "run.json"
            with only_warnings_naming(where, expected=not run_ok):
                ids = sorted(r.id for r in exp.list_runs())
            assert ids == (["r1", "r2", "r3", "w1"] if run_ok else ["r2", "r3", "w1"])
            if not run_ok:
                with pytest.raises(CorruptRecordError) as info:
                    exp.get_run("r1")
                named(info, where)
            check_role(ws, role, where)
            # The run that was only created executes.
            with exp.get_run("r3").start() as ctx:
                ctx.artifact.save("r3.json", [3])
    execute_next_to_the_damage(ws)

    # A rebuild from the records skips a damaged record with a warning naming it. (check_role
    # saved the artifact again and executed the workflow with resume=False: both replaced the
    # damaged file with a whole new one, as they should; so did the first attempt of this
    # process, for the environment file, whose name is the hash of the bytes it must hold.)
    replaced = role in ("artifact record", "workflow execution state", "environment")
    skipped = role in ASSET_RECORDS and not replaced
    with only_warnings_naming(where, expected=skipped):
        rebuilt = ws.catalog.rebuild()
    assert rebuilt == len(ws.catalog.query_assets())
    if skipped:
        assert not any(a.record.record == key for a in ws.catalog.query_assets())
    if not (index_damaged or replaced):
        assert path.read_bytes() == damaged, "the damaged file was overwritten"
    ws.catalog.index.close()


def check_role(ws: me.Workspace, role: str, where: str) -> None:
    """What reads the damaged file directly says so, naming it; the rest of its run works."""
    exp = ws.project("p").experiment("e")
    if role == "run.json":
        return
    r1 = exp.get_run("r1")
    assert r1.results == {"loss": 0.5}
    if role == "log record":
        with pytest.raises(CorruptRecordError) as info, r1.start() as ctx:
            ctx.log("train").append("epoch 2")
        named(info, where)
        assert r1.reload().status == RunStatus.FAILED
    elif role == "checkpoint record":
        with pytest.raises(CorruptRecordError) as info, r1.start() as ctx:
            ctx.checkpoint("model", {"step": 3})
        named(info, where)
        assert r1.reload().status == RunStatus.FAILED
    elif role == "workflow execution state":
        w1 = exp.get_run("w1")
        with pytest.raises(WorkflowError, match=r"state\.json is not valid JSON.*resume=False"):
            asyncio.run(_tracked().execute(run=w1))
        assert asyncio.run(_tracked().execute(run=w1, resume=False)).ok
        return
    # Another attempt of the run works (the damaged attempt claim is skipped; the artifact
    # saved again is a new, whole record).
    with r1.start() as ctx:
        ctx.set_result("again", 1)
        if role == "artifact record":
            ctx.artifact.save("a.json", {"a": 2})
    assert r1.reload().status == RunStatus.SUCCEEDED
    if role == "artifact record":
        assert ws.catalog.query_assets(run=r1, name="a.json")[0].load() == {"a": 2}
    if role == "environment":
        # The new attempt found the shared file damaged and wrote it whole again: every attempt
        # that references it reads the distributions.
        for record in r1.metadata.execution_history:
            assert record.provenance is not None
            assert load_environment(r1, record.provenance)


# -- the same through the real `molexp` command ------------------------------------------------


def _molexp(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).parent / "molexp"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOLEXP_")}
    return subprocess.run(
        [str(exe) if exe.is_file() else "molexp", *args],
        cwd=cwd,
        env={**env, "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize(
    ("role", "args", "code"),
    [
        ("workspace.json", ["runs", "list"], 1),
        ("project.json", ["ls"], 0),
        ("experiment.json", ["runs", "list"], 0),
        ("run.json", ["runs", "list"], 0),
        ("run.json", ["runs", "show", "p/e/r1"], 1),
        ("catalog index", ["assets", "query"], 0),
        ("environment", ["runs", "show", "p/e/r1"], 0),
    ],
)
def test_the_cli_names_the_damaged_file_without_a_traceback(
    template: dict[str, Any], tmp_path: Path, role: str, args: list[str], code: int
) -> None:
    root = tmp_path / "lab"
    shutil.copytree(template["root"], root)
    path = root / template["roles"][role]
    path.write_bytes(_damage(path.read_bytes(), "truncated"))
    done = _molexp(*args, "--workspace", str(root), cwd=tmp_path)
    assert done.returncode == code, done
    assert "Traceback" not in done.stderr, done.stderr
    lines = done.stderr.strip().splitlines()
    if code:
        assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
        assert str(path) in lines[0]
    elif role != "environment":
        assert lines and all(line.startswith("warning: ") for line in lines), done.stderr
        assert str(path) in lines[0]
        assert done.stdout.strip()
