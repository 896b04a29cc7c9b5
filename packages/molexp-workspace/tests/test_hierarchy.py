"""Workspace → project → experiment → run: creation, idempotence, lookups and listings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import molexp as me
from molexp.workspace import ConflictError, InvalidNameError, NotFoundError


def test_workspace_is_lazy_until_materialized(ws: me.Workspace) -> None:
    assert not ws.is_materialized
    assert not ws.storage.exists("workspace.json")
    ws.materialize()
    record = ws.storage.read_json("workspace.json")
    assert record["name"] == "Lab"
    assert record["id"] == ws.id
    assert record["schema_version"] == me.workspace.SCHEMA_VERSION


def test_first_project_materializes_the_workspace(ws: me.Workspace) -> None:
    project = ws.Project("QM9", description="small molecules", owner="ada", tags=["chem"])
    assert ws.storage.exists("workspace.json")
    record = ws.storage.read_json("projects/qm9/project.json")
    assert record["name"] == "QM9"
    assert record["description"] == "small molecules"
    assert record["owner"] == "ada"
    assert record["tags"] == ["chem"]
    assert project.id == "qm9"
    assert str(project.project_dir).endswith("projects/qm9")


def test_local_root_is_a_path(tmp_path: Path) -> None:
    ws = me.Workspace(tmp_path / "lab")
    assert ws.root == (tmp_path / "lab").resolve()
    assert ws.name == "lab"
    project = ws.Project("p")
    assert project.project_dir == (tmp_path / "lab" / "projects" / "p").resolve()


def test_project_factory_is_idempotent_and_returns_the_same_object(ws: me.Workspace) -> None:
    first = ws.Project("QM9")
    assert ws.Project("QM9") is first
    assert ws.project("qm9") is first
    assert ws.project("QM9") is first


def test_project_is_reloaded_from_disk_by_a_new_workspace_object(ws: me.Workspace) -> None:
    ws.Project("QM9", description="d")
    again = me.Workspace.load(ws.url)
    assert again.id == ws.id
    assert again.name == "Lab"
    assert again.Project("QM9").description == "d"
    assert [p.id for p in again.list_projects()] == ["qm9"]


def test_workspace_name_conflict_is_refused(ws: me.Workspace) -> None:
    ws.materialize()
    with pytest.raises(ConflictError, match="named 'Lab', not 'Other'"):
        me.Workspace(ws.url, name="Other")


def test_workspace_save_persists_edits(ws: me.Workspace) -> None:
    ws.materialize()
    ws.description = "my lab"
    ws.name = "Lab 2"
    ws.save()
    assert me.Workspace.load(ws.url).description == "my lab"
    assert me.Workspace.load(ws.url).name == "Lab 2"


def test_project_updates_given_fields(ws: me.Workspace) -> None:
    ws.Project("P", description="old")
    ws.Project("P", config={"cluster": "a"})
    fresh = me.Workspace.load(ws.url).project("p")
    assert fresh.description == "old"
    assert fresh.config == {"cluster": "a"}


def test_unknown_project_lists_the_known_ones(ws: me.Workspace) -> None:
    ws.Project("alpha")
    with pytest.raises(NotFoundError, match=r"no project 'beta'.*projects: alpha"):
        ws.project("beta")


def test_delete_project_removes_its_tree(ws: me.Workspace) -> None:
    ws.Project("gone").Experiment("e").Run(id="r1")
    ws.Project("kept")
    ws.delete_project("gone")
    assert not ws.storage.exists("projects/gone")
    assert [p.id for p in ws.list_projects()] == ["kept"]
    with pytest.raises(NotFoundError):
        ws.delete_project("gone")


def test_explicit_project_id(ws: me.Workspace) -> None:
    project = ws.Project("Quantum Machine 9", id="qm9-v2")
    assert project.id == "qm9-v2"
    assert ws.storage.exists("projects/qm9-v2/project.json")
    assert ws.project("qm9-v2") is project


def test_experiment_records_its_definition(ws: me.Workspace) -> None:
    exp = ws.Project("QM9").Experiment(
        "baseline",
        params={"lr": 1e-3, "layers": [64, 64]},
        n_replicas=2,
        workflow_source="train.py",
        workflow_type="training",
        git_commit="abc123",
    )
    record = ws.storage.read_json("projects/qm9/experiments/baseline/experiment.json")
    assert record["params"] == {"lr": 1e-3, "layers": [64, 64]}
    assert record["n_replicas"] == 2
    assert record["workflow_source"] == "train.py"
    assert record["git_commit"] == "abc123"
    assert exp.params is exp.parameter_space
    assert len(exp.get_seeds()) == 2
    assert str(exp.experiment_dir).endswith("projects/qm9/experiments/baseline")


def test_experiment_factory_is_idempotent(ws: me.Workspace) -> None:
    project = ws.Project("QM9")
    exp = project.Experiment("baseline", params={"lr": 1e-3})
    assert project.Experiment("baseline", params={"lr": 1e-3}) is exp
    assert project.Experiment("baseline") is exp
    assert project.experiment("baseline") is exp
    assert [e.id for e in project.list_experiments()] == ["baseline"]


def test_experiment_parameter_space_is_params(ws: me.Workspace) -> None:
    exp = ws.Project("P").Experiment("e", parameter_space={"a": 1})
    assert exp.params == {"a": 1}


def test_experiment_with_other_params_is_a_conflict(ws: me.Workspace) -> None:
    project = ws.Project("QM9")
    project.Experiment("baseline", params={"lr": 1e-3})
    with pytest.raises(ConflictError, match="already exists with params"):
        project.Experiment("baseline", params={"lr": 1e-2})
    record = ws.storage.read_json("projects/qm9/experiments/baseline/experiment.json")
    assert record["params"] == {"lr": 1e-3}


def test_params_key_order_does_not_matter(ws: me.Workspace) -> None:
    project = ws.Project("P")
    exp = project.Experiment("e", params={"a": 1, "b": {"x": 1, "y": 2}})
    assert project.Experiment("e", params={"b": {"y": 2, "x": 1}, "a": 1}) is exp


def test_increasing_replicas_updates_the_experiment(ws: me.Workspace) -> None:
    project = ws.Project("P")
    project.Experiment("e", n_replicas=2)
    exp = project.Experiment("e", n_replicas=4)
    assert exp.n_replicas == 4
    assert me.Workspace.load(ws.url).project("p").experiment("e").n_replicas == 4


def test_default_seeds_are_deterministic_and_truncated(ws: me.Workspace) -> None:
    project = ws.Project("P")
    three = project.Experiment("three", n_replicas=3).get_seeds()
    five = project.Experiment("five", n_replicas=5).get_seeds()
    assert five[:3] == three
    assert len(set(five)) == 5
    assert me.workspace.default_seeds(3) == three


def test_explicit_seeds(ws: me.Workspace) -> None:
    exp = ws.Project("P").Experiment("e", seeds=[7, 8, 9])
    assert exp.n_replicas == 3
    assert exp.get_seeds() == [7, 8, 9]
    with pytest.raises(ValueError, match="seeds has 2 values but n_replicas is 3"):
        ws.Project("P").Experiment("f", seeds=[1, 2], n_replicas=3)


def test_fresh_runs_get_distinct_ids(exp: me.Experiment) -> None:
    runs = [exp.Run() for _ in range(5)]
    assert len({r.id for r in runs}) == 5
    for run in runs:
        assert run.status == me.RunStatus.CREATED
        assert run.parameters == {"lr": 1e-3}
        assert exp.workspace.storage.exists(f"{run.key}/run.json")
        assert run.key.endswith(f"runs/run-{run.id}")


def test_run_with_explicit_id_is_get_or_load(exp: me.Experiment) -> None:
    run = exp.Run(parameters={"lr": 1e-3, "seed": 42}, id="baseline-seed-42")
    assert exp.run(id="baseline-seed-42") is run
    assert exp.Run(parameters={"seed": 42, "lr": 1e-3}, id="baseline-seed-42") is run
    reopened = me.Workspace.load(exp.workspace.url).project("qm9").experiment("baseline")
    loaded = reopened.run(id="baseline-seed-42")
    assert loaded.parameters == {"lr": 1e-3, "seed": 42}


def test_run_with_explicit_id_and_other_parameters_is_a_conflict(exp: me.Experiment) -> None:
    exp.Run(parameters={"seed": 1}, id="r")
    with pytest.raises(ConflictError, match="already exists with parameters"):
        exp.Run(parameters={"seed": 2}, id="r")


def test_get_run_is_strict(exp: me.Experiment) -> None:
    with pytest.raises(NotFoundError, match="no run 'missing' in experiment 'baseline'"):
        exp.get_run("missing")
    with pytest.raises(InvalidNameError):
        exp.get_run("../escape")


def test_list_runs_oldest_first_and_by_status(exp: me.Experiment) -> None:
    ids = [exp.Run(id=f"r{i}").id for i in range(3)]
    with exp.get_run("r1").start():
        pass
    assert [r.id for r in exp.list_runs()] == ids
    assert [r.id for r in exp.list_runs(status="succeeded")] == ["r1"]
    assert [r.id for r in exp.list_runs(status=me.RunStatus.CREATED)] == ["r0", "r2"]


def test_records_are_readable_json_with_schema_version(exp: me.Experiment) -> None:
    run = exp.Run(id="r")
    raw = exp.workspace.storage.read_bytes(f"{run.key}/run.json").decode()
    assert raw.startswith("{\n")
    record = json.loads(raw)
    assert record["schema_version"] == 1
    assert record["status"] == "created"
    assert record["experiment_id"] == "baseline"
    assert record["project_id"] == "qm9"


def test_entry_registers_workspaces(ws: me.Workspace) -> None:
    me.workspace.clear_entries()
    assert me.entry(ws) is ws
    me.entry(ws)
    assert me.workspace.registered_workspaces() == [ws]
    me.workspace.clear_entries()
    assert me.workspace.registered_workspaces() == []
