"""Authoring: ``workflow(name=...)``, ``@wf.task``, ``@wf.actor``, ``wf.add(task)``, ``wf.build()``.

Declaring records tasks and runs nothing; ``build()`` validates and compiles them into a frozen
:class:`Workflow`. Decorators return the function unchanged, so it stays callable on its own.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import Any, TypeVar, overload

from molexp.workflow._compile import Declaration, DependencyRef, compile_declarations
from molexp.workflow._errors import WorkflowValidationError
from molexp.workflow._task import Task, channel_names, check_limit, check_policy
from molexp.workflow._workflow import Workflow

F = TypeVar("F", bound=Callable[..., Any])
Dependencies = DependencyRef | Sequence[DependencyRef] | None
"""What ``depends_on=`` takes: one reference or a list of them."""


def _dependencies(value: Dependencies) -> tuple[DependencyRef, ...]:
    if value is None:
        return ()
    if isinstance(value, str | Task) or callable(value):
        return (value,)
    return tuple(value)


def check_name(name: object, what: str) -> str:
    if not isinstance(name, str) or not name or name != name.strip():
        raise WorkflowValidationError(
            f"{what} must be a non-empty string without surrounding spaces, got {name!r}"
        )
    return name


def _declaring_module() -> tuple[str | None, str | None]:
    """The module name and file of the first caller outside molexp.workflow."""
    frame = sys._getframe(1)
    while frame.f_back is not None and str(frame.f_globals.get("__name__", "")).startswith(
        "molexp.workflow"
    ):
        frame = frame.f_back
    filename = frame.f_code.co_filename
    module = frame.f_globals.get("__name__")
    return (
        module if isinstance(module, str) else None,
        None if filename.startswith("<") else filename,
    )


class WorkflowBuilder:
    """Collects task declarations; :meth:`build` compiles them into a :class:`Workflow`.

    ``max_concurrency`` caps how many tasks (actors excepted) run at once; ``max_workers`` sizes
    the thread pool of synchronous tasks (by default, one thread per synchronous task, at most
    1,024). Both can be left alone for most workflows.
    """

    def __init__(
        self, name: str, *, max_concurrency: int | None = None, max_workers: int | None = None
    ) -> None:
        self.name = check_name(name, "a workflow name")
        self.max_concurrency = check_limit(max_concurrency, "max_concurrency")
        self.max_workers = check_limit(max_workers, "max_workers")
        self._declared: list[Declaration] = []
        self._module, self._source_file = _declaring_module()

    @overload
    def task(self, fn: F, /) -> F: ...

    @overload
    def task(
        self,
        fn: None = None,
        /,
        *,
        name: str | None = None,
        depends_on: Dependencies = None,
        retries: int = 0,
        retry_delay: float = 0.1,
        timeout: float | None = None,
        emits: str | Sequence[str] | None = None,
    ) -> Callable[[F], F]: ...

    def task(
        self,
        fn: Callable[..., Any] | None = None,
        /,
        *,
        name: str | None = None,
        depends_on: Dependencies = None,
        retries: int = 0,
        retry_delay: float = 0.1,
        timeout: float | None = None,
        emits: str | Sequence[str] | None = None,
    ) -> Any:
        """Declare a task: ``@wf.task`` or ``@wf.task(depends_on=[...], retries=2, timeout=60)``.

        The function (``async def`` or plain; plain ones run in a worker thread) takes one
        :class:`TaskContext` and returns the task's output. A failed attempt is retried
        ``retries`` times, after ``retry_delay`` seconds, doubling each time; ``timeout`` bounds
        each attempt. ``emits`` names the channels the task sends messages on.
        """

        def declare(function: F) -> F:
            task_name = check_name(
                name if name is not None else getattr(function, "__name__", None), "a task name"
            )
            policy = check_policy(
                task_name, retries=retries, retry_delay=retry_delay, timeout=timeout
            )
            self._declared.append(
                Declaration(
                    task_name,
                    function,
                    function,
                    _dependencies(depends_on),
                    *policy,
                    emits=channel_names(emits, what=f"task {task_name!r}: emits"),
                )
            )
            return function

        return declare(fn) if fn is not None else declare

    def actor(
        self,
        fn: object = None,
        /,
        *,
        consumes: str | Sequence[str] | None = None,
        name: str | None = None,
        emits: str | Sequence[str] | None = None,
        depends_on: Dependencies = None,
    ) -> Callable[[F], F]:
        """Declare an actor: an ``async def`` task that runs alongside the graph, reading the
        channels it ``consumes`` with ``async for msg in ctx.receive(channel)`` until their
        emitters finish. An async-generator actor emits what it yields on its ``emits``."""
        if fn is not None:
            raise WorkflowValidationError(
                f"@wf.actor needs the channels it consumes: write @wf.actor(consumes=[...]) "
                f"above {getattr(fn, '__name__', fn)!r}"
            )

        def declare(function: F) -> F:
            task_name = check_name(
                name if name is not None else getattr(function, "__name__", None), "an actor name"
            )
            consumed = channel_names(consumes, what=f"actor {task_name!r}: consumes")
            if not consumed:
                raise WorkflowValidationError(
                    f"actor {task_name!r} must consume at least one channel: "
                    "@wf.actor(consumes=['channel'])"
                )
            self._declared.append(
                Declaration(
                    task_name,
                    function,
                    function,
                    _dependencies(depends_on),
                    retries=0,
                    retry_delay=0.0,
                    timeout=None,
                    emits=channel_names(emits, what=f"actor {task_name!r}: emits"),
                    consumes=consumed,
                    actor=True,
                )
            )
            return function

        return declare

    def add(self, task: Task, *, depends_on: Dependencies = None) -> Task:
        """Add a reusable :class:`Task`: ``wf.add(Normalize(scale=2), depends_on=["fetch"])``."""
        if not isinstance(task, Task):
            raise TypeError(
                f"wf.add() takes a Task instance, got {task!r}; decorate a function with @wf.task"
            )
        task_name = check_name(task.task_name, "a task name")
        policy = check_policy(
            task_name, retries=task.retries, retry_delay=task.retry_delay, timeout=task.timeout
        )
        self._declared.append(
            Declaration(
                task_name,
                task.run,
                task,
                _dependencies(depends_on),
                *policy,
                emits=channel_names(task.emits, what=f"task {task_name!r}: emits"),
            )
        )
        return task

    def build(self) -> Workflow:
        """Validate the declarations and compile them into a frozen :class:`Workflow`."""
        compiled = compile_declarations(self.name, self._declared)
        return Workflow(
            self.name,
            compiled.specs,
            channels=compiled.channels,
            max_concurrency=self.max_concurrency,
            max_workers=self.max_workers,
            module=self._module,
            source_file=self._source_file,
        )

    def __repr__(self) -> str:
        return f"WorkflowBuilder({self.name!r}, tasks={len(self._declared)})"


def workflow(
    name: str, *, max_concurrency: int | None = None, max_workers: int | None = None
) -> WorkflowBuilder:
    """Start declaring a workflow: ``wf = workflow(name="demo")``, then ``@wf.task`` functions."""
    return WorkflowBuilder(name, max_concurrency=max_concurrency, max_workers=max_workers)
