"""The web pages: server-rendered HTML (Jinja2, every value escaped) with a little vanilla JS.

A page whose content changes while runs are in progress carries ``data-poll-url``: the script
fetches the same page with ``?fragment=1`` (just the changing part) every few seconds and swaps it
in, for as long as the fragment says something is still live. Log panes follow their log with
``/api/assets/{id}/tail?offset=N``.
"""

from __future__ import annotations

import json
import posixpath
from typing import Annotated, Any
from urllib.parse import parse_qsl, quote

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from markupsafe import Markup
from starlette.concurrency import run_in_threadpool

from molexp.server._api import get_state
from molexp.server._chart import Point, scatter_svg
from molexp.server._content import (
    Preview,
    checked_key,
    list_files,
    media_policy,
    payload_key,
    preview,
    tail_lines,
)
from molexp.server._errors import AccessDenied, BadRequest
from molexp.server._models import ExperimentOut, ProjectOut
from molexp.server._query import QueryError, RunQuery, field_value, normalize_field
from molexp.server._render import render
from molexp.server._state import ServerState
from molexp.server._views import run_assets, run_error, tree
from molexp.workspace import (
    Asset,
    AssetKind,
    LogAsset,
    MolexpError,
    Run,
    RunStateError,
    RunStatus,
    ScopeLevel,
    flatten_keys,
)

State = Annotated[ServerState, Depends(get_state)]
router = APIRouter(include_in_schema=False)

MAX_COMPARE = 100
MAX_POINTS = 5000
MAX_PREVIEWS = 12
_PREVIEW_KINDS = (AssetKind.ARTIFACT, AssetKind.DATA, AssetKind.CHECKPOINT)
_CANCEL_MESSAGES = {
    "requested": ("Cancel requested: the process executing the run will stop it.", "info"),
    "done": ("The run was cancelled.", "info"),
}


def _page(
    state: ServerState, template: str, context: dict[str, Any], status: int = 200
) -> Response:
    context.setdefault("crumbs", [])
    context["workspace"] = state.workspace
    return HTMLResponse(render(template, context), status_code=status)


def _fragment(request: Request) -> bool:
    return request.query_params.get("fragment") == "1"


def _pairs(request: Request, *, keep: tuple[str, ...] | None = None) -> list[tuple[str, str]]:
    return [
        (k, v)
        for k, v in request.query_params.multi_items()
        if k != "fragment" and (keep is None or k in keep)
    ]


def _int(value: str | None, default: int, what: str) -> int:
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise QueryError(f"{what} must be a whole number, got {value!r}") from None


def _run_query(request: Request, *, paged: bool = True) -> RunQuery:
    params = request.query_params
    return RunQuery.build(
        status=params.getlist("status"),
        filters=params.getlist("filter"),
        q=params.get("q"),
        sort=params.get("sort") if paged else None,
        order=params.get("order") if paged else None,
        offset=_int(params.get("offset"), 0, "offset") if paged else 0,
        limit=_int(params.get("limit"), 50, "limit") if paged else 50,
    )


# -- the tree and a project ---------------------------------------------------------------------


@router.get("/")
def home(request: Request, state: State) -> Response:
    """The workspace tree: projects, experiments, and run counts by status."""
    found = tree(state)
    live = any(
        exp.run_counts.get("running", 0)
        for project in found.projects
        for exp in project.experiments or []
    )
    context: dict[str, Any] = {"tree": found, "live": live}
    if _fragment(request):
        return HTMLResponse(render("_tree.html", context))
    return _page(state, "tree.html", context)


@router.get("/p/{project_id}")
def project_page(state: State, project_id: str) -> Response:
    """A project: its description, config and experiments."""
    project = state.project(project_id)
    experiments = [ExperimentOut.of(e, state.runs(e)) for e in project.list_experiments()]
    context = {
        "project": ProjectOut.of(project, experiments),
        "crumbs": [(project.name, None)],
    }
    return _page(state, "project.html", context)


# -- an experiment: the runs table and the chart ------------------------------------------------


@router.get("/p/{project_id}/e/{experiment_id}")
def experiment_page(
    request: Request, state: State, project_id: str, experiment_id: str
) -> Response:
    """An experiment's runs as a sortable, filterable, paged table."""
    experiment = state.experiment(project_id, experiment_id)
    snapshot = state.runs(experiment)
    error = None
    try:
        rq = _run_query(request)
    except QueryError as exc:
        error, rq = str(exc), RunQuery()
    total, rows = rq.run(snapshot)
    base = f"/p/{experiment.project.id}/e/{experiment.id}"
    context: dict[str, Any] = {
        "project": experiment.project.metadata,
        "experiment": ExperimentOut.of(experiment, snapshot),
        "rq": rq,
        "total": total,
        "rows": rows,
        "all_total": len(snapshot.rows),
        "counts": snapshot.counts,
        "problems": snapshot.problems,
        "columns": {"param": snapshot.param_columns, "result": snapshot.result_columns},
        "pairs": _pairs(request),
        "base": base,
        "live": snapshot.active,
        "error": error,
        "crumbs": [
            (experiment.project.name, f"/p/{experiment.project.id}"),
            (experiment.name, None),
        ],
    }
    if _fragment(request):
        return HTMLResponse(render("_runs.html", context))
    return _page(state, "experiment.html", context)


def _axis(request: Request, name: str, default: str | None) -> str | None:
    value = request.query_params.get(name) or default
    return normalize_field(value) if value else None


def _label(field: str) -> str:
    return field.split(".", 1)[1] if "." in field else field


def _scatter(request: Request, points: list[Point], x: str, y: str) -> tuple[Markup, str | None]:
    """The chart of ``points`` (field ``y`` against ``x``), on log axes where the page asks."""
    svg, note = scatter_svg(
        points,
        _label(x),
        _label(y),
        log_x=request.query_params.get("logx") == "1",
        log_y=request.query_params.get("logy") == "1",
    )
    return Markup(svg), note


@router.get("/p/{project_id}/e/{experiment_id}/chart")
def chart_page(request: Request, state: State, project_id: str, experiment_id: str) -> Response:
    """A chart of one result against one parameter over every matching run."""
    experiment = state.experiment(project_id, experiment_id)
    snapshot = state.runs(experiment)
    error = None
    chart: Markup | None = None
    note = None
    x = y = None
    count = 0
    try:
        rq = _run_query(request, paged=False)
        x = _axis(
            request, "x", f"param.{snapshot.param_columns[0]}" if snapshot.param_columns else None
        )
        y = _axis(
            request,
            "y",
            f"result.{snapshot.result_columns[0]}" if snapshot.result_columns else None,
        )
    except QueryError as exc:
        error, rq = str(exc), RunQuery()
    if x is not None and y is not None:
        rows = rq.all(snapshot)
        points = []
        for row in rows[:MAX_POINTS]:
            has_x, x_value = field_value(row, x)
            if has_x:
                points.append(
                    Point(
                        x_value,
                        field_value(row, y)[1],
                        row.id,
                        row.status.value,
                        f"/p/{experiment.project.id}/e/{experiment.id}/r/{row.id}",
                    )
                )
        count = len(points)
        chart, note = _scatter(request, points, x, y)
        if len(rows) > MAX_POINTS:
            note = f"{note + '; ' if note else ''}only the first {MAX_POINTS} runs are drawn"
    elif error is None:
        error = "this experiment has no parameter and result to chart yet"
    base = f"/p/{experiment.project.id}/e/{experiment.id}"
    context: dict[str, Any] = {
        "experiment": experiment.metadata,
        "columns": {"param": snapshot.param_columns, "result": snapshot.result_columns},
        "x": x, "y": y,
        "x_label": _label(x) if x else "", "y_label": _label(y) if y else "",
        "logx": request.query_params.get("logx") == "1",
        "logy": request.query_params.get("logy") == "1",
        "chart": chart, "chart_note": note, "count": count, "error": error,
        "pairs": _pairs(request),
        "filter_pairs": _pairs(request, keep=("status", "filter", "q")),
        "base": base,
        "crumbs": [
            (experiment.project.name, f"/p/{experiment.project.id}"),
            (experiment.name, base),
            ("chart", None),
        ],
    }  # fmt: skip
    return _page(state, "chart.html", context)


# -- a run --------------------------------------------------------------------------------------


def _preview_of(asset: Asset) -> Preview | None:
    record = asset.record
    if record.kind not in _PREVIEW_KINDS or record.encoding == "directory":
        return None
    storage = asset.workspace.storage
    try:
        key = checked_key(storage, record.payload)
        if storage.is_dir(key):
            return None
    except AccessDenied:
        return Preview("none", note="refused: the payload links outside the workspace")
    policy = media_policy(posixpath.basename(key), record.encoding)
    return preview(storage, key, policy, record.size)


def _run_context(state: ServerState, run: Run) -> dict[str, Any]:
    experiment = run.experiment
    project = experiment.project
    meta = run.metadata
    assets = run_assets(state, run)
    traces = [a for a in assets if a.record.kind == AssetKind.ERROR_TRACE]
    shown = [a for a in assets if a.record.kind not in (AssetKind.LOG, AssetKind.ERROR_TRACE)]
    items = []
    for index, asset in enumerate(shown):
        items.append(
            {"asset": asset, "preview": _preview_of(asset) if index < MAX_PREVIEWS else None}
        )
    durations = [
        (rec.finished_at - rec.started_at).total_seconds() if rec.finished_at else None
        for rec in meta.execution_history
    ]
    duration = (
        (meta.finished_at - meta.started_at).total_seconds()
        if meta.started_at and meta.finished_at
        else None
    )
    live = not meta.status.is_terminal
    base = f"/p/{project.id}/e/{experiment.id}/r/{meta.id}"
    return {
        "project": project.metadata,
        "experiment": experiment.metadata,
        "meta": meta,
        "params": flatten_keys(meta.parameters),
        "results": flatten_keys(meta.results),
        "liveness": run.liveness().value if meta.status == RunStatus.RUNNING else "",
        "cancel_requested": run.cancel_requested if live else False,
        "cancel_token": state.cancel_token(run),
        "error": run_error(state, run, traces),
        "assets": items,
        "log_assets": [a for a in assets if isinstance(a, LogAsset)],
        "durations": durations,
        "duration": duration,
        "live": live,
        "base": base,
        "crumbs": [
            (project.name, f"/p/{project.id}"),
            (experiment.name, f"/p/{project.id}/e/{experiment.id}"),
            (meta.id, None),
        ],
    }


@router.get("/p/{project_id}/e/{experiment_id}/r/{run_id}")
def run_page(
    request: Request, state: State, project_id: str, experiment_id: str, run_id: str
) -> Response:
    """A run: metadata, parameters, results, error and traceback, profile config, execution
    history, assets with previews, and live log tails."""
    run = state.run(project_id, experiment_id, run_id)
    context = _run_context(state, run)
    if _fragment(request):
        return HTMLResponse(render("_run.html", context))
    storage = state.workspace.storage
    logs = []
    for log in context["log_assets"]:
        try:
            piece = tail_lines(storage, payload_key(log), 200)
        except (FileNotFoundError, AccessDenied):
            continue
        logs.append({"asset": log, "tail": piece})
    context["logs"] = logs
    message, kind = _CANCEL_MESSAGES.get(request.query_params.get("cancel", ""), (None, "info"))
    context["message"], context["message_kind"] = message, kind
    return _page(state, "run.html", context)


@router.post("/p/{project_id}/e/{experiment_id}/r/{run_id}/cancel")
async def cancel_form(
    request: Request, state: State, project_id: str, experiment_id: str, run_id: str
) -> Response:
    """The cancel form: the run id typed again, and the page's per-run token."""
    if not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        raise BadRequest("the cancel form is sent as application/x-www-form-urlencoded")
    body = await request.body()
    if len(body) > 4096:
        raise BadRequest("the cancel form is too large")
    fields = dict(parse_qsl(body.decode("utf-8", "replace")))

    def work() -> str:
        run = state.run(project_id, experiment_id, run_id)
        if not state.check_cancel_token(run, fields.get("csrf", "")):
            raise BadRequest("this cancel form is stale or forged: reload the run page")
        if fields.get("confirm", "").strip() != run.id:
            raise BadRequest(
                f"type the run id {run.id!r} to confirm the cancel; nothing was changed"
            )
        try:
            run.cancel("cancelled from molexp serve")
        except RunStateError as exc:
            raise BadRequest(str(exc)) from None
        state.index(run.experiment).invalidate(run.id)
        run.reload()
        return "done" if run.status == RunStatus.CANCELLED else "requested"

    outcome = await run_in_threadpool(work)
    target = f"/p/{project_id}/e/{experiment_id}/r/{run_id}?cancel={outcome}"
    return RedirectResponse(target, status_code=303)


# -- comparing runs -----------------------------------------------------------------------------


def _differing(runs: list[dict[str, Any]], part: str, keys: list[str]) -> set[str]:
    found = set()
    for key in keys:
        values = {json.dumps(r[part].get(key), sort_keys=True) for r in runs}
        if len(values) > 1:
            found.add(key)
    return found


def _ordered_keys(runs: list[dict[str, Any]], part: str) -> list[str]:
    keys: dict[str, None] = {}
    for r in runs:
        keys.update(dict.fromkeys(r[part]))
    return list(keys)


@router.get("/compare")
def compare_page(request: Request, state: State) -> Response:
    """Selected runs side by side (``?run=PROJECT/EXPERIMENT/RUN``, repeated), with a chart of a
    chosen result against a chosen parameter."""
    refs = list(dict.fromkeys(request.query_params.getlist("run")))
    errors: list[str] = []
    if len(refs) > MAX_COMPARE:
        errors.append(
            f"at most {MAX_COMPARE} runs can be compared; the first {MAX_COMPARE} are shown"
        )
        refs = refs[:MAX_COMPARE]
    runs: list[dict[str, Any]] = []
    for ref in refs:
        parts = ref.split("/")
        if len(parts) != 3:
            errors.append(f"{ref!r} is not PROJECT/EXPERIMENT/RUN")
            continue
        try:
            run = state.run(*parts)
        except MolexpError as exc:
            errors.append(str(exc))
            continue
        meta = run.metadata
        runs.append({
            "meta": meta,
            "ref": ref,
            "experiment": f"{parts[0]}/{parts[1]}",
            "href": f"/p/{parts[0]}/e/{parts[1]}/r/{meta.id}",
            "params": flatten_keys(meta.parameters),
            "results": flatten_keys(meta.results),
        })  # fmt: skip
    param_keys = _ordered_keys(runs, "params")
    result_keys = _ordered_keys(runs, "results")
    differing_params = _differing(runs, "params", param_keys)
    chart = None
    note = None
    x = y = None
    try:
        default_x = next((k for k in param_keys if k in differing_params), None) or (
            param_keys[0] if param_keys else None
        )
        x = _axis(request, "x", f"param.{default_x}" if default_x else None)
        y = _axis(request, "y", f"result.{result_keys[0]}" if result_keys else None)
    except QueryError as exc:
        errors.append(str(exc))
    if runs and x and y:
        points = []
        for r in runs:
            source_x = r["params"] if x.startswith("param.") else r["results"]
            source_y = r["results"] if y.startswith("result.") else r["params"]
            if _label(x) in source_x:
                points.append(
                    Point(
                        source_x[_label(x)],
                        source_y.get(_label(y)),
                        r["meta"].id,
                        r["meta"].status.value,
                        r["href"],
                    )
                )
        chart, note = _scatter(request, points, x, y)
    context: dict[str, Any] = {
        "runs": runs, "refs": [r["ref"] for r in runs],
        "param_keys": param_keys, "result_keys": result_keys,
        "differing_params": differing_params,
        "differing_results": _differing(runs, "results", result_keys),
        "x": x, "y": y,
        "logx": request.query_params.get("logx") == "1",
        "logy": request.query_params.get("logy") == "1",
        "chart": chart, "chart_note": note,
        "error": "; ".join(errors) or None,
        "crumbs": [("compare", None)],
    }  # fmt: skip
    return _page(state, "compare.html", context)


# -- the catalog and one asset ------------------------------------------------------------------

_CATALOG_FIELDS = ("kind", "name", "tags", "project", "experiment", "producer_run", "producer_task")


@router.get("/catalog")
def catalog_page(request: Request, state: State) -> Response:
    """Search the catalog by kind, name, tags, scope and producer."""
    form = {k: request.query_params.get(k, "").strip() for k in _CATALOG_FIELDS}
    error = None
    assets: list[Asset] = []
    limit = 200
    try:
        kind = AssetKind(form["kind"]).value if form["kind"] else None
        tags = [t.strip() for t in form["tags"].split(",") if t.strip()]
        assets = state.workspace.catalog.query_assets(
            kind=kind,
            name=form["name"] or None,
            project=form["project"] or None,
            experiment=form["experiment"] or None,
            producer_run=form["producer_run"] or None,
            producer_task=form["producer_task"] or None,
            tags=tags or None,
            newest_first=True,
            limit=limit,
        )
    except ValueError:
        error = f"unknown kind {form['kind']!r}: use one of {', '.join(k.value for k in AssetKind)}"
    context = {
        "form": form,
        "kinds": [k.value for k in AssetKind],
        "assets": assets,
        "limit": limit,
        "error": error,
        "crumbs": [("catalog", None)],
    }
    return _page(state, "catalog.html", context)


def _asset_crumbs(asset: Asset) -> list[tuple[str, str | None]]:
    scope = asset.scope
    crumbs: list[tuple[str, str | None]] = []
    if scope.project_id:
        crumbs.append((scope.project_id, f"/p/{scope.project_id}"))
    if scope.project_id and scope.experiment_id:
        crumbs.append((scope.experiment_id, f"/p/{scope.project_id}/e/{scope.experiment_id}"))
    if scope.level == ScopeLevel.RUN and scope.run_id:
        crumbs.append(
            (scope.run_id, f"/p/{scope.project_id}/e/{scope.experiment_id}/r/{scope.run_id}")
        )
    crumbs.append((asset.name, None))
    return crumbs


@router.get("/assets/{asset_id}")
def asset_page(request: Request, state: State, asset_id: str) -> Response:
    """One asset: its record, a preview (or file list), a download link, a live tail for logs."""
    asset = state.asset(asset_id)
    file = request.query_params.get("file") or None
    storage = state.workspace.storage
    context: dict[str, Any] = {
        "asset": asset,
        "file": file,
        "files": None,
        "truncated": False,
        "preview": None,
        "tail": None,
        "error": None,
        "inputs": [],
        "policy": media_policy(asset.name, asset.record.encoding),
        "content_url": f"/api/assets/{asset.id}/content" + (f"?file={quote(file)}" if file else ""),
        "crumbs": _asset_crumbs(asset),
    }
    producer = asset.producer
    if producer is not None:
        found_inputs = [state.workspace.catalog.get(i) for i in producer.inputs[:50]]
        context["inputs"] = [a for a in found_inputs if a is not None]
    try:
        key = payload_key(asset, file)
        if storage.is_dir(key):
            context["files"], context["truncated"] = list_files(storage, key)
        else:
            policy = media_policy(posixpath.basename(key), None if file else asset.record.encoding)
            context["policy"] = policy
            context["preview"] = preview(storage, key, policy, None if file else asset.size)
            if isinstance(asset, LogAsset) and not file:
                context["tail"] = tail_lines(storage, key, 500)
    except AccessDenied as exc:
        context["error"] = str(exc)
    except FileNotFoundError:
        context["error"] = "the payload of this asset is missing from the workspace"
    return _page(state, "asset.html", context)


@router.get("/api")
def api_index(request: Request, state: State) -> Response:
    """A plain list of the JSON API's endpoints (the OpenAPI file has the details)."""
    schema = request.app.openapi()
    endpoints = [
        {"method": method.upper(), "path": path, "summary": op.get("summary", "")}
        for path, item in schema.get("paths", {}).items()
        for method, op in item.items()
    ]
    return _page(state, "api.html", {"endpoints": endpoints, "crumbs": [("API", None)]})
