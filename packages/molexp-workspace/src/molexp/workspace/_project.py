"""A project: a group of related experiments under a workspace."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from molexp.workspace import _experiment
from molexp.workspace._assets import AssetScope, ScopeLevel
from molexp.workspace._data_assets import DataAssetLibrary
from molexp.workspace._errors import ConflictError, InvalidNameError, NotFoundError
from molexp.workspace._experiment import Experiment, check_replicas
from molexp.workspace._metadata import ExperimentMetadata, ProjectMetadata
from molexp.workspace._names import (
    check_id,
    check_name,
    check_text,
    lookup_candidates,
    slugify,
)
from molexp.workspace._records import (
    canonical_json,
    check_params,
    check_tags,
    list_records,
    read_record,
    write_record,
)

if TYPE_CHECKING:
    from molexp.workspace._workspace import Workspace
    from molexp.workspace.catalog import AssetView


class Project:
    """A project. Create and get with ``ws.Project(name)``; look up with ``ws.project(id)``."""

    def __init__(self, workspace: Workspace, metadata: ProjectMetadata) -> None:
        self.workspace = workspace
        self.metadata = metadata
        self.key: str = f"projects/{metadata.id}"
        self._experiments: dict[str, _experiment.Experiment] = {}
        self.deleted = False

    def _check_exists(self) -> None:
        if self.deleted:
            raise NotFoundError(f"project {self.id!r} was deleted from {self.workspace.url}")

    @property
    def id(self) -> str:
        """The project's id (its slug): its directory name."""
        return self.metadata.id

    @property
    def name(self) -> str:
        """The display name."""
        return self.metadata.name

    @property
    def description(self) -> str | None:
        """A free-text description."""
        return self.metadata.description

    @property
    def owner(self) -> str | None:
        """Who is responsible for the project."""
        return self.metadata.owner

    @property
    def tags(self) -> list[str]:
        """Free-form tags."""
        return self.metadata.tags

    @property
    def config(self) -> dict[str, Any]:
        """Project-wide configuration values."""
        return self.metadata.config

    @property
    def project_dir(self) -> Path | str:
        """``<workspace>/projects/<id>``: a Path when local, a URL otherwise."""
        local = self.workspace.storage.local_path(self.key)
        return local if local is not None else self.workspace.storage.url_for(self.key)

    @property
    def assets(self) -> AssetView:
        """The assets of this project and everything below it (read-only)."""
        return self.workspace.catalog.view(self)

    @property
    def data_assets(self) -> DataAssetLibrary:
        """The project-scope data-asset library."""
        scope = AssetScope(level=ScopeLevel.PROJECT, project_id=self.id)
        return DataAssetLibrary(self.workspace, scope, self.key)

    def save(self) -> None:
        """Persist changes to ``project.json``."""
        self._check_exists()
        write_record(self.workspace.storage, f"{self.key}/project.json", self.metadata)

    def _update(
        self,
        *,
        description: str | None,
        owner: str | None,
        tags: Sequence[str] | None,
        config: Mapping[str, Any] | None,
    ) -> None:
        changes: dict[str, Any] = {}
        if description is not None and description != self.metadata.description:
            changes["description"] = description
        if owner is not None and owner != self.metadata.owner:
            changes["owner"] = owner
        if tags is not None and list(tags) != self.metadata.tags:
            changes["tags"] = list(tags)
        if config is not None and dict(config) != self.metadata.config:
            changes["config"] = dict(config)
        if changes:
            for field, value in changes.items():
                setattr(self.metadata, field, value)
            self.save()

    def Experiment(  # noqa: N802 - factory named after the class, as the API promises
        self,
        name: str,
        params: Mapping[str, Any] | None = None,
        *,
        n_replicas: int | None = None,
        seeds: Sequence[int] | None = None,
        workflow_source: str | None = None,
        workflow_type: str | None = None,
        git_commit: str | None = None,
        description: str | None = None,
        tags: Sequence[str] | None = None,
        parameter_space: Mapping[str, Any] | None = None,
        id: str | None = None,  # noqa: A002 - the public keyword is `id`
    ) -> Experiment:
        """Get or create the experiment ``name``: idempotent by slug, the same object in-process.

        An existing experiment keeps its params: asking for other params under the same name is a
        :class:`ConflictError`, since an experiment is one repeatable definition.
        """
        self._check_exists()
        check_name(name, what="experiment name")
        tags = check_tags(tags, what="experiment tags")
        for text, label in (
            (workflow_source, "workflow_source"),
            (workflow_type, "workflow_type"),
            (git_commit, "git_commit"),
            (description, "experiment description"),
        ):
            check_text(text, what=label)
        if (
            params is not None
            and parameter_space is not None
            and dict(params) != dict(parameter_space)
        ):
            raise ConflictError("params and parameter_space are the same dict: give only one")
        given = params if params is not None else parameter_space
        checked = check_params(given, what="experiment params") if given is not None else None
        replicas, seed_list = check_replicas(n_replicas, seeds)
        eid = (
            check_id(id, what="experiment id")
            if id is not None
            else slugify(name, what="experiment name")
        )
        exp = self._experiments.get(eid)
        if exp is None:
            self.workspace.materialize()
            key = f"{self.key}/experiments/{eid}/experiment.json"
            record = ExperimentMetadata(
                id=eid,
                name=name,
                project_id=self.id,
                params=checked or {},
                n_replicas=replicas or 1,
                seeds=seed_list,
                workflow_source=workflow_source,
                workflow_type=workflow_type,
                git_commit=git_commit,
                description=description,
                tags=list(tags or []),
            )
            try:
                record = read_record(self.workspace.storage, key, ExperimentMetadata)
            except FileNotFoundError:
                try:
                    write_record(self.workspace.storage, key, record, exclusive=True)
                except FileExistsError:
                    record = read_record(self.workspace.storage, key, ExperimentMetadata)
            exp = self._experiments.setdefault(eid, Experiment(self, record))
        if exp.name != name:
            raise InvalidNameError(
                f"experiment name {name!r} has the id {eid!r}, which experiment {exp.name!r} "
                f"already has; use {exp.name!r}, or give this experiment another name or id"
            )
        if checked is not None and canonical_json(checked) != canonical_json(exp.params):
            raise ConflictError(
                f"experiment {exp.name!r} in project {self.id!r} already exists with params "
                f"{exp.params!r}, not {checked!r}; an experiment is one definition: "
                "give the new parameter set its own experiment name"
            )
        exp._update(
            n_replicas=replicas,
            seeds=seed_list,
            workflow_source=workflow_source,
            workflow_type=workflow_type,
            git_commit=git_commit,
            description=description,
            tags=tags,
        )
        return exp

    def experiment(self, experiment_id: str) -> _experiment.Experiment:
        """The existing experiment with this id or name; :class:`NotFoundError` otherwise."""
        for eid in lookup_candidates(experiment_id):
            if eid in self._experiments:
                return self._experiments[eid]
            try:
                record = read_record(
                    self.workspace.storage,
                    f"{self.key}/experiments/{eid}/experiment.json",
                    ExperimentMetadata,
                )
            except FileNotFoundError:
                continue
            return self._experiments.setdefault(eid, Experiment(self, record))
        known = ", ".join(e.id for e in self.list_experiments()) or "none"
        raise NotFoundError(
            f"no experiment {experiment_id!r} in project {self.id!r} (experiments: {known})"
        )

    def list_experiments(self) -> list[_experiment.Experiment]:
        """Every experiment, sorted by id; unreadable ones are skipped with a warning."""
        records = list_records(
            self.workspace.storage, f"{self.key}/experiments", "experiment.json", ExperimentMetadata
        )
        return [self._experiments.setdefault(r.id, Experiment(self, r)) for r in records]

    def __repr__(self) -> str:
        return f"Project({self.id!r}, name={self.name!r})"
