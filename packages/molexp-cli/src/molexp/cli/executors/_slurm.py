"""``--executor slurm``: one ``sbatch`` job per run, or one job array for the sweep.

Before anything is submitted, a run whose earlier job is still queued or running is left alone
(resubmitting a sweep never queues a run twice); the planner has already skipped the runs that
succeeded. Each run is created (so that ``molexp execute RUN`` finds it), the job scripts are
written to ``slurm.log_dir`` (default ``.molexp/slurm/<stamp>/``, where the job output goes too),
the jobs are submitted, and each run gets a ``submission.json`` naming its job.

Without ``--wait`` the command ends there (exit code 0 when every submission went through); the
jobs go on. With ``--wait`` it follows them: a run is *settled* when its job leaves the active
states, or leaves the queue altogether, by reading the run's own record (succeeded, failed,
cancelled; a job that ended without executing the run leaves it ``created``). Progress and the
exit code are those of a local ``molexp run``.
"""

from __future__ import annotations

import os
import secrets
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from molexp.cli.executors._base import (
    Batch,
    ExecutionReport,
    Executor,
    Submission,
    describe_run,
    outcome_from_record,
)
from molexp.cli.executors._slurm_script import (
    RunLine,
    array_script,
    runs_table,
    single_script,
)
from molexp.cli.executors._slurmctl import JobState, Slurm, SlurmError, SlurmUnavailable
from molexp.cli.executors._submission import (
    SubmissionRecord,
    now_iso,
    read_submission,
    write_submission,
)

if TYPE_CHECKING:
    from molexp.cli._plan import PlannedRun
    from molexp.cli._progress import Display, Outcome
    from molexp.workspace import Run

GIVE_UP_AFTER = 300.0
"""Seconds of Slurm not answering (every retry failing) after which ``--wait`` stops following."""
SETTLE_GRACE = 5.0
"""Seconds past the owner's heartbeat horizon before a run whose job ended while its record still
says ``running`` (an owner on another host) is marked failed."""


@dataclass
class Tracked:
    """A submitted run being followed."""

    planned: PlannedRun
    run: Run
    job_id: str
    output: str | None
    submitted_at: float
    announced: bool = False
    ended_at: float | None = None
    """When the job was first seen ended while the record still said ``running``."""
    last_state: str = "PENDING"
    attempts: int = 0
    """Attempts recorded on the run when it was submitted: a record with no more than these
    says nothing about this job (a resubmitted run's record still shows its last failure)."""

    @property
    def executed(self) -> bool:
        """Whether the run's record shows an attempt made since the submission."""
        return len(self.run.metadata.execution_history) > self.attempts


class SlurmExecutor(Executor):
    """Submits runs to Slurm with ``sbatch``; follows them with ``squeue`` when asked to wait."""

    name = "slurm"

    def describe(self) -> str:
        """``slurm (job array of at most N at once, partition P)``."""
        slurm = self.settings.slurm
        parts = ["job array" if slurm.array else "one job per run"]
        limit = self._array_limit()
        if slurm.array and limit is not None:
            parts[0] += f", at most {limit} at once"
        if slurm.partition:
            parts.append(f"partition {slurm.partition}")
        if self.settings.wait:
            parts.append("--wait")
        return f"slurm ({', '.join(parts)})"

    def _array_limit(self) -> int | None:
        return self.settings.slurm.array_limit or self.settings.jobs

    @property
    def slurm(self) -> Slurm:
        """The Slurm client."""
        settings = self.settings.slurm
        return Slurm(timeout=settings.command_timeout, retries=settings.retries)

    # -- submitting ---------------------------------------------------------------------------

    def execute(self, batch: Batch) -> ExecutionReport:
        """Submit ``batch.runs`` (those without a live job); follow them with ``--wait``."""
        report = ExecutionReport()
        if not Slurm.available():
            raise SlurmUnavailable(
                "--executor slurm needs the Slurm client commands (sbatch, squeue, scancel), "
                "which are not on PATH here; run molexp on a machine that submits Slurm jobs"
            )
        slurm = self.slurm
        todo = self._without_live_jobs(batch, slurm, report)
        if not todo:
            return report
        runs = [(planned, batch.ensure_run(planned)) for planned in todo]
        directory = self._submission_dir()
        if self.settings.slurm.array and len(runs) > 1:
            tracked = self._submit_array(runs, directory, slurm)
        else:
            tracked = self._submit_each(runs, directory, slurm)
        if not self.settings.wait:
            for item in tracked:
                report.submitted[item.planned.run_id] = Submission(
                    item.job_id, "PENDING", item.output
                )
                batch.display.note(
                    f"submitted  {item.planned.qualified}  Slurm job {item.job_id}  "
                    f"(output: {item.output})"
                )
            return report
        follow(tracked, slurm, batch.display, report, poll=self.settings.slurm.poll_interval)
        return report

    def _without_live_jobs(
        self, batch: Batch, slurm: Slurm, report: ExecutionReport
    ) -> list[PlannedRun]:
        """The runs of ``batch`` whose latest job (if any) is no longer queued or running."""
        earlier: dict[str, SubmissionRecord] = {}
        for planned in batch.runs:
            if planned.run is None:
                continue
            record = read_submission(planned.run)
            if record is not None and record.executor == "slurm":
                earlier[planned.run_id] = record
        if not earlier:
            return list(batch.runs)
        states = slurm.states([r.job_id for r in earlier.values()])
        todo: list[PlannedRun] = []
        for planned in batch.runs:
            record = earlier.get(planned.run_id)
            state = states.get(record.job_id) if record is not None else None
            if record is not None and state is not None and state.active:
                why = f"Slurm job {record.job_id} is {state.state.lower()}"
                report.skipped[planned.run_id] = why
                batch.display.note(f"skipped    {planned.qualified}  ({why})")
            else:
                todo.append(planned)
        return todo

    def _submission_dir(self) -> Path:
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        directory = Path(self.settings.slurm.log_dir).expanduser()
        directory = (directory if directory.is_absolute() else Path.cwd() / directory) / (
            f"{stamp}-{secrets.token_hex(3)}"
        )
        directory.mkdir(parents=True, exist_ok=True)
        return directory

    def _submit_each(
        self, runs: list[tuple[PlannedRun, Run]], directory: Path, slurm: Slurm
    ) -> list[Tracked]:
        tracked: list[Tracked] = []
        tried = _attempts(runs)
        token = directory.name.rsplit("-", 1)[-1]
        for planned, run in runs:
            name = f"{self.settings.slurm.job_name}-{planned.run_id}-{token}"
            output = str(directory / f"{planned.run_id}.out")
            script = directory / f"{planned.run_id}.sh"
            script.write_text(
                single_script(
                    self.settings,
                    RunLine(str(run.run_dir), planned.fresh),
                    job_name=name,
                    output=output,
                )
            )
            try:
                job_id = slurm.submit(str(script), job_name=name)
            except SlurmError as exc:
                if not tracked:
                    raise
                done = ", ".join(item.job_id for item in tracked[:5])
                more = f" and {len(tracked) - 5} more" if len(tracked) > 5 else ""
                raise SlurmError(
                    f"{exc.message}; {len(tracked)} run(s) were submitted before this failure "
                    f"(jobs {done}{more}) and go on; submit again to queue the rest"
                ) from None
            submitted = time.perf_counter()
            write_submission(
                run,
                SubmissionRecord(
                    executor="slurm",
                    job_id=job_id,
                    job_name=name,
                    submitted_at=now_iso(),
                    submit_host=os.uname().nodename,
                    output=output,
                    script=str(script),
                ),
            )
            tracked.append(Tracked(planned, run, job_id, output, submitted, attempts=tried[run]))
        return tracked

    def _submit_array(
        self, runs: list[tuple[PlannedRun, Run]], directory: Path, slurm: Slurm
    ) -> list[Tracked]:
        token = directory.name.rsplit("-", 1)[-1]
        name = f"{self.settings.slurm.job_name}-{token}"
        tried = _attempts(runs)
        table = directory / "runs.tsv"
        table.write_text(runs_table([RunLine(str(run.run_dir), p.fresh) for p, run in runs]))
        script = directory / "array.sh"
        script.write_text(
            array_script(
                self.settings,
                count=len(runs),
                table_path=str(table),
                job_name=name,
                output=str(directory / "task-%a.out"),
                limit=self._array_limit(),
            )
        )
        array_id = slurm.submit(str(script), job_name=name)
        submitted = time.perf_counter()
        when = now_iso()
        tracked: list[Tracked] = []
        for index, (planned, run) in enumerate(runs):
            output = str(directory / f"task-{index}.out")
            job_id = f"{array_id}_{index}"
            write_submission(
                run,
                SubmissionRecord(
                    executor="slurm",
                    job_id=job_id,
                    job_name=name,
                    submitted_at=when,
                    submit_host=os.uname().nodename,
                    array_job_id=array_id,
                    array_task_id=index,
                    output=output,
                    script=str(script),
                ),
            )
            tracked.append(Tracked(planned, run, job_id, output, submitted, attempts=tried[run]))
        return tracked


def _attempts(runs: list[tuple[PlannedRun, Run]]) -> dict[Run, int]:
    """How many attempts each run's record shows before it is submitted."""
    return {run: len(run.metadata.execution_history) for _, run in runs}


# -- following ----------------------------------------------------------------------------------


def _output_tail(path: str | None) -> str:
    from molexp.cli._execution import tail

    if path is None:
        return ""
    try:
        return tail(Path(path).read_text(errors="replace"))
    except OSError:
        return ""


def _attempt_seconds(run: Run, fallback: float) -> float:
    history = run.metadata.execution_history
    if history and history[-1].finished_at is not None:
        return (history[-1].finished_at - history[-1].started_at).total_seconds()
    return fallback


def settle(item: Tracked, state: JobState | None, now: float) -> Outcome | None:
    """How ``item``'s run ended, read from its record now that its job has ended (or vanished);
    None while the record still says ``running`` with an owner that may be alive elsewhere."""
    from molexp.cli._progress import Outcome

    waited = now - item.submitted_at
    ended = state.state if state is not None else "left the queue"
    where = f"see {item.output}" if item.output else "see the job's output"
    outcome = outcome_from_record(
        item.run,
        waited,
        output=_output_tail(item.output),
        fallback_error=f"Slurm job {item.job_id} ended ({ended}) without recording why; {where}",
    )
    status = outcome.status
    if not item.executed:
        # The job ended without starting an attempt: the record is as it was before the job.
        return Outcome(
            status,
            waited,
            error=f"Slurm job {item.job_id} ended ({ended}) before executing the run; {where}",
            output=outcome.output,
        )
    if status == "running":
        owner = item.run.metadata.owner
        horizon = (owner.heartbeat_interval * 3 if owner is not None else 0.0) + SETTLE_GRACE
        if item.ended_at is None:
            item.ended_at = now
        if now - item.ended_at < horizon:
            return None  # the owner's heartbeat has not had time to go stale yet
        item.run.mark_failed_if_dead(include_stale=True)
        return outcome_from_record(item.run, waited, output=outcome.output)
    outcome.seconds = _attempt_seconds(item.run, waited)
    return outcome


RECORD_TICK = 0.1
"""Seconds between two looks at the records of runs in a local workspace (a ``stat`` each)."""


def follow(
    tracked: list[Tracked],
    slurm: Slurm,
    display: Display,
    report: ExecutionReport,
    *,
    poll: float = 2.0,
    give_up_after: float = GIVE_UP_AFTER,
) -> None:
    """Follow the jobs of ``tracked`` until every run is settled (see :func:`settle`).

    The queue is asked every ``poll`` seconds (more often at first). In between, the records of
    runs in a local workspace are watched (one ``stat`` each, every 0.1 s), so a run that finished
    is reported at once rather than at the next look at the queue. If Slurm answers no query for
    ``give_up_after`` seconds, following stops: the runs not settled yet are reported with their
    last known state, and their jobs go on.
    """
    follower = _Follower(tracked, slurm, display, report, give_up_after)
    try:
        follower.run(poll)
    except KeyboardInterrupt:
        display.note(
            f"stopped following {len(follower.waiting)} Slurm job(s); they go on (see "
            "`molexp runs list`, stop them with `molexp runs cancel RUN`)"
        )
        raise


class _Follower:
    """The state of :func:`follow`."""

    def __init__(
        self,
        tracked: list[Tracked],
        slurm: Slurm,
        display: Display,
        report: ExecutionReport,
        give_up_after: float,
    ) -> None:
        self.waiting = {item.planned.run_id: item for item in tracked}
        self.slurm = slurm
        self.display = display
        self.report = report
        self.give_up_after = give_up_after
        self.last_answer = time.monotonic()
        self.paths = {run_id: _record_path(item.run) for run_id, item in self.waiting.items()}
        self.stamps: dict[str, int] = {}

    def run(self, poll: float) -> None:
        """Query the queue and watch the records until nothing is waiting."""
        interval = min(0.25, poll)
        next_query = time.monotonic()
        while self.waiting:
            if time.monotonic() >= next_query:
                if not self._query():
                    return
                next_query = time.monotonic() + interval
                interval = min(poll, interval * 1.5)
            self._watch_records()
            if self.waiting:
                time.sleep(min(RECORD_TICK, max(0.0, next_query - time.monotonic())))

    def _done(self, run_id: str, item: Tracked, outcome: Outcome) -> None:
        del self.waiting[run_id]
        self.report.outcomes[run_id] = outcome
        _announce(item, self.display)
        self.display.finished(item.planned.qualified, outcome)

    def _query(self) -> bool:
        """One look at the queue; False when Slurm stopped answering for good."""
        from molexp.cli._progress import Outcome

        try:
            states = self.slurm.states([item.job_id for item in self.waiting.values()])
        except SlurmError as exc:
            if time.monotonic() - self.last_answer <= self.give_up_after:
                return True
            for run_id, item in list(self.waiting.items()):
                error = (
                    f"Slurm stopped answering ({exc.message}); job {item.job_id} was "
                    f"{item.last_state.lower()}"
                )
                self._done(
                    run_id,
                    item,
                    Outcome("unknown", time.perf_counter() - item.submitted_at, error=error),
                )
            return False
        self.last_answer = time.monotonic()
        now = time.perf_counter()
        for run_id, item in list(self.waiting.items()):
            state = states.get(item.job_id)
            if state is not None:
                item.last_state = state.state
                if state.state in ("RUNNING", "COMPLETING"):
                    _announce(item, self.display)
                if state.active:
                    continue
            outcome = settle(item, state, now)
            if outcome is not None:
                self._done(run_id, item, outcome)
        return True

    def _watch_records(self) -> None:
        """Settle the runs whose local record says they finished; announce the ones started."""
        for run_id, item in list(self.waiting.items()):
            path = self.paths.get(run_id)
            if path is None:
                continue
            try:
                stamp = os.stat(path).st_mtime_ns
            except OSError:
                continue
            if self.stamps.get(run_id) == stamp:
                continue
            self.stamps[run_id] = stamp
            try:
                status = item.run.reload().status
            except Exception:  # a record being replaced: look again at the next tick
                self.stamps.pop(run_id, None)
                continue
            if not item.executed:
                continue  # still the record from before this job
            if status.value == "running":
                _announce(item, self.display)
            elif status.is_terminal:
                outcome = settle(item, None, time.perf_counter())
                if outcome is not None:
                    self._done(run_id, item, outcome)


def _record_path(run: Run) -> str | None:
    """The local path of the run's ``run.json``, or None in a remote workspace."""
    path = run.storage.local_path(f"{run.key}/run.json")
    return str(path) if path is not None else None


def _announce(item: Tracked, display: Display) -> None:
    if not item.announced:
        item.announced = True
        display.started(item.planned.qualified, f"{describe_run(item.planned)}, job {item.job_id}")
