"""The exceptions of the workflow layer: each names the task or channel at fault and the fix."""

from __future__ import annotations

from molexp.workspace import MolexpError


class WorkflowError(MolexpError):
    """Base class of the errors the workflow layer raises on purpose."""


class WorkflowValidationError(WorkflowError, ValueError):
    """A declaration that does not compile: unknown dependency, cycle, duplicate, bad signature."""


class TaskTimeoutError(WorkflowError, TimeoutError):
    """An attempt of a task ran longer than its ``timeout``."""


class RunRequiredError(WorkflowError, RuntimeError):
    """A workspace helper was used by a task executing without a run."""


class ChannelError(WorkflowError):
    """A channel used against its declaration (emitting without ``emits=``, receiving elsewhere)."""
