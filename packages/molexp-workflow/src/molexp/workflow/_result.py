"""What an execution returns: the status, each task's outputs, states and timings."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, NamedTuple

from molexp.workspace import RunStatus


class TaskState(StrEnum):
    """Where a task is in one execution."""

    PENDING = "pending"
    """Not started: waiting for its dependencies, or stopped before it could start."""
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    REUSED = "reused"
    """Not run again: an earlier attempt of the run produced its output from the same code and
    inputs."""
    FAILED = "failed"
    CANCELLED = "cancelled"
    """Stopped while running, because another task failed or the run was cancelled."""


def _when(epoch: float | None) -> datetime | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, UTC)


class TaskResult(NamedTuple):
    """One task's outcome in one execution (times are seconds since the epoch)."""

    name: str
    state: TaskState
    output: Any = None
    attempts: int = 0
    start: float | None = None
    end: float | None = None
    error: BaseException | None = None

    @property
    def started_at(self) -> datetime | None:
        """When the task's first attempt started (UTC)."""
        return _when(self.start)

    @property
    def finished_at(self) -> datetime | None:
        """When the task finished (UTC)."""
        return _when(self.end)

    @property
    def duration(self) -> float | None:
        """Seconds from the first attempt's start to the end, retries included."""
        if self.start is None or self.end is None:
            return None
        return self.end - self.start


@dataclass(frozen=True, slots=True)
class WorkflowResult:
    """The outcome of ``await spec.execute(...)``.

    ``outputs`` holds the output of every task that finished (succeeded or reused), also when
    another task failed. Under a run, ``run_id`` and ``execution_id`` name the attempt.
    """

    workflow_id: str
    status: RunStatus
    outputs: Mapping[str, Any]
    tasks: Mapping[str, TaskResult]
    start: float
    end: float
    error: BaseException | None = None
    failed_task: str | None = None
    run_id: str | None = None
    execution_id: str | None = None

    @property
    def ok(self) -> bool:
        """Whether every task succeeded (or was reused)."""
        return self.status == RunStatus.SUCCEEDED

    @property
    def duration(self) -> float:
        """Seconds the execution took."""
        return self.end - self.start

    def __repr__(self) -> str:
        failed = f", failed_task={self.failed_task!r}" if self.failed_task else ""
        return (
            f"WorkflowResult(status={self.status.value!r}, tasks={len(self.tasks)}{failed}, "
            f"duration={self.duration:.3f}s)"
        )
