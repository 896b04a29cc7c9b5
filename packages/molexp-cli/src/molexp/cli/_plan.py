"""Deciding what ``molexp run`` does with each run of each bound experiment.

Every experiment with a bound workflow has one run per replica, named by a deterministic id
(:mod:`molexp.cli._runids`). What happens to it depends on what is recorded under that id:

=====================  ==================  ====================  =========================
recorded               (default)           ``--resume``          ``--rerun``
=====================  ==================  ====================  =========================
nothing                new run             new run               new run
created, never run     run it              run it                run it
succeeded              skip                skip                  new attempt, from scratch
failed / cancelled     skip (not ok)       resume it             new attempt, from scratch
running, owner alive   skip (not ok)       skip (not ok)         skip (not ok)
running, owner gone    marked failed, then as failed
=====================  ==================  ====================  =========================

*Resume* executes the run again and the workflow runtime reuses the tasks that finished with
unchanged code and inputs; *rerun* discards the saved task states, so every task runs again.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING

from molexp.cli._runids import derive_run_id, replica_parameters

if TYPE_CHECKING:
    from typing import Any

    from molexp.cli._profiles import Profile
    from molexp.workflow import Workflow
    from molexp.workspace import Experiment, Run, Workspace


class Mode(StrEnum):
    """What to do with runs that exist and did not just need creating."""

    DEFAULT = "default"
    RESUME = "resume"
    RERUN = "rerun"


class Action(StrEnum):
    """What happens to one planned run."""

    NEW = "new"
    """Create the run and execute it."""
    START = "start"
    """Execute a run that was created but never executed."""
    RESUME = "resume"
    """Execute a failed or cancelled run again, reusing its finished tasks."""
    RERUN = "rerun"
    """Execute an existing run again from scratch (a new attempt, saved task states discarded)."""
    SKIP = "skip"
    """Leave the run as it is."""

    @property
    def executes(self) -> bool:
        """Whether the run is executed."""
        return self is not Action.SKIP

    @property
    def verb(self) -> str:
        """How a dry run announces it."""
        return {
            Action.NEW: "would run",
            Action.START: "would run",
            Action.RESUME: "would resume",
            Action.RERUN: "would rerun",
            Action.SKIP: "skip",
        }[self]


@dataclass
class PlannedRun:
    """One run of one bound experiment and what ``molexp run`` will do with it."""

    experiment: Experiment
    workflow: Workflow
    run_id: str
    replica: int
    seed: int
    parameters: dict[str, Any]
    action: Action
    reason: str
    """Why: ``new``, ``succeeded``, ``failed``, ``running (pid 12 on host)``, ..."""
    run: Run | None = None
    ok: bool = True
    """False for a skipped run that did not succeed (it makes the exit code non-zero)."""

    @property
    def qualified(self) -> str:
        """``project/experiment/id``."""
        return f"{self.experiment.project.id}/{self.experiment.id}/{self.run_id}"

    @property
    def fresh(self) -> bool:
        """Whether saved task states are discarded before executing."""
        return self.action is Action.RERUN


@dataclass
class Plan:
    """Every planned run, and the experiments that were skipped for want of a workflow."""

    runs: list[PlannedRun] = field(default_factory=list)
    unbound: list[str] = field(default_factory=list)

    @property
    def to_execute(self) -> list[PlannedRun]:
        """The runs that will be executed, in plan order."""
        return [p for p in self.runs if p.action.executes]

    @property
    def skipped(self) -> list[PlannedRun]:
        """The runs left as they are."""
        return [p for p in self.runs if not p.action.executes]


def _matches(value: str, name: str, wanted: Collection[str]) -> bool:
    return not wanted or value in wanted or name in wanted


def bound_experiments(
    workspaces: Sequence[Workspace],
    *,
    projects: Collection[str] = (),
    experiments: Collection[str] = (),
) -> tuple[list[tuple[Experiment, Workflow]], list[str]]:
    """The experiments (under the filters) with a bound workflow, and the names of those without."""
    from molexp.cli._execution import bound_workflow

    bound: list[tuple[Experiment, Workflow]] = []
    unbound: list[str] = []
    seen: set[str] = set()
    for ws in workspaces:
        if ws.url in seen:
            continue
        seen.add(ws.url)
        for project in ws.list_projects():
            if not _matches(project.id, project.name, projects):
                continue
            for experiment in project.list_experiments():
                if not _matches(experiment.id, experiment.name, experiments):
                    continue
                workflow = bound_workflow(experiment)
                if workflow is None:
                    unbound.append(f"{project.id}/{experiment.id}")
                else:
                    bound.append((experiment, workflow))
    return bound, unbound


def _decide(run: Run | None, mode: Mode, *, dry_run: bool) -> tuple[Action, str, bool]:
    """The action for an existing run (or None), its reason, and whether a skip is ok."""
    from molexp.workspace import Liveness, RunStatus

    if run is None:
        return Action.NEW, "new", True
    status = run.status
    gone = ""
    if status == RunStatus.RUNNING:
        liveness = run.liveness()  # re-reads run.json
        if liveness in (Liveness.ALIVE, Liveness.STALE):
            owner = run.metadata.owner
            where = f"pid {owner.pid} on {owner.host}" if owner is not None else "elsewhere"
            state = "running" if liveness == Liveness.ALIVE else "running, owner silent"
            return Action.SKIP, f"{state} ({where})", False
        if liveness == Liveness.DEAD:
            if not dry_run:
                run.mark_failed_if_dead()
            status, gone = RunStatus.FAILED, " (its process is gone)"
        else:  # it finished while we looked
            status = run.status
    if status == RunStatus.CREATED:
        return Action.START, "created earlier, never executed", True
    if status == RunStatus.SUCCEEDED:
        if mode is Mode.RERUN:
            return Action.RERUN, "succeeded; --rerun", True
        return Action.SKIP, "succeeded", True
    label = f"{status.value}{gone}"
    if mode is Mode.RESUME:
        return Action.RESUME, label, True
    if mode is Mode.RERUN:
        return Action.RERUN, f"{label}; --rerun", True
    return Action.SKIP, f"{label}; --resume to continue it, --rerun to start over", False


def plan_runs(
    workspaces: Sequence[Workspace],
    profile: Profile,
    *,
    mode: Mode = Mode.DEFAULT,
    dry_run: bool = False,
    projects: Collection[str] = (),
    experiments: Collection[str] = (),
) -> Plan:
    """The plan for every replica of every bound experiment (under the filters)."""
    from molexp.workspace import NotFoundError

    digest = profile.config_hash
    bound, unbound = bound_experiments(workspaces, projects=projects, experiments=experiments)
    plan = Plan(unbound=unbound)
    for experiment, workflow in bound:
        for replica, seed in enumerate(experiment.get_seeds()):
            parameters = replica_parameters(experiment.params, seed=seed, replica=replica)
            run_id = derive_run_id(
                project=experiment.project.id,
                experiment=experiment.id,
                parameters=parameters,
                replica=replica,
                profile_name=profile.name,
                config_hash=digest,
            )
            try:
                run: Run | None = experiment.get_run(run_id)
            except NotFoundError:
                run = None
            action, reason, ok = _decide(run, mode, dry_run=dry_run)
            plan.runs.append(
                PlannedRun(
                    experiment=experiment,
                    workflow=workflow,
                    run_id=run_id,
                    replica=replica,
                    seed=seed,
                    parameters=parameters,
                    action=action,
                    reason=reason,
                    run=run,
                    ok=ok,
                )
            )
    return plan
