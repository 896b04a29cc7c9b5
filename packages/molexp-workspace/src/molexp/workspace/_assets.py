"""Typed assets: every persistent byproduct, with its scope, producer and payload."""

from __future__ import annotations

import json
from collections import deque
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from molexp.workspace._records import VersionedRecord, utcnow

if TYPE_CHECKING:
    from molexp.workspace._workspace import Workspace


class AssetKind(StrEnum):
    """The kinds of asset; each has its own class with typed accessors."""

    DATA = "data"
    ARTIFACT = "artifact"
    LOG = "log"
    CHECKPOINT = "checkpoint"
    ERROR_TRACE = "error_trace"
    EXECUTION_STATE = "execution_state"


class ScopeLevel(StrEnum):
    """Where in the hierarchy an asset lives."""

    WORKSPACE = "workspace"
    PROJECT = "project"
    EXPERIMENT = "experiment"
    RUN = "run"


class AssetScope(BaseModel):
    """The scope an asset belongs to: the ids down to its level."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    level: ScopeLevel
    project_id: str | None = None
    experiment_id: str | None = None
    run_id: str | None = None


class Producer(BaseModel):
    """Which run, attempt and task made an asset, and which assets it had read (lineage)."""

    run_id: str
    experiment_id: str | None = None
    project_id: str | None = None
    execution_id: str | None = None
    task: str | None = None
    inputs: list[str] = Field(default_factory=list)

    @property
    def run_key(self) -> str:
        """``project/experiment/run``: the run's identity across the workspace."""
        return f"{self.project_id}/{self.experiment_id}/{self.run_id}"


class AssetRecord(VersionedRecord):
    """The authoritative record of one asset, written beside its payload by its writer."""

    id: str
    kind: AssetKind
    name: str
    scope: AssetScope
    payload: str
    record: str
    producer: Producer | None = None
    tags: list[str] = Field(default_factory=list)
    meta: dict[str, Any] = Field(default_factory=dict)
    size: int | None = None
    content_hash: str | None = None
    encoding: str | None = None
    previous: str | None = None
    created_at: datetime = Field(default_factory=utcnow)


class Asset:
    """One asset: its record, plus access to its payload through the workspace's storage."""

    kind: ClassVar[AssetKind]

    def __init__(self, workspace: Workspace, record: AssetRecord) -> None:
        self.workspace = workspace
        self.record = record

    @property
    def id(self) -> str:
        """The asset's unique id."""
        return self.record.id

    @property
    def name(self) -> str:
        """The asset's name within its scope."""
        return self.record.name

    @property
    def scope(self) -> AssetScope:
        """The scope the asset belongs to."""
        return self.record.scope

    @property
    def producer(self) -> Producer | None:
        """The run/execution/task that made it, if a run did."""
        return self.record.producer

    @property
    def tags(self) -> list[str]:
        """Free-form tags."""
        return self.record.tags

    @property
    def meta(self) -> dict[str, Any]:
        """Free-form metadata given when the asset was made."""
        return self.record.meta

    @property
    def size(self) -> int | None:
        """Payload size in bytes."""
        return self.record.size

    @property
    def content_hash(self) -> str | None:
        """``sha256:<hex>`` of the payload, where there is a fixed payload."""
        return self.record.content_hash

    @property
    def created_at(self) -> datetime:
        """When the asset was registered."""
        return self.record.created_at

    @property
    def path(self) -> Path | None:
        """The local path of the payload, when the workspace is local."""
        return self.workspace.storage.local_path(self.record.payload)

    @property
    def url(self) -> str:
        """The payload's URL (its absolute path when local)."""
        return self.workspace.storage.url_for(self.record.payload)

    def read_bytes(self) -> bytes:
        """The payload's bytes."""
        return self.workspace.storage.read_bytes(self.record.payload)

    def read_text(self, encoding: str = "utf-8") -> str:
        """The payload decoded as text."""
        return self.read_bytes().decode(encoding)

    def open(self) -> IO[bytes]:
        """Stream the payload."""
        return self.workspace.storage.open(self.record.payload, "rb")

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(name={self.name!r}, id={self.id!r}, scope={self.scope.level})"
        )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Asset) and other.id == self.id

    def __hash__(self) -> int:
        return hash(self.id)


class ArtifactAsset(Asset):
    """A file (or directory) a run saved with ``ctx.artifact.save``."""

    kind = AssetKind.ARTIFACT

    def read_json(self) -> Any:
        """The payload parsed as JSON."""
        return json.loads(self.read_bytes())

    def load(self) -> Any:
        """The value as it was saved: JSON values parsed, text as str, anything else as bytes."""
        if self.record.encoding == "directory":
            raise IsADirectoryError(
                f"{self.name!r} was saved from a directory: use its .path, or list it with "
                "the workspace storage"
            )
        if self.record.encoding == "json":
            return self.read_json()
        if self.record.encoding == "text":
            return self.read_text()
        return self.read_bytes()


class LogAsset(Asset):
    """A line log written with ``ctx.log(name).append(line)``."""

    kind = AssetKind.LOG

    def lines(self) -> list[str]:
        """Every line of the log."""
        return self.read_text().splitlines()

    def tail(self, n: int = 10) -> list[str]:
        """The last ``n`` lines, read from the end without loading the whole log into a list."""
        with self.open() as stream:
            return [line.decode().rstrip("\n") for line in deque(stream, maxlen=n)]

    @property
    def size(self) -> int | None:
        """The log's current size (it may grow while its run is running)."""
        try:
            return self.workspace.storage.size(self.record.payload)
        except FileNotFoundError:
            return self.record.size


class CheckpointAsset(Asset):
    """One checkpoint in a run's chain for its name; ``previous()`` walks back."""

    kind = AssetKind.CHECKPOINT

    @property
    def step(self) -> int:
        """The position in the chain (1 for the first checkpoint of that name)."""
        return int(self.record.meta.get("step", 0))

    def load(self) -> Any:
        """The checkpoint's data as saved (JSON values, text or bytes)."""
        if self.record.encoding == "directory":
            raise IsADirectoryError(
                f"{self.name!r} was saved from a directory: use its .path, or list it with "
                "the workspace storage"
            )
        if self.record.encoding == "json":
            return json.loads(self.read_bytes())
        if self.record.encoding == "text":
            return self.read_text()
        return self.read_bytes()

    def previous(self) -> CheckpointAsset | None:
        """The checkpoint before this one in the chain, if any."""
        if self.record.previous is None:
            return None
        found = self.workspace.catalog.get(self.record.previous)
        return found if isinstance(found, CheckpointAsset) else None

    def chain(self) -> list[CheckpointAsset]:
        """The whole chain up to this checkpoint, oldest first."""
        chain: list[CheckpointAsset] = [self]
        current: CheckpointAsset | None = self.previous()
        while current is not None:
            chain.append(current)
            current = current.previous()
        return chain[::-1]


class ErrorTraceAsset(Asset):
    """The traceback of a failed attempt (``execution/<id>/error.txt``)."""

    kind = AssetKind.ERROR_TRACE

    @property
    def traceback(self) -> str:
        """The full traceback text."""
        return self.read_text()


class ExecutionStateAsset(Asset):
    """The workflow runtime's saved per-task state of a run."""

    kind = AssetKind.EXECUTION_STATE

    def load(self) -> dict[str, Any]:
        """The saved state."""
        state: dict[str, Any] = json.loads(self.read_bytes())
        return state


class DataAsset(Asset):
    """Data imported into a scope's ``data_assets/`` library; the payload keeps its file name."""

    kind = AssetKind.DATA

    @property
    def directory(self) -> Path | None:
        """The local ``payload/`` directory holding the imported file or directory."""
        key = self.record.payload.rsplit("/", 1)[0]
        return self.workspace.storage.local_path(key)

    def files(self) -> list[str]:
        """Paths of the payload's files, relative to ``payload/``."""
        storage = self.workspace.storage
        base = self.record.payload.rsplit("/", 1)[0]
        found: list[str] = []
        pending = [""]
        while pending:
            rel = pending.pop()
            key = f"{base}/{rel}" if rel else base
            if storage.is_dir(key):
                pending.extend(f"{rel}/{child}" if rel else child for child in storage.list(key))
            else:
                found.append(rel)
        return sorted(found)


ASSET_CLASSES: dict[AssetKind, type[Asset]] = {
    cls.kind: cls
    for cls in (
        DataAsset,
        ArtifactAsset,
        LogAsset,
        CheckpointAsset,
        ErrorTraceAsset,
        ExecutionStateAsset,
    )
}


def asset_from_record(workspace: Workspace, record: AssetRecord) -> Asset:
    """The typed asset for ``record``."""
    return ASSET_CLASSES[record.kind](workspace, record)
