"""The JSON shapes of the API (they make its OpenAPI description)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from molexp.server._content import media_policy
from molexp.workspace import (
    SCHEMA_VERSION,
    AssetKind,
    AssetRecord,
    ErrorInfo,
    ExecutionRecord,
    ExperimentMetadata,
    ProjectMetadata,
    RunMetadata,
)

if TYPE_CHECKING:
    from molexp.server._runindex import RunRow, Snapshot
    from molexp.workspace import Asset, Experiment, Project, Workspace

#: The models below extend a workspace record with what the API adds; unlike the record, they
#: drop undeclared fields and write a non-finite number as null (plain JSON). Each also hides the
#: record's ``schema_version`` (and an asset's storage keys) and marks ``created_at`` required,
#: since the API always sends it.
_OUT_CONFIG = ConfigDict(extra="ignore", ser_json_inf_nan="null")


class ExperimentOut(ExperimentMetadata):
    """An experiment's definition and how many of its runs are in each status."""

    model_config = _OUT_CONFIG

    schema_version: int = Field(SCHEMA_VERSION, exclude=True)
    created_at: datetime
    run_total: int = 0
    run_counts: dict[str, int] = Field(default_factory=dict)
    unreadable_runs: list[str] = Field(default_factory=list)

    @classmethod
    def of(cls, experiment: Experiment, runs: Snapshot | None) -> ExperimentOut:
        """The experiment with the counts of ``runs``."""
        return cls.model_validate(
            {
                **dict(experiment.metadata),
                "run_total": len(runs.rows) if runs else 0,
                "run_counts": dict(runs.counts) if runs else {},
                "unreadable_runs": list(runs.problems) if runs else [],
            }
        )


class ProjectOut(ProjectMetadata):
    """A project and (in the tree) its experiments."""

    model_config = _OUT_CONFIG

    schema_version: int = Field(SCHEMA_VERSION, exclude=True)
    created_at: datetime
    experiments: list[ExperimentOut] | None = None

    @classmethod
    def of(cls, project: Project, experiments: list[ExperimentOut] | None = None) -> ProjectOut:
        """The project, with ``experiments`` when given."""
        return cls.model_validate({**dict(project.metadata), "experiments": experiments})


class WorkspaceOut(BaseModel):
    """The workspace and its tree of projects and experiments, with run counts by status."""

    id: str
    name: str
    description: str | None = None
    url: str
    created_at: datetime
    projects: list[ProjectOut]

    @classmethod
    def of(cls, workspace: Workspace, projects: list[ProjectOut]) -> WorkspaceOut:
        """The workspace with its tree."""
        meta = workspace.metadata
        return cls(
            id=meta.id,
            name=meta.name,
            description=meta.description,
            url=workspace.url,
            created_at=meta.created_at,
            projects=projects,
        )


class ErrorSummary(BaseModel):
    """The type and message of a run's latest error."""

    type: str
    message: str | None = None


class RunSummary(BaseModel):
    """One row of the runs table."""

    id: str
    status: str
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    duration_s: float | None = None
    profile_name: str | None = None
    config_hash: str | None = None
    attempts: int = 0
    parameters: dict[str, Any] = Field(default_factory=dict)
    results: dict[str, Any] = Field(default_factory=dict)
    labels: dict[str, str] = Field(default_factory=dict)
    error: ErrorSummary | None = None

    @classmethod
    def of(cls, row: RunRow) -> RunSummary:
        """The summary of an index row."""
        return cls(
            id=row.id,
            status=row.status.value,
            created_at=row.created_at,
            started_at=row.started_at,
            finished_at=row.finished_at,
            duration_s=row.duration,
            profile_name=row.profile_name,
            config_hash=row.config_hash,
            attempts=row.attempts,
            parameters=row.parameters,
            results=row.results,
            labels=row.labels,
            error=ErrorSummary(type=row.error_type, message=row.error_message)
            if row.error_type is not None
            else None,
        )


class RunPage(BaseModel):
    """A page of an experiment's runs, filtered and sorted on the server."""

    total: int = Field(description="runs matching the filters")
    offset: int
    limit: int
    sort: str
    order: str
    filters: list[str]
    statuses: list[str]
    param_columns: list[str]
    result_columns: list[str]
    counts: dict[str, int] = Field(description="runs of the experiment in each status")
    items: list[RunSummary]


class RunOut(BaseModel):
    """A run's whole record, and what can be said of its owner."""

    project_id: str
    experiment_id: str
    liveness: str = Field(description="not-running, alive, dead or stale")
    cancel_requested: bool
    run: RunMetadata


class RunErrorOut(BaseModel):
    """Why a run failed: the latest error and the traceback of each failed attempt."""

    error: ErrorInfo | None
    traceback: str | None = Field(None, description="the latest failed attempt's traceback")
    tracebacks: dict[str, str] = Field(
        default_factory=dict, description="traceback by execution id"
    )


class AssetOut(AssetRecord):
    """An asset's record, with how the server serves its payload."""

    model_config = _OUT_CONFIG

    schema_version: int = Field(SCHEMA_VERSION, exclude=True)
    payload: str = Field(exclude=True)
    record: str = Field(exclude=True)
    previous: str | None = Field(None, exclude=True)
    created_at: datetime
    media_type: str = Field(description="the Content-Type its content is served with")
    inline: bool = Field(description="whether a browser may show it (else: download only)")
    content_url: str
    tail_url: str | None = None

    @classmethod
    def of(cls, asset: Asset) -> AssetOut:
        """The API form of an asset (a log's size is its current size)."""
        record = asset.record
        policy = media_policy(record.name, record.encoding)
        return cls.model_validate(
            {
                **dict(record),
                "size": asset.size,
                "media_type": policy.media_type,
                "inline": policy.inline,
                "content_url": f"/api/assets/{record.id}/content",
                "tail_url": f"/api/assets/{record.id}/tail"
                if record.kind == AssetKind.LOG
                else None,
            }
        )


class FileOut(BaseModel):
    """One file of a directory payload."""

    path: str
    size: int | None = None
    content_url: str


class FilesOut(BaseModel):
    """The files of a directory payload."""

    asset_id: str
    files: list[FileOut]
    truncated: bool


class TailOut(BaseModel):
    """A piece of a log: pass ``offset`` back to get what is written after it."""

    asset_id: str
    text: str
    offset: int = Field(description="the byte offset to ask from next time")
    size: int = Field(description="the log's size when read")
    reset: bool = Field(False, description="the log was replaced: drop what was shown")


class CancelIn(BaseModel):
    """The explicit confirmation of a cancel: the run's id, typed again."""

    confirm: str = Field(description="must equal the run id")
    reason: str | None = None


class CancelOut(BaseModel):
    """What a cancel did."""

    run_id: str
    status: str
    cancel_requested: bool


class HistoryOut(BaseModel):
    """Every execution attempt of a run, oldest first."""

    run_id: str
    execution_history: list[ExecutionRecord]


class HealthOut(BaseModel):
    """The server is up."""

    status: str
    workspace: str
    version: str
