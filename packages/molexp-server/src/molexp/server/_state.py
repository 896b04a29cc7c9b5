"""What one server process holds: the workspace, the run indexes, and id-checked lookups.

Every entity a request names is found by id through the workspace API, after the id has passed
the workspace's own check (``check_id``: lowercase ASCII letters, digits, ``.``, ``_`` and ``-``,
no separators), so no request can name a path. Assets are found only through catalog records.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
from typing import TYPE_CHECKING

from molexp.server._runindex import RunIndex, Snapshot
from molexp.workspace import NotFoundError, check_id

if TYPE_CHECKING:
    from molexp.workspace import Asset, Experiment, Project, Run, Workspace


class ServerState:
    """The workspace a server shows, with a run index per experiment it has been asked about."""

    def __init__(self, workspace: Workspace, *, token: str | None = None) -> None:
        self.workspace = workspace
        self.token = token
        self._secret = secrets.token_bytes(32)
        self._indexes: dict[tuple[str, str], RunIndex] = {}
        self._lock = threading.Lock()

    # -- lookups --------------------------------------------------------------------------------

    def project(self, project_id: str) -> Project:
        """The project with this id; :class:`InvalidNameError` or :class:`NotFoundError`."""
        check_id(project_id, what="project id")
        return self.workspace.project(project_id)

    def experiment(self, project_id: str, experiment_id: str) -> Experiment:
        """The experiment with these ids."""
        check_id(experiment_id, what="experiment id")
        return self.project(project_id).experiment(experiment_id)

    def run(self, project_id: str, experiment_id: str, run_id: str) -> Run:
        """The run with these ids, freshly read from its ``run.json``."""
        check_id(run_id, what="run id")
        return self.experiment(project_id, experiment_id).get_run(run_id)

    def asset(self, asset_id: str) -> Asset:
        """The asset with this id, from the catalog; :class:`NotFoundError` if it has none."""
        check_id(asset_id, what="asset id")
        found = self.workspace.catalog.get(asset_id)
        if found is None:
            raise NotFoundError(f"no asset {asset_id!r} in the catalog of {self.workspace.url}")
        return found

    # -- run indexes ----------------------------------------------------------------------------

    def index(self, experiment: Experiment) -> RunIndex:
        """The run index of ``experiment`` (created on first use, then kept)."""
        key = (experiment.project.id, experiment.id)
        with self._lock:
            index = self._indexes.get(key)
            if index is None:
                index = self._indexes[key] = RunIndex(experiment)
        return index

    def runs(self, experiment: Experiment) -> Snapshot:
        """The current snapshot of ``experiment``'s runs."""
        return self.index(experiment).snapshot()

    def warm(self) -> None:
        """Build the run index of every experiment (run in a background thread at start-up)."""
        for project in self.workspace.list_projects():
            for experiment in project.list_experiments():
                self.runs(experiment)

    # -- confirmation of the one state-changing action ------------------------------------------

    def cancel_token(self, run: Run) -> str:
        """A per-process secret bound to one run: the cancel form carries it (against CSRF)."""
        message = f"cancel\0{run.experiment.project.id}\0{run.experiment.id}\0{run.id}".encode()
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()

    def check_cancel_token(self, run: Run, token: str) -> bool:
        """Whether ``token`` is this process's cancel token for ``run``."""
        return hmac.compare_digest(self.cancel_token(run), token)
