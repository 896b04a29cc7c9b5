"""Executing one run: in this process, or in a child ``molexp execute`` process.

What ``molexp run`` records on a run it creates (its *labels*) is what lets any later process
execute it again from the run directory alone (``molexp execute RUN``, on this machine or a
worker): the script to import, a hash of its source, the directory it was run from, the profile's
name and the merged config with its hash.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from molexp.cli._errors import CliError

if TYPE_CHECKING:
    from molexp.cli._profiles import Profile
    from molexp.cli._script import LoadedScript
    from molexp.workflow import Workflow
    from molexp.workspace import Experiment, Run, Workspace

LABEL_SCRIPT = "molexp.script"
LABEL_SCRIPT_SHA256 = "molexp.script_sha256"
LABEL_CWD = "molexp.cwd"
LABEL_PROFILE = "molexp.profile"
LABEL_CONFIG = "molexp.config"
LABEL_CONFIG_HASH = "molexp.config_hash"
LABEL_REPLICA = "molexp.replica"

OUTPUT_TAIL_LINES = 25


def creation_labels(script: LoadedScript, profile: Profile, replica: int) -> dict[str, str]:
    """The labels ``molexp run`` puts on a run it creates (all strings, as labels are)."""
    from molexp.workspace import canonical_json

    labels = {
        LABEL_SCRIPT: str(script.path),
        LABEL_SCRIPT_SHA256: script.sha256,
        LABEL_CWD: os.getcwd(),
        LABEL_CONFIG: canonical_json(profile.config),
        LABEL_CONFIG_HASH: profile.config_hash,
        LABEL_REPLICA: str(replica),
    }
    if profile.name is not None:
        labels[LABEL_PROFILE] = profile.name
    return labels


def attempt_labels(script: LoadedScript) -> dict[str, str]:
    """The labels stamped at each attempt: the script as imported for *this* attempt."""
    return {LABEL_SCRIPT: str(script.path), LABEL_SCRIPT_SHA256: script.sha256}


def bound_workflow(experiment: Experiment) -> Workflow | None:
    """The workflow the imported script bound to ``experiment``, or None."""
    from molexp.workflow import Workflow

    try:
        return Workflow.for_experiment(experiment)
    except LookupError:  # molexp.workspace.NotFoundError: nothing bound
        return None


def registered_experiment(script: LoadedScript, run: Run) -> Experiment | None:
    """The experiment of ``run`` as the script declared it (same workspace root, else the same
    workspace id), or None when the script declares no such experiment."""
    ws_url, ws_id = run.experiment.project.workspace.url, run.experiment.project.workspace.id
    candidates: list[Workspace] = [ws for ws in script.workspaces if ws.url == ws_url]
    candidates += [ws for ws in script.workspaces if ws.url != ws_url and ws.id == ws_id]
    for ws in candidates:
        try:
            return ws.project(run.experiment.project.id).experiment(run.experiment.id)
        except LookupError:
            continue
    return None


def _stamp(
    run: Run, labels: Mapping[str, str], record_labels: Mapping[str, str] | None = None
) -> None:
    """Record ``labels`` on the run and on its current execution record, and ``record_labels``
    (where this attempt runs: a Slurm job, a Dask worker) on the execution record only.

    Called by the run's owner while its context is entered; the workflow layer's snapshot write
    (or the attempt's end) persists them.
    """
    with run.lock:
        run.metadata.labels.update(labels)
        history = run.metadata.execution_history
        if history:
            history[-1].labels.update(labels)
            history[-1].labels.update(record_labels or {})


def execute_in_process(
    run: Run,
    workflow: Workflow,
    *,
    profile_config: Mapping[str, Any] | None,
    profile_name: str | None,
    labels: Mapping[str, str],
    fresh: bool,
    record_labels: Mapping[str, str] | None = None,
) -> str:
    """Execute ``run`` here: one attempt, returning its final status.

    ``profile_config=None`` keeps the profile recorded on the run. ``fresh`` ignores the saved
    task states, so every task runs again (otherwise the workflow runtime reuses the tasks that
    finished with unchanged code and inputs). A task failure makes a failed run, not an
    exception; an exception from the machinery is recorded on the run (failed) and re-raised.
    """
    with run.start(profile_config, profile_name=profile_name):
        _stamp(run, labels, record_labels)
        asyncio.run(workflow.execute(run, resume=not fresh))
    return run.status.value


# -- child processes ------------------------------------------------------------------------------


@dataclass
class ChildResult:
    """How a ``molexp execute`` child process ended."""

    returncode: int
    output: str
    seconds: float


class Children:
    """The ``molexp execute`` processes running now, so an interrupt can stop them all."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._procs: set[subprocess.Popen[bytes]] = set()

    def run(self, run_dir: str, *, fresh: bool) -> ChildResult:
        """Execute one run in a child process and wait for it."""
        # -P: the current directory stays off sys.path, so the script is imported under the same
        # module name as in `molexp run` (it is recorded in the workflow's entrypoint).
        command = [sys.executable, "-P", "-m", "molexp.cli", "execute", run_dir]
        if fresh:
            command.append("--fresh")
        start = time.perf_counter()
        with tempfile.TemporaryFile() as out:
            proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=out, stderr=out)
            with self._lock:
                self._procs.add(proc)
            try:
                returncode = proc.wait()
            finally:
                with self._lock:
                    self._procs.discard(proc)
            out.seek(0)
            text = out.read().decode("utf-8", "replace")
        return ChildResult(returncode, text, time.perf_counter() - start)

    def stop(self, timeout: float = 10.0) -> None:
        """Interrupt every child (it records its run as cancelled), killing any that lingers."""
        with self._lock:
            procs = list(self._procs)
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)  # the child records its run as cancelled
        deadline = time.monotonic() + timeout
        for proc in procs:
            try:
                proc.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()


def tail(text: str, lines: int = OUTPUT_TAIL_LINES) -> str:
    """The last ``lines`` lines of ``text``."""
    kept = text.rstrip("\n").splitlines()[-lines:]
    return "\n".join(kept)


# -- the profile recorded on a run ------------------------------------------------------------


@dataclass(frozen=True)
class RecordedProfile:
    """The profile a run executes with: recorded by an earlier attempt, or by ``molexp run``."""

    config: dict[str, Any] | None
    """The config to give ``run.start`` (None: keep the one recorded on the run)."""
    name: str | None


def recorded_profile(run: Run) -> RecordedProfile:
    """The profile to execute ``run`` with, checked so that its ``config_hash`` cannot drift.

    A run that executed before keeps the config recorded on it; one that ``molexp run`` created
    and nobody executed yet gets the config ``molexp run`` put in its labels.
    """
    from molexp.workspace import config_hash

    meta = run.metadata
    labelled_hash = meta.labels.get(LABEL_CONFIG_HASH)
    if meta.config_hash is not None:
        actual = config_hash(meta.config)
        if actual != meta.config_hash:
            raise CliError(
                f"run {run.id}: its recorded config hashes to {actual}, not to the config_hash "
                f"{meta.config_hash} recorded with it; run.json was edited by hand"
            )
        if labelled_hash is not None and labelled_hash != meta.config_hash:
            raise CliError(
                f"run {run.id}: it was created for config {labelled_hash} but executed with "
                f"{meta.config_hash}; run.json was edited by hand"
            )
        return RecordedProfile(config=None, name=meta.profile_name)
    raw = meta.labels.get(LABEL_CONFIG)
    if raw is None:
        return RecordedProfile(config=None, name=meta.profile_name)
    try:
        config = json.loads(raw)
    except ValueError:
        raise CliError(f"run {run.id}: its label {LABEL_CONFIG} is not JSON") from None
    if not isinstance(config, dict) or (
        labelled_hash is not None and config_hash(config) != labelled_hash
    ):
        raise CliError(
            f"run {run.id}: the config in its label {LABEL_CONFIG} does not match "
            f"{LABEL_CONFIG_HASH} {labelled_hash}; run.json was edited by hand"
        )
    return RecordedProfile(config=config, name=meta.labels.get(LABEL_PROFILE))


def recorded_script(run: Run, override: Path | None) -> Path:
    """The script to import to execute ``run``: ``override``, else the one ``molexp run``
    recorded."""
    if override is not None:
        return override
    recorded = run.metadata.labels.get(LABEL_SCRIPT)
    if recorded is None:
        raise CliError(
            f"run {run.id} records no script (it was not created by `molexp run`); pass "
            "--script PATH to name the script that binds its experiment's workflow"
        )
    path = Path(recorded)
    if not path.is_file():
        raise CliError(
            f"run {run.id} was created from the script {recorded}, which does not exist here; "
            "pass --script PATH"
        )
    return path


def enter_recorded_cwd(run: Run) -> None:
    """Work from the directory ``molexp run`` ran in, so the script's relative paths resolve as
    they did then (when that directory exists here)."""
    recorded = run.metadata.labels.get(LABEL_CWD)
    if recorded and Path(recorded).is_dir():
        os.chdir(recorded)
