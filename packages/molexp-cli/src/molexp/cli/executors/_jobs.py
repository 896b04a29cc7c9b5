"""Scheduler jobs in the inspection commands: ``molexp runs list`` and ``molexp runs cancel``.

* :func:`job_states` gives, for each listed run that was submitted to Slurm, its job and the
  job's state now (``4127_3 RUNNING``; ``4127_3 ended`` once the job left the queue). One
  ``squeue`` call answers for every run. When Slurm cannot be asked, the state is ``?``.
* :func:`cancel_job` stops the job of a run submitted to Slurm: a queued job is removed with
  ``scancel`` and the run marked cancelled; for a job executing the run, the run is first asked to
  stop (a cancel request its owner honours at its next cancellation check, within a fraction of a
  second unless a synchronous task body is busy), then, after at most 5 s, the job is
  ``scancel``-ed, whose SIGTERM interrupts ``molexp execute`` at once; either way the run is
  recorded as cancelled.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from molexp.cli.executors._slurmctl import Slurm, SlurmError
from molexp.cli.executors._submission import (
    SubmissionRecord,
    read_submission,
    read_submission_at,
)

if TYPE_CHECKING:
    from molexp.workspace import Run

CANCEL_GRACE = 5.0
"""Seconds a run executing under Slurm gets to stop by itself (at its next cancellation check)
before its job is ``scancel``-ed (whose SIGTERM then interrupts ``molexp execute`` at once)."""
LIST_TIMEOUT = 10.0


@dataclass(frozen=True)
class JobView:
    """A run's latest scheduler job as the listings show it."""

    executor: str
    job_id: str
    state: str
    """The scheduler's state, ``ended`` (no longer queued), or ``?`` (the scheduler did not
    answer)."""

    @property
    def text(self) -> str:
        """``4127_3 RUNNING``."""
        return f"{self.job_id} {self.state}"


def job_states(locations: Iterable[str]) -> dict[str, JobView]:
    """The job of each run directory in ``locations`` that has a submission record."""
    records: dict[str, SubmissionRecord] = {}
    for location in locations:
        record = read_submission_at(location)
        if record is not None and record.executor == "slurm":
            records[location] = record
    if not records:
        return {}
    try:
        states = Slurm(timeout=LIST_TIMEOUT, retries=1).states([r.job_id for r in records.values()])
        answered = True
    except SlurmError:
        states, answered = {}, False
    views: dict[str, JobView] = {}
    for location, record in records.items():
        state = states.get(record.job_id)
        text = state.state if state is not None else "ended" if answered else "?"
        views[location] = JobView(record.executor, record.job_id, text)
    return views


def describe_jobs(job_ids: Iterable[str], *, most: int = 6) -> str:
    """``4127_[0-49], 4190`` : job ids, array tasks folded into their array."""
    arrays: dict[str, list[int]] = {}
    singles: list[str] = []
    for job_id in job_ids:
        base, _, task = job_id.partition("_")
        if task.isdigit():
            arrays.setdefault(base, []).append(int(task))
        else:
            singles.append(job_id)
    parts = [
        f"{base}_[{min(tasks)}-{max(tasks)}]" if len(tasks) > 1 else f"{base}_{tasks[0]}"
        for base, tasks in arrays.items()
    ]
    parts += singles
    shown = ", ".join(parts[:most])
    return shown + (f" and {len(parts) - most} more" if len(parts) > most else "")


def _wait(run: Run, slurm: Slurm, job_id: str, seconds: float) -> None:
    """Wait up to ``seconds`` for the run to finish or its job to leave the active states."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if run.reload().status.is_terminal:
            return
        state = slurm.state(job_id)
        if state is None or not state.active:
            return
        time.sleep(0.25)


def cancel_job(run: Run, reason: str) -> str | None:
    """Cancel ``run`` through its Slurm job; what happened, or None when the run has no live
    Slurm job (the caller then cancels it the usual way)."""
    record = read_submission(run)
    if record is None or record.executor != "slurm":
        return None
    slurm = Slurm(timeout=LIST_TIMEOUT, retries=2)
    try:
        state = slurm.state(record.job_id)
    except SlurmError as exc:
        raise SlurmError(
            f"run {run.id} was submitted as Slurm job {record.job_id}, and Slurm cannot be asked "
            f"about it ({exc.message}); stop the job with `scancel {record.job_id}` where Slurm "
            "answers, or try again"
        ) from None
    if state is None or not state.active:
        return None
    status = run.reload().status
    if status.value == "running":
        run.cancel(reason)  # the owner stops at its next check and records the cancellation
        _wait(run, slurm, record.job_id, CANCEL_GRACE)
    slurm.cancel([record.job_id])
    _wait(run, slurm, record.job_id, CANCEL_GRACE)
    run.reload()
    if not run.status.is_terminal:
        # Never started (it was queued), or its process is gone: settle it here.
        run.cancel(reason)
        run.reload()
    now = run.status.value
    was = state.state.lower()
    if now == "cancelled":
        return f"cancelled Slurm job {record.job_id} ({was}); the run is cancelled"
    if status.is_terminal:
        return f"cancelled Slurm job {record.job_id} ({was}); the run stays {now}"
    return f"cancelled Slurm job {record.job_id} ({was}); the run is {now}"
