"""The task ``--executor dask`` runs on a Dask worker: ``molexp execute RUN`` in a subprocess.

This module is imported by the worker (by reference, from the pickled function), so it imports
neither Dask nor the workspace layer. The subprocess is started with ``PR_SET_PDEATHSIG`` on
Linux: if the worker process dies (killed, out of memory), the run's process dies with it instead
of living on as an orphan, so the run is left ``running`` with a dead owner, which ``molexp``
recognises and reports as failed (and ``molexp run --resume`` continues).
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

from molexp.cli.executors._base import execute_argv
from molexp.cli.executors._worker import ENV_ATTEMPT_LABELS

OUTPUT_LIMIT = 64 * 1024
"""Bytes of the end of the run's output sent back to the client."""
STARTED_TOPIC = "molexp-run-started"
"""The Dask event topic on which a task says that its run started."""
_PR_SET_PDEATHSIG = 1


def _death_signal() -> Callable[[], None] | None:
    """A ``preexec_fn`` that makes the child die with its parent (Linux), or None elsewhere.

    libc's ``prctl`` is looked up here, in the parent: between fork and exec the child only calls
    it (no ``dlopen`` in a child forked from a process with threads).
    """
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None

    def die_with_parent() -> None:  # pragma: no cover - runs in the child, before exec
        prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)

    return die_with_parent


def _worker_address() -> str | None:
    try:
        from distributed import get_worker

        return str(get_worker().address)
    except Exception:  # not inside a Dask worker (tests call this function directly)
        return None


def _announce(run_id: str, address: str | None) -> None:
    try:
        from distributed import get_worker

        get_worker().log_event(STARTED_TOPIC, {"run_id": run_id, "worker": address})
    except Exception:  # no worker (called directly), or an older Dask: progress is coarser
        return


def execute_run(run_id: str, run_dir: str, fresh: bool, labels: dict[str, str]) -> dict[str, Any]:
    """Execute one run with ``molexp execute``; how its process ended, for the client.

    Returns ``{"returncode", "output", "seconds", "worker", "pid"}``; the run's outcome itself is
    in its record, which the client reads.
    """
    address = _worker_address()
    attempt_labels = {"molexp.executor": "dask", **labels}
    if address is not None:
        attempt_labels["dask.worker"] = address
    env = {**os.environ, ENV_ATTEMPT_LABELS: json.dumps(attempt_labels)}
    command = execute_argv(sys.executable, run_dir, fresh=fresh)
    _announce(run_id, address)
    start = time.perf_counter()
    with tempfile.TemporaryFile() as out:
        proc = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            preexec_fn=_death_signal(),
        )
        try:
            returncode = proc.wait()
        except BaseException:  # the task is being torn down: stop the run's process with it
            proc.send_signal(signal.SIGTERM)  # molexp execute records the run as cancelled
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
            raise
        size = out.seek(0, os.SEEK_END)
        out.seek(max(0, size - OUTPUT_LIMIT))
        output = out.read().decode("utf-8", "replace")
    return {
        "returncode": returncode,
        "output": output,
        "seconds": time.perf_counter() - start,
        "worker": address,
        "pid": proc.pid,
    }
