"""Cleaning up after crashes: the debris of interrupted writers, found and removed.

A process killed mid-write leaves bytes that nothing lists and nothing removes: temporary files
of atomic writes (``.<name>.<pid>.<hex>.tmp`` locally, ``.<name>.<hex>.tmp`` on other fsspec
stores), data-asset directories whose import never wrote ``asset.json``, and run artifact or
checkpoint payloads whose record was never written (or was withdrawn by a re-save that did not
finish). :func:`collect_garbage` looks only where molexp itself writes, and takes only what is
older than a threshold: anything it cannot be sure is garbage is left alone.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from molexp.workspace._errors import MolexpError
from molexp.workspace._metadata import RunMetadata, RunStatus
from molexp.workspace._records import read_record

if TYPE_CHECKING:
    from molexp.workspace._workspace import Workspace
    from molexp.workspace.storage import Storage

#: A temporary file of an atomic write (see storage/_local.py and storage/_fsspec.py).
TEMPORARY = re.compile(r"\A\..+\.(?:[0-9]+\.)?[0-9a-f]{8}\.tmp\Z", re.DOTALL)
#: A checkpoint payload: ``<step><suffix of the saved file>`` (see ``save_checkpoint``).
_STEP = re.compile(r"\A([0-9]{6})(?:\..*)?\Z", re.DOTALL)

GarbageKind = Literal["temporary", "data-asset", "artifact", "checkpoint"]


@dataclass(frozen=True)
class GarbageItem:
    """One piece of debris: its store key, what it is, its size in bytes, when it was last
    written, and (``error``) why it could not be removed."""

    key: str
    kind: GarbageKind
    size: int
    modified: datetime
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "key": self.key,
            "kind": self.kind,
            "size": self.size,
            "modified": self.modified.isoformat(),
            "error": self.error,
        }


@dataclass(frozen=True)
class GarbageReport:
    """What :meth:`Workspace.collect_garbage` removed (or, with ``dry_run``, would remove)."""

    url: str
    dry_run: bool
    older_than: timedelta
    items: tuple[GarbageItem, ...]

    @property
    def removed(self) -> tuple[GarbageItem, ...]:
        """The items removed (with ``dry_run``: that would be removed)."""
        return tuple(item for item in self.items if item.error is None)

    @property
    def failed(self) -> tuple[GarbageItem, ...]:
        """The items whose removal failed; each says why in ``error``."""
        return tuple(item for item in self.items if item.error is not None)

    @property
    def total_bytes(self) -> int:
        """Bytes freed (with ``dry_run``: that would be freed)."""
        return sum(item.size for item in self.removed)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "workspace": self.url,
            "dry_run": self.dry_run,
            "older_than_seconds": self.older_than.total_seconds(),
            "total_bytes": self.total_bytes,
            "removed": [item.to_json() for item in self.removed],
            "failed": [item.to_json() for item in self.failed],
        }


@dataclass(frozen=True)
class _Found:
    """A candidate: removed only if it is still unrecorded when its turn comes (``record``)."""

    key: str
    kind: GarbageKind
    is_dir: bool
    size: int
    modified: datetime
    record: str | None = None


class _Scanner:
    """Walks the layout of one workspace (DESIGN §3) and yields the debris older than ``cutoff``."""

    def __init__(self, storage: Storage, cutoff: datetime) -> None:
        self.storage = storage
        self.cutoff = cutoff
        self.local = storage.local_path("") is not None

    def scan(self) -> Iterator[_Found]:
        from molexp.workspace._capture import ENVIRONMENTS_DIR

        yield from self._temporaries("")
        yield from self._temporaries(ENVIRONMENTS_DIR)
        yield from self._data_assets("data_assets")
        for project in self._dirs("projects"):
            project_key = f"projects/{project}"
            yield from self._temporaries(project_key)
            yield from self._data_assets(f"{project_key}/data_assets")
            for experiment in self._dirs(f"{project_key}/experiments"):
                experiment_key = f"{project_key}/experiments/{experiment}"
                yield from self._temporaries(experiment_key)
                yield from self._data_assets(f"{experiment_key}/data_assets")
                for run_dir in self._dirs(f"{experiment_key}/runs"):
                    if run_dir.startswith("run-"):
                        yield from self._run(f"{experiment_key}/runs/{run_dir}")

    # -- where debris is found ------------------------------------------------------------------

    def _dirs(self, key: str) -> list[str]:
        return [name for name, is_dir in self.storage.list_entries(key) if is_dir]

    def _files(self, key: str) -> set[str]:
        return {name for name, is_dir in self.storage.list_entries(key) if not is_dir}

    def _temporaries(self, key: str, *, recursive: bool = False) -> Iterator[_Found]:
        """Temporary files directly in ``key`` (and below it, with ``recursive``)."""
        for name, is_dir in self.storage.list_entries(key):
            child = f"{key}/{name}" if key else name
            if is_dir:
                if recursive:
                    yield from self._temporaries(child, recursive=True)
            elif TEMPORARY.match(name):
                yield from self._if_old(child, "temporary", is_dir=False)

    def _data_assets(self, library: str) -> Iterator[_Found]:
        """Asset directories without ``asset.json``; beside a record, only its own temporary."""
        for asset_id in self._dirs(library):
            asset_key = f"{library}/{asset_id}"
            entries = self.storage.list_entries(asset_key)
            if any(name == "asset.json" and not is_dir for name, is_dir in entries):
                for name, is_dir in entries:
                    if not is_dir and name.startswith(".asset.json.") and TEMPORARY.match(name):
                        yield from self._if_old(f"{asset_key}/{name}", "temporary", is_dir=False)
                continue
            yield from self._if_old(
                asset_key, "data-asset", is_dir=True, record=f"{asset_key}/asset.json"
            )

    def _run(self, run_key: str) -> Iterator[_Found]:
        """Temporaries of the run's own files; unrecorded payloads unless the run may be live."""
        yield from self._temporaries(run_key)
        for sub in (".assets", "execution", "logs"):
            yield from self._temporaries(f"{run_key}/{sub}", recursive=True)
        if not self._settled(run_key):
            return
        artifacts = f"{run_key}/artifacts"
        recorded = self._files(f"{run_key}/.assets/artifact")
        for name, is_dir in self.storage.list_entries(artifacts):
            if f"{name}.json" in recorded:
                continue
            kind: GarbageKind = "temporary" if TEMPORARY.match(name) and not is_dir else "artifact"
            record = f"{run_key}/.assets/artifact/{name}.json"
            yield from self._if_old(f"{artifacts}/{name}", kind, is_dir=is_dir, record=record)
        for chain in self._dirs(f"{run_key}/.ckpt"):
            chain_key = f"{run_key}/.ckpt/{chain}"
            recorded = self._files(f"{run_key}/.assets/checkpoint/{chain}")
            for name, is_dir in self.storage.list_entries(chain_key):
                step = _STEP.match(name)
                if not is_dir and TEMPORARY.match(name):
                    yield from self._if_old(f"{chain_key}/{name}", "temporary", is_dir=False)
                elif step is not None and f"{step[1]}.json" not in recorded:
                    record = f"{run_key}/.assets/checkpoint/{chain}/{step[1]}.json"
                    yield from self._if_old(
                        f"{chain_key}/{name}", "checkpoint", is_dir=is_dir, record=record
                    )

    def _settled(self, run_key: str) -> bool:
        """Whether no attempt of the run can be saving payloads now: its record reads, and it is
        not running, or its owner is known to be dead."""
        from molexp.workspace._ownership import Liveness, owner_liveness

        try:
            meta = read_record(self.storage, f"{run_key}/run.json", RunMetadata)
        except (FileNotFoundError, MolexpError):
            return False
        if meta.status != RunStatus.RUNNING:
            return True
        return meta.owner is not None and owner_liveness(meta.owner) == Liveness.DEAD

    # -- age and size ---------------------------------------------------------------------------

    def _if_old(
        self, key: str, kind: GarbageKind, *, is_dir: bool, record: str | None = None
    ) -> Iterator[_Found]:
        """``key`` as a candidate if everything in it is older than the cutoff."""
        measured = self._measure_local(key, kind) if self.local else self._measure(key, is_dir)
        if measured is None:
            return
        size, newest = measured
        if newest <= self.cutoff:
            yield _Found(key, kind, is_dir, size, newest, record)

    def _measure_local(self, key: str, kind: GarbageKind) -> tuple[int, datetime] | None:
        """Size and newest time of everything in ``key`` (directories too, since a file being
        created touches its directory). A data asset holding a link is not garbage: a hard link
        or symlink frees nothing, and may be an import still hashing what it linked."""
        path = self.storage.local_path(key)
        if path is None:
            return None
        try:
            info = os.lstat(path)
            infos = [info]
            if stat.S_ISDIR(info.st_mode):
                for dirpath, dirnames, filenames in os.walk(path):
                    infos.extend(os.lstat(os.path.join(dirpath, n)) for n in dirnames + filenames)
        except OSError:
            return None  # changing under us: somebody is at work there
        linked = any(
            stat.S_ISLNK(i.st_mode) or (i.st_nlink > 1 and not stat.S_ISDIR(i.st_mode))
            for i in infos
        )
        if kind == "data-asset" and linked:
            return None
        size = sum(i.st_size for i in infos if stat.S_ISREG(i.st_mode))
        newest = max(i.st_mtime for i in infos)
        return size, datetime.fromtimestamp(newest, UTC)

    def _measure(self, key: str, is_dir: bool) -> tuple[int, datetime] | None:
        """Size and newest time of the files in ``key``; None if a time is unknown (or the
        files change under us)."""
        storage = self.storage
        size = 0
        newest: datetime | None = None
        pending = [(key, is_dir)]
        try:
            while pending:
                current, current_is_dir = pending.pop()
                if current_is_dir:
                    pending.extend(
                        (f"{current}/{name}", sub) for name, sub in storage.list_entries(current)
                    )
                    continue
                stamp = storage.modified(current)
                if stamp is None:
                    return None
                size += storage.size(current)
                newest = stamp if newest is None else max(newest, stamp)
        except (OSError, MolexpError):
            return None
        return None if newest is None else (size, newest)


def collect_garbage(workspace: Workspace, *, dry_run: bool, older_than: timedelta) -> GarbageReport:
    """Remove the debris of interrupted writers older than ``older_than``; see the module doc.

    Each item is removed on its own; one that cannot be removed is reported with the reason
    (``GarbageReport.failed``), never raised.
    """
    if not isinstance(dry_run, bool):
        raise TypeError(f"dry_run must be True or False, got {dry_run!r}")
    if not isinstance(older_than, timedelta) or older_than < timedelta(0):
        raise ValueError(
            f"older_than must be a datetime.timedelta of zero or more, got {older_than!r} "
            "(for example timedelta(hours=1))"
        )
    storage = workspace.storage
    items: list[GarbageItem] = []
    if workspace.is_materialized:
        for found in _Scanner(storage, datetime.now(UTC) - older_than).scan():
            error = None
            if not dry_run:
                try:
                    if found.record is not None and storage.exists(found.record):
                        continue  # recorded since it was found: a writer finished just in time
                    storage.remove(found.key, recursive=found.is_dir)
                except (OSError, MolexpError) as exc:
                    error = f"{type(exc).__name__}: {exc}"
            items.append(GarbageItem(found.key, found.kind, found.size, found.modified, error))
    return GarbageReport(storage.url, dry_run, older_than, tuple(items))
