"""What an execution attempt records about where, how and from which code it ran.

Every :class:`~molexp.workspace.ExecutionRecord` gets a :class:`Provenance` when its attempt
starts: host, Python, platform, the command line, the git state of the workflow's source and
references to the larger facts kept as files beside the run (the installed distributions, the
uncommitted diff, a copy of the workflow source). Records are append-only: a new attempt appends
its own provenance and never rewrites an earlier one.

The values are captured, never typed by hand, and capturing never fails a run: what could not be
found is ``None`` with the reason in ``GitState.detail`` or ``Provenance.errors``.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field

from molexp.workspace._records import utcnow

if TYPE_CHECKING:
    from molexp.workspace._metadata import ExecutionRecord
    from molexp.workspace._run import Run

# The values of GitState.status.
GIT_CLEAN = "clean"
GIT_DIRTY = "dirty"
GIT_NO_SOURCE = "no-source"
GIT_SOURCE_MISSING = "source-missing"
GIT_NOT_A_REPOSITORY = "not-a-repository"
GIT_MISSING = "git-missing"
GIT_ERROR = "error"


class ProvenanceFile(BaseModel):
    """A file kept beside the run for the record (not a catalog asset: it is not a product of the
    run, so it never shows in asset listings or in ``find_asset``)."""

    model_config = ConfigDict(extra="allow", defer_build=True)

    path: str
    """Where it is: relative to the run directory (``execution/<execution_id>/...``), or to the
    workspace root when ``scope`` is ``"workspace"``."""
    content_hash: str
    """``sha256:<hex>`` of its bytes."""
    size: int
    scope: str = "run"
    """``"run"``, or ``"workspace"`` for a file shared by every run that recorded the same bytes
    (the installed distributions: ``.molexp/environments/<hex>.json``)."""

    def key(self, run: Run) -> str:
        """The storage key of the file, for the attempt of ``run`` that recorded it."""
        return self.path if self.scope == "workspace" else f"{run.key}/{self.path}"


class GitState(BaseModel):
    """The git work tree holding the workflow source, as it was when the attempt started.

    ``status`` is one of ``clean``, ``dirty`` (tracked files differ from ``commit``: see
    ``diff_hash`` and the ``diff`` file), ``no-source`` (no workflow source path is known),
    ``source-missing``, ``not-a-repository``, ``git-missing`` (no ``git`` executable: the commit
    and branch are read from ``.git`` directly, the dirty state is unknown) or ``error`` (git
    failed or timed out; ``detail`` says how).
    """

    model_config = ConfigDict(extra="allow", defer_build=True)

    status: str
    source: str | None = None
    """The path that was examined."""
    root: str | None = None
    """The top directory of the work tree."""
    commit: str | None = None
    branch: str | None = None
    """The checked-out branch; None when HEAD is detached (or unknown)."""
    dirty: bool | None = None
    """Whether tracked files differ from ``commit`` (staged or not); None when unknown."""
    diff_hash: str | None = None
    """``sha256:<hex>`` of ``git diff HEAD --binary`` when dirty."""
    diff: ProvenanceFile | None = None
    """The diff itself, kept beside the run (absent when larger than the limit)."""
    untracked: int | None = None
    """How many untracked, not ignored files the tree has (not part of the diff)."""
    remote: str | None = None
    """The ``origin`` remote's URL, with any credentials stripped."""
    detail: str | None = None
    """Why something is missing or unknown."""


class Provenance(BaseModel):
    """Where, how and from which code one attempt ran (``ExecutionRecord.provenance``)."""

    model_config = ConfigDict(extra="allow", defer_build=True)

    captured_at: datetime = Field(default_factory=utcnow)
    host: str | None = None
    user: str | None = None
    """The operating-system account that ran the attempt."""
    python: str | None = None
    """The Python version, e.g. ``3.11.7``."""
    python_implementation: str | None = None
    executable: str | None = None
    platform: str | None = None
    argv: list[str] = Field(default_factory=list)
    """The command line (``sys.argv``), with credentials and secret option values redacted."""
    cwd: str | None = None
    git: GitState = Field(default_factory=lambda: GitState(status=GIT_NO_SOURCE))
    source_file: str | None = None
    """The workflow source file (absolute path), when known."""
    source: ProvenanceFile | None = None
    """A copy of ``source_file`` as it was when the attempt started."""
    environment: ProvenanceFile | None = None
    """The installed distributions (``{"distributions": {name: version}}``), as JSON: one file
    per distinct set in the workspace, shared by every attempt that had it."""
    environment_hash: str | None = None
    """A hash of the name → version map: equal hashes, equal installed versions."""
    distributions: int | None = None
    """How many distributions were installed."""
    capture_ms: float | None = None
    """How long capturing took."""
    errors: list[str] = Field(default_factory=list)
    """What could not be captured, and why (capturing never fails a run)."""


def latest_provenance(run: Run) -> tuple[ExecutionRecord, Provenance] | None:
    """The newest attempt of ``run`` that recorded provenance, with it; None if none did."""
    for record in reversed(run.metadata.execution_history):
        if record.provenance is not None:
            return record, record.provenance
    return None


def read_provenance_file(run: Run, file: ProvenanceFile) -> bytes:
    """The bytes of a file kept for ``run``'s provenance (beside it, or shared in the workspace)."""
    return run.storage.read_bytes(file.key(run))


def load_environment(run: Run, provenance: Provenance) -> dict[str, str] | None:
    """The installed distributions (name → version) an attempt recorded; None if it kept none
    (or the file cannot be read)."""
    if provenance.environment is None:
        return None
    try:
        payload = json.loads(read_provenance_file(run, provenance.environment))
    except (FileNotFoundError, ValueError):
        return None
    found = payload.get("distributions") if isinstance(payload, dict) else None
    if not isinstance(found, dict):
        return None
    return {str(name): str(version) for name, version in found.items()}
