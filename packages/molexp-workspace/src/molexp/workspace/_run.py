"""A run: one concrete execution attempt record under an experiment."""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from molexp.workspace._errors import RunStateError
from molexp.workspace._metadata import ErrorInfo, RunMetadata, RunStatus
from molexp.workspace._ownership import (
    DEFAULT_HEARTBEAT_INTERVAL,
    Liveness,
    hostname,
    owner_liveness,
)
from molexp.workspace._records import (
    SCHEMA_VERSION,
    check_params,
    read_record,
    utcnow,
    write_record,
)

if TYPE_CHECKING:
    from molexp.workspace._context import RunContext
    from molexp.workspace._experiment import Experiment
    from molexp.workspace.catalog import AssetView
    from molexp.workspace.storage import Storage

RUN_FILE = "run.json"
CANCEL_REQUEST_FILE = "cancel-request.json"


class Run:
    """A run. Create with ``exp.Run(parameters=..., id=...)``; execute with ``run.start()``.

    While a :class:`RunContext` of this process is open, that context is the only writer of
    ``run.json``; other processes ask it to stop through a separate cancel request.
    """

    def __init__(self, experiment: Experiment, metadata: RunMetadata) -> None:
        self.experiment = experiment
        self.metadata = metadata
        self.key: str = f"{experiment.key}/runs/run-{metadata.id}"
        self.lock = threading.RLock()
        self.context: RunContext | None = None

    @property
    def storage(self) -> Storage:
        """The store the run lives in."""
        return self.experiment.project.workspace.storage

    @property
    def id(self) -> str:
        """The run id; its directory is ``run-<id>``."""
        return self.metadata.id

    @property
    def parameters(self) -> dict[str, Any]:
        """The concrete parameters of this run."""
        return self.metadata.parameters

    params = parameters

    @property
    def status(self) -> RunStatus:
        """Where the run is in its lifecycle."""
        return self.metadata.status

    @property
    def results(self) -> dict[str, Any]:
        """The lightweight results set with ``ctx.set_result``."""
        return self.metadata.results

    @property
    def error(self) -> ErrorInfo | None:
        """Why the latest attempt failed, if it did."""
        return self.metadata.error

    @property
    def run_dir(self) -> Path | str:
        """The run directory: a Path when local, a URL otherwise."""
        local = self.storage.local_path(self.key)
        return local if local is not None else self.storage.url_for(self.key)

    @property
    def assets(self) -> AssetView:
        """The assets of this run (read-only)."""
        return self.experiment.project.workspace.catalog.view(self)

    def _save(self, **changes: Any) -> None:
        """Write ``run.json`` with ``changes`` (field → new value) applied to a copy of the
        metadata, which becomes the run's metadata only once the write succeeded: a failed write
        changes nothing, so no later write can store a value the caller was told failed to save.
        """
        with self.lock:
            updated = self.metadata.model_copy(update=changes)
            write_record(self.storage, f"{self.key}/{RUN_FILE}", updated)
            self.metadata = updated

    def reload(self) -> Run:
        """Re-read ``run.json`` (not while this process executes the run: it is current then)."""
        with self.lock:
            if self.context is None:
                self.metadata = read_record(self.storage, f"{self.key}/{RUN_FILE}", RunMetadata)
        return self

    def start(
        self,
        profile_config: Mapping[str, Any] | None = None,
        *,
        profile_name: str | None = None,
        heartbeat_interval: float = DEFAULT_HEARTBEAT_INTERVAL,
    ) -> RunContext:
        """A :class:`RunContext` for a new attempt; ``with run.start() as ctx:`` executes it.

        Without ``profile_config`` the run keeps the profile already recorded on it.
        """
        from molexp.workspace._context import RunContext

        return RunContext(
            self,
            profile_config=profile_config,
            profile_name=profile_name,
            heartbeat_interval=heartbeat_interval,
        )

    def set_workflow(self, payload: Mapping[str, Any]) -> None:
        """Store a workflow snapshot (opaque JSON shaped by the workflow layer) on the run."""
        snapshot = check_params(payload, what="workflow snapshot")
        with self.lock:
            if self.context is None:
                self.reload()
                owner = self.metadata.owner
                if (
                    self.metadata.status == RunStatus.RUNNING
                    and owner is not None
                    and owner_liveness(owner) != Liveness.DEAD
                ):
                    raise RunStateError(
                        f"run {self.id!r} is running in pid {owner.pid} on {owner.host}; only "
                        "that process may change it"
                    )
            self._save(workflow_snapshot=snapshot)

    def liveness(self) -> Liveness:
        """Whether a running run's owner is alive, dead (same host), or stale (remote, silent)."""
        if self.context is not None:
            return Liveness.ALIVE
        self.reload()
        owner = self.metadata.owner
        if self.metadata.status != RunStatus.RUNNING or owner is None:
            return Liveness.NOT_RUNNING
        return owner_liveness(owner)

    @property
    def cancel_requested(self) -> bool:
        """Whether a cancel request is waiting for this run's owner."""
        return self.storage.exists(f"{self.key}/{CANCEL_REQUEST_FILE}")

    def cancel(self, reason: str = "cancelled by request") -> None:
        """Cancel the run.

        A run executing in this process stops at its next cancellation check; one executing in
        another live process gets a cancel request that its owner honours. A run that is not
        executing (or whose owner is dead) is marked cancelled at once. A finished run (succeeded,
        failed or cancelled) cannot be cancelled.
        """
        if self.context is not None:
            self.context.request_cancel(reason)
            return
        liveness = self.liveness()
        if self.metadata.status.is_terminal:
            raise RunStateError(
                f"run {self.id!r} has already {self.metadata.status.value}; there is nothing to "
                "cancel"
            )
        if liveness in (Liveness.ALIVE, Liveness.STALE):
            self.storage.write_json(
                f"{self.key}/{CANCEL_REQUEST_FILE}",
                {
                    "schema_version": SCHEMA_VERSION,
                    "requested_at": utcnow().isoformat(),
                    "reason": reason,
                    "host": hostname(),
                    "pid": os.getpid(),
                },
            )
            return
        self._finish_without_owner(RunStatus.CANCELLED, ErrorInfo(type="Cancelled", message=reason))

    def mark_failed_if_dead(self, *, include_stale: bool = False) -> bool:
        """Mark a running run whose owner is gone as failed; return whether it did.

        A remote owner is only ever STALE (its heartbeat stopped), never known dead: it is marked
        failed only with ``include_stale=True``.
        """
        liveness = self.liveness()
        if liveness == Liveness.DEAD or (include_stale and liveness == Liveness.STALE):
            owner = self.metadata.owner
            where = f"pid {owner.pid} on {owner.host}" if owner is not None else "its owner"
            self._finish_without_owner(
                RunStatus.FAILED,
                ErrorInfo(
                    type="OwnerLost",
                    message=f"the process executing this run ({where}) is gone ({liveness.value})",
                ),
            )
            return True
        return False

    def _finish_without_owner(self, status: RunStatus, error: ErrorInfo) -> None:
        with self.lock:
            now = utcnow()
            meta = self.metadata
            if meta.owner is not None:
                error.execution_id = meta.owner.execution_id
            ended = {"status": status, "finished_at": now, "error": error}
            history = [
                record.model_copy(update=ended) if record.status == RunStatus.RUNNING else record
                for record in meta.execution_history
            ]
            self._save(execution_history=history, owner=None, **ended)
            self.storage.remove(f"{self.key}/{CANCEL_REQUEST_FILE}")

    def __repr__(self) -> str:
        return f"Run({self.id!r}, status={self.status.value!r})"
