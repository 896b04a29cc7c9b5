"""Reading workspace state for a request: shared by the JSON API and the web pages."""

from __future__ import annotations

from typing import TYPE_CHECKING

from molexp.server._content import checked_key, read_head
from molexp.server._errors import AccessDenied
from molexp.server._models import ExperimentOut, ProjectOut, RunErrorOut, WorkspaceOut
from molexp.workspace import AssetKind, ErrorTraceAsset, StorageError

if TYPE_CHECKING:
    from molexp.server._state import ServerState
    from molexp.workspace import Asset, Run

TRACEBACK_LIMIT = 256 * 1024


def tree(state: ServerState) -> WorkspaceOut:
    """The workspace, its projects and experiments, with run counts by status."""
    projects = []
    for project in state.workspace.list_projects():
        experiments = [
            ExperimentOut.of(experiment, state.runs(experiment))
            for experiment in project.list_experiments()
        ]
        projects.append(ProjectOut.of(project, experiments))
    return WorkspaceOut.of(state.workspace, projects)


def run_assets(state: ServerState, run: Run) -> list[Asset]:
    """The assets of ``run`` (its own scope) and those it produced elsewhere, oldest first."""
    catalog = state.workspace.catalog
    own = catalog.query_assets(run=run)
    produced = catalog.query_assets(producer_run=run)
    seen = {asset.id for asset in own}
    merged = own + [asset for asset in produced if asset.id not in seen]
    return sorted(merged, key=lambda a: (a.created_at, a.id))


def _read_trace(asset: Asset) -> str | None:
    try:
        key = checked_key(asset.workspace.storage, asset.record.payload)
        data = read_head(asset.workspace.storage, key, TRACEBACK_LIMIT)
    except (FileNotFoundError, AccessDenied, StorageError, IsADirectoryError):
        return None
    return data.decode("utf-8", "replace")


def run_error(state: ServerState, run: Run, assets: list[Asset] | None = None) -> RunErrorOut:
    """The run's latest error and the traceback of every failed attempt (from the catalog)."""
    if assets is None:
        assets = state.workspace.catalog.query_assets(kind=AssetKind.ERROR_TRACE, run=run)
    traces: dict[str, str] = {}
    for asset in assets:
        if not isinstance(asset, ErrorTraceAsset):
            continue
        producer = asset.producer
        execution_id = producer.execution_id if producer is not None else None
        text = _read_trace(asset)
        if execution_id is not None and text is not None:
            traces[execution_id] = text
    error = run.error
    latest = None
    if error is not None and error.execution_id is not None:
        latest = traces.get(error.execution_id)
    if error is not None and latest is None and error.traceback_path:
        # An error recorded before the catalog knew its trace: read the file it names, through
        # the same checks (a relative key inside the run directory, no link out).
        try:
            key = checked_key(run.storage, f"{run.key}/{error.traceback_path}")
            latest = read_head(run.storage, key, TRACEBACK_LIMIT).decode("utf-8", "replace")
        except (FileNotFoundError, AccessDenied, StorageError, IsADirectoryError):
            latest = None
    return RunErrorOut(error=error, traceback=latest, tracebacks=traces)
