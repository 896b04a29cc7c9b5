"""The workspace catalog: typed queries over every asset, answered from the derived index."""

from __future__ import annotations

import contextlib
import hashlib
import os
import sqlite3
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from molexp.workspace._assets import (
    Asset,
    AssetKind,
    AssetRecord,
    ScopeLevel,
    asset_from_record,
)
from molexp.workspace._errors import (
    CatalogJournalWarning,
    CorruptRecordError,
    CorruptRecordWarning,
    NotFoundError,
    StorageError,
)
from molexp.workspace._records import read_record
from molexp.workspace.catalog._index import INDEX_VERSION, Index, file_identity, iso_utc

if TYPE_CHECKING:
    from typing import TypeAlias

    from molexp.workspace._experiment import Experiment
    from molexp.workspace._project import Project
    from molexp.workspace._run import Run
    from molexp.workspace._workspace import Workspace

    ScopeObject: TypeAlias = Workspace | Project | Experiment | Run


JOURNAL = ".molexp/journal"


def cache_dir() -> Path:
    """molexp's local cache: ``$MOLEXP_CACHE_DIR``, else ``$XDG_CACHE_HOME/molexp``."""
    base = os.environ.get("MOLEXP_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "molexp"
    )
    return Path(base)


_T = TypeVar("_T")
#: The index columns that name what :meth:`Catalog.forget` and :meth:`Catalog.withdraw` drop.
_FORGET_COLUMNS = ("project_id", "experiment_id", "run_id", "record_key")

#: SQLite's result codes for a damaged database file: SQLITE_CORRUPT and SQLITE_NOTADB.
_DAMAGED = (11, 26)


def _damaged(exc: sqlite3.DatabaseError) -> bool:
    """Whether ``exc`` says the index file is damaged (not merely locked or busy)."""
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in _DAMAGED
    return "malformed" in str(exc) or "not a database" in str(exc)


def _scope_ids(scope: Any) -> dict[str, str]:
    """The id columns a scope object pins: project, experiment and run ids down to its level."""
    from molexp.workspace._experiment import Experiment
    from molexp.workspace._project import Project
    from molexp.workspace._run import Run
    from molexp.workspace._workspace import Workspace

    if isinstance(scope, Workspace):
        return {}
    if isinstance(scope, Project):
        return {"project_id": scope.id}
    if isinstance(scope, Experiment):
        return {"project_id": scope.project.id, "experiment_id": scope.id}
    if isinstance(scope, Run):
        return {
            "project_id": scope.experiment.project.id,
            "experiment_id": scope.experiment.id,
            "run_id": scope.id,
        }
    raise TypeError(
        f"scope must be a workspace, project, experiment or run, or one of "
        f"{[level.value for level in ScopeLevel]}; got {scope!r}"
    )


def _values(value: Any, convert: Callable[[Any], str]) -> list[str]:
    if isinstance(value, (list, tuple, set, frozenset)):
        return [convert(v) for v in value]
    return [convert(value)]


class Catalog:
    """Every asset of a workspace, indexed; ``ws.catalog``.

    The index is derived from the asset records beside their payloads: it is rebuilt
    automatically when missing, and kept current by every writer (in any process).
    """

    #: How often (seconds) a catalog of a remote store looks for other writers' journal entries.
    refresh_interval = 2.0

    def __init__(self, workspace: Workspace) -> None:
        self.workspace = workspace
        self._index: Index | None = None
        self._journaled = workspace.storage.local_path("") is None
        self._refreshed_at = float("-inf")

    # -- the index ------------------------------------------------------------------------------

    @property
    def location(self) -> Path:
        """Where the index file lives: in ``<root>/.molexp/`` when local, else in the user cache."""
        storage = self.workspace.storage
        local = storage.local_path(".molexp/catalog.sqlite")
        if local is not None:
            return local
        digest = hashlib.sha256(f"{storage.url}\0{self.workspace.id}".encode()).hexdigest()[:24]
        return cache_dir() / "catalog" / f"{digest}.sqlite"

    @property
    def index(self) -> Index:
        """The open index, built from the records first if it is missing or from another layout
        (or damaged: it is derived, so a damaged file is replaced with a warning naming it)."""
        return self._recovering(self._open)

    def _recovering(self, operation: Callable[[], _T]) -> _T:
        """Run ``operation``; if the index file turns out to be damaged, replace it with one
        rebuilt from the records (warning with its path) and run ``operation`` again."""
        try:
            return operation()
        except sqlite3.DatabaseError as exc:
            if not _damaged(exc):
                raise
            self._discard_damaged(exc)
        return operation()

    def _discard_damaged(self, exc: sqlite3.DatabaseError) -> None:
        location = self.location
        warnings.warn(
            f"corrupt catalog index {location}: {exc}; it is derived from the asset records, so it "
            "is deleted and rebuilt from them",
            CorruptRecordWarning,
            stacklevel=4,
        )
        if self._index is not None:
            self._index.close()
            self._index = None
        for suffix in ("", "-wal", "-shm"):
            Path(f"{location}{suffix}").unlink(missing_ok=True)

    def _open(self) -> Index:
        if (
            self._index is not None
            and not self._journaled
            and file_identity(self.location) != self._index.identity
        ):
            self._index.close()
            self._index = None
        if self._index is None:
            index = Index(self.location)
            if not self._is_current(index):
                self._rebuild_into(index)
            self._reconcile(index)
            self._index = index
        if self._journaled and time.monotonic() - self._refreshed_at > self.refresh_interval:
            self._refreshed_at = time.monotonic()
            with contextlib.suppress(StorageError):  # store unreachable: answer from the cache
                self._refresh(self._index)
        return self._index

    def _is_current(self, index: Index) -> bool:
        return (
            index.get_meta("built") == "1"
            and index.get_meta("index_version") == INDEX_VERSION
            and index.get_meta("workspace_id") == self.workspace.id
        )

    def _rebuild_into(self, index: Index) -> int:
        with index.transaction() as db:
            if self._is_current(index):
                return 0
            index.clear(db)
            journal = self._journal_names() if self._journaled else []
            count = 0
            batch: list[AssetRecord] = []
            for record in self._walk_records():
                batch.append(record)
                if len(batch) >= 1000:
                    index.insert_fresh(db, batch)
                    count += len(batch)
                    batch.clear()
            index.insert_fresh(db, batch)
            count += len(batch)
            db.executemany(
                "INSERT OR IGNORE INTO journal_seen (name) VALUES (?)",
                [(name,) for _, name in journal],
            )
            if journal:
                index.set_meta(db, "journal_hour", max(hour for hour, _ in journal))
            index.set_meta(db, "index_version", INDEX_VERSION)
            index.set_meta(db, "workspace_id", self.workspace.id)
            index.set_meta(db, "built", "1")
        return count

    def _walk_records(self) -> Iterator[AssetRecord]:
        """Every asset record, found where the layout puts them (and nowhere else, so that a
        project or experiment called ``logs`` or ``payload`` is walked like any other)."""
        storage = self.workspace.storage
        yield from self._records_under("data_assets")
        for project in storage.list("projects"):
            project_key = f"projects/{project}"
            yield from self._records_under(f"{project_key}/data_assets")
            for experiment in storage.list(f"{project_key}/experiments"):
                experiment_key = f"{project_key}/experiments/{experiment}"
                yield from self._records_under(f"{experiment_key}/data_assets")
                for run_dir in storage.list(f"{experiment_key}/runs"):
                    if run_dir.startswith("run-"):
                        yield from self._records_under(f"{experiment_key}/runs/{run_dir}/.assets")

    def _records_under(self, key: str) -> Iterator[AssetRecord]:
        storage = self.workspace.storage
        pending = [key]
        while pending:
            current = pending.pop()
            for child, is_dir in storage.list_entries(current):
                child_key = f"{current}/{child}"
                if child == "payload" or (child.startswith(".") and child.endswith(".tmp")):
                    continue
                if is_dir:
                    pending.append(child_key)
                elif child.endswith(".json"):
                    try:
                        yield read_record(storage, child_key, AssetRecord)
                    except FileNotFoundError:
                        continue
                    except CorruptRecordError as exc:  # one damaged record hides no other
                        warnings.warn(str(exc), CorruptRecordWarning, stacklevel=2)

    def _reconcile(self, index: Index) -> None:
        """Settle pending rows against the records on disk. The check and the change happen under
        the write lock, so a writer that commits meanwhile is never undone (its commit re-inserts
        a row this dropped)."""
        with index.transaction() as db:
            rows = db.execute("SELECT id, record_key FROM assets WHERE committed = 0").fetchall()
            for asset_id, record_key in rows:
                try:
                    record = read_record(self.workspace.storage, record_key, AssetRecord)
                except FileNotFoundError:
                    index.drop_pending(db, asset_id)
                except CorruptRecordError as exc:
                    warnings.warn(str(exc), CorruptRecordWarning, stacklevel=2)
                    index.drop_pending(db, asset_id)
                else:
                    index.upsert(db, [record], committed=True)

    def rebuild(self) -> int:
        """Rebuild the index from the asset records; returns how many assets it holds."""
        return self._recovering(self._rebuild)

    def _rebuild(self) -> int:
        index = Index(self.location)
        with index.transaction() as db:
            index.set_meta(db, "built", "0")
        count = self._rebuild_into(index)
        self._index = index
        return count

    def register(self, record: AssetRecord, write: Callable[[], None]) -> None:
        """Index ``record`` around ``write`` (which writes the record file): an interrupted write
        leaves a pending row that the next reader reconciles with what is on disk."""

        def pending() -> Index:
            index = self.index
            with index.transaction() as db:
                index.upsert(db, [record], committed=False)
            return index

        self._recovering(pending)
        write()
        # A damaged index found now is rebuilt from the records, this one included.
        self._recovering(lambda: self.index.commit(record))
        if self._journaled:
            where = self.workspace.storage.url_for(record.record)
            done = f"{record.kind.value} {record.name!r} is saved (its record is {where})"
            self._journal(self.index, {"record": record.model_dump(mode="json")}, done)

    def withdraw(self, **scope: str) -> list[AssetRecord]:
        """Withdraw the assets of a scope (``project_id=...`` and below) or of one record
        (``record_key=...``) before their files are removed or replaced; return their records.

        Their rows are marked pending, their record files removed (in batches), then the rows
        dropped: a process killed at any instant leaves each asset whole (a reconcile commits it
        again) or gone, and never a record over a removed or replaced payload. On a remote store
        the local index may not know what other machines registered, so a scope is withdrawn
        after a refresh from the journal, and one record is read from the store itself.
        """
        columns = [c for c in scope if c in _FORGET_COLUMNS]
        if not columns:
            return []
        if self._journaled and "record_key" in scope:
            return self._withdraw_stored(scope)
        if self._journaled:
            self.refresh()
        clauses = " AND ".join(f"{column} = ?" for column in columns)
        values = tuple(scope[c] for c in columns)

        def mark() -> list[AssetRecord]:
            index = self.index
            with index.transaction() as db:
                rows = db.execute(
                    f"SELECT record FROM assets WHERE committed = 1 AND {clauses}", values
                ).fetchall()
                db.execute(f"UPDATE assets SET committed = 0 WHERE {clauses}", values)
            return [AssetRecord.model_validate_json(row[0]) for row in rows]

        withdrawn = self._recovering(mark)
        if not withdrawn:
            return []
        self.workspace.storage.remove_many([record.record for record in withdrawn])
        self.forget(**scope)
        return withdrawn

    def _withdraw_stored(self, scope: dict[str, str]) -> list[AssetRecord]:
        """Withdraw one record as the store has it, whether or not this cache knows it (another
        machine may have registered it since the last refresh); stale rows for it are dropped."""
        storage = self.workspace.storage
        record_key = scope["record_key"]
        stored: AssetRecord | None = None
        on_store = True
        try:
            stored = read_record(storage, record_key, AssetRecord)
        except FileNotFoundError:
            on_store = False
        except CorruptRecordError as exc:  # it is being replaced: removed like a readable one
            warnings.warn(f"{exc}; it is removed", CorruptRecordWarning, stacklevel=3)

        def mark() -> bool:
            index = self.index
            with index.transaction() as db:
                if stored is not None:
                    index.upsert(db, [stored], committed=False)
                    return True
                changed = db.execute(
                    "UPDATE assets SET committed = 0 WHERE record_key = ?", (record_key,)
                )
                return changed.rowcount > 0

        known = self._recovering(mark)
        if not on_store and not known:
            return []
        if on_store:
            storage.remove(record_key)
        self.forget(**scope)
        return [] if stored is None else [stored]

    # -- the journal of a remote store ----------------------------------------------------------
    #
    # A catalog on a remote store lives in a local cache, so writers on other machines must be
    # able to tell it what they registered without it listing the whole bucket: each
    # registration also writes an immutable entry under .molexp/journal/<hour>/, and a refresh
    # lists only the newest hours. The journal, like the index, is derived from the records.

    def _journal(self, index: Index, entry: dict[str, Any], done: str) -> None:
        """Write a journal entry, retried once. The records are the truth and the change is
        ``done``: if the entry cannot be written, warn instead of failing what succeeded; other
        machines then see the change after their next rebuild."""
        now = datetime.now(UTC)
        name = f"{now:%Y%m%dT%H%M%S%f}-{os.urandom(4).hex()}.json"
        key = f"{JOURNAL}/{now:%Y%m%d%H}/{name}"
        storage = self.workspace.storage
        try:
            try:
                storage.write_json(key, entry)
            except (StorageError, OSError):
                storage.write_json(key, entry)
        except (StorageError, OSError) as exc:
            warnings.warn(
                f"{done}, but the catalog journal entry {storage.url_for(key)} that tells other "
                f"machines could not be written ({exc}); they will see the change only after "
                "their next catalog rebuild: run `molexp reindex` (or ws.catalog.rebuild()) "
                "on them",
                CatalogJournalWarning,
                stacklevel=4,
            )
            return
        with index.transaction() as db:
            db.execute("INSERT OR IGNORE INTO journal_seen (name) VALUES (?)", (name,))

    def _journal_names(self) -> list[tuple[str, str]]:
        storage = self.workspace.storage
        return [
            (hour, name)
            for hour in storage.list(JOURNAL)
            for name in storage.list(f"{JOURNAL}/{hour}")
        ]

    def refresh(self) -> None:
        """Take in what other writers registered since the last refresh (remote stores only)."""
        if self._journaled:
            self._refreshed_at = time.monotonic()
            self._refresh(self.index)

    def _refresh(self, index: Index) -> None:
        storage = self.workspace.storage
        hours = storage.list(JOURNAL)
        if not hours:
            return
        mark = index.get_meta("journal_hour")
        if mark is not None:
            floor = (datetime.strptime(mark, "%Y%m%d%H") - timedelta(hours=1)).strftime("%Y%m%d%H")
            hours = [hour for hour in hours if hour >= floor]
        for hour in hours:
            names = storage.list(f"{JOURNAL}/{hour}")
            seen = {
                row[0]
                for start in range(0, len(names), 500)
                for row in index.db.execute(
                    "SELECT name FROM journal_seen WHERE name IN "
                    f"({', '.join('?' * len(names[start : start + 500]))})",
                    names[start : start + 500],
                )
            }
            for name in names:
                if name not in seen:
                    self._apply(index, name, f"{JOURNAL}/{hour}/{name}")
        with index.transaction() as db:
            index.set_meta(db, "journal_hour", max(hours))

    def _apply(self, index: Index, name: str, key: str) -> None:
        try:
            entry = self.workspace.storage.read_json(key)
        except (FileNotFoundError, ValueError):
            entry = {}
        record = entry.get("record") if isinstance(entry, dict) else None
        forget = entry.get("forget") if isinstance(entry, dict) else None
        with index.transaction() as db:
            if isinstance(record, dict):
                index.upsert(db, [AssetRecord.model_validate(record)], committed=True)
            db.execute("INSERT OR IGNORE INTO journal_seen (name) VALUES (?)", (name,))
        if isinstance(forget, dict):
            self._forget_rows(index, {str(k): str(v) for k, v in forget.items()})

    def forget(self, **scope: str) -> None:
        """Drop the index rows of a deleted scope (``project_id=...`` and below), or of one
        record (``record_key=...``)."""
        self._recovering(lambda: self._forget_rows(self.index, scope))
        if self._journaled:
            named = ", ".join(f"{column}={value!r}" for column, value in scope.items())
            self._journal(self.index, {"forget": scope}, f"the assets of {named} are withdrawn")

    @staticmethod
    def _forget_rows(index: Index, scope: dict[str, str]) -> None:
        columns = [c for c in scope if c in _FORGET_COLUMNS]
        if not columns:
            return
        clauses = " AND ".join(f"{column} = ?" for column in columns)
        rows = index.db.execute(
            f"SELECT id FROM assets WHERE {clauses}",
            tuple(scope[c] for c in columns),
        ).fetchall()
        index.drop([row[0] for row in rows])

    # -- queries --------------------------------------------------------------------------------

    def _assets(self, sql: str, params: Sequence[Any]) -> list[Asset]:
        rows = self._recovering(lambda: self.index.db.execute(sql, params).fetchall())
        return [
            asset_from_record(self.workspace, AssetRecord.model_validate_json(row[0]))
            for row in rows
        ]

    def get(self, asset_id: str) -> Asset | None:
        """The asset with this id, or None."""
        if not self.workspace.is_materialized:
            return None
        found = self._assets(
            "SELECT record FROM assets WHERE id = ? AND committed = 1", (asset_id,)
        )
        return found[0] if found else None

    def query_assets(
        self,
        *,
        kind: AssetKind | str | Sequence[AssetKind | str] | None = None,
        name: str | Sequence[str] | None = None,
        scope: ScopeObject | ScopeLevel | str | None = None,
        project: Project | str | None = None,
        experiment: Experiment | str | None = None,
        run: Run | str | None = None,
        producer_run: Run | str | None = None,
        producer_task: str | None = None,
        tags: str | Sequence[str] | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        newest_first: bool = False,
        limit: int | None = None,
    ) -> list[Asset]:
        """Assets matching every given filter, oldest first (``newest_first=True`` to reverse).

        ``scope`` is a level name (``"run"``, ``"experiment"``, ...) or a workspace, project,
        experiment or run object (that scope and everything below it). ``tags`` must all match.
        """
        if not self.workspace.is_materialized:
            return []
        where = ["committed = 1"]
        params: list[Any] = []

        def add(column: str, values: list[str]) -> None:
            where.append(f"{column} IN ({', '.join('?' * len(values))})")
            params.extend(values)

        if kind is not None:
            add("kind", _values(kind, lambda k: AssetKind(k).value))
        if name is not None:
            add("name", _values(name, str))
        if isinstance(scope, str):
            add("level", [ScopeLevel(scope).value])
        elif scope is not None:
            for column, value in _scope_ids(scope).items():
                add(column, [value])
        if project is not None:
            add("project_id", [project if isinstance(project, str) else project.id])
        if experiment is not None:
            if isinstance(experiment, str):
                add("experiment_id", [experiment])
            else:
                for column, value in _scope_ids(experiment).items():
                    add(column, [value])
        if run is not None:
            if isinstance(run, str):
                add("run_id", [run])
            else:
                for column, value in _scope_ids(run).items():
                    add(column, [value])
        if producer_run is not None:
            if isinstance(producer_run, str):
                add("producer_run", [producer_run])
            else:
                ids = _scope_ids(producer_run)
                add("producer_key", [f"{ids['project_id']}/{ids['experiment_id']}/{ids['run_id']}"])
        if producer_task is not None:
            add("producer_task", [producer_task])
        for tag in _values(tags, str) if tags is not None else []:
            where.append("id IN (SELECT asset_id FROM tags WHERE tag = ?)")
            params.append(tag)
        if created_after is not None:
            where.append("created_at > ?")
            params.append(iso_utc(created_after))
        if created_before is not None:
            where.append("created_at < ?")
            params.append(iso_utc(created_before))
        order = "DESC" if newest_first else "ASC"
        sql = (
            f"SELECT record FROM assets WHERE {' AND '.join(where)} ORDER BY created_at {order}, id"
        )
        if limit is not None:
            sql += " LIMIT ?"
            params.append(int(limit))
        return self._assets(sql, params)

    def lineage(self, asset: Asset | str, *, direction: str = "up") -> list[Asset]:
        """Every asset ``asset`` was made from (``"up"``) or that was made from it (``"down"``),
        transitively, nearest first."""
        if direction not in ("up", "down"):
            raise ValueError(f"direction must be 'up' or 'down', got {direction!r}")
        start = asset if isinstance(asset, str) else asset.id
        sql = (
            "SELECT input_id FROM inputs WHERE asset_id = ?"
            if direction == "up"
            else "SELECT asset_id FROM inputs WHERE input_id = ?"
        )

        def walk() -> list[str]:
            seen = {start}
            order: list[str] = []
            frontier = [start]
            db = self.index.db
            while frontier:
                next_frontier = []
                for current in frontier:
                    for (linked,) in db.execute(sql, (current,)):
                        if linked not in seen:
                            seen.add(linked)
                            order.append(linked)
                            next_frontier.append(linked)
                frontier = next_frontier
            return order

        order = self._recovering(walk)
        found = {a.id: a for a in self._by_ids(order)}
        return [found[i] for i in order if i in found]

    def _by_ids(self, ids: Sequence[str]) -> list[Asset]:
        assets: list[Asset] = []
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            assets.extend(
                self._assets(
                    f"SELECT record FROM assets WHERE committed = 1 AND id IN ({', '.join('?' * len(chunk))})",  # noqa: E501
                    chunk,
                )
            )
        return assets

    def view(self, scope: ScopeObject) -> AssetView:
        """A read-only view of the assets of ``scope`` and everything below it."""
        return AssetView(self, scope)


class AssetView:
    """The assets attributable to one scope and below (``ws.assets``, ``exp.assets``, ...)."""

    def __init__(self, catalog: Catalog, scope: ScopeObject) -> None:
        self._catalog = catalog
        self._scope = scope

    def list(
        self,
        kind: AssetKind | str | Sequence[AssetKind | str] | None = None,
        *,
        name: str | None = None,
        tags: str | Sequence[str] | None = None,
    ) -> list[Asset]:
        """The assets of this scope, oldest first, optionally filtered."""
        return self._catalog.query_assets(scope=self._scope, kind=kind, name=name, tags=tags)

    def get(self, name: str, kind: AssetKind | str | None = None) -> Asset:
        """The newest asset called ``name`` in this scope; :class:`NotFoundError` if none."""
        found = self._catalog.query_assets(
            scope=self._scope, kind=kind, name=name, newest_first=True, limit=1
        )
        if not found:
            raise NotFoundError(f"no asset named {name!r} in {self._scope!r}")
        return found[0]

    def __iter__(self) -> Iterator[Asset]:
        return iter(self.list())

    def __len__(self) -> int:
        return len(self.list())
