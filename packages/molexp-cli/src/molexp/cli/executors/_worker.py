"""What ``molexp execute`` does differently when a scheduler or a Dask worker started it.

* :func:`worker_labels`: the labels stamped on the attempt's execution record that say where it
  ran: the Slurm job (``slurm.job_id``, ``slurm.array_job_id``, ``slurm.array_task_id``,
  ``slurm.node``...) read from the job's environment, and whatever the submitting executor passed
  in ``MOLEXP_ATTEMPT_LABELS`` (a JSON object of strings; the Dask executor names the worker).
  Outside a scheduler there are none, so a local run's record is unchanged.
* :func:`install_termination_handler`: SIGTERM (what ``scancel``, a time limit or a pre-emption
  sends) asks the executing run to stop, exactly like a cancel request, so that the run is
  recorded as cancelled rather than left ``running`` by a killed process. A second SIGTERM (or
  one after a cancel request, or before the run started) interrupts at once.
"""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Mapping
from types import FrameType

ENV_ATTEMPT_LABELS = "MOLEXP_ATTEMPT_LABELS"
LABEL_EXECUTOR = "molexp.executor"

_SLURM_LABELS = {
    "SLURM_JOB_ID": "slurm.job_id",
    "SLURM_ARRAY_JOB_ID": "slurm.array_job_id",
    "SLURM_ARRAY_TASK_ID": "slurm.array_task_id",
    "SLURM_CLUSTER_NAME": "slurm.cluster",
    "SLURMD_NODENAME": "slurm.node",
    "SLURM_JOB_PARTITION": "slurm.partition",
}


def worker_labels(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The labels that say which scheduler job or worker executes this attempt (may be empty)."""
    env = os.environ if environ is None else environ
    labels: dict[str, str] = {}
    if env.get("SLURM_JOB_ID"):
        labels[LABEL_EXECUTOR] = "slurm"
        for variable, label in _SLURM_LABELS.items():
            value = env.get(variable)
            if value:
                labels[label] = value
    raw = env.get(ENV_ATTEMPT_LABELS)
    if raw:
        try:
            extra = json.loads(raw)
        except ValueError:
            extra = None
        if isinstance(extra, dict):
            labels.update({str(k): str(v) for k, v in extra.items()})
    return labels


TERMINATED_REASON = "terminated (SIGTERM): the scheduler cancelled, timed out or pre-empted the job"


def install_termination_handler() -> None:
    """Make SIGTERM cancel the executing run (see the module docstring). Main thread only.

    The first SIGTERM asks the run to stop at its next cancellation check (a synchronous task
    body cannot be interrupted, so the run stops when it returns). A SIGTERM that arrives when
    a cancellation was already asked for (by ``molexp runs cancel``, or an earlier SIGTERM), or
    before the run started, interrupts at once; the run is still recorded as cancelled.
    """

    def on_term(signum: int, frame: FrameType | None) -> None:
        from molexp.workspace import active_context

        context = active_context()
        if context is not None and context.active and not context.cancel_requested:
            context.request_cancel(TERMINATED_REASON)
            return
        raise KeyboardInterrupt(TERMINATED_REASON)

    signal.signal(signal.SIGTERM, on_term)
