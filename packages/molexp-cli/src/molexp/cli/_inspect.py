"""The inspection commands: ``ls``, ``runs list|show|cancel`` (and ``runs diff``, from
:mod:`molexp.cli._diff`), ``logs``, ``assets query`` (and ``assets lineage``, from
:mod:`molexp.cli._lineage`), ``plugins list`` and ``init``.

Each one imports what it needs when it runs; ``runs list`` and ``ls`` read a local workspace's
records directly (:mod:`molexp.cli._scan`) so that they start quickly.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from molexp.cli._errors import CliError, UsageError
from molexp.cli._format import (
    compact,
    duration,
    echo,
    print_json,
    record_duration,
    short_time,
    size,
    table,
)
from molexp.cli._lazy import LazyCommand, LazyGroup
from molexp.cli._options import json_option, workspace_option
from molexp.cli._param_option import param_option

if TYPE_CHECKING:
    from molexp.cli._scan import RunRow, Tree
    from molexp.workspace import Run
    from molexp.workspace.storage import Storage

STATUSES = ("created", "running", "succeeded", "failed", "cancelled")
ASSET_KINDS = ("data", "artifact", "log", "checkpoint", "error_trace", "execution_state")
SCOPE_LEVELS = ("workspace", "project", "experiment", "run")
SORT_KEYS = ("created", "started", "finished", "duration", "status", "id", "experiment", "profile")


# -- status shown to people -----------------------------------------------------------------------


def shown_status(record: Mapping[str, Any]) -> str:
    """The status, with what is known of a running run's owner (``running (owner gone)``)."""
    status = str(record.get("status", "created"))
    liveness = record.get("liveness")
    if status == "running" and liveness == "dead":
        return "running (owner gone)"
    if status == "running" and liveness == "stale":
        return "running (owner silent)"
    return status


def _counts(rows: Sequence[RunRow]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for row in rows:
        status = shown_status(row.record)
        counts[status] = counts.get(status, 0) + 1
    order = {s: i for i, s in enumerate(STATUSES)}
    return dict(sorted(counts.items(), key=lambda kv: (order.get(kv[0].split()[0], 9), kv[0])))


def _counts_text(counts: Mapping[str, int]) -> str:
    total = sum(counts.values())
    if not total:
        return "no runs"
    detail = ", ".join(f"{n} {status}" for status, n in counts.items())
    return f"{total} run{'s' if total != 1 else ''}: {detail}"


# -- ls -------------------------------------------------------------------------------------------


def _locate(path: str | None, workspace: str | None) -> tuple[str, list[str], list[str]]:
    """The workspace root for ``ls PATH`` and the project/experiment PATH points into."""
    from molexp.cli._discover import WORKSPACE_FILE, find_workspace_root, is_url

    if path is None or is_url(path):
        return find_workspace_root(path or workspace), [], []
    target = Path(path).expanduser().resolve()
    if not target.exists():
        raise CliError(f"{path} does not exist")
    for root in (target, *target.parents):
        if (root / WORKSPACE_FILE).is_file():
            parts = target.relative_to(root).parts
            project = [parts[1]] if len(parts) >= 2 and parts[0] == "projects" else []
            experiment = (
                [parts[3]] if len(parts) >= 4 and project and parts[2] == "experiments" else []
            )
            return str(root), project, experiment
    raise CliError(f"{path} is not inside a workspace (no workspace.json in it or its parents)")


@click.command("ls")
@click.argument("path", required=False)
@workspace_option
@json_option
def ls(path: str | None, workspace: str | None, as_json: bool) -> None:
    """Show the workspace tree (projects, experiments) with run counts by status.

    PATH is a workspace, or a project or experiment directory inside one (default: the
    workspace found from --workspace or the current directory).
    """
    from molexp.cli._scan import scan_workspace

    root, projects, experiments = _locate(path, workspace)
    tree = scan_workspace(root, projects=projects, experiments=experiments)
    if as_json:
        print_json(_tree_json(tree))
        return
    every = [row for exps in tree.projects.values() for rows in exps.values() for row in rows]
    echo(f"{tree.name}  {tree.location}  ({_counts_text(_counts(every))})")
    project_ids = list(tree.projects)
    for i, project in enumerate(project_ids):
        last_project = i == len(project_ids) - 1
        exps = tree.projects[project]
        rows = [row for r in exps.values() for row in r]
        echo(f"{'└──' if last_project else '├──'} {project}  ({_counts_text(_counts(rows))})")
        pad = "    " if last_project else "│   "
        names = list(exps)
        width = max((len(n) for n in names), default=0)
        for j, experiment in enumerate(names):
            branch = "└──" if j == len(names) - 1 else "├──"
            text = _counts_text(_counts(exps[experiment]))
            echo(f"{pad}{branch} {experiment.ljust(width)}  {text}")


def _tree_json(tree: Tree) -> dict[str, Any]:
    projects = []
    for project, exps in tree.projects.items():
        experiments = [
            {
                "id": experiment,
                "name": tree.names.get(f"{project}/{experiment}", experiment),
                "runs": len(rows),
                "counts": _counts(rows),
            }
            for experiment, rows in exps.items()
        ]
        rows = [row for r in exps.values() for row in r]
        projects.append(
            {
                "id": project,
                "name": tree.names.get(project, project),
                "runs": len(rows),
                "counts": _counts(rows),
                "experiments": experiments,
            }
        )
    every = [row for exps in tree.projects.values() for rows in exps.values() for row in rows]
    return {
        "name": tree.name,
        "location": tree.location,
        "runs": len(every),
        "counts": _counts(every),
        "projects": projects,
    }


# -- runs -----------------------------------------------------------------------------------------


RUNS_COMMANDS = {
    "diff": LazyCommand(
        "molexp.cli._diff",
        "runs_diff",
        "Compare two runs side by side: parameters, config, code, environment, results and "
        "artifacts (differences marked *).",
    ),
}
"""The ``runs`` subcommands defined in other modules (imported when they run)."""


@click.group("runs", cls=LazyGroup, lazy=RUNS_COMMANDS)
def runs() -> None:
    """List, show, compare and cancel runs."""


def _sort_key(key: str) -> Any:
    if key.startswith(("params.", "results.")):
        section, _, name = key.partition(".")
        field = "parameters" if section == "params" else "results"
        if not name:
            raise UsageError(f"--sort {key}: name a key, e.g. {section}.lr")
        return lambda row: row.record.get(field, {}).get(name)
    getters = {
        "created": lambda row: row.record.get("created_at"),
        "started": lambda row: row.record.get("started_at"),
        "finished": lambda row: row.record.get("finished_at"),
        "duration": lambda row: record_duration(row.record),
        "status": lambda row: row.status,
        "id": lambda row: row.id,
        "experiment": lambda row: (row.project, row.experiment, row.record.get("created_at")),
        "profile": lambda row: row.record.get("profile_name"),
    }
    if key not in getters:
        accepted = ", ".join((*SORT_KEYS, "params.NAME", "results.NAME"))
        raise UsageError(f"--sort {key!r} is not a sort key; use one of: {accepted}")
    return getters[key]


def _ordered(rows: list[RunRow], key: str, descending: bool) -> list[RunRow]:
    getter = _sort_key(key)

    def rank(row: RunRow) -> tuple[int, int, Any]:
        """Numbers before strings, so that mixed columns still sort."""
        value = getter(row)
        if value is None:
            return (1, 0, "")  # missing values last, whatever the direction
        if isinstance(value, bool | int | float):
            return (0, 0, value)
        return (0, 1, str(value))

    present = [r for r in rows if getter(r) is not None]
    missing = [r for r in rows if getter(r) is None]
    present.sort(key=rank, reverse=descending)
    return present + missing


def run_json(row: RunRow) -> dict[str, Any]:
    """A run as ``runs list --json`` shows it."""
    record = row.record
    return {
        "id": row.id,
        "project": row.project,
        "experiment": row.experiment,
        "status": record.get("status"),
        "liveness": record.get("liveness"),
        "profile": record.get("profile_name"),
        "config_hash": record.get("config_hash"),
        "parameters": record.get("parameters", {}),
        "results": record.get("results", {}),
        "created_at": record.get("created_at"),
        "started_at": record.get("started_at"),
        "finished_at": record.get("finished_at"),
        "duration": record_duration(record),
        "attempts": len(record.get("execution_history", [])),
        "error": record.get("error"),
        "run_dir": row.location,
    }


@runs.command("list")
@click.option("--project", "projects", multiple=True, metavar="ID", help="Only this project.")
@click.option(
    "--experiment", "experiments", multiple=True, metavar="ID", help="Only this experiment."
)
@click.option(
    "--status",
    "statuses",
    multiple=True,
    type=click.Choice(STATUSES),
    help="Only runs with this status (repeatable).",
)
@click.option(
    "--sort",
    "sort",
    default="created",
    show_default=True,
    metavar="KEY",
    help=f"One of {', '.join(SORT_KEYS)}, params.NAME or results.NAME.",
)
@click.option("--desc", is_flag=True, help="Sort in descending order.")
@click.option("--limit", type=click.IntRange(min=1), help="Show at most this many runs.")
@param_option
@workspace_option
@json_option
def runs_list(
    projects: tuple[str, ...],
    experiments: tuple[str, ...],
    statuses: tuple[str, ...],
    sort: str,
    desc: bool,
    limit: int | None,
    params: dict[str, Any],
    workspace: str | None,
    as_json: bool,
) -> None:
    """List runs with their status, profile, parameters and results."""
    from molexp.cli._discover import find_workspace_root
    from molexp.cli._scan import scan_workspace

    _sort_key(sort)  # a bad key is a usage error before any reading
    root = find_workspace_root(workspace)
    tree = scan_workspace(root, projects=projects, experiments=experiments, params=params)
    rows = [row for exps in tree.projects.values() for r in exps.values() for row in r]
    if statuses:
        rows = [row for row in rows if row.status in statuses]
    rows = _ordered(rows, sort, desc)
    if limit is not None:
        rows = rows[:limit]
    from molexp.cli.executors._jobs import job_states

    jobs = job_states(row.location for row in rows)  # Slurm jobs, from submission.json
    if as_json:
        print_json([{**run_json(row), "job": _job_json(jobs.get(row.location))} for row in rows])
        return
    if not rows:
        echo("no runs")
        return
    job_column = ("job",) if jobs else ()
    table(
        (
            "id",
            "experiment",
            "status",
            *job_column,
            "profile",
            "started",
            "time",
            "params",
            "results",
        ),
        [
            (
                row.id,
                f"{row.project}/{row.experiment}",
                shown_status(row.record),
                *((jobs[row.location].text if row.location in jobs else "-",) if jobs else ()),
                str(row.record.get("profile_name") or "-"),
                short_time(row.record.get("started_at")),
                _time(row.record),
                compact(row.record.get("parameters", {})) or "-",
                compact(row.record.get("results", {})) or "-",
            )
            for row in rows
        ],
    )


def _job_json(job: Any) -> dict[str, str] | None:
    if job is None:
        return None
    return {"executor": job.executor, "id": job.job_id, "state": job.state}


def _time(record: Mapping[str, Any]) -> str:
    return duration(record_duration(record))


@runs.command("show")
@click.argument("run_ref", metavar="RUN")
@click.option("--traceback", "show_traceback", is_flag=True, help="Print the full traceback.")
@workspace_option
@json_option
def runs_show(run_ref: str, show_traceback: bool, workspace: str | None, as_json: bool) -> None:
    """Show one run: metadata, profile, results, execution history, error and assets.

    RUN is a run id (or a unique prefix), PROJECT/EXPERIMENT/ID, or a run directory.
    """
    from molexp.cli._discover import qualified_id, resolve_run

    run = resolve_run(run_ref, workspace)
    meta = run.metadata
    found_assets = run.assets.list()
    liveness = run.liveness().value if meta.status.value == "running" else None
    if as_json:
        record = meta.model_dump(mode="json")
        record["run_dir"] = str(run.run_dir)
        record["liveness"] = liveness
        record["assets"] = [_asset_json(a) for a in found_assets]
        print_json(record)
        return
    status = shown_status({"status": meta.status.value, "liveness": liveness})
    lines: list[tuple[str, str]] = [
        ("run", qualified_id(run)),
        ("status", status),
        ("directory", str(run.run_dir)),
        ("parameters", compact(meta.parameters) or "-"),
        ("profile", f"{meta.profile_name or '(defaults)'}  config_hash {meta.config_hash or '-'}"),
        ("config", compact(meta.config) or "-"),
        ("results", compact(meta.results) or "-"),
        ("created", short_time(meta.created_at.isoformat())),
        ("started", short_time(meta.started_at.isoformat() if meta.started_at else None)),
        ("finished", short_time(meta.finished_at.isoformat() if meta.finished_at else None)),
    ]
    script = meta.labels.get("molexp.script")
    if script:
        digest = meta.labels.get("molexp.script_sha256", "")[:12]
        lines.append(("script", f"{script}  sha256 {digest}"))
    snapshot = meta.workflow_snapshot or {}
    if snapshot:
        name = snapshot.get("name", "?")
        workflow_id = snapshot.get("workflow_id", "?")
        code = snapshot.get("code_hash") or "-"
        lines.append(("workflow", f"{name}  id {workflow_id}  code {code}"))
    if meta.owner is not None and meta.status.value == "running":
        lines.append(("owner", f"pid {meta.owner.pid} on {meta.owner.host}"))
    if meta.error is not None:
        lines.append(("error", f"{meta.error.type}: {meta.error.message}"))
        if meta.error.traceback_path:
            lines.append(("traceback", str(Path(str(run.run_dir)) / meta.error.traceback_path)))
    width = max(len(k) for k, _ in lines)
    for key, value in lines:
        echo(f"{key.ljust(width)}  {value}")
    echo()
    echo(f"execution history ({len(meta.execution_history)} attempt(s))")
    for i, attempt in enumerate(meta.execution_history, 1):
        seconds = (
            (attempt.finished_at - attempt.started_at).total_seconds()
            if attempt.finished_at is not None
            else None
        )
        error = f"  {attempt.error.type}: {attempt.error.message}" if attempt.error else ""
        echo(
            f"  #{i} {attempt.execution_id}  {attempt.status.value:<9}  "
            f"{short_time(attempt.started_at.isoformat())}  {duration(seconds)}  "
            f"{attempt.host or '?'}:{attempt.pid or '?'}{error}"
        )
    echo()
    echo(f"assets ({len(found_assets)})")
    for asset in found_assets:
        producer = asset.producer
        task = f"task {producer.task}" if producer is not None and producer.task else ""
        echo(f"  {asset.kind.value:<15}  {asset.name}  {size(asset.size)}  {task}".rstrip())
    if show_traceback and meta.error is not None and meta.error.traceback_path:
        echo()
        try:
            text = run.storage.read_bytes(f"{run.key}/{meta.error.traceback_path}").decode(
                "utf-8", "replace"
            )
        except FileNotFoundError:
            text = "(the traceback file is missing)\n"
        sys.stdout.write(text if text.endswith("\n") else text + "\n")


@runs.command("cancel")
@click.argument("run_ref", metavar="RUN")
@click.option("--reason", default="cancelled with `molexp runs cancel`", help="Why.")
@workspace_option
def runs_cancel(run_ref: str, reason: str, workspace: str | None) -> None:
    """Cancel a run: at once if it is not executing, else by asking its owner to stop."""
    from molexp.cli._discover import qualified_id, resolve_run

    run = resolve_run(run_ref, workspace)
    name = qualified_id(run)
    from molexp.cli.executors._jobs import cancel_job

    through_job = cancel_job(run, reason)  # a run with a queued or running Slurm job: scancel
    if through_job is not None:
        echo(f"{name}: {through_job}")
        return
    status = run.status.value
    if status in ("succeeded", "failed", "cancelled"):
        raise CliError(f"run {name} has already finished ({status}); there is nothing to cancel")
    run.cancel(reason)
    run.reload()
    if run.status.value == "cancelled":
        echo(f"cancelled {name}")
        return
    owner = run.metadata.owner
    where = f" (pid {owner.pid} on {owner.host})" if owner is not None else ""
    echo(f"cancel requested: {name} is executing{where}; it stops at its next cancellation check")


def _asset_json(asset: Any) -> dict[str, Any]:
    record = asset.record
    data: dict[str, Any] = record.model_dump(mode="json")
    data["url"] = asset.url
    return data


# -- logs -----------------------------------------------------------------------------------------


def _log_names(run: Run) -> list[str]:
    return sorted(
        name.removesuffix(".log")
        for name in run.storage.list(f"{run.key}/logs")
        if name.endswith(".log")
    )


class _LogReader:
    """Reads what was appended to a log since the last call."""

    def __init__(self, storage: Storage, key: str) -> None:
        self._storage = storage
        self._key = key
        self._offset = 0
        self._local = storage.local_path(key)

    def read_new(self) -> bytes:
        """The whole lines appended since the last call."""
        if self._local is not None:
            try:
                with self._local.open("rb") as f:
                    f.seek(self._offset)
                    data = f.read()
            except FileNotFoundError:
                return b""
        else:
            try:
                data = self._storage.read_bytes(self._key)[self._offset :]
            except FileNotFoundError:
                return b""
        if b"\n" not in data:
            return b""
        data = data[: data.rindex(b"\n") + 1]  # whole lines only
        self._offset += len(data)
        return data


@click.command("logs")
@click.argument("run_ref", metavar="RUN")
@click.argument("name", required=False)
@click.option("-f", "--follow", is_flag=True, help="Keep printing new lines until the run ends.")
@click.option(
    "-n", "--tail", "tail_lines", type=click.IntRange(min=0), help="Only the last N lines."
)
@workspace_option
def logs(
    run_ref: str, name: str | None, follow: bool, tail_lines: int | None, workspace: str | None
) -> None:
    """Print a run's log NAME (every log, when NAME is omitted).

    Logs are what tasks write with ctx.log(NAME).append(line), kept in <run>/logs/NAME.log.
    """
    from molexp.cli._discover import qualified_id, resolve_run

    run = resolve_run(run_ref, workspace)
    available = _log_names(run)
    if name is not None and name not in available and not (follow and _executing(run)):
        known = ", ".join(available) or "none"
        raise CliError(f"run {qualified_id(run)} has no log {name!r} (its logs: {known})")
    names = [name] if name is not None else available
    if not names and not (follow and _executing(run)):
        raise CliError(f"run {qualified_id(run)} has no logs yet")
    readers: dict[str, _LogReader] = {}
    several = name is None and (len(names) > 1 or follow)

    def drain() -> None:
        """Print what each followed log gained."""
        for log in names:
            reader = readers.setdefault(log, _LogReader(run.storage, f"{run.key}/logs/{log}.log"))
            data = reader.read_new().decode("utf-8", "replace")
            if not data:
                continue
            lines = data.splitlines()
            if tail_lines is not None and not follow:
                lines = lines[-tail_lines:] if tail_lines else []
            if several and not follow:
                echo(f"==> {log} <==")
            for line in lines:
                echo(f"[{log}] {line}" if several and follow else line)
        sys.stdout.flush()

    drain()
    if not follow:
        return
    try:
        while True:
            running = _executing(run)
            if name is None:
                for log in _log_names(run):
                    if log not in names:
                        names.append(log)
            drain()
            if not running:
                break
            time.sleep(0.25)
    except KeyboardInterrupt:
        return


def _executing(run: Run) -> bool:
    """Whether the run is executing now (running, with an owner that is not known dead)."""
    return run.liveness().value in ("alive", "stale")


# -- assets ---------------------------------------------------------------------------------------


ASSETS_COMMANDS = {
    "lineage": LazyCommand(
        "molexp.cli._lineage",
        "assets_lineage",
        "Show what ASSET was made from and what was made from it, as trees.",
    ),
}
"""The ``assets`` subcommands defined in other modules (imported when they run)."""


@click.group("assets", cls=LazyGroup, lazy=ASSETS_COMMANDS)
def assets() -> None:
    """Query the workspace's asset catalog."""


@assets.command("query")
@click.option("--kind", "kinds", multiple=True, type=click.Choice(ASSET_KINDS), help="Asset kind.")
@click.option("--name", "names", multiple=True, help="Asset name (repeatable).")
@click.option("--scope", type=click.Choice(SCOPE_LEVELS), help="Only assets at this level.")
@click.option("--project", metavar="ID", help="Only assets of this project.")
@click.option("--experiment", metavar="ID", help="Only assets of this experiment.")
@click.option("--run", "run_id", metavar="ID", help="Only assets of this run.")
@click.option("--producer-run", metavar="ID", help="Only assets produced by this run.")
@click.option("--producer-task", metavar="NAME", help="Only assets produced by this task.")
@click.option("--tag", "tags", multiple=True, help="Only assets with this tag (all must match).")
@click.option("--newest", is_flag=True, help="Newest first.")
@click.option("--limit", type=click.IntRange(min=1), help="At most this many.")
@workspace_option
@json_option
def assets_query(
    kinds: tuple[str, ...],
    names: tuple[str, ...],
    scope: str | None,
    project: str | None,
    experiment: str | None,
    run_id: str | None,
    producer_run: str | None,
    producer_task: str | None,
    tags: tuple[str, ...],
    newest: bool,
    limit: int | None,
    workspace: str | None,
    as_json: bool,
) -> None:
    """List the assets matching every given filter (artifacts, logs, checkpoints, data, ...)."""
    from molexp.cli._discover import open_workspace

    ws = open_workspace(workspace)
    found = ws.catalog.query_assets(
        kind=list(kinds) or None,
        name=list(names) or None,
        scope=scope,
        project=project,
        experiment=experiment,
        run=run_id,
        producer_run=producer_run,
        producer_task=producer_task,
        tags=list(tags) or None,
        newest_first=newest,
        limit=limit,
    )
    if as_json:
        print_json([_asset_json(a) for a in found])
        return
    if not found:
        echo("no assets")
        return
    table(
        ("kind", "name", "scope", "producer", "size", "created", "id"),
        [
            (
                a.kind.value,
                a.name,
                _scope_text(a.scope),
                _producer_text(a.producer),
                size(a.size),
                short_time(a.created_at.isoformat()),
                a.id,
            )
            for a in found
        ],
    )


def _scope_text(scope: Any) -> str:
    ids = [i for i in (scope.project_id, scope.experiment_id, scope.run_id) if i]
    return f"{scope.level.value}:{'/'.join(ids)}" if ids else scope.level.value


def _producer_text(producer: Any) -> str:
    if producer is None:
        return "-"
    return f"{producer.run_id}/{producer.task}" if producer.task else producer.run_id


# -- plugins --------------------------------------------------------------------------------------


@click.group("plugins")
def plugins() -> None:
    """Installed plugins."""


@plugins.command("list")
@json_option
def plugins_list(as_json: bool) -> None:
    """List the storage backends (by URL scheme), with their distribution and version."""
    from importlib.metadata import PackageNotFoundError, version

    from molexp.workspace.storage import installed_backends

    rows: list[dict[str, str | None]] = []
    for backend in installed_backends():
        found = backend.version
        if found is None and backend.distribution is not None:
            try:
                found = version(backend.distribution)
            except PackageNotFoundError:
                found = None
        rows.append(
            {
                "kind": "storage",
                "scheme": backend.scheme,
                "distribution": backend.distribution,
                "version": found,
                "target": backend.target,
            }
        )
    if as_json:
        print_json(rows)
        return
    table(
        ("kind", "scheme", "distribution", "version", "target"),
        [
            tuple(r[k] or "-" for k in ("kind", "scheme", "distribution", "version", "target"))
            for r in rows
        ],
    )


# -- init -----------------------------------------------------------------------------------------


@click.command("init")
@click.argument("path", required=False, default=".")
@click.option("--name", help="The workspace's name (default: the directory's name).")
def init(path: str, name: str | None) -> None:
    """Create a workspace at PATH (default: the current directory)."""
    from molexp.workspace import Workspace

    ws = Workspace(path, name=None)
    if ws.is_materialized:
        if name is not None and name != ws.name:
            raise CliError(f"{ws.url} is already the workspace {ws.name!r}")
        echo(f"{ws.url} is already a workspace ({ws.name!r}); nothing to do")
        return
    if name is not None:
        ws = Workspace(path, name=name)
    ws.materialize()
    echo(f"created workspace {ws.name!r} at {ws.url}")
