"""The JSON API: ``/api/...``, described by ``/api/openapi.json``.

Every endpoint reads workspace state, except ``POST .../runs/{run_id}/cancel``, which needs a
JSON body confirming the run id. Handlers are plain functions: FastAPI runs them in its thread
pool, since the storage seam is blocking.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterator
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse

from molexp.server._content import (
    list_files,
    media_policy,
    payload_key,
    read_from,
    tail_lines,
)
from molexp.server._errors import BadRequest
from molexp.server._models import (
    AssetOut,
    CancelIn,
    CancelOut,
    ExperimentOut,
    FileOut,
    FilesOut,
    HealthOut,
    HistoryOut,
    ProjectOut,
    RunErrorOut,
    RunOut,
    RunPage,
    RunSummary,
    TailOut,
    WorkspaceOut,
)
from molexp.server._query import MAX_LIMIT, RunQuery
from molexp.server._security import PAYLOAD_CSP
from molexp.server._state import ServerState
from molexp.server._views import run_assets, run_error, tree
from molexp.workspace import AssetKind, LogAsset, ScopeLevel

CHUNK = 64 * 1024


def get_state(request: Request) -> ServerState:
    """The server state of the app handling ``request``."""
    state: ServerState = request.app.state.molexp
    return state


State = Annotated[ServerState, Depends(get_state)]
router = APIRouter(prefix="/api", tags=["workspace"])
RUN = "/projects/{project_id}/experiments/{experiment_id}/runs/{run_id}"


@router.get("/health", summary="The server is up")
def health(state: State) -> HealthOut:
    """A cheap liveness check."""
    from molexp.server import __version__

    return HealthOut(status="ok", workspace=state.workspace.url, version=__version__)


@router.get("/workspace", summary="The workspace tree with run counts by status")
def workspace(state: State) -> WorkspaceOut:
    """The workspace, every project and experiment, and how many runs are in each status."""
    return tree(state)


@router.get("/projects", summary="Every project")
def projects(state: State) -> list[ProjectOut]:
    """Every project, sorted by id."""
    return [ProjectOut.of(p) for p in state.workspace.list_projects()]


@router.get("/projects/{project_id}", summary="One project and its experiments")
def project(state: State, project_id: str) -> ProjectOut:
    """A project with its experiments and their run counts."""
    found = state.project(project_id)
    experiments = [ExperimentOut.of(e, state.runs(e)) for e in found.list_experiments()]
    return ProjectOut.of(found, experiments)


@router.get("/projects/{project_id}/experiments", summary="A project's experiments")
def experiments(state: State, project_id: str) -> list[ExperimentOut]:
    """Every experiment of a project, with run counts by status."""
    return [
        ExperimentOut.of(e, state.runs(e)) for e in state.project(project_id).list_experiments()
    ]


@router.get("/projects/{project_id}/experiments/{experiment_id}", summary="One experiment")
def experiment(state: State, project_id: str, experiment_id: str) -> ExperimentOut:
    """An experiment's definition and run counts by status."""
    found = state.experiment(project_id, experiment_id)
    return ExperimentOut.of(found, state.runs(found))


@router.get(
    "/projects/{project_id}/experiments/{experiment_id}/runs",
    summary="A page of an experiment's runs: filtered, sorted and paged on the server",
)
def runs(
    state: State,
    project_id: str,
    experiment_id: str,
    status: Annotated[list[str], Query(description="keep these statuses (repeat or comma)")] = [],  # noqa: B006
    filter: Annotated[  # noqa: A002 - the query parameter is called `filter`
        list[str], Query(description="FIELD OP VALUE, e.g. param.lr>=0.01 (repeatable)")
    ] = [],  # noqa: B006
    q: Annotated[str | None, Query(description="text to find in ids and parameters")] = None,
    sort: Annotated[
        str | None, Query(description="created, id, status, duration, param.X, result.X, ...")
    ] = None,
    order: Annotated[str | None, Query(pattern="^(asc|desc)$")] = None,
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 100,
) -> RunPage:
    """Runs of an experiment. The server keeps an index of the runs (refreshed from what changed
    on disk), so a page costs the same for 10 runs or 10,000."""
    found = state.experiment(project_id, experiment_id)
    query = RunQuery.build(
        status=status, filters=filter, q=q, sort=sort, order=order, offset=offset, limit=limit
    )
    snapshot = state.runs(found)
    total, page = query.run(snapshot)
    return RunPage(
        total=total,
        offset=query.offset,
        limit=query.limit,
        sort=query.sort,
        order="desc" if query.descending else "asc",
        filters=[str(f) for f in query.filters],
        statuses=list(query.statuses),
        param_columns=list(snapshot.param_columns),
        result_columns=list(snapshot.result_columns),
        counts=dict(snapshot.counts),
        items=[RunSummary.of(row) for row in page],
    )


@router.get(RUN, summary="One run's whole record")
def run(state: State, project_id: str, experiment_id: str, run_id: str) -> RunOut:
    """The run's ``run.json`` (metadata, parameters, profile config, results, execution history,
    error, owner), whether its owner is alive, and whether a cancel is pending."""
    found = state.run(project_id, experiment_id, run_id)
    liveness = found.liveness()
    return RunOut(
        project_id=project_id,
        experiment_id=experiment_id,
        liveness=liveness.value,
        cancel_requested=found.cancel_requested,
        run=found.metadata,
    )


@router.get(f"{RUN}/history", summary="A run's execution attempts")
def history(state: State, project_id: str, experiment_id: str, run_id: str) -> HistoryOut:
    """Every execution attempt, oldest first."""
    found = state.run(project_id, experiment_id, run_id)
    return HistoryOut(run_id=found.id, execution_history=found.metadata.execution_history)


@router.get(f"{RUN}/error", summary="Why a run failed, with tracebacks")
def error(state: State, project_id: str, experiment_id: str, run_id: str) -> RunErrorOut:
    """The latest error and the saved traceback of each failed attempt."""
    return run_error(state, state.run(project_id, experiment_id, run_id))


@router.get(f"{RUN}/results", summary="A run's results")
def results(state: State, project_id: str, experiment_id: str, run_id: str) -> dict[str, Any]:
    """The results recorded with ``ctx.set_result``."""
    return state.run(project_id, experiment_id, run_id).results


@router.get(f"{RUN}/config", summary="A run's profile and merged config")
def config(state: State, project_id: str, experiment_id: str, run_id: str) -> dict[str, Any]:
    """The profile name, merged profile config and its hash."""
    meta = state.run(project_id, experiment_id, run_id).metadata
    return {
        "profile_name": meta.profile_name,
        "config_hash": meta.config_hash,
        "config": meta.config,
    }


@router.get(f"{RUN}/assets", summary="A run's assets")
def assets(state: State, project_id: str, experiment_id: str, run_id: str) -> list[AssetOut]:
    """The assets of the run and those it produced in other scopes, oldest first."""
    found = state.run(project_id, experiment_id, run_id)
    return [AssetOut.of(a) for a in run_assets(state, found)]


@router.get(f"{RUN}/logs", summary="A run's logs")
def logs(state: State, project_id: str, experiment_id: str, run_id: str) -> list[AssetOut]:
    """The run's log assets (tail them with ``/api/assets/{id}/tail``)."""
    found = state.run(project_id, experiment_id, run_id)
    return [
        AssetOut.of(a) for a in state.workspace.catalog.query_assets(kind=AssetKind.LOG, run=found)
    ]


@router.post(f"{RUN}/cancel", summary="Cancel a run (confirmed)", tags=["actions"])
def cancel(
    state: State, request: Request, project_id: str, experiment_id: str, run_id: str, body: CancelIn
) -> CancelOut:
    """Cancel a created or running run: the only request that changes the workspace.

    The body must repeat the run id (``{"confirm": "<run id>"}``) and be sent as
    ``application/json``. A run executing elsewhere gets a cancel request that its owner honours;
    a run that is not executing is marked cancelled at once.
    """
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith("application/json"):
        raise BadRequest('send the confirmation as application/json: {"confirm": "<run id>"}')
    found = state.run(project_id, experiment_id, run_id)
    if body.confirm != found.id:
        raise BadRequest(
            f"confirm must repeat the run id {found.id!r}: a cancel has to be confirmed explicitly"
        )
    found.cancel(body.reason or "cancelled from molexp serve")
    state.index(found.experiment).invalidate(found.id)
    found.reload()
    return CancelOut(
        run_id=found.id, status=found.status.value, cancel_requested=found.cancel_requested
    )


# -- the catalog ----------------------------------------------------------------------------------


@router.get("/assets", summary="Query the catalog", tags=["catalog"])
def query_assets(
    state: State,
    kind: Annotated[list[str], Query()] = [],  # noqa: B006
    name: Annotated[list[str], Query()] = [],  # noqa: B006
    scope: Annotated[str | None, Query(description="workspace, project, experiment or run")] = None,
    project: str | None = None,
    experiment: str | None = None,
    run: str | None = None,
    producer_run: str | None = None,
    producer_task: str | None = None,
    tags: Annotated[list[str], Query(description="every tag must match")] = [],  # noqa: B006
    created_after: datetime | None = None,
    created_before: datetime | None = None,
    newest_first: bool = True,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 100,
) -> list[AssetOut]:
    """Assets matching every given filter (``ws.catalog.query_assets``), newest first."""
    try:
        kinds = [AssetKind(k).value for k in kind if k]
        level = ScopeLevel(scope).value if scope else None
    except ValueError as exc:
        raise BadRequest(
            f"{exc}: kind is one of {', '.join(k.value for k in AssetKind)}; scope is one of "
            f"{', '.join(s.value for s in ScopeLevel)}"
        ) from None
    found = state.workspace.catalog.query_assets(
        kind=kinds or None,
        name=[n for n in name if n] or None,
        scope=level,
        project=project or None,
        experiment=experiment or None,
        run=run or None,
        producer_run=producer_run or None,
        producer_task=producer_task or None,
        tags=[t for t in tags if t] or None,
        created_after=created_after,
        created_before=created_before,
        newest_first=newest_first,
        limit=limit,
    )
    return [AssetOut.of(a) for a in found]


@router.get("/assets/{asset_id}", summary="One asset's record", tags=["catalog"])
def asset(state: State, asset_id: str) -> AssetOut:
    """The asset's catalog record and how its content is served."""
    return AssetOut.of(state.asset(asset_id))


def _disposition(kind: str, filename: str) -> str:
    ascii_name = "".join(c if c.isalnum() or c in "._-" else "_" for c in filename) or "download"
    return f"{kind}; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename, safe='')}"


@router.get(
    "/assets/{asset_id}/content",
    summary="Download an asset's payload",
    tags=["catalog"],
    response_class=StreamingResponse,
    responses={200: {"content": {"application/octet-stream": {}}}},
)
def content(
    state: State,
    asset_id: str,
    file: Annotated[str | None, Query(description="a file inside a directory payload")] = None,
    download: bool = False,
) -> StreamingResponse:
    """The payload's bytes. Images, JSON and plain text are served inline with their type;
    everything else (HTML and SVG included) as an ``application/octet-stream`` attachment."""
    found = state.asset(asset_id)
    storage = state.workspace.storage
    key = payload_key(found, file)
    if storage.is_dir(key):
        raise BadRequest(
            f"asset {asset_id!r}{f' file {file!r}' if file else ''} is a directory: list its "
            f"files at /api/assets/{asset_id}/files and ask for one with ?file=PATH"
        )
    filename = posixpath.basename(key)
    policy = media_policy(filename, None if file else found.record.encoding)
    size = storage.size(key)
    stream = storage.open(key, "rb")

    def chunks() -> Iterator[bytes]:
        with stream:
            while data := stream.read(CHUNK):
                yield data

    inline = policy.inline and not download
    headers = {
        "Content-Length": str(size),
        "Content-Disposition": _disposition("inline" if inline else "attachment", filename),
        "Content-Security-Policy": PAYLOAD_CSP,
    }
    return StreamingResponse(chunks(), media_type=policy.media_type, headers=headers)


@router.get(
    "/assets/{asset_id}/files", summary="The files of a directory payload", tags=["catalog"]
)
def files(state: State, asset_id: str) -> FilesOut:
    """Every file under a directory payload (relative paths)."""
    found = state.asset(asset_id)
    key = payload_key(found)
    if not state.workspace.storage.is_dir(key):
        raise BadRequest(f"asset {asset_id!r} is a single file: download it from its content URL")
    entries, truncated = list_files(state.workspace.storage, key)
    return FilesOut(
        asset_id=found.id,
        files=[
            FileOut(
                path=e.path,
                size=e.size,
                content_url=f"/api/assets/{found.id}/content?file={quote(e.path)}",
            )
            for e in entries
        ],
        truncated=truncated,
    )


@router.get("/assets/{asset_id}/tail", summary="Tail a log", tags=["catalog"])
def tail(
    state: State,
    asset_id: str,
    lines: Annotated[int, Query(ge=0, le=10_000)] = 200,
    offset: Annotated[int | None, Query(ge=0, description="continue from this byte")] = None,
) -> TailOut:
    """The last ``lines`` lines of a log; with ``offset``, the complete lines written since (pass
    the returned offset back to follow a log as it grows)."""
    found = state.asset(asset_id)
    if not isinstance(found, LogAsset):
        raise BadRequest(f"asset {asset_id!r} is a {found.record.kind.value}, not a log")
    key = payload_key(found)
    storage = state.workspace.storage
    piece = tail_lines(storage, key, lines) if offset is None else read_from(storage, key, offset)
    return TailOut(
        asset_id=found.id, text=piece.text, offset=piece.offset, size=piece.size, reset=piece.reset
    )
