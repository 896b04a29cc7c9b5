"""Finding the workspace a command works on, and the run a ``RUN`` argument names.

The workspace is ``--workspace`` (or ``MOLEXP_WORKSPACE``) when given, otherwise the nearest
directory holding a ``workspace.json``: the current directory or one of its parents, else the
single workspace directly below the current directory.

A ``RUN`` argument is a run directory (or its URL), ``PROJECT/EXPERIMENT/ID``, or a run id, which is
looked up across the workspace (a unique prefix of an id will do; an ambiguous one is an error that
lists the candidates).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from molexp.cli._errors import CliError

if TYPE_CHECKING:
    from molexp.workspace import Run, Workspace

WORKSPACE_FILE = "workspace.json"
ENV_WORKSPACE = "MOLEXP_WORKSPACE"
MIN_PREFIX = 4


def is_url(text: str) -> bool:
    """Whether ``text`` is a URL (``scheme://...``) rather than a local path."""
    head, sep, _ = text.partition("://")
    return bool(sep) and head.replace("+", "").replace("-", "").replace(".", "").isalnum()


def find_workspace_root(given: str | None, *, cwd: Path | None = None) -> str:
    """The root (a local path or a URL) of the workspace a command should use."""
    if given:
        if is_url(given):
            return given
        root = Path(given).expanduser()
        if not (root / WORKSPACE_FILE).is_file():
            source = "--workspace" if given != os.environ.get(ENV_WORKSPACE) else ENV_WORKSPACE
            raise CliError(f"no workspace at {root} ({source}): it has no {WORKSPACE_FILE}")
        return str(root.resolve())
    here = (cwd or Path.cwd()).resolve()
    for directory in (here, *here.parents):
        if (directory / WORKSPACE_FILE).is_file():
            return str(directory)
    below = sorted(child for child in _subdirectories(here) if (child / WORKSPACE_FILE).is_file())
    if len(below) == 1:
        return str(below[0])
    if len(below) > 1:
        names = ", ".join(str(p.relative_to(here)) for p in below)
        raise CliError(
            f"several workspaces below {here} ({names}); choose one with --workspace PATH"
        )
    raise CliError(
        f"no workspace found in {here} or its parents (no {WORKSPACE_FILE}); pass --workspace "
        f"PATH, set {ENV_WORKSPACE}, or create one with `molexp init`"
    )


def _subdirectories(directory: Path) -> list[Path]:
    try:
        return [entry for entry in directory.iterdir() if entry.is_dir()]
    except OSError:
        return []


def open_workspace(given: str | None) -> Workspace:
    """The workspace a command should use (see :func:`find_workspace_root`), loaded."""
    from molexp.workspace import Workspace

    return Workspace.load(find_workspace_root(given))


def qualified_id(run: Run) -> str:
    """``project/experiment/id``: a run's name across its workspace."""
    return f"{run.experiment.project.id}/{run.experiment.id}/{run.id}"


def _looks_like_run_dir(text: str) -> bool:
    if is_url(text):
        return True
    path = Path(text).expanduser()
    return path.is_dir() and path.name.startswith("run-")


def resolve_run(ref: str, workspace: str | None) -> Run:
    """The run that ``ref`` names (see the module docstring)."""
    from molexp.workspace import RunContext

    if _looks_like_run_dir(ref):
        return RunContext.open(ref).run
    ws = open_workspace(workspace)
    parts = ref.strip("/").split("/")
    if len(parts) == 3:
        project, experiment, run_id = parts
        return ws.project(project).experiment(experiment).get_run(run_id.removeprefix("run-"))
    if len(parts) != 1 or not parts[0]:
        raise CliError(
            f"{ref!r} names no run: give a run id, PROJECT/EXPERIMENT/ID, or a run directory"
        )
    return find_run(ws, parts[0].removeprefix("run-"))


def find_run(ws: Workspace, run_id: str) -> Run:
    """The run ``run_id`` (or the one run whose id starts with it) anywhere in ``ws``."""
    storage = ws.storage
    exact: list[tuple[str, str, str]] = []
    prefixed: list[tuple[str, str, str]] = []
    for project in storage.list("projects"):
        for experiment in storage.list(f"projects/{project}/experiments"):
            runs_key = f"projects/{project}/experiments/{experiment}/runs"
            if storage.exists(f"{runs_key}/run-{run_id}/run.json"):
                exact.append((project, experiment, run_id))
            elif len(run_id) >= MIN_PREFIX:
                prefixed.extend(
                    (project, experiment, name.removeprefix("run-"))
                    for name in storage.list(runs_key)
                    if name.startswith(f"run-{run_id}")
                )
    found = exact or prefixed
    if not found:
        hint = "" if len(run_id) >= MIN_PREFIX else f" (prefixes need {MIN_PREFIX}+ characters)"
        raise CliError(f"no run {run_id!r} in the workspace at {ws.url}{hint}")
    if len(found) > 1:
        names = ", ".join("/".join(f) for f in found[:10])
        more = f" and {len(found) - 10} more" if len(found) > 10 else ""
        raise CliError(
            f"run id {run_id!r} is ambiguous in {ws.url}: {names}{more}; "
            "give PROJECT/EXPERIMENT/ID or the run directory"
        )
    project, experiment, found_id = found[0]
    return ws.project(project).experiment(experiment).get_run(found_id)
