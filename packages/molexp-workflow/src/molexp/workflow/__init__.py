"""molexp.workflow: author task graphs, compile them, and execute them — alone or under a run.

```python
from molexp.workflow import TaskContext, workflow

wf = workflow(name="demo")


@wf.task
async def fetch(ctx: TaskContext) -> list[float]:
    return [1.0, 4.0, 9.0]


@wf.task(depends_on=["fetch"])
async def summarize(ctx: TaskContext) -> float:
    return sum(ctx.inputs)


spec = wf.build()  # validated, frozen, with a deterministic workflow_id
result = await spec.execute()  # or: await spec.execute(run=run)
```

This distribution ships only ``molexp/workflow/``; the ``molexp`` package itself comes from
``molexp-workspace``, whose ``__init__`` extends ``__path__`` so that this subpackage is found.
"""

from molexp.workflow._actors import Receiver
from molexp.workflow._builder import WorkflowBuilder, workflow
from molexp.workflow._context import TaskContext
from molexp.workflow._errors import (
    ChannelError,
    RunRequiredError,
    TaskTimeoutError,
    WorkflowError,
    WorkflowValidationError,
)
from molexp.workflow._promote import promote_callable
from molexp.workflow._result import TaskResult, TaskState, WorkflowResult
from molexp.workflow._task import Task, TaskSpec
from molexp.workflow._workflow import Workflow
from molexp.workflow.snapshot_ref import WorkflowSnapshotRef

__all__ = [
    "ChannelError",
    "Receiver",
    "RunRequiredError",
    "Task",
    "TaskContext",
    "TaskResult",
    "TaskSpec",
    "TaskState",
    "TaskTimeoutError",
    "Workflow",
    "WorkflowBuilder",
    "WorkflowError",
    "WorkflowResult",
    "WorkflowSnapshotRef",
    "WorkflowValidationError",
    "promote_callable",
    "workflow",
]
