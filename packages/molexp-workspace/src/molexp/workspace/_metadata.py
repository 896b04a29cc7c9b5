"""The pydantic models of every JSON record in a workspace."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from molexp.workspace._provenance import Provenance
from molexp.workspace._records import VersionedRecord, utcnow


class WorkspaceMetadata(VersionedRecord):
    """``workspace.json``."""

    id: str
    name: str
    description: str | None = None
    created_at: datetime = Field(default_factory=utcnow)


class ProjectMetadata(VersionedRecord):
    """``projects/<id>/project.json``."""

    id: str
    name: str
    description: str | None = None
    owner: str | None = None
    tags: list[str] = Field(default_factory=list)
    config: dict[str, Any] = Field(default_factory=dict)
    created_at: datetime = Field(default_factory=utcnow)


class ExperimentMetadata(VersionedRecord):
    """``experiments/<id>/experiment.json``: the repeatable definition."""

    id: str
    name: str
    project_id: str
    description: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    n_replicas: int = 1
    seeds: list[int] | None = None
    workflow_source: str | None = None
    workflow_type: str | None = None
    git_commit: str | None = None
    tags: list[str] = Field(default_factory=list)
    created_at: datetime = Field(default_factory=utcnow)


class RunStatus(StrEnum):
    """Where a run is in its lifecycle."""

    CREATED = "created"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_terminal(self) -> bool:
        """Whether the run has finished (succeeded, failed or cancelled)."""
        return self in (RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED)


class ErrorInfo(BaseModel):
    """Why an attempt failed; the full traceback is in ``traceback_path`` under the run dir."""

    model_config = ConfigDict(extra="allow", defer_build=True)

    type: str
    message: str
    execution_id: str | None = None
    traceback_path: str | None = None
    occurred_at: datetime = Field(default_factory=utcnow)


class OwnerInfo(BaseModel):
    """Who is executing a running run: enough to tell a live owner from a vanished one."""

    model_config = ConfigDict(extra="allow", defer_build=True)

    host: str
    pid: int
    process_start: str | None = None
    boot_id: str | None = None
    execution_id: str
    heartbeat_at: datetime = Field(default_factory=utcnow)
    heartbeat_interval: float = 30.0


class ExecutionRecord(BaseModel):
    """One attempt at executing a run."""

    model_config = ConfigDict(extra="allow", defer_build=True)

    execution_id: str
    status: RunStatus = RunStatus.RUNNING
    started_at: datetime = Field(default_factory=utcnow)
    finished_at: datetime | None = None
    host: str | None = None
    pid: int | None = None
    error: ErrorInfo | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    provenance: Provenance | None = None
    """Where, how and from which code this attempt ran (captured when it started)."""
    inputs: list[str] = Field(default_factory=list)
    """The ids of the assets this attempt read through ``find_asset``/``get_data_dir``."""


class RunMetadata(VersionedRecord):
    """``runs/run-<id>/run.json``: one run, its state, results and every attempt."""

    id: str
    experiment_id: str
    project_id: str
    status: RunStatus = RunStatus.CREATED
    parameters: dict[str, Any] = Field(default_factory=dict)
    created_at: datetime = Field(default_factory=utcnow)
    started_at: datetime | None = None
    finished_at: datetime | None = None
    profile_name: str | None = None
    config: dict[str, Any] = Field(default_factory=dict)
    config_hash: str | None = None
    workflow_snapshot: dict[str, Any] | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    results: dict[str, Any] = Field(default_factory=dict)
    execution_history: list[ExecutionRecord] = Field(default_factory=list)
    error: ErrorInfo | None = None
    owner: OwnerInfo | None = None
