"""RunContext: the lifecycle of one execution attempt of a run."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import traceback
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from contextvars import ContextVar, Token
from datetime import datetime
from pathlib import Path
from types import MappingProxyType, TracebackType
from typing import TYPE_CHECKING, Any, Protocol

from molexp.workspace._accessors import (
    ArtifactStore,
    LogHandle,
    register_run_asset,
    save_checkpoint,
)
from molexp.workspace._assets import Asset, AssetKind, CheckpointAsset, Producer
from molexp.workspace._capture import capture
from molexp.workspace._capture import record_source as capture_source
from molexp.workspace._errors import (
    InvalidNameError,
    NotFoundError,
    RunCancelled,
    RunStateError,
    StorageError,
)
from molexp.workspace._metadata import ErrorInfo, ExecutionRecord, OwnerInfo, RunStatus
from molexp.workspace._ownership import Liveness, current_owner, heartbeat, hostname, owner_liveness
from molexp.workspace._payload import hash_bytes
from molexp.workspace._records import check_labels, check_params, content_hash, utcnow
from molexp.workspace._run import CANCEL_REQUEST_FILE, Run

if TYPE_CHECKING:
    from molexp.workspace._experiment import Experiment
    from molexp.workspace._ownership import _Beat
    from molexp.workspace._project import Project
    from molexp.workspace._workspace import Workspace

_current_task: ContextVar[str | None] = ContextVar("molexp_current_task", default=None)
_active_context: ContextVar[RunContext | None] = ContextVar("molexp_active_context", default=None)


def active_context() -> RunContext | None:
    """The RunContext entered in this thread or task, if any."""
    return _active_context.get()


class Channel(Protocol):
    """What the workflow layer attaches for ``ctx.emit``/``ctx.receive`` (actor channels)."""

    def emit(self, message: Any) -> None:
        """Send ``message`` on the channel."""

    def receive(self) -> Any:
        """Receive from the channel (the workflow layer decides: a value, an awaitable, ...)."""


class ExecutionState:
    """The workflow runtime's saved state of a run (which tasks finished, with what), kept in
    ``execution/state.json`` so a later attempt can resume."""

    def __init__(self, ctx: RunContext) -> None:
        self._ctx = ctx
        self._run = ctx.run
        self.key = f"{ctx.run.key}/execution/state.json"
        self._record_key = f"{ctx.run.key}/.assets/execution_state/state.json"

    def load(self) -> dict[str, Any] | None:
        """The last saved state of this run, from any attempt; None if there is none."""
        try:
            state: dict[str, Any] = self._run.storage.read_json(self.key)
        except FileNotFoundError:
            return None
        return state

    def save(self, state: Mapping[str, Any]) -> None:
        """Replace the saved state atomically (registering its asset the first time)."""
        storage = self._run.storage
        storage.write_bytes(self.key, json.dumps(dict(state), separators=(",", ":")).encode())
        if not storage.exists(self._record_key):
            register_run_asset(
                self._ctx,
                kind=AssetKind.EXECUTION_STATE,
                name="execution-state",
                payload=self.key,
                record=self._record_key,
                size=None,
                content_hash=None,
                encoding="json",
            )


_RUN_PATH_RE = re.compile(
    r"^(?P<root>.*?)/projects/(?P<project>[^/]+)/experiments/(?P<experiment>[^/]+)"
    r"/runs/run-(?P<run>[^/]+)/?$"
)


def config_hash(config: Mapping[str, Any]) -> str:
    """The hash that identifies a merged profile config (order of keys does not matter)."""
    return content_hash(dict(config))


class RunContext:
    """One attempt at executing a run: ``with run.start(profile_config=cfg) as ctx: ...``.

    Entering marks the run running, owned by this process, with a new :class:`ExecutionRecord`;
    leaving marks it succeeded, failed (with the traceback under ``execution/<id>/error.txt``) or
    cancelled, and finalises the record.
    """

    def __init__(
        self,
        run: Run,
        *,
        profile_config: Mapping[str, Any] | None = None,
        profile_name: str | None = None,
        heartbeat_interval: float,
    ) -> None:
        self.run = run
        self._profile_config = (
            check_params(profile_config, what="profile config")
            if profile_config is not None
            else None
        )
        self._profile_name = profile_name
        self._heartbeat_interval = heartbeat_interval
        self._beat: _Beat | None = None
        self._failure: ErrorInfo | None = None
        self._cancel_reason: str | None = None
        self._channels: dict[str, Channel] = {}
        self._logs: dict[str, LogHandle] = {}
        self._consumed: dict[str | None, list[str]] = {}
        self._active_token: Token[RunContext | None] | None = None
        self.execution_id: str | None = None
        self.execution_state = ExecutionState(self)
        self.artifact = ArtifactStore(self)

    @classmethod
    def open(
        cls, run_dir: str | os.PathLike[str], *, storage_options: Mapping[str, Any] | None = None
    ) -> RunContext:
        """Rebuild the workspace → project → experiment → run chain from a run directory or URL.

        The returned context keeps the profile recorded on the run; enter it to execute.
        """
        from molexp.workspace._workspace import Workspace
        from molexp.workspace.storage import split_scheme

        scheme, text = split_scheme(run_dir)
        if scheme in ("file", "local"):
            text = Path(re.sub(r"^(?:file|local)://", "", text)).expanduser().resolve().as_posix()
        match = _RUN_PATH_RE.match(text.rstrip("/"))
        if match is None:
            raise NotFoundError(
                f"{os.fspath(run_dir)!r} is not a run directory: expected "
                "<workspace>/projects/<project>/experiments/<experiment>/runs/run-<id>"
            )
        ws = Workspace.load(match["root"], storage_options=storage_options)
        run = ws.project(match["project"]).experiment(match["experiment"]).get_run(match["run"])
        return run.start()

    @property
    def experiment(self) -> Experiment:
        """The experiment of the run."""
        return self.run.experiment

    @property
    def project(self) -> Project:
        """The project of the run."""
        return self.run.experiment.project

    @property
    def workspace(self) -> Workspace:
        """The workspace of the run."""
        return self.run.experiment.project.workspace

    @property
    def params(self) -> dict[str, Any]:
        """The run's parameters."""
        return self.run.parameters

    @property
    def config(self) -> Mapping[str, Any]:
        """The active profile config, read-only (empty when there is none)."""
        return MappingProxyType(self.run.metadata.config)

    @property
    def run_dir(self) -> Path | str:
        """The run directory."""
        return self.run.run_dir

    @property
    def workdir(self) -> Path:
        """A real local directory for this attempt's scratch files, created on first use.

        ``<run_dir>/work`` on a local workspace; on a remote one a directory in the local cache
        (``$MOLEXP_CACHE_DIR/work/...``), removed when the attempt succeeds and kept otherwise.
        Files here are not uploaded: save what matters with ``ctx.artifact.save``.
        """
        self.require_active("workdir")
        run = self.run
        local = run.storage.local_path(f"{run.key}/work")
        if local is None:
            local = self._remote_workdir()
        local.mkdir(parents=True, exist_ok=True)
        return local

    @property
    def active(self) -> bool:
        """Whether the context is entered."""
        return self.execution_id is not None

    # -- lifecycle ---------------------------------------------------------------------------

    def __enter__(self) -> RunContext:
        run = self.run
        with run.lock:
            if self.execution_id is not None:
                raise RunStateError(f"this context of run {run.id!r} is already entered")
            if run.context is not None:
                raise RunStateError(f"run {run.id!r} is already executing in this process")
            run.reload()
            meta = run.metadata
            if meta.status == RunStatus.RUNNING and meta.owner is not None:
                if owner_liveness(meta.owner) != Liveness.DEAD:
                    raise RunStateError(
                        f"run {run.id!r} is already running (pid {meta.owner.pid} on "
                        f"{meta.owner.host}); cancel it first, or wait for it to finish"
                    )
                run._finish_without_owner(
                    RunStatus.FAILED,
                    ErrorInfo(type="OwnerLost", message="the previous attempt's process is gone"),
                )
            storage = run.storage
            now = utcnow()
            execution_id = f"{now:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"
            owner = current_owner(execution_id, self._heartbeat_interval)
            claim = self._claim(owner)
            try:
                self._start(execution_id, owner, now)
            except BaseException:
                # The attempt never started: give its number back, so that a retry can claim it.
                with suppress(Exception):
                    storage.remove(claim)
                raise
            self.execution_id = execution_id
            run.context = self
        self._active_token = _active_context.set(self)
        self._beat = heartbeat(self._heartbeat_interval).register(self._heartbeat)
        return self

    def _start(self, execution_id: str, owner: OwnerInfo, now: datetime) -> None:
        """Make the run directories, capture the provenance and write the run as running (in
        memory only once ``run.json`` is written)."""
        run = self.run
        storage = run.storage
        meta = run.metadata
        storage.remove(f"{run.key}/{CANCEL_REQUEST_FILE}")
        storage.makedirs(f"{run.key}/artifacts")
        storage.makedirs(f"{run.key}/logs")
        changes: dict[str, Any] = {}
        if self._profile_config is not None:
            changes["config"] = self._profile_config
            changes["config_hash"] = config_hash(self._profile_config)
        if self._profile_config is not None or self._profile_name is not None:
            changes["profile_name"] = self._profile_name
        provenance = capture(
            run, execution_id, meta.execution_history, run.experiment.workflow_source
        )
        record = ExecutionRecord(
            execution_id=execution_id,
            started_at=now,
            host=hostname(),
            pid=os.getpid(),
            provenance=provenance,
        )
        run._save(
            owner=owner,
            status=RunStatus.RUNNING,
            started_at=now,
            finished_at=None,
            error=None,
            execution_history=[*meta.execution_history, record],
            **changes,
        )

    def _claim(self, owner: OwnerInfo) -> str:
        """Claim the next attempt number with an exclusively created file, so that two processes
        starting the same run at once cannot both execute it; return the claim's key."""
        run = self.run
        finished = {record.execution_id for record in run.metadata.execution_history}
        attempt = len(run.metadata.execution_history) + 1
        while True:
            key = f"{run.key}/execution/attempt-{attempt:06d}.json"
            try:
                run.storage.write_bytes(
                    key, owner.model_dump_json(indent=2).encode(), exclusive=True, durable=False
                )
                return key
            except FileExistsError:
                try:
                    other = OwnerInfo.model_validate_json(run.storage.read_bytes(key))
                except (ValueError, FileNotFoundError):
                    attempt += 1
                    continue
                if other.execution_id not in finished and owner_liveness(other) != Liveness.DEAD:
                    raise RunStateError(
                        f"run {run.id!r} is already being started by pid {other.pid} on "
                        f"{other.host}; cancel it first, or wait for it to finish"
                    ) from None
                attempt += 1

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        if self._beat is not None:
            self._beat.close()
            self._beat = None
        if self._active_token is not None:
            _active_context.reset(self._active_token)
            self._active_token = None
        close_error: Exception | None = None
        for handle in self._logs.values():
            try:
                handle.close()
            except Exception as failure:  # the other logs and the record must still be closed
                close_error = close_error or failure
        self._logs.clear()
        run = self.run
        with run.lock:
            execution_id = self.execution_id
            if execution_id is None:
                return False
            try:
                self._finish(exc, execution_id, close_error)
            except Exception as failure:
                if close_error is not None:  # the log that could not be saved is the news
                    raise close_error from failure
                raise
            finally:
                run.context = None
                self.execution_id = None
        if run.storage.local_path("") is None and run.status == RunStatus.SUCCEEDED:
            shutil.rmtree(self._remote_workdir(), ignore_errors=True)
        if close_error is not None and exc is None:
            raise close_error
        return isinstance(exc, RunCancelled)

    def _remote_workdir(self) -> Path:
        from molexp.workspace.catalog._catalog import cache_dir

        digest = hashlib.sha256(
            f"{self.run.storage.url}\0{self.workspace.id}".encode()
        ).hexdigest()[:16]
        return cache_dir() / "work" / digest / self.run.key

    def _finish(
        self, exc: BaseException | None, execution_id: str, close_error: Exception | None
    ) -> None:
        """Decide the attempt's outcome and write it (a failed write leaves the run 'running'
        with this process as owner, which is recognisable as dead once the process ends)."""
        run = self.run
        self._poll_cancel()
        if exc is None and close_error is not None:
            self._failure = self._error_from(close_error, execution_id)
        error: ErrorInfo | None = None
        if isinstance(exc, RunCancelled) or (exc is None and self._cancel_reason is not None):
            status = RunStatus.CANCELLED
            error = ErrorInfo(type="Cancelled", message=self._cancel_reason or str(exc))
        elif isinstance(exc, KeyboardInterrupt):
            status = RunStatus.CANCELLED
            error = self._error_from(exc, execution_id)
        elif exc is not None:
            status = RunStatus.FAILED
            error = self._error_from(exc, execution_id)
        elif self._failure is not None:
            status = RunStatus.FAILED
            error = self._failure
        else:
            status = RunStatus.SUCCEEDED
        if error is not None:
            error.execution_id = execution_id
        now = utcnow()
        history = run.metadata.execution_history
        ended = {"status": status, "finished_at": now, "error": error}
        record = history[-1].model_copy(update={**ended, "inputs": self._inputs()})
        run._save(execution_history=[*history[:-1], record], owner=None, **ended)
        run.storage.remove(f"{run.key}/{CANCEL_REQUEST_FILE}")

    def _inputs(self) -> list[str]:
        """Every asset this attempt read, by id, in the order first read (all tasks)."""
        seen: dict[str, None] = {}
        for consumed in self._consumed.values():
            seen.update(dict.fromkeys(consumed))
        return list(seen)

    def record_source(self, path: str | os.PathLike[str] | None, *, persist: bool = True) -> None:
        """Record the workflow source this attempt executes: a copy of the file and the git state
        of its work tree, on the attempt's provenance (the workflow layer calls this with the
        file that declared the workflow). Cheap when it is the file already recorded; capturing
        never raises (writing ``run.json`` can, and then the provenance is unchanged).

        ``persist=False`` leaves writing ``run.json`` to the caller's next write (the workflow
        layer stores its snapshot right after), saving one atomic write.
        """
        execution_id = self.require_active("record_source")
        run = self.run
        with run.lock:
            history = run.metadata.execution_history
            if not history or history[-1].execution_id != execution_id:
                return
            if history[-1].provenance is None:
                return
            provenance = history[-1].provenance.model_copy(deep=True)
            if not capture_source(run, execution_id, provenance, history[:-1], path):
                return
            updated = [*history[:-1], history[-1].model_copy(update={"provenance": provenance})]
            if persist:
                run._save(execution_history=updated)
            else:
                run.metadata.execution_history = updated

    def _error_from(
        self, exc: BaseException, execution_id: str, text: str | None = None
    ) -> ErrorInfo:
        key = f"execution/{execution_id}/error.txt"
        if text is None:
            text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        payload = text.encode()
        self.run.storage.write_bytes(f"{self.run.key}/{key}", payload)
        register_run_asset(
            self,
            kind=AssetKind.ERROR_TRACE,
            name="error.txt",
            payload=f"{self.run.key}/{key}",
            record=f"{self.run.key}/.assets/error_trace/{execution_id}.json",
            size=len(payload),
            content_hash=hash_bytes(payload),
            encoding="text",
            meta={"type": type(exc).__qualname__, "message": str(exc)},
        )
        return ErrorInfo(
            type=type(exc).__qualname__,
            message=str(exc),
            execution_id=execution_id,
            traceback_path=key,
        )

    def record_failure(
        self, error: BaseException | str, *, traceback_text: str | None = None
    ) -> None:
        """Mark this attempt failed without raising (the workflow runtime reports task failures so).

        An exception's traceback is saved under ``execution/<id>/error.txt``.
        """
        execution_id = self.require_active("record_failure")
        if isinstance(error, BaseException):
            info = self._error_from(error, execution_id, traceback_text)
        else:
            info = ErrorInfo(type="Failure", message=error, execution_id=execution_id)
        self._failure = info

    @property
    def failed(self) -> bool:
        """Whether :meth:`record_failure` was called in this attempt."""
        return self._failure is not None

    # -- cancellation and heartbeat ----------------------------------------------------------

    def request_cancel(self, reason: str = "cancelled by request") -> None:
        """Ask this attempt to stop; it ends as cancelled."""
        self._cancel_reason = reason

    def _poll_cancel(self) -> None:
        if self._cancel_reason is not None:
            return
        key = f"{self.run.key}/{CANCEL_REQUEST_FILE}"
        try:
            request = json.loads(self.run.storage.read_bytes(key))
        except FileNotFoundError:
            return
        except ValueError:
            request = {}
        self._cancel_reason = str(request.get("reason", "cancelled by request"))

    @property
    def cancel_requested(self) -> bool:
        """Whether someone asked this run to stop (checks for a cancel request from elsewhere)."""
        self._poll_cancel()
        return self._cancel_reason is not None

    def check_cancelled(self) -> None:
        """Raise :class:`RunCancelled` if a cancel was requested; the run then ends as cancelled."""
        if self.cancel_requested:
            raise RunCancelled(f"run {self.run.id!r} was cancelled: {self._cancel_reason}")

    def _heartbeat(self) -> None:
        with self.run.lock:
            owner = self.run.metadata.owner
            if self.execution_id is None or owner is None:
                return
            self.run._save(owner=owner.model_copy(update={"heartbeat_at": utcnow()}))
            self._poll_cancel()

    # -- results -----------------------------------------------------------------------------

    def require_active(self, what: str) -> str:
        """The current execution id; a clear error if the context is not entered."""
        if self.execution_id is None:
            raise RunStateError(
                f"{what} needs an executing run: use it inside 'with run.start() as ctx:'"
            )
        return self.execution_id

    def set_result(self, key: str, value: Any) -> None:
        """Record a lightweight JSON value in ``run.json``, written atomically (and fsynced on
        local disk) before this returns; if the write fails, the run's results are unchanged."""
        self.require_active("set_result")
        if not isinstance(key, str) or not key:
            raise ValueError(f"a result key must be a non-empty string, got {key!r}")
        checked = check_params({key: value}, what=f"result {key!r}")
        with self.run.lock:
            self.run._save(results={**self.run.metadata.results, key: checked[key]})

    def set_labels(self, labels: Mapping[str, str]) -> None:
        """Add string labels to the run and to this attempt's execution record (written now; if
        the write fails, neither has changed)."""
        self.require_active("set_labels")
        checked = check_labels(labels, what="labels")
        with self.run.lock:
            meta = self.run.metadata
            current = meta.execution_history[-1]
            record = current.model_copy(update={"labels": {**current.labels, **checked}})
            self.run._save(
                labels={**meta.labels, **checked},
                execution_history=[*meta.execution_history[:-1], record],
            )

    def get_result(self, key: str, default: Any = None) -> Any:
        """A result recorded in this or an earlier attempt."""
        return self.run.metadata.results.get(key, default)

    @property
    def results(self) -> dict[str, Any]:
        """A copy of every result recorded on the run."""
        return dict(self.run.metadata.results)

    # -- assets ------------------------------------------------------------------------------

    def log(self, name: str) -> LogHandle:
        """The log ``name`` of this run: ``ctx.log("train").append("loss=0.1")``."""
        handle = self._logs.get(name)
        if handle is None:
            handle = self._logs.setdefault(name, LogHandle(self, name))
        return handle

    def checkpoint(
        self,
        name: str,
        data: Any = None,
        *,
        tags: Sequence[str] | None = None,
        meta: dict[str, Any] | None = None,
    ) -> CheckpointAsset:
        """Save the next checkpoint of ``name``, chained to the previous one of that name."""
        with self.run.lock:
            return save_checkpoint(self, name, data, tags=tags, meta=meta)

    def producer(self) -> Producer:
        """The producer stamp for what is saved here now: run, attempt, task and what it read."""
        run = self.run
        task = _current_task.get()
        return Producer(
            run_id=run.id,
            experiment_id=run.experiment.id,
            project_id=run.experiment.project.id,
            execution_id=self.execution_id,
            task=task,
            inputs=list(self._consumed.get(task, ())),
        )

    def _consume(self, asset: Asset) -> None:
        consumed = self._consumed.setdefault(_current_task.get(), [])
        if asset.id not in consumed:
            consumed.append(asset.id)

    def find_asset(self, name: str, kind: AssetKind | str | None = None) -> Asset | None:
        """The asset called ``name``, searching run → experiment → project → workspace; the
        nearest scope wins, and within a scope the newest. Records it as read, for lineage."""
        run = self.run
        exp = run.experiment
        project = exp.project
        catalog = self.workspace.catalog
        searches: list[dict[str, Any]] = [
            {"scope": run},
            {"scope": "experiment", "project": project.id, "experiment": exp.id},
            {"scope": "project", "project": project.id},
            {"scope": "workspace"},
        ]
        for search in searches:
            found = catalog.query_assets(name=name, kind=kind, newest_first=True, limit=1, **search)
            if found:
                if self.active:
                    self._consume(found[0])
                return found[0]
        return None

    def get_data_dir(self, asset_name: str, fallback: str | os.PathLike[str] | None = None) -> Path:
        """A local directory for ``asset_name``: its payload directory if the asset exists, else
        ``fallback`` (relative to the workspace root) created on demand."""
        asset = self.find_asset(asset_name)
        storage = self.run.storage
        if asset is not None:
            key = asset.record.payload
            if not storage.is_dir(key):
                key = key.rsplit("/", 1)[0]
            local = storage.local_path(key)
            if local is None:
                raise StorageError(
                    f"asset {asset_name!r} is stored at {storage.url_for(key)}, which has no local "
                    "directory; read it with asset.open() instead"
                )
            return local
        if fallback is None:
            raise NotFoundError(
                f"no asset named {asset_name!r} in run {self.run.id!r}, its experiment, project or "
                "workspace; import it with data_assets.import_asset(), or pass fallback="
            )
        root = storage.local_path("")
        if root is None:
            raise StorageError(f"fallback directories need a local workspace, not {storage.url}")
        target = (root / fallback).resolve()
        if not target.is_relative_to(root):
            raise InvalidNameError(
                f"fallback {os.fspath(fallback)!r} is outside the workspace root {root}; give a "
                "path relative to the root"
            )
        target.mkdir(parents=True, exist_ok=True)
        return target

    # -- tasks and channels (used by the workflow layer) -------------------------------------------

    @contextmanager
    def task_scope(self, task: str) -> Iterator[None]:
        """Attribute what is produced inside this block (in this thread or task) to ``task``."""
        token = _current_task.set(task)
        try:
            yield
        finally:
            _current_task.reset(token)

    @property
    def current_task(self) -> str | None:
        """The task whose :meth:`task_scope` is active here, if any."""
        return _current_task.get()

    def attach_channels(self, channels: Mapping[str, Channel]) -> None:
        """Declare the channels that :meth:`emit` and :meth:`receive` may use."""
        self._channels.update(channels)

    def _channel(self, name: str) -> Channel:
        try:
            return self._channels[name]
        except KeyError:
            declared = ", ".join(sorted(self._channels)) or "none"
            raise NotFoundError(
                f"channel {name!r} is not declared by this run's workflow (declared: {declared})"
            ) from None

    def emit(self, channel: str, message: Any) -> None:
        """Send ``message`` on a declared channel."""
        self._channel(channel).emit(message)

    def receive(self, channel: str) -> Any:
        """Receive from a declared channel."""
        return self._channel(channel).receive()

    def __repr__(self) -> str:
        state = f"execution={self.execution_id!r}" if self.execution_id else "not entered"
        return f"RunContext(run={self.run.id!r}, {state})"
