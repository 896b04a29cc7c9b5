"""promote_callable: a one-task :class:`Workflow` around a callable that takes a RunContext."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from molexp.workflow._builder import check_name
from molexp.workflow._code import source_file
from molexp.workflow._context import TaskContext
from molexp.workflow._errors import RunRequiredError
from molexp.workflow._task import TaskSpec, check_signature, is_async_body
from molexp.workflow._workflow import Workflow
from molexp.workspace import RunContext


def promote_callable(fn: Callable[[RunContext], Any], *, name: str | None = None) -> Workflow:
    """Wrap ``fn(run_ctx)`` as a one-task workflow named ``name`` (by default the function's
    name), to bind and execute like any workflow: ``promote_callable(train).bind_to(exp)``.

    ``fn`` may be ``async def`` or plain; it needs a run (``await spec.execute(run=run)``).
    """
    task_name = check_name(name if name is not None else getattr(fn, "__name__", None), "a name")
    check_signature(task_name, fn, what="RunContext")

    def run_context(ctx: TaskContext) -> RunContext:
        if ctx.run_context is None:
            raise RunRequiredError(
                f"{task_name!r} takes a RunContext, so it executes under a run: "
                "`await spec.execute(run=run)`"
            )
        return ctx.run_context

    @functools.wraps(fn)
    async def call_async(ctx: TaskContext) -> Any:
        return await fn(run_context(ctx))

    @functools.wraps(fn)
    def call(ctx: TaskContext) -> Any:
        return fn(run_context(ctx))

    is_async = is_async_body(fn)

    module = getattr(fn, "__module__", None)
    qualname = getattr(fn, "__qualname__", "")
    spec = TaskSpec(
        name=task_name,
        depends_on=(),
        body=call_async if is_async else call,
        origin=fn,
        is_async=is_async,
    )
    return Workflow(
        task_name,
        (spec,),
        channels={},
        max_concurrency=None,
        max_workers=None,
        module=module,
        source_file=source_file(fn),
        entrypoint=f"{module}:{qualname}" if module and "<" not in qualname else None,
    )
