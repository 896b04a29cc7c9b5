"""An in-process index of one experiment's runs, so a request never reads 10,000 ``run.json``.

The authoritative record of a run is its ``run.json``, written by its owner alone; this index is a
cache derived from those files and never written anywhere. A refresh looks only at what changed:

* On a local store, one ``scandir`` of ``runs/`` and one ``stat`` of each ``run.json``; a run whose
  ``(mtime, size, inode)`` is unchanged is not read again (``run.json`` is replaced by an atomic
  rename, so every write gives it a new inode).
* On a remote store (S3, ...), which has no cheap stat through the storage seam, one listing of
  ``runs/`` finds new and removed runs; runs that are not finished are re-read at every refresh,
  and every run is re-read by a full sweep every :attr:`RunIndex.full_interval` seconds (a
  finished run changes only when it is executed again).

A request is answered from the current snapshot of the index: as it is when it is younger than
:attr:`RunIndex.min_interval` (0.5 s), at once while a background thread refreshes it when it is
younger than :attr:`RunIndex.max_stale` (5 s) — so a page polled every few seconds never waits for
a scan — and only after a refresh when it is older. Sorted, filtered selections of a snapshot are
memoised, so paging through a big experiment costs a slice.
"""

from __future__ import annotations

import os
import stat
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from molexp.workspace import (
    CorruptRecordError,
    InvalidNameError,
    RunMetadata,
    RunStatus,
    check_id,
    flatten_keys,
    parse_record,
)

if TYPE_CHECKING:
    from molexp.workspace import Experiment
    from molexp.workspace.storage import Storage

RUN_FILE = "run.json"
_MAX_COLUMNS = 40


@dataclass(frozen=True, slots=True)
class RunRow:
    """What the runs table, the filters and the sorts need of one run."""

    id: str
    status: RunStatus
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    profile_name: str | None
    config_hash: str | None
    parameters: dict[str, Any]
    results: dict[str, Any]
    labels: dict[str, str]
    error_type: str | None
    error_message: str | None
    attempts: int
    flat_params: dict[str, Any]
    flat_results: dict[str, Any]
    #: ``created_at`` as a POSIX timestamp: comparing aware datetimes is slow, floats are not.
    created_ts: float

    @classmethod
    def from_metadata(cls, meta: RunMetadata) -> RunRow:
        """The row of one run record."""
        error = meta.error
        return cls(
            id=meta.id,
            status=meta.status,
            created_at=meta.created_at,
            started_at=meta.started_at,
            finished_at=meta.finished_at,
            profile_name=meta.profile_name,
            config_hash=meta.config_hash,
            parameters=meta.parameters,
            results=meta.results,
            labels=meta.labels,
            error_type=error.type if error is not None else None,
            error_message=error.message if error is not None else None,
            attempts=len(meta.execution_history),
            flat_params=flatten_keys(meta.parameters),
            flat_results=flatten_keys(meta.results),
            created_ts=meta.created_at.timestamp(),
        )

    @property
    def duration(self) -> float | None:
        """Seconds from start to finish of the latest attempt, when it has finished."""
        if self.started_at is None or self.finished_at is None:
            return None
        return max(0.0, (self.finished_at - self.started_at).total_seconds())


def _columns(dicts: list[dict[str, Any]]) -> list[str]:
    """The keys of ``dicts`` in first-seen order, at most :data:`_MAX_COLUMNS` of them."""
    seen: dict[str, None] = {}
    for item in dicts:
        for key in item:
            if key not in seen:
                seen[key] = None
                if len(seen) >= _MAX_COLUMNS:
                    return list(seen)
    return list(seen)


@dataclass(frozen=True)
class Snapshot:
    """An immutable view of the index at one moment."""

    version: int
    rows: tuple[RunRow, ...]
    problems: tuple[str, ...]
    param_columns: tuple[str, ...]
    result_columns: tuple[str, ...]
    counts: Mapping[str, int]
    selections: OrderedDict[Any, tuple[RunRow, ...]] = field(
        default_factory=OrderedDict, compare=False, repr=False
    )
    _selections_lock: threading.Lock = field(
        default_factory=threading.Lock, compare=False, repr=False
    )

    @property
    def active(self) -> bool:
        """Whether any run is running (pages then poll often)."""
        return bool(self.counts.get(RunStatus.RUNNING.value, 0))

    def select(
        self, key: Any, compute: Callable[[tuple[RunRow, ...]], tuple[RunRow, ...]]
    ) -> tuple[RunRow, ...]:
        """The memoised result of ``compute(rows)`` under ``key`` (the last 16 are kept)."""
        with self._selections_lock:
            found = self.selections.get(key)
            if found is not None:
                self.selections.move_to_end(key)
                return found
        found = compute(self.rows)  # outside the lock: two threads may both compute, harmlessly
        with self._selections_lock:
            self.selections[key] = found
            while len(self.selections) > 16:
                self.selections.popitem(last=False)
        return found


class RunIndex:
    """The runs of one experiment, kept current by cheap refreshes (see the module docstring)."""

    #: A snapshot younger than this is served as it is.
    min_interval = 0.5
    #: A snapshot younger than this (but older than :attr:`min_interval`) is served at once while
    #: a background thread refreshes it; an older one is refreshed before it is served.
    max_stale = 5.0
    #: Seconds between two full re-reads of a remote store's runs.
    full_interval = 60.0

    def __init__(self, experiment: Experiment) -> None:
        self.experiment = experiment
        self.storage: Storage = experiment.project.workspace.storage
        self.runs_key = f"{experiment.key}/runs"
        self._lock = threading.Lock()  # guards _snapshot, _refreshed_at and _refreshing
        self._refresh_lock = threading.Lock()  # one refresh at a time; guards everything below
        self._rows: dict[str, RunRow] = {}
        self._stamps: dict[str, tuple[int, int, int]] = {}
        self._problems: dict[str, str] = {}
        self._ids: dict[str, str | None] = {}
        # Run ids in (created, id) order, kept as runs come and go so a refresh rarely sorts.
        self._order: list[str] = []
        self._order_stale = False
        self._param_columns: dict[str, None] = {}
        self._result_columns: dict[str, None] = {}
        self._columns_stale = False
        self._snapshot: Snapshot | None = None
        self._version = 0
        self._refreshed_at = float("-inf")
        self._refreshing = False
        self._full_at = float("-inf")

    def snapshot(self, *, force: bool = False) -> Snapshot:
        """The current snapshot: as it is if fresh, refreshed in the background if a little stale
        (so a request never waits for a scan of a big experiment), refreshed first otherwise."""
        with self._lock:
            snapshot = self._snapshot
            age = time.monotonic() - self._refreshed_at
            if snapshot is not None and not force:
                if age < self.min_interval:
                    return snapshot
                if age < self.max_stale:
                    if not self._refreshing:
                        self._refreshing = True
                        threading.Thread(
                            target=self._refresh_in_background, name="molexp-runs", daemon=True
                        ).start()
                    return snapshot
        return self._refresh_now()

    def _refresh_now(self) -> Snapshot:
        asked = time.monotonic()
        with self._refresh_lock:
            with self._lock:
                if self._snapshot is not None and self._refreshed_at >= asked:
                    return self._snapshot  # another thread refreshed while this one waited
            changed = self._refresh(time.monotonic())
            snapshot = self._build() if changed or self._snapshot is None else self._snapshot
            with self._lock:
                self._snapshot = snapshot
                self._refreshed_at = time.monotonic()
            return snapshot

    def _refresh_in_background(self) -> None:
        try:
            self._refresh_now()
        except Exception:  # the next request that refreshes in the foreground reports it
            pass
        finally:
            with self._lock:
                self._refreshing = False

    def invalidate(self, run_id: str) -> None:
        """Forget what is known of one run (after this process changed it): the next request
        refreshes before it is served."""
        with self._refresh_lock:
            self._stamps.pop(run_id, None)
        with self._lock:
            self._refreshed_at = float("-inf")

    # -- refreshing -----------------------------------------------------------------------------

    def _refresh(self, now: float) -> bool:
        local = self.storage.local_path(self.runs_key)
        if local is not None:
            return self._refresh_local(str(local))
        return self._refresh_remote(now)

    def _refresh_local(self, runs_dir: str) -> bool:
        root = self.storage.local_path("")
        root_real = os.path.realpath(root) if root is not None else None
        present: dict[str, tuple[int, int, int]] = {}
        changed: list[str] = []
        try:
            entries = list(os.scandir(runs_dir))
        except (FileNotFoundError, NotADirectoryError):
            entries = []
        ids = self._ids
        for entry in entries:
            name = entry.name
            run_id = ids[name] if name in ids else ids.setdefault(name, _run_id(name))
            if run_id is None:
                continue
            path = f"{runs_dir}/{name}/{RUN_FILE}"
            try:
                info = os.stat(path, follow_symlinks=False)
                if entry.is_symlink() or stat.S_ISLNK(info.st_mode):
                    # A run directory or record that links elsewhere is read only if it stays
                    # inside the workspace.
                    real = os.path.realpath(path)
                    if root_real is None or not real.startswith(root_real + os.sep):
                        self._problems[run_id] = f"{path} links outside the workspace; skipped"
                        continue
                    info = os.stat(real)
            except (FileNotFoundError, NotADirectoryError):
                continue
            stamp = (info.st_mtime_ns, info.st_size, info.st_ino)
            present[run_id] = stamp
            if self._stamps.get(run_id) != stamp:
                changed.append(run_id)
        removed = [run_id for run_id in self._stamps if run_id not in present]
        for run_id in removed:
            self._forget(run_id)
        for run_id in changed:
            self._stamps[run_id] = present[run_id]
            self._load(run_id, self._read(run_id))
        return bool(changed or removed)

    def _refresh_remote(self, now: float) -> bool:
        present = {
            run_id
            for name in self.storage.list(self.runs_key)
            if (run_id := _run_id(name)) is not None
        }
        full = now - self._full_at >= self.full_interval
        if full:
            self._full_at = now
        removed = [run_id for run_id in self._stamps if run_id not in present]
        for run_id in removed:
            self._forget(run_id)
        wanted = [
            run_id
            for run_id in sorted(present)
            if full
            or run_id not in self._stamps
            or (run_id in self._rows and not self._rows[run_id].status.is_terminal)
        ]
        if not wanted:
            return bool(removed)
        with ThreadPoolExecutor(max_workers=8) as pool:
            loaded = list(pool.map(self._read, wanted))
        changed = bool(removed)
        for run_id, result in zip(wanted, loaded, strict=True):
            self._stamps[run_id] = (0, 0, 0)
            before = self._rows.get(run_id)
            self._load(run_id, result)
            changed = changed or self._rows.get(run_id) != before
        return changed

    def _read(self, run_id: str) -> RunMetadata | str | None:
        """The record of ``run_id``; a message if it cannot be read; None if it vanished."""
        key = f"{self.runs_key}/run-{run_id}/{RUN_FILE}"
        try:
            data = self.storage.read_bytes(key)
        except FileNotFoundError:
            return None
        try:
            return parse_record(data, RunMetadata, self.storage.url_for(key))
        except CorruptRecordError as exc:
            return str(exc)

    def _load(self, run_id: str, result: RunMetadata | str | None) -> None:
        if isinstance(result, RunMetadata):
            row = RunRow.from_metadata(result)
            before = self._rows.get(run_id)
            self._rows[run_id] = row
            self._problems.pop(run_id, None)
            if before is None:
                last = self._rows.get(self._order[-1]) if self._order else None
                if last is None or (last.created_ts, last.id) <= (row.created_ts, row.id):
                    self._order.append(run_id)
                else:
                    self._order_stale = True
            elif before.created_ts != row.created_ts:
                self._order_stale = True
            for columns, flat in (
                (self._param_columns, row.flat_params),
                (self._result_columns, row.flat_results),
            ):
                for key in flat:
                    if key not in columns and len(columns) < _MAX_COLUMNS:
                        columns[key] = None
        else:
            self._drop(run_id)
            if result is None:
                self._stamps.pop(run_id, None)
            else:
                self._problems[run_id] = result

    def _drop(self, run_id: str) -> None:
        if self._rows.pop(run_id, None) is not None:
            self._order_stale = True
            self._columns_stale = True

    def _forget(self, run_id: str) -> None:
        self._stamps.pop(run_id, None)
        self._drop(run_id)
        self._problems.pop(run_id, None)

    def _build(self) -> Snapshot:
        self._version += 1
        if self._order_stale:
            ordered = sorted(self._rows.values(), key=lambda r: (r.created_ts, r.id))
            self._order = [row.id for row in ordered]
            self._order_stale = False
        rows = tuple(self._rows[run_id] for run_id in self._order)
        if self._columns_stale:
            self._param_columns = dict.fromkeys(_columns([r.flat_params for r in rows]))
            self._result_columns = dict.fromkeys(_columns([r.flat_results for r in rows]))
            self._columns_stale = False
        counts = Counter(row.status.value for row in rows)
        return Snapshot(
            version=self._version,
            rows=rows,
            problems=tuple(self._problems[k] for k in sorted(self._problems)),
            param_columns=tuple(self._param_columns),
            result_columns=tuple(self._result_columns),
            counts=dict(counts),
        )


def _run_id(name: str) -> str | None:
    """The run id of a ``run-<id>`` directory name, if it is a valid id."""
    if not name.startswith("run-"):
        return None
    try:
        return check_id(name[4:], what="run id")
    except InvalidNameError:
        return None
