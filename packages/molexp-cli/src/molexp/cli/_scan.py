"""Reading run records for the listings, fast.

``molexp runs list`` and ``molexp ls`` only read records. On a local workspace they read the
``run.json`` files directly (``os.scandir`` + ``json.loads``), which keeps them quick to start:
no model validation library, no workflow runtime. This is an optimisation only: the workspace
layer stays the authority. Whenever the fast reader meets anything it is not sure of (a remote
workspace, a record from a newer schema, a file that is not valid JSON, a running run whose owner
must be checked), the listing is answered by the workspace layer instead, which reports such
records properly.
"""

from __future__ import annotations

import json
import os
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

KNOWN_SCHEMA_VERSION = 1
"""The newest ``schema_version`` of ``run.json`` the fast reader understands."""


@dataclass(frozen=True)
class RunRow:
    """One run as the listings show it: its ids and its ``run.json`` as JSON values."""

    project: str
    experiment: str
    record: dict[str, Any]
    location: str
    """The run directory (a path, or a URL for a remote workspace)."""

    @property
    def id(self) -> str:
        """The run id."""
        return str(self.record.get("id", ""))

    @property
    def status(self) -> str:
        """The recorded status."""
        return str(self.record.get("status", "created"))

    @property
    def qualified(self) -> str:
        """``project/experiment/id``."""
        return f"{self.project}/{self.experiment}/{self.id}"


class FallBack(Exception):
    """The fast reader cannot answer; use the workspace layer."""


@dataclass(frozen=True)
class Tree:
    """Projects → experiments → runs of a workspace, as read for the listings."""

    name: str
    location: str
    projects: dict[str, dict[str, list[RunRow]]]
    names: dict[str, str]
    """Display names of projects (by id) and experiments (by ``project/experiment``)."""


def _dirs(path: str) -> list[str]:
    try:
        with os.scandir(path) as entries:
            return sorted(e.name for e in entries if e.is_dir() and not e.name.startswith("."))
    except FileNotFoundError:
        return []


def _read(path: str) -> dict[str, Any] | None:
    try:
        with open(path, "rb") as f:
            data = json.loads(f.read())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise FallBack(path) from exc
    if not isinstance(data, dict):
        raise FallBack(path)
    version = data.get("schema_version")
    if not isinstance(version, int) or version > KNOWN_SCHEMA_VERSION:
        raise FallBack(path)
    return data


def scan_local(
    root: str,
    *,
    projects: Collection[str] = (),
    experiments: Collection[str] = (),
) -> Tree:
    """Read every run under a local workspace ``root`` (raises :class:`FallBack`)."""
    meta = _read(os.path.join(root, "workspace.json")) or {}
    tree: dict[str, dict[str, list[RunRow]]] = {}
    names: dict[str, str] = {}
    projects_dir = os.path.join(root, "projects")
    for project in _dirs(projects_dir):
        if projects and project not in projects:
            continue
        project_dir = os.path.join(projects_dir, project)
        project_meta = _read(os.path.join(project_dir, "project.json"))
        if project_meta is None:
            continue
        names[project] = str(project_meta.get("name", project))
        experiments_dir = os.path.join(project_dir, "experiments")
        tree[project] = {}
        for experiment in _dirs(experiments_dir):
            if experiments and experiment not in experiments:
                continue
            experiment_dir = os.path.join(experiments_dir, experiment)
            experiment_meta = _read(os.path.join(experiment_dir, "experiment.json"))
            if experiment_meta is None:
                continue
            names[f"{project}/{experiment}"] = str(experiment_meta.get("name", experiment))
            rows: list[RunRow] = []
            runs_dir = os.path.join(experiment_dir, "runs")
            for name in _dirs(runs_dir):
                if not name.startswith("run-"):
                    continue
                run_dir = os.path.join(runs_dir, name)
                record = _read(os.path.join(run_dir, "run.json"))
                if record is None:
                    continue
                if record.get("status") == "running":
                    raise FallBack(run_dir)  # its owner's liveness needs the workspace layer
                rows.append(RunRow(project, experiment, record, run_dir))
            tree[project][experiment] = rows
    return Tree(
        name=str(meta.get("name", os.path.basename(root))),
        location=root,
        projects=tree,
        names=names,
    )


def scan_workspace(
    root: str,
    *,
    projects: Collection[str] = (),
    experiments: Collection[str] = (),
    params: Mapping[str, Any] | None = None,
) -> Tree:
    """Every run of the workspace at ``root`` (or only those with the given ``params`` values):
    read directly when possible, else through the workspace layer (which also marks runs whose
    owner is gone, and finds runs by parameter from its index)."""
    from molexp.cli._discover import is_url

    if not is_url(root) and not params:
        try:
            return scan_local(root, projects=projects, experiments=experiments)
        except FallBack:
            pass
    return scan_with_workspace(root, projects=projects, experiments=experiments, params=params)


def scan_with_workspace(
    root: str,
    *,
    projects: Collection[str] = (),
    experiments: Collection[str] = (),
    params: Mapping[str, Any] | None = None,
) -> Tree:
    """:func:`scan_workspace` through the workspace layer."""
    from molexp.workspace import RunStatus, Workspace

    ws = Workspace.load(root)
    tree: dict[str, dict[str, list[RunRow]]] = {}
    names: dict[str, str] = {}
    for project in ws.list_projects():
        if projects and project.id not in projects:
            continue
        names[project.id] = project.name
        tree[project.id] = {}
        for experiment in project.list_experiments():
            if experiments and experiment.id not in experiments:
                continue
            names[f"{project.id}/{experiment.id}"] = experiment.name
            rows = []
            for run in experiment.find_runs(params):
                record = run.metadata.model_dump(mode="json")
                if run.status == RunStatus.RUNNING:
                    record["liveness"] = run.liveness().value
                rows.append(RunRow(project.id, experiment.id, record, str(run.run_dir)))
            tree[project.id][experiment.id] = rows
    return Tree(name=ws.name, location=ws.url, projects=tree, names=names)
