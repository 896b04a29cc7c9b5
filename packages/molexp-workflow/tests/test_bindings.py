"""Bindings (set_workflow, bind_to, for_experiment) and promote_callable."""

from __future__ import annotations

import pytest

import molexp as me
from molexp.workflow import (
    RunRequiredError,
    Workflow,
    WorkflowValidationError,
    promote_callable,
    workflow,
)
from molexp.workflow.bindings import get_workflow, set_workflow
from molexp.workspace import NotFoundError


def named(name: str) -> Workflow:
    wf = workflow(name=name)
    wf.task(name="only")(lambda ctx: name)
    return wf.build()


def test_bind_and_read_back(exp: me.Experiment):
    spec = named("first")
    assert spec.bind_to(exp) is spec
    assert Workflow.for_experiment(exp) is spec
    assert get_workflow(exp) is spec


def test_set_workflow_is_the_same_binding(exp: me.Experiment):
    spec = named("first")
    set_workflow(exp, spec)
    assert Workflow.for_experiment(exp) is spec


def test_rebinding_replaces(exp: me.Experiment):
    named("first").bind_to(exp)
    second = named("second")
    set_workflow(exp, second)
    assert Workflow.for_experiment(exp) is second


def test_bindings_are_found_from_another_handle_on_the_same_experiment(exp: me.Experiment):
    spec = named("first").bind_to(exp)
    again = me.Workspace.load(exp.workspace.root).project("demo").experiment("baseline")
    assert again is not exp
    assert Workflow.for_experiment(again) is spec


def test_same_experiment_name_in_two_projects_do_not_collide(ws: me.Workspace):
    qm9 = ws.Project("qm9").Experiment("baseline")
    md17 = ws.Project("md17").Experiment("baseline")
    assert qm9.id == md17.id
    for_qm9 = named("qm9").bind_to(qm9)
    for_md17 = named("md17").bind_to(md17)
    assert Workflow.for_experiment(qm9) is for_qm9
    assert Workflow.for_experiment(md17) is for_md17


def test_same_names_in_two_workspaces_do_not_collide(tmp_path):
    a = me.Workspace(tmp_path / "a").Project("p").Experiment("e")
    b = me.Workspace(tmp_path / "b").Project("p").Experiment("e")
    named("a").bind_to(a)
    assert get_workflow(b) is None


def test_an_unbound_experiment_is_a_clear_error(exp: me.Experiment):
    assert get_workflow(exp) is None
    with pytest.raises(NotFoundError, match="no workflow is bound to experiment 'baseline'"):
        Workflow.for_experiment(exp)


def test_binding_something_else_says_what_to_do(exp: me.Experiment):
    wf = workflow(name="unbuilt")
    wf.task(name="only")(lambda ctx: 1)
    with pytest.raises(TypeError, match=r"wf\.build\(\)"):
        set_workflow(exp, wf)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="promote_callable"):
        set_workflow(exp, lambda ctx: 1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="molexp Experiment"):
        set_workflow("baseline", named("x"))  # type: ignore[arg-type]


def train(run_ctx: me.RunContext) -> float:
    loss = run_ctx.params["lr"] * 100
    run_ctx.set_result("loss", loss)
    return loss


async def test_promote_callable_runs_under_a_run(exp: me.Experiment):
    spec = promote_callable(train)
    assert spec.name == "train"
    assert list(spec.tasks) == ["train"]
    assert spec.entrypoint == f"{__name__}:train"
    spec.bind_to(exp)
    run = exp.Run()
    result = await Workflow.for_experiment(exp).execute(run=run)
    assert result.outputs == {"train": 0.1}
    assert run.status == me.RunStatus.SUCCEEDED
    assert run.results == {"loss": 0.1}
    assert run.metadata.workflow_snapshot["entrypoint"] == f"{__name__}:train"


async def test_promote_callable_with_a_name_and_an_async_callable(exp: me.Experiment):
    async def evaluate(run_ctx: me.RunContext) -> str:
        return run_ctx.run.id

    spec = promote_callable(evaluate, name="eval")
    assert spec.name == "eval"
    run = exp.Run(id="r1")
    assert (await spec.execute(run=run)).outputs == {"eval": "r1"}
    assert spec.tasks["eval"].code_hash == promote_callable(evaluate).tasks["evaluate"].code_hash


async def test_a_promoted_callable_needs_a_run():
    result = await promote_callable(train).execute()
    assert isinstance(result.error, RunRequiredError)
    assert "'train' takes a RunContext" in str(result.error)


def test_promote_callable_checks_the_signature():
    def no_args() -> None:
        return None

    with pytest.raises(WorkflowValidationError, match="cannot take a RunContext"):
        promote_callable(no_args)  # type: ignore[arg-type]


def test_workflows_are_frozen():
    spec = named("frozen")
    with pytest.raises(AttributeError):
        spec.name = "other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        spec.tasks["x"] = spec.tasks["only"]  # type: ignore[index]
    with pytest.raises(AttributeError):
        spec.tasks["only"].retries = 3  # type: ignore[misc]
