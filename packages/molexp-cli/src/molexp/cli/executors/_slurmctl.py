"""Talking to Slurm: ``sbatch``, ``squeue`` and ``scancel``, each bounded in time and retried.

Every call has a timeout (``command_timeout``); a call that times out or fails with an error that
Slurm documents as transient (the controller is busy, restarting or unreachable) is retried up to
``retries`` more times, waiting 1 s, 2 s, 4 s... in between. Any other failure (a bad partition, a
malformed option) is reported at once, with what Slurm said. Nothing waits without a bound.

``sbatch`` is not idempotent: after a timeout the job may have been queued even though no answer
came back. Every submission therefore carries a unique job name, and before submitting again
:meth:`Slurm.submit` asks ``squeue`` whether a job of that name exists; if so, that job is the
answer.

Without an accounting database (``sacct``) a finished job is only visible to ``squeue -t all`` for
``MinJobAge`` seconds; after that it has *vanished*. Callers settle a vanished job by reading the
run's own record, never by waiting for Slurm.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass

from molexp.cli._errors import CliError

ACTIVE_STATES = frozenset(
    {
        "PENDING",
        "CONFIGURING",
        "RUNNING",
        "COMPLETING",
        "SUSPENDED",
        "REQUEUED",
        "REQUEUE_FED",
        "REQUEUE_HOLD",
        "RESIZING",
        "SIGNALING",
        "STAGE_OUT",
        "STOPPED",
        "RESV_DEL_HOLD",
        "SPECIAL_EXIT",
    }
)
"""Job states in which the job may still execute (or is still finishing) its run."""

_TRANSIENT = re.compile(
    r"socket timed out|timed out|unable to contact slurm controller|connection refused|"
    r"resource temporarily unavailable|temporarily unable|try again|zero bytes were transmitted|"
    r"transport endpoint|slurm_receive_msg|communication connection failure|"
    r"controller is busy|too many pending|sending message",
    re.IGNORECASE,
)
_INVALID_JOB = re.compile(r"invalid job id", re.IGNORECASE)
_JOB_ID = re.compile(r"^(\d+)(?:_(\d+))?$")


class SlurmError(CliError):
    """A Slurm command failed (or kept failing): the message says which and what Slurm said."""


class SlurmUnavailable(SlurmError):
    """The Slurm commands are not installed here."""


@dataclass(frozen=True)
class JobState:
    """One job (or array task) as ``squeue`` shows it."""

    job_id: str
    """``4127`` or ``4127_3``."""
    state: str
    """``PENDING``, ``RUNNING``, ``COMPLETED``, ``FAILED``, ``CANCELLED``, ``TIMEOUT``..."""
    reason: str = ""
    node: str = ""

    @property
    def active(self) -> bool:
        """Whether the job may still be executing its run (or is about to)."""
        return self.state in ACTIVE_STATES


@dataclass(frozen=True)
class CommandResult:
    """What a finished command printed."""

    stdout: str
    stderr: str
    returncode: int


Runner = Callable[[Sequence[str], float], CommandResult]


def run_command(argv: Sequence[str], timeout: float) -> CommandResult:
    """Run ``argv`` with ``timeout``; raises :class:`subprocess.TimeoutExpired` when it expires."""
    proc = subprocess.run(
        list(argv),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return CommandResult(proc.stdout, proc.stderr, proc.returncode)


def base_job_id(job_id: str) -> str:
    """``4127`` for ``4127_3`` (what ``squeue -j`` takes to list every task of an array)."""
    return job_id.split("_", 1)[0]


def check_job_id(job_id: str) -> str:
    """``job_id`` if it looks like a Slurm job id (``4127`` or ``4127_3``)."""
    if not _JOB_ID.match(job_id):
        raise SlurmError(f"{job_id!r} is not a Slurm job id")
    return job_id


class Slurm:
    """The Slurm client commands, with timeouts and bounded retries."""

    def __init__(
        self,
        *,
        timeout: float = 30.0,
        retries: int = 3,
        backoff: float = 1.0,
        runner: Runner = run_command,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self._runner = runner
        self._sleep = sleep

    @staticmethod
    def available() -> bool:
        """Whether ``sbatch`` and ``squeue`` are on PATH."""
        return shutil.which("sbatch") is not None and shutil.which("squeue") is not None

    def _call(
        self,
        argv: Sequence[str],
        *,
        before_retry: Callable[[], str | None] | None = None,
        accept: Callable[[CommandResult], bool] | None = None,
    ) -> tuple[CommandResult, str | None]:
        """Run a Slurm command, retrying timeouts and transient errors.

        ``before_retry`` is asked before each retry; a non-None answer ends the call with it
        (``sbatch`` uses it to find a job that was queued although the call timed out).
        ``accept`` says that a non-zero exit is an answer, not a failure.
        """
        command = argv[0]
        if shutil.which(command) is None:
            raise SlurmUnavailable(
                f"`{command}` is not installed here: --executor slurm needs the Slurm client "
                "commands (sbatch, squeue, scancel) on PATH"
            )
        problem = ""
        for attempt in range(self.retries + 1):
            if attempt:
                self._sleep(self.backoff * 2 ** (attempt - 1))
                if before_retry is not None:
                    found = before_retry()
                    if found is not None:
                        return CommandResult("", "", 0), found
            try:
                result = self._runner(argv, self.timeout)
            except subprocess.TimeoutExpired:
                problem = f"no answer within {self.timeout:g} s"
                continue
            except OSError as exc:
                raise SlurmError(f"`{command}` could not be run: {exc}") from None
            if result.returncode == 0 or (accept is not None and accept(result)):
                return result, None
            said = (result.stderr.strip() or result.stdout.strip()).splitlines()
            problem = said[-1] if said else f"exit code {result.returncode}"
            if not _TRANSIENT.search(result.stderr + result.stdout):
                raise SlurmError(f"`{' '.join(argv)}` failed: {problem}")
        tries = self.retries + 1
        raise SlurmError(
            f"`{' '.join(argv)}` failed {tries} time{'s' if tries > 1 else ''}: {problem}"
        )

    # -- the commands -----------------------------------------------------------------------

    def submit(self, script: str, *, job_name: str, options: Sequence[str] = ()) -> str:
        """``sbatch`` a script (its ``#SBATCH`` lines set ``--job-name=job_name``); the job id."""
        argv = ["sbatch", "--parsable", *options, script]
        result, found = self._call(argv, before_retry=lambda: self.find_by_name(job_name))
        if found is not None:
            return found
        text = result.stdout.strip().splitlines()
        job_id = text[-1].split(";", 1)[0].strip() if text else ""
        if not _JOB_ID.match(job_id):
            raise SlurmError(f"sbatch answered {result.stdout.strip()!r}, not a job id")
        return job_id

    def find_by_name(self, job_name: str) -> str | None:
        """The id of a queued job named ``job_name`` (the newest), or None."""
        try:
            result, _ = self._call(["squeue", "-h", "-t", "all", "-n", job_name, "-o", "%F"])
        except SlurmError:
            return None
        ids = sorted(
            {line.strip() for line in result.stdout.splitlines() if line.strip().isdigit()},
            key=int,
        )
        return ids[-1] if ids else None

    def states(self, job_ids: Collection[str]) -> dict[str, JobState]:
        """The state of each job (and of every task of the arrays) that ``squeue`` still knows.

        Keys are ``squeue``'s ids (``4127``, ``4127_3``). A job missing from the answer has
        left the queue (finished more than ``MinJobAge`` ago, or never existed).
        """
        if not job_ids:
            return {}
        wanted = sorted({base_job_id(check_job_id(j)) for j in job_ids}, key=int)
        found: dict[str, JobState] = {}
        # Long id lists are split so that no command line gets too long.
        for start in range(0, len(wanted), 500):
            chunk = ",".join(wanted[start : start + 500])
            argv = ["squeue", "-h", "-r", "-t", "all", "-j", chunk, "-o", "%i|%T|%r|%N"]
            result, _ = self._call(
                argv, accept=lambda r: bool(_INVALID_JOB.search(r.stderr + r.stdout))
            )
            if result.returncode != 0:  # every id of the chunk is unknown
                continue
            for line in result.stdout.splitlines():
                parts = line.strip().split("|")
                if len(parts) < 2 or not parts[0]:
                    continue
                job_id, state = parts[0], parts[1].split()[0].rstrip("+")
                found[job_id] = JobState(
                    job_id,
                    state,
                    reason=parts[2] if len(parts) > 2 else "",
                    node=parts[3] if len(parts) > 3 else "",
                )
        return found

    def state(self, job_id: str) -> JobState | None:
        """The state of one job (or array task), or None when it left the queue."""
        return self.states([job_id]).get(job_id)

    def cancel(self, job_ids: Collection[str], *, signal: str | None = None) -> None:
        """``scancel`` the jobs (array tasks by ``4127_3``); a job already gone is no error."""
        if not job_ids:
            return
        argv = ["scancel"]
        if signal is not None:
            argv += ["--signal", signal]
        argv += sorted(job_ids)
        self._call(argv, accept=lambda r: bool(_INVALID_JOB.search(r.stderr + r.stdout)))
