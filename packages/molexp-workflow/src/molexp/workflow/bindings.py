"""Bindings: which workflow an experiment executes, recorded in this process.

``set_workflow(exp, spec)`` (or ``spec.bind_to(exp)``) records it; ``Workflow.for_experiment(exp)``
reads it back — typically in CLI, server or agent code driving the experiments a script declared.
The registry is keyed by the experiment's full identity (workspace, project, experiment), so two
projects with an experiment of the same name never share a binding. Binding again replaces.
"""

from __future__ import annotations

from molexp.workflow._builder import WorkflowBuilder
from molexp.workflow._workflow import Workflow
from molexp.workspace import Experiment, NotFoundError

_bound: dict[tuple[str, str, str], Workflow] = {}


def _key(experiment: Experiment) -> tuple[str, str, str]:
    if not isinstance(experiment, Experiment):
        raise TypeError(
            f"bindings take a molexp Experiment (project.Experiment(...)), got {experiment!r}"
        )
    project = experiment.project
    return (project.workspace.url, project.id, experiment.id)


def set_workflow(experiment: Experiment, workflow: Workflow) -> Workflow:
    """Bind ``workflow`` to ``experiment`` (replacing an earlier binding); return the workflow."""
    key = _key(experiment)
    if not isinstance(workflow, Workflow):
        if isinstance(workflow, WorkflowBuilder):
            hint = "compile the builder first: set_workflow(exp, wf.build())"
        elif callable(workflow):
            hint = "wrap a callable taking a RunContext with promote_callable(fn)"
        else:
            hint = "build one with workflow(name=...) and wf.build()"
        raise TypeError(f"set_workflow() takes a compiled Workflow, got {workflow!r}: {hint}")
    _bound[key] = workflow
    return workflow


def get_workflow(experiment: Experiment) -> Workflow | None:
    """The workflow bound to ``experiment`` in this process, or None."""
    return _bound.get(_key(experiment))


def require_workflow(experiment: Experiment) -> Workflow:
    """The workflow bound to ``experiment``; a :class:`NotFoundError` saying how to bind one."""
    found = get_workflow(experiment)
    if found is None:
        raise NotFoundError(
            f"no workflow is bound to experiment {experiment.id!r} of project "
            f"{experiment.project.id!r} in this process: bind one with spec.bind_to(exp) or "
            "set_workflow(exp, spec)"
        )
    return found


def clear_bindings() -> None:
    """Forget every binding of this process (for tests and long-lived processes)."""
    _bound.clear()


__all__ = ["clear_bindings", "get_workflow", "require_workflow", "set_workflow"]
