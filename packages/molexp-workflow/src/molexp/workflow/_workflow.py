"""The compiled, frozen :class:`Workflow` and its deterministic ``workflow_id``."""

from __future__ import annotations

import asyncio
import hashlib
import sys
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from molexp.workflow._code import code_identities
from molexp.workflow._errors import WorkflowError
from molexp.workflow._execute import execute as _execute
from molexp.workflow.snapshot_ref import WorkflowSnapshotRef
from molexp.workspace import canonical_json

if TYPE_CHECKING:
    from molexp.workflow._result import WorkflowResult
    from molexp.workflow._task import TaskSpec
    from molexp.workspace import Experiment, Run

DEFAULT_MAX_WORKERS = 1024
"""The thread pool's size cap when a workflow does not set ``max_workers``."""


def _hash(value: Any) -> str:
    return hashlib.sha256(canonical_json(value).encode()).hexdigest()[:16]


class Workflow:
    """A validated task graph, ready to execute: ``await spec.execute()`` or, under a run,
    ``await spec.execute(run=run)``. Build one with ``workflow(name=...)``/``WorkflowBuilder``.

    ``workflow_id`` depends only on the declaration (the name, the tasks, their dependencies and
    channels), so it is the same in every process and changes when a task or an edge does.
    """

    __slots__ = (
        "_channels",
        "_dependents",
        "_deps",
        "_entrypoint",
        "_max_concurrency",
        "_max_workers",
        "_module",
        "_name",
        "_roots",
        "_source_file",
        "_specs",
        "_tasks",
        "_workflow_id",
    )

    def __init__(
        self,
        name: str,
        specs: Sequence[TaskSpec],
        *,
        channels: Mapping[str, tuple[frozenset[str], tuple[str, ...]]],
        max_concurrency: int | None,
        max_workers: int | None,
        module: str | None,
        source_file: str | None,
        entrypoint: str | None = None,
    ) -> None:
        self._name = name
        self._specs = tuple(specs)
        self._tasks = MappingProxyType({spec.name: spec for spec in self._specs})
        self._channels = MappingProxyType(dict(channels))
        self._max_concurrency = max_concurrency
        self._max_workers = max_workers
        self._module = module
        self._source_file = source_file
        self._entrypoint = entrypoint
        index = {spec.name: i for i, spec in enumerate(self._specs)}
        self._deps = tuple(tuple(index[d] for d in spec.depends_on) for spec in self._specs)
        dependents: list[list[int]] = [[] for _ in self._specs]
        for i, deps in enumerate(self._deps):
            for dep in deps:
                dependents[dep].append(i)
        self._dependents = tuple(tuple(d) for d in dependents)
        self._roots = tuple(i for i, deps in enumerate(self._deps) if not deps)
        self._workflow_id = _hash(
            {
                "name": name,
                "tasks": sorted(
                    [s.name, sorted(s.depends_on), sorted(s.emits), sorted(s.consumes)]
                    for s in self._specs
                ),
            }
        )

    # -- what it is ----------------------------------------------------------------------------

    @property
    def name(self) -> str:
        """The workflow's name."""
        return self._name

    @property
    def workflow_id(self) -> str:
        """A hash of the declaration: the same in every process for the same graph."""
        return self._workflow_id

    @property
    def tasks(self) -> Mapping[str, TaskSpec]:
        """The compiled tasks by name, in a topological order (dependencies first)."""
        return self._tasks

    @property
    def channels(self) -> Mapping[str, tuple[frozenset[str], tuple[str, ...]]]:
        """Each declared channel's emitting tasks and consuming actors."""
        return self._channels

    @property
    def max_concurrency(self) -> int | None:
        """How many tasks (actors excepted) may run at once; None for no limit."""
        return self._max_concurrency

    @property
    def max_workers(self) -> int:
        """The size of the thread pool for synchronous tasks (threads start only when needed)."""
        if self._max_workers is not None:
            return self._max_workers
        synchronous = sum(1 for spec in self._specs if not spec.is_async)
        return max(1, min(synchronous, DEFAULT_MAX_WORKERS))

    @property
    def source_file(self) -> str | None:
        """The file that declared the workflow, when known."""
        return self._source_file

    @property
    def entrypoint(self) -> str | None:
        """``module:attribute`` that imports this workflow (or the callable it wraps), when the
        declaring module holds it."""
        if self._entrypoint is not None:
            return self._entrypoint
        module = sys.modules.get(self._module) if self._module is not None else None
        for attribute, value in vars(module).items() if module is not None else ():
            if value is self:
                return f"{self._module}:{attribute}"
        return None

    def code_hash(self) -> str:
        """A hash of every task's code: it changes when any task's code does."""
        identities = code_identities(spec.origin for spec in self._specs)
        return _hash(sorted([s.name, i.hash] for s, i in zip(self._specs, identities, strict=True)))

    def snapshot_ref(self, *, config_hash: str | None = None) -> WorkflowSnapshotRef:
        """The reference to this workflow that a run records in ``run.json``."""
        return WorkflowSnapshotRef.of(self, config_hash=config_hash)

    # -- execution -----------------------------------------------------------------------------

    async def execute(
        self,
        run: Run | None = None,
        *,
        config: Mapping[str, Any] | None = None,
        profile_name: str | None = None,
        params: Mapping[str, Any] | None = None,
        max_concurrency: int | None = None,
        resume: bool = True,
    ) -> WorkflowResult:
        """Execute the graph and return its :class:`WorkflowResult` (a task failure does not
        raise: the result says which task failed, and keeps the outputs that finished).

        Without ``run``, ``config`` and ``params`` are what tasks see as ``ctx.config`` and
        ``ctx.params``. With ``run``, the execution is recorded: the run's lifecycle is opened
        (``run.start(config, profile_name=...)``) unless this process already has it open, task
        states are saved as they change, and a run executed again resumes: tasks that finished
        in an earlier attempt with unchanged code and inputs are reused, not run (unless
        ``resume=False``). ``max_concurrency`` overrides the workflow's limit for this execution.
        """
        return await _execute(
            self,
            run,
            config=config,
            profile_name=profile_name,
            params=params,
            max_concurrency=max_concurrency,
            resume=resume,
        )

    def execute_sync(
        self,
        run: Run | None = None,
        *,
        config: Mapping[str, Any] | None = None,
        profile_name: str | None = None,
        params: Mapping[str, Any] | None = None,
        max_concurrency: int | None = None,
        resume: bool = True,
    ) -> WorkflowResult:
        """:meth:`execute` for scripts without an event loop: ``result = spec.execute_sync()``."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(
                self.execute(
                    run,
                    config=config,
                    profile_name=profile_name,
                    params=params,
                    max_concurrency=max_concurrency,
                    resume=resume,
                )
            )
        raise WorkflowError(
            f"execute_sync() was called inside a running event loop (workflow {self._name!r}): "
            "use `await spec.execute(...)` there"
        )

    # -- bindings ------------------------------------------------------------------------------

    def bind_to(self, experiment: Experiment) -> Workflow:
        """Bind this workflow to ``experiment`` in this process (replacing an earlier binding)."""
        from molexp.workflow.bindings import set_workflow

        return set_workflow(experiment, self)

    @classmethod
    def for_experiment(cls, experiment: Experiment) -> Workflow:
        """The workflow bound to ``experiment`` in this process; NotFoundError if there is none."""
        from molexp.workflow.bindings import require_workflow

        return require_workflow(experiment)

    def __repr__(self) -> str:
        return f"Workflow({self._name!r}, tasks={len(self._specs)}, id={self._workflow_id!r})"
