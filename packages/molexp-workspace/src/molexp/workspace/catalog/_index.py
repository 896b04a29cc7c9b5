"""The catalog's derived index: SQLite rows built from the asset records, deletable at any time."""

from __future__ import annotations

import sqlite3
import threading
import weakref
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from molexp.workspace._assets import AssetRecord

INDEX_VERSION = "2"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS assets (
    id TEXT PRIMARY KEY,
    record_key TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    level TEXT NOT NULL,
    project_id TEXT,
    experiment_id TEXT,
    run_id TEXT,
    producer_run TEXT,
    producer_key TEXT,
    producer_task TEXT,
    created_at TEXT NOT NULL,
    committed INTEGER NOT NULL,
    record TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS ix_assets_run ON assets (project_id, experiment_id, run_id, kind);
CREATE INDEX IF NOT EXISTS ix_assets_producer ON assets (producer_run);
CREATE INDEX IF NOT EXISTS ix_assets_producer_key ON assets (producer_key);
CREATE INDEX IF NOT EXISTS ix_assets_kind ON assets (kind, project_id, experiment_id);
CREATE INDEX IF NOT EXISTS ix_assets_name ON assets (name);
CREATE INDEX IF NOT EXISTS ix_assets_pending ON assets (committed) WHERE committed = 0;
CREATE TABLE IF NOT EXISTS tags (
    tag TEXT NOT NULL, asset_id TEXT NOT NULL, PRIMARY KEY (tag, asset_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS ix_tags_asset ON tags (asset_id);
CREATE TABLE IF NOT EXISTS inputs (
    asset_id TEXT NOT NULL, input_id TEXT NOT NULL, PRIMARY KEY (asset_id, input_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS ix_inputs_input ON inputs (input_id);
CREATE TABLE IF NOT EXISTS journal_seen (name TEXT PRIMARY KEY) WITHOUT ROWID;
"""


def iso_utc(moment: datetime) -> str:
    """``moment`` as a fixed-width UTC ISO string, so that text order is time order (a naive
    datetime is taken as local time)."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def _row(record: AssetRecord, committed: bool) -> tuple[Any, ...]:
    scope = record.scope
    producer = record.producer
    return (
        record.id,
        record.record,
        record.kind.value,
        record.name,
        scope.level.value,
        scope.project_id,
        scope.experiment_id,
        scope.run_id,
        producer.run_id if producer else None,
        producer.run_key if producer else None,
        producer.task if producer else None,
        iso_utc(record.created_at),
        int(committed),
        record.model_dump_json(),
    )


def file_identity(path: Path) -> tuple[int, int] | None:
    """``(device, inode)`` of ``path``: changes when the file is deleted and made anew."""
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return stat.st_dev, stat.st_ino


def _close_all(conns: list[sqlite3.Connection]) -> None:
    while conns:
        conns.pop().close()


class Index:
    """One SQLite file (WAL mode) shared by every process that writes to the workspace; the asset
    catalog's tables unless another ``schema`` is given."""

    def __init__(self, path: Path | str, schema: str = _SCHEMA) -> None:
        self.path = path
        self.schema = schema
        self._local = threading.local()
        self._conns: list[sqlite3.Connection] = []
        self.identity: tuple[int, int] | None = None
        weakref.finalize(self, _close_all, self._conns)

    @property
    def db(self) -> sqlite3.Connection:
        """This thread's connection."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            with self._opening():
                conn = sqlite3.connect(
                    str(self.path), timeout=120, isolation_level=None, check_same_thread=False
                )
                conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.executescript(self.schema)
            if isinstance(self.path, Path) and self.identity is None:
                self.identity = file_identity(self.path)
            self._local.conn = conn
            self._conns.append(conn)
        return conn

    @contextmanager
    def _opening(self) -> Iterator[None]:
        """Serialise opening across processes (an flock beside the file), so that a WAL left
        behind by a deleted index is removed before the new file exists — and never while
        another process is creating it."""
        if not isinstance(self.path, Path):
            yield
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            import fcntl
        except ImportError:  # no flock: leave any stale WAL alone rather than race
            yield
            return
        with open(f"{self.path}.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                if not self.path.exists():
                    for suffix in ("-wal", "-shm"):
                        Path(f"{self.path}{suffix}").unlink(missing_ok=True)
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def close(self) -> None:
        """Close every connection of this index (in all threads)."""
        _close_all(self._conns)
        self._local = threading.local()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """An IMMEDIATE transaction: one writer at a time across processes."""
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def get_meta(self, key: str) -> str | None:
        """A value of the index's own metadata."""
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    @staticmethod
    def set_meta(db: sqlite3.Connection, key: str, value: str) -> None:
        """Set a metadata value inside a transaction."""
        db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    @staticmethod
    def upsert(db: sqlite3.Connection, records: Iterable[AssetRecord], *, committed: bool) -> None:
        """Insert or replace records (and their tags and inputs) inside a transaction."""
        for record in records:
            db.execute(
                "DELETE FROM assets WHERE record_key = ? AND id != ?", (record.record, record.id)
            )
            db.execute(
                "INSERT OR REPLACE INTO assets (id, record_key, kind, name, level, project_id, "
                "experiment_id, run_id, producer_run, producer_key, producer_task, created_at, "
                "committed, record) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                _row(record, committed),
            )
            db.execute("DELETE FROM tags WHERE asset_id = ?", (record.id,))
            db.executemany(
                "INSERT OR IGNORE INTO tags (tag, asset_id) VALUES (?, ?)",
                [(tag, record.id) for tag in record.tags],
            )
            db.execute("DELETE FROM inputs WHERE asset_id = ?", (record.id,))
            if record.producer is not None:
                db.executemany(
                    "INSERT OR IGNORE INTO inputs (asset_id, input_id) VALUES (?, ?)",
                    [(record.id, source) for source in record.producer.inputs],
                )

    @staticmethod
    def insert_fresh(db: sqlite3.Connection, records: list[AssetRecord]) -> None:
        """Bulk-insert committed records into tables known to hold none of them (a rebuild)."""
        db.executemany(
            "INSERT OR REPLACE INTO assets (id, record_key, kind, name, level, project_id, "
            "experiment_id, run_id, producer_run, producer_key, producer_task, created_at, "
            "committed, record) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [_row(record, True) for record in records],
        )
        db.executemany(
            "INSERT OR IGNORE INTO tags (tag, asset_id) VALUES (?, ?)",
            [(tag, record.id) for record in records for tag in record.tags],
        )
        db.executemany(
            "INSERT OR IGNORE INTO inputs (asset_id, input_id) VALUES (?, ?)",
            [
                (record.id, source)
                for record in records
                if record.producer is not None
                for source in record.producer.inputs
            ],
        )

    def commit(self, record: AssetRecord) -> None:
        """Mark a pending record committed (re-inserting it if a reconcile dropped it meanwhile)."""
        with self.transaction() as db:
            updated = db.execute(
                "UPDATE assets SET committed = 1 WHERE id = ?", (record.id,)
            ).rowcount
            if updated == 0:
                self.upsert(db, [record], committed=True)

    @staticmethod
    def drop_pending(db: sqlite3.Connection, asset_id: str) -> None:
        """Forget an asset whose record never appeared, if it is still pending."""
        if db.execute("DELETE FROM assets WHERE id = ? AND committed = 0", (asset_id,)).rowcount:
            db.execute("DELETE FROM tags WHERE asset_id = ?", (asset_id,))
            db.execute("DELETE FROM inputs WHERE asset_id = ?", (asset_id,))

    def drop(self, ids: Sequence[str]) -> None:
        """Forget the given assets."""
        with self.transaction() as db:
            for asset_id in ids:
                db.execute("DELETE FROM assets WHERE id = ?", (asset_id,))
                db.execute("DELETE FROM tags WHERE asset_id = ?", (asset_id,))
                db.execute("DELETE FROM inputs WHERE asset_id = ?", (asset_id,))

    def clear(self, db: sqlite3.Connection) -> None:
        """Empty every table inside a transaction."""
        for table in ("assets", "tags", "inputs", "meta", "journal_seen"):
            db.execute(f"DELETE FROM {table}")
