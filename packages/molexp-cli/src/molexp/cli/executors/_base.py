"""The executor interface: how ``molexp run`` hands the runs it planned to an engine.

``molexp run`` plans (which runs exist, which to execute, which to skip) and reports; an
:class:`Executor` only executes. It is given a :class:`Batch` (the runs to execute, the imported
script, the profile, the progress display and a way to create a run that does not exist yet) and
returns an :class:`ExecutionReport`: an :class:`~molexp.cli._progress.Outcome` for each run that
finished, and a :class:`Submission` for each run handed to a scheduler that was not followed to
its end (``--executor slurm`` without ``--wait``).

Every remote unit of work is ``molexp execute RUN`` in a fresh process on a worker, so a run
executed by Dask or Slurm is the same record as one executed locally: the executors never write a
run's ``run.json`` while it executes; they read it to learn how the run ended.
"""

from __future__ import annotations

import abc
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from molexp.cli._plan import PlannedRun
    from molexp.cli._profiles import Profile
    from molexp.cli._progress import Display, Outcome
    from molexp.cli._script import LoadedScript
    from molexp.cli.executors._settings import ExecutorSettings
    from molexp.workspace import Run


@dataclass
class Batch:
    """What an executor is asked to execute."""

    runs: list[PlannedRun]
    """The runs to execute, in plan order (never a run that is to be skipped)."""
    loaded: LoadedScript
    profile: Profile
    display: Display
    ensure_run: Callable[[PlannedRun], Run]
    """Create the run (with the labels that let ``molexp execute`` find its script) if it does
    not exist yet, and return it."""


@dataclass(frozen=True)
class Submission:
    """A run handed to a scheduler and not followed to its end."""

    job_id: str
    state: str
    """The scheduler's state when last seen (``PENDING``, ``RUNNING``...)."""
    output: str | None = None
    """Where the job's output goes, when known."""


@dataclass
class ExecutionReport:
    """How the executed runs ended (by run id), and which are still with a scheduler."""

    outcomes: dict[str, Outcome] = field(default_factory=dict)
    submitted: dict[str, Submission] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    """Runs the executor left alone, with why (a job for the run is already queued)."""


class Executor(abc.ABC):
    """Executes planned runs somewhere: in this process, on a Dask cluster, through Slurm."""

    name: ClassVar[str]

    def __init__(self, settings: ExecutorSettings) -> None:
        self.settings = settings

    @abc.abstractmethod
    def execute(self, batch: Batch) -> ExecutionReport:
        """Execute ``batch.runs``, reporting progress to ``batch.display`` as runs start and
        finish; return how each ended (or where it was submitted)."""

    def describe(self) -> str:
        """One line saying where runs execute, for the header of ``molexp run``."""
        return self.name


EXECUTE_ARGS = ("-P", "-m", "molexp.cli", "execute")
"""How a worker starts ``molexp execute`` with a given Python. ``-P`` keeps the worker's current
directory off ``sys.path``, so that the user's script is imported under the same module name on
every worker as in ``molexp run`` (it names the workflow's entrypoint in the run's record)."""


def execute_argv(python: str, run_dir: str, *, fresh: bool) -> list[str]:
    """``python -P -m molexp.cli execute RUN_DIR [--fresh]``."""
    return [python, *EXECUTE_ARGS, run_dir, *(["--fresh"] if fresh else [])]


def outcome_from_record(
    run: Run, seconds: float, *, output: str = "", fallback_error: str | None = None
) -> Outcome:
    """The outcome of an attempt executed elsewhere, read from the run's own record.

    A run still recorded as ``running`` whose owner is known to be gone is marked failed first
    (its process died without settling it). ``fallback_error`` is used when the record names no
    error but the run did not succeed (the process died before it could record one).
    """
    from molexp.cli._progress import Outcome

    try:
        run.reload()
        if run.status.value == "running":
            run.mark_failed_if_dead()
    except Exception as exc:  # an unreadable record: say so, and count the run as failed
        return Outcome("failed", seconds, error=f"{type(exc).__name__}: {exc}", output=output)
    status = run.status.value
    error = run.error
    text = f"{error.type}: {error.message}" if error is not None and status != "succeeded" else None
    if status != "succeeded" and text is None:
        text = fallback_error
    return Outcome(status, seconds, error=text, output=output if status != "succeeded" else "")


def describe_run(planned: PlannedRun) -> str:
    """``<reason>, replica R, seed S``: how a started run is announced."""
    return f"{planned.reason}, replica {planned.replica}, seed {planned.seed}"


class Stopwatch:
    """Seconds since each run was seen starting (or submitted)."""

    def __init__(self) -> None:
        self._start: dict[str, float] = {}

    def start(self, key: str) -> None:
        """Start timing ``key`` (once; later calls keep the first time)."""
        self._start.setdefault(key, time.perf_counter())

    def seconds(self, key: str) -> float:
        """Seconds since ``key`` started (0 if it never did)."""
        began = self._start.get(key)
        return time.perf_counter() - began if began is not None else 0.0
