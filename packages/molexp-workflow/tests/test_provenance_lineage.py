"""Provenance and lineage under the workflow runtime: each task's saved assets name what that task
read (sync, async and concurrent tasks alike), and the attempt records the file that declared the
workflow — a copy of it and the git state of its work tree."""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from types import ModuleType

import pytest

import molexp as me
from molexp.workflow import TaskContext, Workflow, workflow
from molexp.workspace import latest_provenance


def _lineage_workflow() -> Workflow:
    wf = workflow(name="lineage")

    @wf.task
    def featurize(ctx: TaskContext) -> None:
        ctx.find_asset("qm9")
        ctx.artifact.save("features.json", {"n": 2})

    @wf.task
    async def describe(ctx: TaskContext) -> None:
        ctx.find_asset("qm9")
        ctx.find_asset("splits")
        ctx.artifact.save("summary.json", {"ok": True})

    @wf.task
    def unrelated(ctx: TaskContext) -> None:
        ctx.artifact.save("notes.txt", "read nothing")

    @wf.task(depends_on=["featurize", "describe"])
    def train(ctx: TaskContext) -> None:
        ctx.get_data_dir("features.json")
        ctx.checkpoint("model", data=b"weights")
        ctx.artifact.save("model.bin", b"weights")

    return wf.build()


async def test_each_task_records_what_it_read_and_lineage_answers_both_ways(
    ws: me.Workspace, tmp_path: Path
) -> None:
    (tmp_path / "qm9.csv").write_text("a,b\n1,2\n")
    (tmp_path / "splits.json").write_text("[0, 1]\n")
    qm9 = ws.data_assets.import_asset("qm9", tmp_path / "qm9.csv")
    exp = ws.Project("demo").Experiment("lineage")
    splits = exp.data_assets.import_asset("splits", tmp_path / "splits.json")
    run = exp.Run(id="r")
    result = await _lineage_workflow().execute(run=run, max_concurrency=4)
    assert result.ok

    made = {a.name: a for a in run.assets.list(["artifact", "checkpoint"])}
    inputs = {name: asset.producer.inputs for name, asset in made.items() if asset.producer}
    tasks = {name: asset.producer.task for name, asset in made.items() if asset.producer}
    features = made["features.json"]
    assert inputs["features.json"] == [qm9.id] and tasks["features.json"] == "featurize"
    assert inputs["summary.json"] == [qm9.id, splits.id] and tasks["summary.json"] == "describe"
    assert inputs["notes.txt"] == []
    assert inputs["model.bin"] == [features.id] and inputs["model"] == [features.id]

    catalog = ws.catalog
    up = [a.name for a in catalog.lineage(made["model.bin"], direction="up")]
    assert up == ["features.json", "qm9"]
    down = {a.name for a in catalog.lineage(qm9, direction="down")}
    assert down == {"features.json", "summary.json", "model.bin", "model"}
    assert [a.name for a in catalog.lineage(splits, direction="down")] == ["summary.json"]
    assert catalog.lineage(made["notes.txt"], direction="up") == []

    # The attempt records everything it read, across its tasks.
    assert set(run.metadata.execution_history[-1].inputs) == {qm9.id, splits.id, features.id}


def _git(repo: Path, *args: str) -> None:
    env = {
        **os.environ,
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.org",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.org",
    }
    subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True)


FLOW = """\
from molexp.workflow import TaskContext, workflow

wf = workflow(name="flow")


@wf.task
def compute(ctx: TaskContext) -> float:
    value = ctx.params["lr"] * {factor}
    ctx.set_result("value", value)
    return value


spec = wf.build()
"""


def _load(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
async def test_the_attempt_records_the_workflow_source_and_its_git_state(
    exp: me.Experiment, tmp_path: Path
) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    source = repo / "flow.py"
    source.write_text(textwrap.dedent(FLOW.format(factor=2)))
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "add", "flow.py")
    _git(repo, "commit", "-q", "-m", "v1")

    first = _load(source, "molexp_test_flow_v1")
    run = exp.Run(id="before")
    assert (await first.spec.execute(run=run)).ok
    record, prov = latest_provenance(run) or (None, None)
    assert record is not None and prov is not None
    assert prov.source_file == str(source.resolve())
    assert prov.git.status == "clean" and prov.git.branch == "main"
    assert prov.source is not None
    kept = run.storage.read_bytes(f"{run.key}/{prov.source.path}")
    assert kept == source.read_bytes()
    snapshot = run.metadata.workflow_snapshot or {}
    assert snapshot["git_commit"] == prov.git.commit

    source.write_text(textwrap.dedent(FLOW.format(factor=3)))  # an uncommitted change
    second = _load(source, "molexp_test_flow_v2")
    other = exp.Run(id="after")
    assert (await second.spec.execute(run=other)).ok
    _, changed = latest_provenance(other) or (None, None)
    assert changed is not None
    assert changed.git.status == "dirty" and changed.git.commit == prov.git.commit
    assert changed.source is not None
    assert (
        changed.source.content_hash == "sha256:" + hashlib.sha256(source.read_bytes()).hexdigest()
    )
    assert changed.source.content_hash != prov.source.content_hash
    assert other.metadata.workflow_snapshot["code_hash"] != snapshot["code_hash"]  # type: ignore[index]
