"""WorkflowSnapshotRef: what a run records about the workflow that executed it.

The workspace layer stores it as opaque JSON in ``RunMetadata.workflow_snapshot``; this model is
what gives that JSON its shape (``WorkflowSnapshotRef.from_run(run)`` reads it back).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:
    from molexp.workflow._workflow import Workflow
    from molexp.workspace import Run

_SHA = re.compile(r"[0-9a-f]{40}([0-9a-f]{24})?")


class WorkflowSnapshotRef(BaseModel):
    """Which workflow, from which code, under which config: enough to find and compare it later."""

    model_config = ConfigDict(frozen=True, extra="allow")

    workflow_id: str
    """The hash of the declaration (tasks, dependencies, channels)."""
    name: str
    source_file: str | None = None
    """The file that declared the workflow."""
    entrypoint: str | None = None
    """``module:attribute`` that imports the workflow, when known."""
    code_hash: str | None = None
    """A hash of every task's code."""
    git_commit: str | None = None
    """The commit checked out where ``source_file`` lives, if it is in a git repository."""
    config_hash: str | None = None
    """The hash of the profile config the run executed with."""

    @classmethod
    def of(cls, workflow: Workflow, *, config_hash: str | None = None) -> WorkflowSnapshotRef:
        """The reference to ``workflow`` as it is now (its code and git commit included)."""
        return cls(
            workflow_id=workflow.workflow_id,
            name=workflow.name,
            source_file=workflow.source_file,
            entrypoint=workflow.entrypoint,
            code_hash=workflow.code_hash(),
            git_commit=git_commit(workflow.source_file),
            config_hash=config_hash,
        )

    @classmethod
    def from_run(cls, run: Run) -> WorkflowSnapshotRef | None:
        """The reference a run recorded, or None if it has none."""
        payload = run.metadata.workflow_snapshot
        return cls.model_validate(payload) if payload is not None else None


def _git_dir(start: Path) -> Path | None:
    for directory in (start, *start.parents):
        marker = directory / ".git"
        if marker.is_dir():
            return marker
        if marker.is_file():  # a worktree or submodule: "gitdir: <path>"
            text = marker.read_text(errors="replace").strip()
            if text.startswith("gitdir:"):
                return (directory / text.removeprefix("gitdir:").strip()).resolve()
            return None
    return None


def git_commit(path: str | None) -> str | None:
    """The commit checked out in the git repository holding ``path``; None outside one.

    Read from ``.git`` directly (HEAD, loose refs, packed-refs), which costs microseconds where
    running ``git`` costs milliseconds on every tracked execution.
    """
    if path is None:
        return None
    try:
        git_dir = _git_dir(Path(path).resolve().parent)
        if git_dir is None:
            return None
        head = (git_dir / "HEAD").read_text().strip()
        if not head.startswith("ref:"):
            return head if _SHA.fullmatch(head) else None
        ref = head.removeprefix("ref:").strip()
        common = git_dir
        if (git_dir / "commondir").is_file():
            common = (git_dir / (git_dir / "commondir").read_text().strip()).resolve()
        for base in (git_dir, common):
            loose = base / ref
            if loose.is_file():
                sha = loose.read_text().strip()
                return sha if _SHA.fullmatch(sha) else None
        packed = common / "packed-refs"
        if packed.is_file():
            for line in packed.read_text().splitlines():
                sha, _, name = line.partition(" ")
                if name == ref and _SHA.fullmatch(sha):
                    return sha
    except OSError:
        return None
    return None
