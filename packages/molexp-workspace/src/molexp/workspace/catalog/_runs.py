"""The run-parameter index: which runs of an experiment have a parameter value, without reading
every ``run.json``.

The ``run.json`` files are the truth; this SQLite file is derived from them and may be deleted at
any time. Parameters never change once a run exists, so a run is read once, when a query first
sees it; every query lists the experiment's ``runs/`` directory (one listdir or one LIST), indexes
the runs not seen before, drops the rows of runs no longer listed, and answers with SQL. The
caller reads the ``run.json`` of each hit, so status and parameters are checked against the files
as they are now.
"""

from __future__ import annotations

import hashlib
import json
import math
import sqlite3
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from json.encoder import encode_basestring
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from molexp.workspace._errors import CorruptRecordError, CorruptRecordWarning
from molexp.workspace._metadata import RunMetadata
from molexp.workspace._records import SCHEMA_VERSION, parse_record
from molexp.workspace.catalog._catalog import _damaged, cache_dir
from molexp.workspace.catalog._index import Index, file_identity, iso_utc

if TYPE_CHECKING:
    from molexp.workspace._experiment import Experiment
    from molexp.workspace._workspace import Workspace
    from molexp.workspace.storage import Storage

RUNS_INDEX_VERSION = "1"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS experiments (
    exp INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id TEXT NOT NULL,
    experiment_id TEXT NOT NULL,
    created_at TEXT NOT NULL,
    UNIQUE (project_id, experiment_id)
);
CREATE TABLE IF NOT EXISTS runs (
    exp INTEGER NOT NULL, run TEXT NOT NULL, PRIMARY KEY (exp, run)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS params (
    exp INTEGER NOT NULL,
    name TEXT NOT NULL,
    value TEXT NOT NULL,
    run TEXT NOT NULL,
    PRIMARY KEY (exp, name, value, run)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS ix_params_run ON params (exp, run);
"""
_TABLES = ("meta", "experiments", "runs", "params")

#: SQLite's result codes for a file this process may not write or open: SQLITE_READONLY and
#: SQLITE_CANTOPEN (a read-only workspace is still searchable, from an index held in memory).
_UNWRITABLE = (8, 14)
#: How many ``run.json`` files a remote store is asked for at once.
_READERS = 16
RUN_FILE = "run.json"
_T = TypeVar("_T")
_CONSTANTS = {None: "null", True: "true", False: "false"}


def match_key(value: Any) -> str:
    """The text under which ``find_runs`` compares a parameter value: canonical JSON (keys sorted
    at every depth) with numbers by value, so ``1`` and ``1.0`` share a key and ``true``,
    ``1`` and ``"1"`` do not."""
    # Scalars, the common case, without json.dumps' per-call set-up; the same text it would give.
    if isinstance(value, str):
        return encode_basestring(value)
    if value is None or isinstance(value, bool):
        return _CONSTANTS[value]
    if isinstance(value, int):
        return int.__repr__(value)
    if isinstance(value, float):
        if value.is_integer():
            return int.__repr__(int(value))
        if math.isfinite(value):
            return float.__repr__(value)
        return "NaN" if math.isnan(value) else "Infinity" if value > 0 else "-Infinity"
    return json.dumps(_by_value(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _by_value(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _by_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_by_value(v) for v in value]
    return value


def matches(parameters: Mapping[str, Any], wanted: Mapping[str, str]) -> bool:
    """Whether ``parameters`` hold every name of ``wanted`` with a value of that match key."""
    return all(
        name in parameters and match_key(parameters[name]) == key for name, key in wanted.items()
    )


def read_many(storage: Storage, keys: Sequence[str]) -> list[bytes | None]:
    """The bytes of each key (None where there is no file), several requests at a time on a
    remote store."""

    def read(key: str) -> bytes | None:
        try:
            return storage.read_bytes(key)
        except FileNotFoundError:
            return None

    if len(keys) < 2 or storage.local_path("") is not None:
        return [read(key) for key in keys]
    with ThreadPoolExecutor(min(_READERS, len(keys))) as pool:
        return list(pool.map(read, keys))


def _parameters(data: bytes, storage: Storage, key: str) -> dict[str, Any] | None:
    """The parameters of a ``run.json``; None (with a warning naming it) if it cannot be read.

    The common case takes only a JSON parse; anything unusual gets the full validation, so that
    what is indexed is exactly what ``list_runs`` would show.
    """
    try:
        doc = json.loads(data)
    except ValueError:
        doc = None
    if isinstance(doc, dict):
        version = doc.get("schema_version", SCHEMA_VERSION)
        params = doc.get("parameters")
        if type(version) is int and version <= SCHEMA_VERSION and isinstance(params, dict):
            return params
    try:
        return parse_record(data, RunMetadata, storage.url_for(key)).parameters
    except CorruptRecordError as exc:  # one damaged record hides no other
        warnings.warn(str(exc), CorruptRecordWarning, stacklevel=8)  # find_runs' caller
        return None


@contextmanager
def _reading(db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """A read transaction: one consistent snapshot of the index, taking no write lock."""
    db.execute("BEGIN")
    try:
        yield db
    except BaseException:
        with suppress(sqlite3.Error):
            db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


class RunIndex:
    """The run-parameter index of a workspace (``<root>/.molexp/runs.sqlite`` when local, else in
    the user cache)."""

    def __init__(self, workspace: Workspace) -> None:
        self.workspace = workspace
        self._index: Index | None = None

    @property
    def location(self) -> Path:
        """Where the index file lives."""
        storage = self.workspace.storage
        local = storage.local_path(".molexp/runs.sqlite")
        if local is not None:
            return local
        digest = hashlib.sha256(f"{storage.url}\0{self.workspace.id}".encode()).hexdigest()[:24]
        return cache_dir() / "runs" / f"{digest}.sqlite"

    def close(self) -> None:
        """Close the index file (it is reopened on the next query)."""
        if self._index is not None:
            self._index.close()
            self._index = None

    def _open(self) -> Index:
        index = self._index
        if (
            index is not None
            and isinstance(index.path, Path)
            and file_identity(index.path) != index.identity
        ):
            self.close()  # deleted or replaced since: start from the file that is there now
            index = None
        if index is None:
            try:
                index = Index(self.location, schema=_SCHEMA)
                self._prepare(index)
            except OSError:  # its directory cannot be made or locked here
                index = self._in_memory()
            self._index = index
        return index

    def _prepare(self, index: Index) -> None:
        """Empty the index if it was made by another layout or for another workspace."""
        wanted = {"version": RUNS_INDEX_VERSION, "workspace_id": self.workspace.id}
        if all(index.get_meta(k) == v for k, v in wanted.items()):
            return
        with index.transaction() as db:
            if all(index.get_meta(k) == v for k, v in wanted.items()):
                return  # another process prepared it meanwhile
            for table in _TABLES:
                db.execute(f"DELETE FROM {table}")
            for key, value in wanted.items():
                index.set_meta(db, key, value)

    def _recovering(self, operation: Callable[[], _T]) -> _T:
        """Run ``operation``; if the index file is damaged, delete it and run it again on a new
        one; if it cannot be written here, run it again on an index held in memory."""
        try:
            return operation()
        except sqlite3.DatabaseError as exc:
            code = (getattr(exc, "sqlite_errorcode", None) or 0) & 0xFF
            if _damaged(exc):
                location = self.location
                self.close()
                for suffix in ("", "-wal", "-shm"):
                    Path(f"{location}{suffix}").unlink(missing_ok=True)
            elif code in _UNWRITABLE:
                self.close()
                self._index = self._in_memory()
            else:
                raise
        return operation()

    def _in_memory(self) -> Index:
        """An index held in this process's memory, for a workspace where none can be written
        (each query of a new session then reads every run once)."""
        index = Index(":memory:", schema=_SCHEMA)
        self._prepare(index)
        return index

    # -- queries --------------------------------------------------------------------------------

    def find(self, experiment: Experiment, wanted: Mapping[str, str]) -> set[str]:
        """The ids of the listed runs of ``experiment`` whose indexed parameters have every
        ``name -> match key`` of ``wanted``."""
        storage = self.workspace.storage
        listed = {
            child[4:]
            for child in storage.list(f"{experiment.key}/runs")
            if child.startswith("run-")
        }
        if not listed:
            return set()
        return self._recovering(lambda: self._find(experiment, listed, wanted))

    def _find(
        self, experiment: Experiment, listed: set[str], wanted: Mapping[str, str]
    ) -> set[str]:
        index = self._open()
        exp = self._experiment_row(index, experiment)
        with _reading(index.db) as db:
            indexed = self._indexed(db, exp)
            missing = listed - indexed
            if not missing and indexed <= listed:
                return self._match(db, exp, wanted) & listed
        parsed = self._read(experiment, missing)
        with index.transaction() as db:
            # Other processes may have changed the rows since they were read above.
            indexed = self._indexed(db, exp)
            self._drop(db, exp, indexed - listed)
            parsed.update(self._read(experiment, listed - indexed - missing))
            self._insert(db, exp, {run: p for run, p in parsed.items() if run not in indexed})
            return self._match(db, exp, wanted) & listed

    def update(self, experiment: Experiment, parameters: Mapping[str, Mapping[str, Any]]) -> None:
        """Replace the rows of runs whose ``run.json`` was found to hold other parameters than
        the index (a run deleted and made anew with the same id)."""

        def replace() -> None:
            index = self._open()
            exp = self._experiment_row(index, experiment)
            with index.transaction() as db:
                self._drop(db, exp, parameters)
                self._insert(db, exp, parameters)

        self._recovering(replace)

    def forget(self, experiment: Experiment, run_id: str) -> None:
        """Drop any row of ``run_id`` before a run of that id is created (an earlier run of that
        id may have been deleted, and the new one may have other parameters)."""
        if self._index is None and not self.location.exists():
            return

        def drop() -> None:
            index = self._open()
            exp = self._experiment_row(index, experiment)
            sql = "SELECT 1 FROM runs WHERE exp = ? AND run = ?"
            if index.db.execute(sql, (exp, run_id)).fetchone() is None:
                return  # the common case: no write, so creating a run takes no lock here
            with index.transaction() as db:
                self._drop(db, exp, [run_id])

        self._recovering(drop)

    # -- rows -----------------------------------------------------------------------------------

    @staticmethod
    def _experiment_row(index: Index, experiment: Experiment) -> int:
        """The index's key of ``experiment``; its rows are emptied if the experiment was deleted
        and made anew since they were written."""
        ids = (experiment.project.id, experiment.id)
        created = iso_utc(experiment.metadata.created_at)
        sql = "SELECT exp, created_at FROM experiments WHERE project_id = ? AND experiment_id = ?"
        row = index.db.execute(sql, ids).fetchone()
        if row is not None and row[1] == created:
            return int(row[0])
        with index.transaction() as db:
            row = db.execute(sql, ids).fetchone()
            if row is None:
                cursor = db.execute(
                    "INSERT INTO experiments (project_id, experiment_id, created_at) "
                    "VALUES (?, ?, ?)",
                    (*ids, created),
                )
                return int(cursor.lastrowid or 0)
            if row[1] != created:
                db.execute("DELETE FROM runs WHERE exp = ?", (row[0],))
                db.execute("DELETE FROM params WHERE exp = ?", (row[0],))
                db.execute("UPDATE experiments SET created_at = ? WHERE exp = ?", (created, row[0]))
            return int(row[0])

    @staticmethod
    def _indexed(db: sqlite3.Connection, exp: int) -> set[str]:
        return {row[0] for row in db.execute("SELECT run FROM runs WHERE exp = ?", (exp,))}

    @staticmethod
    def _match(db: sqlite3.Connection, exp: int, wanted: Mapping[str, str]) -> set[str]:
        if not wanted:
            return RunIndex._indexed(db, exp)
        found: set[str] | None = None
        for name, key in wanted.items():
            hits = {
                row[0]
                for row in db.execute(
                    "SELECT run FROM params WHERE exp = ? AND name = ? AND value = ?",
                    (exp, name, key),
                )
            }
            found = hits if found is None else found & hits
            if not found:
                break
        return found or set()

    @staticmethod
    def _drop(db: sqlite3.Connection, exp: int, runs: Iterable[str]) -> None:
        rows = [(exp, run) for run in runs]
        db.executemany("DELETE FROM runs WHERE exp = ? AND run = ?", rows)
        db.executemany("DELETE FROM params WHERE exp = ? AND run = ?", rows)

    @staticmethod
    def _insert(
        db: sqlite3.Connection, exp: int, parameters: Mapping[str, Mapping[str, Any]]
    ) -> None:
        db.executemany(
            "INSERT OR IGNORE INTO runs (exp, run) VALUES (?, ?)",
            [(exp, run) for run in parameters],
        )
        db.executemany(
            "INSERT OR IGNORE INTO params (exp, name, value, run) VALUES (?, ?, ?, ?)",
            [
                (exp, name, match_key(value), run)
                for run, params in parameters.items()
                for name, value in params.items()
            ],
        )

    def _read(self, experiment: Experiment, runs: Iterable[str]) -> dict[str, dict[str, Any]]:
        """The parameters of each run whose ``run.json`` exists and can be read."""
        storage = self.workspace.storage
        order = sorted(runs)
        keys = [f"{experiment.key}/runs/run-{run}/{RUN_FILE}" for run in order]
        found: dict[str, dict[str, Any]] = {}
        for run, key, data in zip(order, keys, read_many(storage, keys), strict=True):
            if data is not None:
                params = _parameters(data, storage, key)
                if params is not None:
                    found[run] = params
        return found
