"""The workspace: the root of a body of work, and the factory of its projects."""

from __future__ import annotations

import os
import uuid
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from molexp.workspace import _project
from molexp.workspace._assets import AssetScope, ScopeLevel
from molexp.workspace._data_assets import DataAssetLibrary
from molexp.workspace._errors import ConflictError, InvalidNameError, NotFoundError
from molexp.workspace._metadata import ProjectMetadata, WorkspaceMetadata
from molexp.workspace._names import (
    check_id,
    check_name,
    check_text,
    lookup_candidates,
    slugify,
)
from molexp.workspace._project import Project
from molexp.workspace._records import (
    check_params,
    check_tags,
    list_records,
    read_record,
    write_record,
)
from molexp.workspace.storage import LocalStorage, Storage, open_storage

if TYPE_CHECKING:
    from molexp.workspace._experiment import Experiment
    from molexp.workspace._gc import GarbageReport
    from molexp.workspace._metadata import RunStatus
    from molexp.workspace._run import Run
    from molexp.workspace.catalog import AssetView, Catalog
    from molexp.workspace.catalog._runs import RunIndex

WORKSPACE_FILE = "workspace.json"
#: The default age of what :meth:`Workspace.collect_garbage` removes.
DEFAULT_OLDER_THAN = timedelta(hours=1)


def _default_name(storage: Storage) -> str:
    tail = storage.url.rstrip("/").rsplit("/", 1)[-1]
    return tail or "workspace"


class Workspace:
    """A workspace rooted at a local path or a storage URL (``memory://lab``, ``s3://bucket/lab``).

    Constructing one writes nothing: ``workspace.json`` appears on :meth:`materialize` or when the
    first project is created.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        name: str | None = None,
        *,
        storage_options: Mapping[str, Any] | None = None,
    ) -> None:
        self.storage: Storage = open_storage(root, **dict(storage_options or {}))
        self._projects: dict[str, _project.Project] = {}
        self._catalog: Catalog | None = None
        self._run_index: RunIndex | None = None
        try:
            self._metadata = read_record(self.storage, WORKSPACE_FILE, WorkspaceMetadata)
        except FileNotFoundError:
            self._metadata = WorkspaceMetadata(
                id=uuid.uuid4().hex[:12],
                name=check_name(name, what="workspace name")
                if name is not None
                else _default_name(self.storage),
            )
            self._materialized = False
        else:
            self._materialized = True
            if name is not None and name != self._metadata.name:
                raise ConflictError(
                    f"the workspace at {self.url} is named {self._metadata.name!r}, not {name!r}; "
                    "omit name= to open it, or rename it with ws.name = ... and ws.save()"
                )

    @classmethod
    def load(
        cls, root: str | os.PathLike[str], *, storage_options: Mapping[str, Any] | None = None
    ) -> Workspace:
        """Open an existing workspace; :class:`NotFoundError` if it has no ``workspace.json``."""
        ws = cls(root, storage_options=storage_options)
        if not ws._materialized:
            raise NotFoundError(
                f"no workspace at {ws.url}: {ws.storage.url_for(WORKSPACE_FILE)} does not exist "
                "(create one with molexp.Workspace(root).materialize())"
            )
        return ws

    @property
    def metadata(self) -> WorkspaceMetadata:
        """The ``workspace.json`` record."""
        return self._metadata

    @property
    def id(self) -> str:
        """The workspace's id, stable once materialized."""
        return self._metadata.id

    @property
    def name(self) -> str:
        """The display name."""
        return self._metadata.name

    @name.setter
    def name(self, value: str) -> None:
        self._metadata.name = check_name(value, what="workspace name")

    @property
    def description(self) -> str | None:
        """A free-text description."""
        return self._metadata.description

    @description.setter
    def description(self, value: str | None) -> None:
        self._metadata.description = value

    @property
    def url(self) -> str:
        """The root as a URL (a plain absolute path for local workspaces)."""
        return self.storage.url

    @property
    def root(self) -> Path | str:
        """The root directory: a :class:`~pathlib.Path` when local, the URL otherwise."""
        if isinstance(self.storage, LocalStorage):
            return self.storage.root
        return self.storage.url

    @property
    def is_materialized(self) -> bool:
        """Whether ``workspace.json`` exists."""
        return self._materialized

    def materialize(self) -> Workspace:
        """Write ``workspace.json`` if it does not exist yet; safe to call from many processes."""
        if not self._materialized:
            try:
                write_record(self.storage, WORKSPACE_FILE, self._metadata, exclusive=True)
            except FileExistsError:
                self._metadata = read_record(self.storage, WORKSPACE_FILE, WorkspaceMetadata)
            self._materialized = True
        return self

    @property
    def catalog(self) -> Catalog:
        """The index over every asset of the workspace."""
        if self._catalog is None:
            from molexp.workspace.catalog import Catalog

            self._catalog = Catalog(self)
        return self._catalog

    @property
    def run_index(self) -> RunIndex:
        """The derived index of run parameters behind ``find_runs``."""
        if self._run_index is None:
            from molexp.workspace.catalog._runs import RunIndex

            self._run_index = RunIndex(self)
        return self._run_index

    @property
    def assets(self) -> AssetView:
        """Every asset of the workspace (read-only)."""
        return self.catalog.view(self)

    @property
    def data_assets(self) -> DataAssetLibrary:
        """The workspace-scope data-asset library."""
        return DataAssetLibrary(self, AssetScope(level=ScopeLevel.WORKSPACE), "")

    def save(self) -> None:
        """Persist changes made to the workspace record (name, description)."""
        self._materialized = True
        write_record(self.storage, WORKSPACE_FILE, self._metadata)

    def Project(  # noqa: N802 - factory named after the class, as the public API promises
        self,
        name: str,
        description: str | None = None,
        owner: str | None = None,
        tags: list[str] | None = None,
        config: Mapping[str, Any] | None = None,
        *,
        id: str | None = None,  # noqa: A002 - the public keyword is `id`
    ) -> Project:
        """Get or create the project ``name`` (idempotent by slug; the same object in-process)."""
        check_name(name, what="project name")
        tags = check_tags(tags, what="project tags")
        check_text(description, what="project description")
        check_text(owner, what="project owner")
        config = check_params(config, what="project config") if config is not None else None
        pid = (
            check_id(id, what="project id")
            if id is not None
            else slugify(name, what="project name")
        )
        project = self._projects.get(pid)
        if project is None:
            self.materialize()
            key = f"projects/{pid}/project.json"
            record = ProjectMetadata(
                id=pid,
                name=name,
                description=description,
                owner=owner,
                tags=tags or [],
                config=config or {},
            )
            try:
                record = read_record(self.storage, key, ProjectMetadata)
            except FileNotFoundError:
                try:
                    write_record(self.storage, key, record, exclusive=True)
                except FileExistsError:
                    record = read_record(self.storage, key, ProjectMetadata)
            project = self._projects.setdefault(pid, Project(self, record))
        if project.name != name:
            raise InvalidNameError(
                f"project name {name!r} has the id {pid!r}, which project {project.name!r} already "
                f"has; use {project.name!r}, or give this project another name or id"
            )
        project._update(description=description, owner=owner, tags=tags, config=config)
        return project

    def project(self, name_or_id: str) -> _project.Project:
        """The existing project with this id or name; :class:`NotFoundError` if there is none."""
        for pid in lookup_candidates(name_or_id):
            if pid in self._projects:
                return self._projects[pid]
            try:
                record = read_record(self.storage, f"projects/{pid}/project.json", ProjectMetadata)
            except FileNotFoundError:
                continue
            return self._projects.setdefault(pid, Project(self, record))
        known = ", ".join(p.id for p in self.list_projects()) or "none"
        raise NotFoundError(
            f"no project {name_or_id!r} in workspace {self.url} (projects: {known})"
        )

    def list_projects(self) -> list[_project.Project]:
        """Every project, sorted by id; unreadable ones are skipped with a warning naming it."""
        found = []
        for record in list_records(self.storage, "projects", "project.json", ProjectMetadata):
            found.append(self._projects.setdefault(record.id, Project(self, record)))
        return found

    def find_runs(
        self,
        params: Mapping[str, Any] | None = None,
        *,
        status: RunStatus | str | None = None,
        project: _project.Project | str | None = None,
        experiment: Experiment | str | None = None,
    ) -> list[Run]:
        """The runs of every experiment (or of one ``project`` and/or ``experiment``, by id, name
        or object) matching ``params`` and ``status`` as :meth:`Experiment.find_runs` does,
        oldest first."""
        from molexp.workspace._experiment import Experiment, check_query, check_status

        check_query(params)
        check_status(status)
        if isinstance(experiment, Experiment):
            if project is not None:
                pid = (
                    project.id
                    if isinstance(project, _project.Project)
                    else self.project(project).id
                )
                if pid != experiment.project.id:
                    raise ValueError(
                        f"experiment {experiment.id!r} belongs to project "
                        f"{experiment.project.id!r}, not {pid!r}; give one of them"
                    )
            experiments = [experiment]
        else:
            if isinstance(project, _project.Project):
                projects = [project]
            elif project is not None:
                projects = [self.project(project)]
            else:
                projects = self.list_projects()
            if experiment is None:
                experiments = [e for p in projects for e in p.list_experiments()]
            else:
                experiments = []
                for p in projects:
                    try:
                        experiments.append(p.experiment(experiment))
                    except NotFoundError:
                        continue
                if not experiments:
                    where = f"project {projects[0].id!r}" if project is not None else "any project"
                    raise NotFoundError(
                        f"no experiment {experiment!r} in {where} of workspace {self.url}"
                    )
        runs = [r for e in experiments for r in e.find_runs(params, status=status)]
        return sorted(
            runs,
            key=lambda r: (r.metadata.created_at, r.experiment.project.id, r.experiment.id, r.id),
        )

    def delete_project(self, project_id: str) -> None:
        """Delete a project and everything beneath it."""
        check_id(project_id, what="project id")
        key = f"projects/{project_id}"
        if not self.storage.exists(f"{key}/project.json"):
            raise NotFoundError(f"no project {project_id!r} in workspace {self.url}")
        # Killed at any instant, this leaves the catalog matching what is left, and the project
        # listed (so that deleting it again finishes the job) until the end: the assets are
        # withdrawn from the catalog with their records before any payload goes, and
        # project.json goes last.
        self.catalog.withdraw(project_id=project_id)
        for child in self.storage.list(key):
            if child != "project.json":
                self.storage.remove(f"{key}/{child}", recursive=True)
        self.storage.remove(key, recursive=True)
        # Rows the index did not hold as committed (and, on a remote store, other machines'
        # caches, through the journal) are dropped too.
        self.catalog.forget(project_id=project_id)
        project = self._projects.pop(project_id, None)
        if project is not None:
            project.deleted = True

    def collect_garbage(
        self, *, dry_run: bool = False, older_than: timedelta = DEFAULT_OLDER_THAN
    ) -> GarbageReport:
        """Remove what writers killed mid-write left behind, older than ``older_than``:
        temporary files, data-asset directories without ``asset.json``, and artifact or
        checkpoint payloads without a record. Anything not certainly garbage is left alone; a
        removal that fails is reported in :attr:`GarbageReport.failed`, not raised."""
        from molexp.workspace._gc import collect_garbage

        return collect_garbage(self, dry_run=dry_run, older_than=older_than)

    gc = collect_garbage

    def __repr__(self) -> str:
        return f"Workspace({self.url!r}, name={self.name!r})"
