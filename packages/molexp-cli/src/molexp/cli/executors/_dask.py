"""``--executor dask``: one Dask task per run, each running ``molexp execute RUN`` on a worker.

The runs go to the scheduler at ``--address`` (``tcp://host:8786``: one started by
``dask scheduler``, by dask-jobqueue's ``SLURMCluster``, ...), or to a ``LocalCluster`` started for
the command when no address is given (``--jobs N`` workers, one run at a time each; threads of this
process unless ``dask.processes`` asks for worker processes on 127.0.0.1: either way each run
executes in its own ``molexp execute`` process).

The runs are created here first (so that every worker finds them), then submitted at once, each
with the Dask resources it needs (``cpus``/``gpus``/``mem`` and ``dask.resources``: only workers
started with matching ``--resources`` take it). As runs start and finish, progress is shown
exactly as for local runs; how a run ended is read from its own record. Dask is imported only
when this executor is used (``pip install "molexp-cli[dask]"``).

Nothing waits without a bound: no worker within ``dask.worker_timeout`` seconds (at the start, or
later with runs still waiting), or a scheduler that goes away, ends the command with the
unfinished runs reported as not executed.
"""

from __future__ import annotations

import logging
import os
import queue
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from molexp.cli._errors import CliError
from molexp.cli.executors._base import (
    Batch,
    ExecutionReport,
    Executor,
    Stopwatch,
    describe_run,
    outcome_from_record,
)
from molexp.cli.executors._dask_task import STARTED_TOPIC, execute_run

if TYPE_CHECKING:
    from molexp.cli._plan import PlannedRun
    from molexp.workspace import Run

# Dask's classes are only partly annotated; they are handled as Any here.
Client = Any
Future = Any

INSTALL_HINT = 'pip install "molexp-cli[dask]"'
WORKER_CHECK_INTERVAL = 5.0
INTERRUPT_GRACE = 10.0


@dataclass
class _Item:
    planned: PlannedRun
    run: Run
    future: Future | None = None
    started: bool = False
    done: bool = False


def _import_distributed() -> Any:
    try:
        import distributed
    except ImportError:
        raise CliError(
            f"--executor dask needs Dask's distributed scheduler, which is not installed: "
            f"{INSTALL_HINT}"
        ) from None
    return distributed


class DaskExecutor(Executor):
    """Runs on a Dask cluster: an existing scheduler, or a ``LocalCluster`` for the command."""

    name = "dask"

    def _workers(self) -> int:
        return self.settings.jobs or self.settings.dask.workers or os.cpu_count() or 1

    def describe(self) -> str:
        """``dask (tcp://host:8786)`` or ``dask (LocalCluster, N workers)``."""
        address = self.settings.dask.address
        if address:
            return f"dask ({address})"
        kind = "worker processes" if self.settings.dask.processes else "workers"
        return f"dask (LocalCluster, {self._workers()} {kind})"

    @contextmanager
    def _client(self) -> Iterator[Client]:
        distributed = _import_distributed()
        settings = self.settings.dask
        resources = self.settings.dask_resources()
        cluster = None
        if settings.address:
            try:
                client = distributed.Client(settings.address, timeout=f"{settings.worker_timeout}s")
            except (OSError, TimeoutError) as exc:
                raise CliError(
                    f"cannot reach the Dask scheduler at {settings.address}: {exc}"
                ) from None
        else:
            # Threads by default: each run executes in its own `molexp execute` process anyway,
            # so worker processes would only add their start-up and idle load.
            where: dict[str, Any] = {"host": "127.0.0.1"} if settings.processes else {}
            cluster = distributed.LocalCluster(
                n_workers=self._workers(),
                threads_per_worker=1,
                processes=settings.processes,
                dashboard_address=None,
                **where,
                silence_logs=logging.ERROR,
                resources=resources or None,
            )
            client = distributed.Client(cluster)
        try:
            yield client
        finally:
            try:
                client.close()
            finally:
                if cluster is not None:
                    cluster.close()

    def _check_workers(self, client: Client) -> None:
        """Wait for a first worker; refuse resources that no connected worker offers."""
        timeout = self.settings.dask.worker_timeout
        try:
            client.wait_for_workers(1, timeout=timeout)
        except TimeoutError:
            raise CliError(
                f"no Dask worker connected to {client.scheduler.address} within {timeout:g} s "
                "(start workers, or raise executor.dask.worker_timeout in molcfg.yaml)"
            ) from None
        wanted = self.settings.dask_resources()
        if not wanted:
            return
        workers = client.scheduler_info().get("workers", {})
        offered = [w.get("resources", {}) for w in workers.values()]
        if not any(all(r.get(k, 0) >= v for k, v in wanted.items()) for r in offered):
            need = ", ".join(f"{k}={v:g}" for k, v in wanted.items())
            have = "; ".join(
                ", ".join(f"{k}={v:g}" for k, v in r.items()) or "none" for r in offered
            )
            raise CliError(
                f"no Dask worker offers the resources each run needs ({need}); the workers offer: "
                f'{have}. Start workers with `dask worker ... --resources "{need}"`'
            )

    def execute(self, batch: Batch) -> ExecutionReport:
        """Execute ``batch.runs`` on the cluster, reporting progress as runs start and finish."""
        report = ExecutionReport()
        items = {p.run_id: _Item(p, batch.ensure_run(p)) for p in batch.runs}
        if not items:
            return report
        with self._client() as client:
            self._check_workers(client)
            _Session(self, client, batch, items, report).run()
        return report


class _Session:
    """One batch on one client: submissions, events, outcomes."""

    def __init__(
        self,
        executor: DaskExecutor,
        client: Client,
        batch: Batch,
        items: dict[str, _Item],
        report: ExecutionReport,
    ) -> None:
        self.executor = executor
        self.client = client
        self.batch = batch
        self.items = items
        self.report = report
        self.events: queue.Queue[tuple[str, str, Any]] = queue.Queue()
        self.clock = Stopwatch()
        self.token = secrets.token_hex(4)
        limit = executor.settings.jobs if executor.settings.dask.address else None
        self.limit = limit or len(items)
        self.queued = list(items.values())
        self.abandoned = False

    def _submit_more(self) -> None:
        in_flight = sum(1 for i in self.items.values() if i.future is not None and not i.done)
        resources = self.executor.settings.dask_resources() or None
        while self.queued and in_flight < self.limit:
            item = self.queued.pop(0)
            planned = item.planned
            future = self.client.submit(
                execute_run,
                planned.run_id,
                str(item.run.run_dir),
                planned.fresh,
                {},
                key=f"molexp-run-{planned.run_id}-{self.token}",
                pure=False,
                resources=resources,
                retries=0,
            )
            item.future = future
            self.clock.start(planned.run_id)
            run_id = planned.run_id
            future.add_done_callback(lambda _f, r=run_id: self.events.put(("finished", r, None)))
            in_flight += 1

    def _on_started(self, event: Any) -> None:
        message = event[1] if isinstance(event, tuple) and len(event) > 1 else event
        if isinstance(message, dict) and "run_id" in message:
            self.events.put(("started", str(message["run_id"]), message.get("worker")))

    def run(self) -> None:
        """Submit, then report events until every run has finished."""
        import contextlib

        with contextlib.suppress(Exception):  # older Dask: no events, coarser progress
            self.client.subscribe_topic(STARTED_TOPIC, self._on_started)
        self._submit_more()
        remaining = len(self.items)
        last_check = time.monotonic()
        workerless_since: float | None = None
        try:
            while remaining:
                try:
                    kind, run_id, detail = self.events.get(timeout=0.5)
                except queue.Empty:
                    if time.monotonic() - last_check >= WORKER_CHECK_INTERVAL:
                        last_check = time.monotonic()
                        workerless_since = self._watch_workers(workerless_since)
                        if self.abandoned:
                            return
                    continue
                item = self.items.get(run_id)
                if item is None or item.done:
                    continue
                if kind == "started":
                    self._announce(item, detail)
                    continue
                self._finish(item)
                remaining -= 1
                self._submit_more()
        except KeyboardInterrupt:
            self._interrupt()
            raise

    def _announce(self, item: _Item, worker: Any) -> None:
        if item.started:
            return
        item.started = True
        where = f", on {worker}" if worker else ""
        self.batch.display.started(item.planned.qualified, f"{describe_run(item.planned)}{where}")

    def _finish(self, item: _Item) -> None:
        from molexp.cli._execution import tail

        item.done = True
        future = item.future
        seconds = self.clock.seconds(item.planned.run_id)
        output, fallback = "", None
        if future is not None and future.status == "finished":
            result = future.result()
            output = str(result.get("output", ""))
            seconds = float(result.get("seconds", seconds))
            code = int(result.get("returncode", 1))
            said = [line for line in output.splitlines() if line.strip()]
            fallback = said[-1] if said else f"exit code {code}"
            if code < 0:
                fallback = f"{fallback} (its process was killed by signal {-code})"
        elif future is not None:
            fallback = self._failure(future)
        outcome = outcome_from_record(item.run, seconds, output=tail(output), fallback_error=None)
        if not outcome.ok and fallback and fallback not in (outcome.error or ""):
            outcome.error = f"{outcome.error}; {fallback}" if outcome.error else fallback
        self._announce(item, None)
        self.report.outcomes[item.planned.run_id] = outcome
        self.batch.display.finished(item.planned.qualified, outcome)

    @staticmethod
    def _failure(future: Future) -> str:
        if future.status == "cancelled":
            return "Dask cancelled the task (the scheduler or client went away)"
        try:
            exc = future.exception(timeout=5)
        except Exception as error:
            return f"{type(error).__name__}: {error}"
        if exc is None:
            return f"the Dask task ended {future.status}"
        name = type(exc).__name__
        if name == "KilledWorker":
            return "KilledWorker: the Dask worker executing it died"
        return f"{name}: {exc}"

    def _watch_workers(self, since: float | None) -> float | None:
        """Track how long the cluster has had no worker; give up past ``worker_timeout``."""
        try:
            workers = len(self.client.nthreads())
        except Exception:
            workers = 0
        if workers:
            return None
        now = time.monotonic()
        since = since if since is not None else now
        timeout = self.executor.settings.dask.worker_timeout
        if now - since >= timeout:
            self._abandon(f"no Dask worker for {timeout:g} s")
        return since

    def _abandon(self, why: str) -> None:
        self.abandoned = True
        for item in self.items.values():
            if item.done:
                continue
            item.done = True
            if item.future is not None:
                item.future.cancel()
            outcome = outcome_from_record(
                item.run, self.clock.seconds(item.planned.run_id), fallback_error=why
            )
            if outcome.ok is False and outcome.error is None:
                outcome.error = why
            self.report.outcomes[item.planned.run_id] = outcome
            self._announce(item, None)
            self.batch.display.finished(item.planned.qualified, outcome)

    def _interrupt(self) -> None:
        """Ctrl-C: ask the runs executing now to stop (they record a cancellation), then drop
        the rest."""
        started = [i for i in self.items.values() if i.started and not i.done]
        for item in started:
            try:
                item.run.cancel("interrupted (Ctrl-C in molexp run)")
            except Exception:
                continue
        deadline = time.monotonic() + INTERRUPT_GRACE
        for item in started:
            future = item.future
            if future is None:
                continue
            try:
                future.result(timeout=max(0.1, deadline - time.monotonic()))
            except Exception:
                continue
        for item in self.items.values():
            if item.future is not None and not item.done:
                item.future.cancel()
