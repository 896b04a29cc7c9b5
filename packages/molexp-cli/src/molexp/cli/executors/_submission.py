"""The submission record: ``<run>/submission.json``, which scheduler job was asked to execute a run.

A job can start the moment it is queued, so the submitter never writes ``run.json`` (which
belongs to whoever executes the run); it writes this separate file instead, once per
submission, through the workspace's storage (so it works for S3 workspaces too)::

    {
        "schema_version": 1,
        "executor": "slurm",
        "job_id": "4127_3",
        "array_job_id": "4127",
        "array_task_id": 3,
        "job_name": "molexp-3f9c2a",
        "submitted_at": "2026-05-09T10:12:03.512+00:00",
        "submit_host": "login1",
        "output": "/home/me/lab/.molexp/slurm/20260509-101203-3f9c2a/task-3.out",
        "script": "/home/me/lab/.molexp/slurm/20260509-101203-3f9c2a/array.sh",
    }

``molexp runs list`` reads it to show the job's state, ``molexp runs cancel`` to ``scancel`` the
job, and ``molexp run`` to leave alone a run whose job is still queued. The job itself stamps its
id on the attempt's execution record (``slurm.job_id`` label) when it executes the run.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from molexp.workspace import Run

SUBMISSION_FILE = "submission.json"
SUBMISSION_SCHEMA_VERSION = 1


@dataclass(frozen=True)
class SubmissionRecord:
    """One submission of a run to a scheduler."""

    executor: str
    job_id: str
    """The id ``scancel``/``squeue`` know the job by: ``4127``, or ``4127_3`` for an array task."""
    job_name: str
    submitted_at: str
    submit_host: str
    array_job_id: str | None = None
    array_task_id: int | None = None
    output: str | None = None
    script: str | None = None
    schema_version: int = SUBMISSION_SCHEMA_VERSION

    def to_json(self) -> dict[str, Any]:
        """The record as JSON values (``schema_version`` first, as in every molexp record)."""
        data = asdict(self)
        return {"schema_version": data.pop("schema_version"), **data}

    @classmethod
    def from_json(cls, data: Any) -> SubmissionRecord | None:
        """The record ``data`` describes, or None when it is not one this version reads."""
        if not isinstance(data, dict):
            return None
        version = data.get("schema_version")
        if not isinstance(version, int) or version > SUBMISSION_SCHEMA_VERSION:
            return None
        try:
            return cls(
                executor=str(data["executor"]),
                job_id=str(data["job_id"]),
                job_name=str(data.get("job_name", "")),
                submitted_at=str(data.get("submitted_at", "")),
                submit_host=str(data.get("submit_host", "")),
                array_job_id=_optional_str(data.get("array_job_id")),
                array_task_id=_optional_int(data.get("array_task_id")),
                output=_optional_str(data.get("output")),
                script=_optional_str(data.get("script")),
                schema_version=version,
            )
        except (KeyError, TypeError, ValueError):
            return None


def _optional_str(value: Any) -> str | None:
    return None if value is None else str(value)


def _optional_int(value: Any) -> int | None:
    return None if value is None else int(value)


def now_iso() -> str:
    """The current UTC time, ISO 8601 with milliseconds."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def write_submission(run: Run, record: SubmissionRecord) -> None:
    """Record ``record`` as the run's latest submission (atomic; replaces an earlier one)."""
    run.storage.write_json(f"{run.key}/{SUBMISSION_FILE}", record.to_json())


def read_submission(run: Run) -> SubmissionRecord | None:
    """The run's latest submission, or None (never submitted, or an unreadable record)."""
    try:
        data = run.storage.read_json(f"{run.key}/{SUBMISSION_FILE}")
    except (FileNotFoundError, ValueError):
        return None
    return SubmissionRecord.from_json(data)


def read_submission_at(location: str) -> SubmissionRecord | None:
    """The submission recorded in the run directory ``location`` (a local path or a URL)."""
    if "://" not in location:
        try:
            with open(os.path.join(location, SUBMISSION_FILE), "rb") as f:
                return SubmissionRecord.from_json(json.loads(f.read()))
        except (OSError, ValueError):
            return None
    from molexp.workspace.storage import open_storage

    try:
        storage = open_storage(location)
        return SubmissionRecord.from_json(storage.read_json(SUBMISSION_FILE))
    except Exception:  # unreachable or unreadable: the listing shows no job
        return None
