"""An experiment: one repeatable definition (workflow source, params, replicas) and its runs."""

from __future__ import annotations

import hashlib
import uuid
import warnings
import weakref
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from molexp.workspace import _run
from molexp.workspace._assets import AssetScope, ScopeLevel
from molexp.workspace._data_assets import DataAssetLibrary
from molexp.workspace._errors import (
    ConflictError,
    CorruptRecordError,
    CorruptRecordWarning,
    NotFoundError,
)
from molexp.workspace._metadata import ExperimentMetadata, RunMetadata, RunStatus
from molexp.workspace._names import check_id, check_text
from molexp.workspace._records import (
    canonical_json,
    check_labels,
    check_params,
    content_hash,
    list_records,
    parse_record,
    read_record,
    write_record,
)
from molexp.workspace._run import RUN_FILE, Run

if TYPE_CHECKING:
    from molexp.workspace._project import Project
    from molexp.workspace._workspace import Workspace
    from molexp.workspace.catalog import AssetView

_MAX_ID_ATTEMPTS = 8


def default_seeds(n: int) -> list[int]:
    """The first ``n`` seeds of molexp's fixed default sequence (31-bit, stable everywhere)."""
    return [
        int.from_bytes(hashlib.sha256(f"molexp-seed-{i}".encode()).digest()[:4], "big") & 0x7FFFFFFF
        for i in range(n)
    ]


def check_replicas(
    n_replicas: int | None, seeds: Sequence[int] | None
) -> tuple[int | None, list[int] | None]:
    """Validate a replica policy; explicit seeds must match ``n_replicas`` exactly."""
    if n_replicas is not None and (
        isinstance(n_replicas, bool) or not isinstance(n_replicas, int) or n_replicas < 1
    ):
        raise ValueError(f"n_replicas must be a whole number >= 1, got {n_replicas!r}")
    if seeds is None:
        return n_replicas, None
    if isinstance(seeds, (str, bytes)) or not isinstance(seeds, Sequence):
        raise TypeError(f"seeds must be a list of integers, got {type(seeds).__name__}")
    seed_list = list(seeds)
    bad = [s for s in seed_list if isinstance(s, bool) or not isinstance(s, int)]
    if bad or not seed_list:
        raise TypeError(f"seeds must be a non-empty list of integers, got {seeds!r}")
    if n_replicas is not None and n_replicas != len(seed_list):
        raise ValueError(
            f"seeds has {len(seed_list)} values but n_replicas is {n_replicas}: give one seed per "
            "replica, or omit n_replicas"
        )
    return len(seed_list), seed_list


def check_status(status: RunStatus | str | None) -> RunStatus | None:
    """``status`` as a :class:`RunStatus`; a clear error listing the statuses if it is none."""
    if status is None:
        return None
    try:
        return RunStatus(status)
    except ValueError:
        known = ", ".join(s.value for s in RunStatus)
        raise ValueError(f"unknown run status {status!r}; expected one of {known}") from None


def check_query(params: Mapping[str, Any] | None) -> dict[str, str]:
    """The ``name -> match key`` of a parameter query; a clear error naming a name that is not a
    string or a value that is not JSON."""
    if params is None:
        return {}
    if not isinstance(params, Mapping):
        raise TypeError(
            f"params must be a dict of parameter name -> value, got {type(params).__name__} "
            f"{params!r}"
        )
    from molexp.workspace.catalog._runs import match_key

    wanted: dict[str, str] = {}
    for name, value in params.items():
        if not isinstance(name, str):
            raise TypeError(f"parameter names must be strings, got {type(name).__name__} {name!r}")
        checked = check_params({name: value}, what=f"the value of parameter {name!r}")
        wanted[name] = match_key(checked[name])
    return wanted


class Experiment:
    """An experiment. Create and get with ``project.Experiment(name, params=...)``."""

    def __init__(self, project: Project, metadata: ExperimentMetadata) -> None:
        self.project = project
        self.metadata = metadata
        self.key: str = f"{project.key}/experiments/{metadata.id}"
        self._runs: weakref.WeakValueDictionary[str, _run.Run] = weakref.WeakValueDictionary()

    @property
    def workspace(self) -> Workspace:
        """The workspace this experiment belongs to."""
        return self.project.workspace

    @property
    def id(self) -> str:
        """The experiment's id (its slug): its directory name."""
        return self.metadata.id

    @property
    def name(self) -> str:
        """The display name."""
        return self.metadata.name

    @property
    def params(self) -> dict[str, Any]:
        """The parameter dict of this definition (``parameter_space`` is the same dict)."""
        return self.metadata.params

    @property
    def parameter_space(self) -> dict[str, Any]:
        """The same dict as :attr:`params`."""
        return self.metadata.params

    @property
    def n_replicas(self) -> int:
        """How many replicas (seeds) this definition asks for."""
        return self.metadata.n_replicas

    @property
    def seeds(self) -> list[int] | None:
        """The explicit seeds, if any were given."""
        return self.metadata.seeds

    @property
    def workflow_source(self) -> str | None:
        """The file the workflow is defined in."""
        return self.metadata.workflow_source

    @property
    def workflow_type(self) -> str | None:
        """A free-form label for the kind of workflow."""
        return self.metadata.workflow_type

    @property
    def git_commit(self) -> str | None:
        """The git commit of the workflow source, when known."""
        return self.metadata.git_commit

    @property
    def experiment_dir(self) -> Path | str:
        """The experiment directory: a Path when local, a URL otherwise."""
        local = self.project.workspace.storage.local_path(self.key)
        return local if local is not None else self.project.workspace.storage.url_for(self.key)

    @property
    def assets(self) -> AssetView:
        """The assets of this experiment and its runs (read-only)."""
        return self.project.workspace.catalog.view(self)

    @property
    def data_assets(self) -> DataAssetLibrary:
        """The experiment-scope data-asset library."""
        scope = AssetScope(
            level=ScopeLevel.EXPERIMENT, project_id=self.project.id, experiment_id=self.id
        )
        return DataAssetLibrary(self.project.workspace, scope, self.key)

    def get_seeds(self) -> list[int]:
        """The effective seeds: the explicit ones, or the default sequence cut to ``n_replicas``."""
        if self.metadata.seeds is not None:
            return list(self.metadata.seeds)
        return default_seeds(self.metadata.n_replicas)

    def save(self) -> None:
        """Persist changes to ``experiment.json``."""
        write_record(self.project.workspace.storage, f"{self.key}/experiment.json", self.metadata)

    def _update(self, **fields: Any) -> None:
        changes = {}
        for field, value in fields.items():
            if value is None:
                continue
            value = list(value) if field == "tags" else value
            if getattr(self.metadata, field) != value:
                changes[field] = value
        if "n_replicas" in changes and "seeds" not in changes and self.metadata.seeds is not None:
            raise ValueError(
                f"experiment {self.name!r} has explicit seeds {self.metadata.seeds}; "
                "change the seeds "
                "to change n_replicas"
            )
        if changes:
            for field, value in changes.items():
                setattr(self.metadata, field, value)
            self.save()

    def Run(  # noqa: N802 - factory named after the class, as the public API promises
        self,
        parameters: Mapping[str, Any] | None = None,
        id: str | None = None,  # noqa: A002 - the public keyword is `id`
        *,
        workflow_snapshot: Mapping[str, Any] | None = None,
        labels: Mapping[str, str] | None = None,
        profile_config: Mapping[str, Any] | None = None,
        profile_name: str | None = None,
    ) -> Run:
        """Create a run (a fresh id unless ``id`` is given), or load the run ``id`` if it exists.

        ``parameters`` default to the experiment's params. Loading an existing run with other
        parameters is a :class:`ConflictError`. A new run records ``profile_config`` (with its
        ``config_hash``) and ``profile_name`` from the start, so it can be executed anywhere later.
        """
        checked_labels = check_labels(labels, what="run labels")
        config = (
            check_params(profile_config, what="profile config")
            if profile_config is not None
            else None
        )
        check_text(profile_name, what="profile name")
        snapshot = (
            check_params(workflow_snapshot, what="workflow snapshot")
            if workflow_snapshot is not None
            else None
        )
        params = (
            check_params(parameters, what="run parameters")
            if parameters is not None
            else dict(self.params)
        )
        if id is not None:
            check_id(id, what="run id")
            existing = self._load(id)
            if existing is not None:
                if parameters is not None and canonical_json(params) != canonical_json(
                    existing.parameters
                ):
                    raise ConflictError(
                        f"run {id!r} already exists with parameters {existing.parameters!r}, not "
                        f"{params!r}; omit parameters to load it, or use another id"
                    )
                return existing
            # An earlier run of this id may have been deleted: its index row must not outlive it.
            self.project.workspace.run_index.forget(self, id)
        storage = self.project.workspace.storage
        self.project.workspace.materialize()
        for _ in range(_MAX_ID_ATTEMPTS):
            run_id = id if id is not None else uuid.uuid4().hex[:12]
            record = RunMetadata(
                id=run_id,
                experiment_id=self.id,
                project_id=self.project.id,
                parameters=params,
                workflow_snapshot=snapshot,
                labels=checked_labels,
                config=config or {},
                config_hash=content_hash(config) if config is not None else None,
                profile_name=profile_name,
            )
            run = Run(self, record)
            try:
                write_record(storage, f"{run.key}/{RUN_FILE}", record, exclusive=True)
            except FileExistsError:
                if id is not None:
                    return self.Run(parameters, id, profile_config=profile_config)
                continue
            return self._runs.setdefault(run_id, run)
        raise ConflictError(
            f"could not find a free run id in {self.key} after {_MAX_ID_ATTEMPTS} tries"
        )

    run = Run

    def _load(self, run_id: str) -> _run.Run | None:
        cached = self._runs.get(run_id)
        if cached is not None:
            try:
                return cached.reload()
            except FileNotFoundError:  # deleted since it was loaded
                self._runs.pop(run_id, None)
                return None
        try:
            record = read_record(
                self.project.workspace.storage,
                f"{self.key}/runs/run-{run_id}/{RUN_FILE}",
                RunMetadata,
            )
        except FileNotFoundError:
            return None
        return self._runs.setdefault(run_id, Run(self, record))

    def get_run(self, run_id: str) -> _run.Run:
        """The existing run ``run_id``; :class:`NotFoundError` if there is none."""
        run = self._load(check_id(run_id, what="run id"))
        if run is None:
            raise NotFoundError(
                f"no run {run_id!r} in experiment {self.id!r} of project {self.project.id!r}"
            )
        return run

    def _adopt(self, record: RunMetadata) -> _run.Run:
        """The run object of ``record``: the one already in memory (brought up to date unless this
        process is executing it), else a new one."""
        run = self._runs.get(record.id)
        if run is None:
            run = self._runs.setdefault(record.id, Run(self, record))
        elif run.context is None:
            run.metadata = record
        return run

    def list_runs(
        self,
        status: RunStatus | str | None = None,
        *,
        params: Mapping[str, Any] | None = None,
    ) -> list[_run.Run]:
        """Every run (optionally of one status, or with the given parameter values: see
        :meth:`find_runs`), oldest first; unreadable ones are skipped with a warning naming the
        file."""
        if params is not None:
            return self.find_runs(params, status=status)
        wanted = check_status(status)
        records = list_records(
            self.project.workspace.storage, f"{self.key}/runs", RUN_FILE, RunMetadata, prefix="run-"
        )
        runs = [self._adopt(r) for r in sorted(records, key=lambda r: (r.created_at, r.id))]
        if wanted is not None:
            runs = [r for r in runs if r.status == wanted]
        return runs

    def find_runs(
        self,
        params: Mapping[str, Any] | None = None,
        *,
        status: RunStatus | str | None = None,
    ) -> list[_run.Run]:
        """The runs whose parameters hold every name in ``params`` with an equal value (and, if
        given, of ``status`` now), oldest first.

        Values are equal as JSON: numbers by value (``1`` matches ``1.0``), ``True`` never matches
        ``1``, lists and dicts match when equal in full; a name the run lacks never matches. The
        run-parameter index answers, so only the ``run.json`` of the hits are read.
        """
        wanted = check_query(params)
        wanted_status = check_status(status)
        if not wanted:
            return self.list_runs(wanted_status)
        workspace = self.project.workspace
        if not workspace.is_materialized:
            return []
        from molexp.workspace.catalog._runs import matches, read_many

        storage = workspace.storage
        hits = sorted(workspace.run_index.find(self, wanted))
        keys = [f"{self.key}/runs/run-{run_id}/{RUN_FILE}" for run_id in hits]
        runs: list[_run.Run] = []
        stale: dict[str, dict[str, Any]] = {}
        for run_id, key, data in zip(hits, keys, read_many(storage, keys), strict=True):
            if data is None:
                continue  # deleted since the listing
            try:
                record = parse_record(data, RunMetadata, storage.url_for(key))
            except CorruptRecordError as exc:
                warnings.warn(str(exc), CorruptRecordWarning, stacklevel=2)
                continue
            if not matches(record.parameters, wanted):
                stale[run_id] = record.parameters
                continue
            run = self._adopt(record)
            if wanted_status is None or run.status == wanted_status:
                runs.append(run)
        if stale:
            workspace.run_index.update(self, stale)
        return sorted(runs, key=lambda r: (r.metadata.created_at, r.id))

    def __repr__(self) -> str:
        return f"Experiment({self.id!r}, project={self.project.id!r}, params={self.params!r})"
