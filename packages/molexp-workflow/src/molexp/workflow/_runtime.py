"""The runtime: an event-driven scheduler for one execution of a compiled workflow.

A task starts the moment its last dependency finishes (each runs as its own asyncio task), so
independent tasks overlap. Synchronous bodies run in a thread pool sized by the workflow. The
first failure (after retries) stops the execution: running tasks are cancelled, nothing new
starts, and the outputs that finished are kept. The hot path is flat and index-based; there is
no recursion, so graphs of any depth run.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

from molexp.workflow._actors import Channel, current_task, drive_stream
from molexp.workflow._context import TaskContext
from molexp.workflow._errors import TaskTimeoutError
from molexp.workflow._pool import WorkerPool
from molexp.workflow._result import TaskResult, TaskState, WorkflowResult
from molexp.workspace import RunStatus

if TYPE_CHECKING:
    from molexp.workflow._state import StateRecorder
    from molexp.workflow._task import TaskSpec
    from molexp.workflow._workflow import Workflow
    from molexp.workspace import RunContext

CANCEL_POLL_INTERVAL = 0.25
"""Seconds between checks for a cancel request, when executing under a run."""

# The hot path reads these module constants: an enum member lookup costs about 170 ns.
_PENDING = TaskState.PENDING
_RUNNING = TaskState.RUNNING
_SUCCEEDED = TaskState.SUCCEEDED
_REUSED = TaskState.REUSED
_FAILED = TaskState.FAILED
_CANCELLED = TaskState.CANCELLED
_DONE = (_SUCCEEDED, _REUSED)


class Runtime:
    """Drives one execution; :meth:`run` returns the :class:`WorkflowResult`."""

    def __init__(
        self,
        workflow: Workflow,
        *,
        config: Mapping[str, Any],
        params: Mapping[str, Any],
        run_context: RunContext | None = None,
        recorder: StateRecorder | None = None,
        max_concurrency: int | None = None,
    ) -> None:
        specs = tuple(workflow.tasks.values())
        n = len(specs)
        self._workflow = workflow
        self._specs = specs
        self._deps = workflow._deps
        self._dependents = workflow._dependents
        self._config = config
        self._params = params
        self._rc = run_context
        self._recorder = recorder
        self._limit = max_concurrency if max_concurrency is not None else workflow.max_concurrency
        self._outputs: list[Any] = [None] * n
        self._states = [_PENDING] * n
        self._attempts = [0] * n
        self._start: list[float | None] = [None] * n
        self._end: list[float | None] = [None] * n
        self._errors: dict[int, BaseException] = {}
        self._waiting = [len(deps) for deps in self._deps]
        self._unfinished = n
        self._running: dict[int, asyncio.Task[None]] = {}
        self._ready: deque[int] = deque()
        self._draining = False
        self._active = 0  # running tasks that count against the concurrency limit
        self._queued: deque[int] = deque()  # ready tasks waiting for a free slot
        self._stopping: RunStatus | None = None
        self._failed: int | None = None
        self._channels: dict[str, Channel] = {}
        self._pool: WorkerPool | None = None
        self._done: asyncio.Future[None] | None = None
        self._poll: asyncio.TimerHandle | None = None
        # An async body with no retries, timeout or stream is awaited directly: the fast path.
        self._direct = [
            spec.is_async and not spec.retries and spec.timeout is None and not spec.streams
            for spec in specs
        ]

    # -- the execution -------------------------------------------------------------------------

    async def run(self) -> WorkflowResult:
        """Execute every task; return when all finished or, after a failure, all stopped."""
        loop = asyncio.get_running_loop()
        self._done = loop.create_future()
        for name, (emitters, consumers) in self._workflow.channels.items():
            self._channels[name] = Channel(name, emitters, consumers, loop)
        rc = self._rc
        if rc is not None:
            if self._channels:
                rc.attach_channels(self._channels)
            self._poll = loop.call_later(CANCEL_POLL_INTERVAL, self._poll_cancel)
        began = time.time()
        try:
            self._schedule(self._workflow._roots)
            await self._done
            if self._running:  # stopping: let the cancelled tasks run their handlers
                await asyncio.gather(*self._running.values(), return_exceptions=True)
                for index in self._running:  # cancelled before they could start
                    self._states[index] = _PENDING
                self._running.clear()
        except BaseException:
            # Cancelled from outside, or the runtime's own book-keeping failed: stop everything.
            self._stop(RunStatus.CANCELLED)
            await asyncio.gather(*self._running.values(), return_exceptions=True)
            raise
        finally:
            if self._poll is not None:
                self._poll.cancel()
            if self._pool is not None:
                await self._pool.close()
            if self._recorder is not None:
                self._recorder.flush()
        return self._result(began, time.time())

    def _schedule(self, indices: tuple[int, ...] | list[int]) -> None:
        """Start ready tasks. Under a run, a reused task settles at once and may make others
        ready: those go through a queue, so that a long chain of reused tasks is a loop."""
        if self._recorder is None:
            for index in indices:
                if self._stopping is None:
                    self._launch(index)
            return
        ready = self._ready
        ready.extend(indices)
        if self._draining:
            return
        self._draining = True
        try:
            while ready:
                index = ready.popleft()
                if self._stopping is None:
                    self._launch(index)
        finally:
            self._draining = False

    def _launch(self, index: int) -> None:
        recorder = self._recorder
        if recorder is not None:
            reused, output = recorder.reuse(index)
            if reused:
                self._outputs[index] = output
                self._states[index] = _REUSED
                self._settle(index)
                return
        if self._limit is not None and not self._specs[index].is_actor:
            if self._active >= self._limit:
                self._queued.append(index)
                return
            self._active += 1
        self._start_task(index)

    def _start_task(self, index: int) -> None:
        self._states[index] = _RUNNING
        self._running[index] = asyncio.get_running_loop().create_task(self._execute(index))

    def _inputs(self, index: int) -> Any:
        deps = self._deps[index]
        if not deps:
            return None
        outputs = self._outputs
        if len(deps) == 1:
            return outputs[deps[0]]
        specs = self._specs
        return {specs[d].name: outputs[d] for d in deps}

    async def _execute(self, index: int) -> None:
        try:
            spec = self._specs[index]
            if self._channels:
                current_task.set(spec.name)
            rc = self._rc
            ctx = TaskContext(
                spec.name,
                self._inputs(index),
                config=self._config,
                params=self._params,
                run_context=rc,
                channels=self._channels,
            )
            start = self._start[index] = time.time()
            self._attempts[index] = 1
            if self._recorder is not None:
                self._recorder.started(index, start)
            try:
                if rc is not None:
                    with rc.task_scope(spec.name):
                        output = await self._attempt_all(index, spec, ctx)
                elif self._direct[index]:
                    output = await spec.body(ctx)
                else:
                    output = await self._attempt_all(index, spec, ctx)
            except asyncio.CancelledError as exc:
                self._finish_stopped(index, exc, start)
                return
            except Exception as exc:
                self._finish_failed(index, exc, start)
                return
            self._outputs[index] = output
            self._states[index] = _SUCCEEDED
            end = self._end[index] = time.time()
            if self._recorder is not None:
                self._recorder.succeeded(index, output, self._attempts[index], start, end)
            self._settle(index)
        except BaseException as exc:  # KeyboardInterrupt, or the book-keeping failed (a save)
            done = self._done
            if done is not None and not done.done():
                done.set_exception(exc)

    async def _attempt_all(self, index: int, spec: TaskSpec, ctx: TaskContext) -> Any:
        """Call the body until an attempt succeeds or ``retries`` are spent (with backoff)."""
        attempt = 1
        while True:
            try:
                return await self._attempt(spec, ctx)
            except Exception:
                if attempt > spec.retries:
                    raise
            delay = spec.retry_delay * 2 ** (attempt - 1)
            if delay:
                await asyncio.sleep(delay)
            attempt += 1
            self._attempts[index] = attempt
            ctx = ctx.next_attempt()  # a body still running in a thread keeps its own context

    async def _attempt(self, spec: TaskSpec, ctx: TaskContext) -> Any:
        call: Awaitable[Any]
        if spec.streams:
            call = drive_stream(spec, ctx, self._channels)
        elif spec.is_async:
            call = spec.body(ctx)
        else:
            call = self._in_thread(spec.body, ctx)
        if spec.timeout is None:
            return await call
        deadline = asyncio.timeout(spec.timeout)
        try:
            async with deadline:
                return await call
        except TimeoutError:
            if not deadline.expired():
                raise
            raise TaskTimeoutError(
                f"task {spec.name!r} timed out after {spec.timeout:g} s "
                f"(attempt {ctx.attempt} of {spec.retries + 1})"
            ) from None

    def _in_thread(self, body: Callable[[TaskContext], Any], ctx: TaskContext) -> Awaitable[Any]:
        pool = self._pool
        if pool is None:
            size = self._workflow.max_workers
            if self._limit is not None:
                size = min(size, self._limit)
            pool = self._pool = WorkerPool(size)
        # The thread sees this task's context variables (task scope, current task).
        return pool.submit(functools.partial(contextvars.copy_context().run, body, ctx))

    # -- completion ----------------------------------------------------------------------------

    def _settle(self, index: int) -> None:
        """Book-keeping once a task reached a final state: free its slot, close the channels it
        emitted on, start the dependents it was the last to wait for, detect the end."""
        self._running.pop(index, None)
        self._unfinished -= 1
        spec = self._specs[index]
        for name in spec.emits:
            self._channels[name].emitter_finished()
        if self._limit is not None and not spec.is_actor and self._states[index] != _REUSED:
            self._active -= 1
            if self._queued and self._stopping is None:
                self._active += 1
                self._start_task(self._queued.popleft())
        if self._states[index] in _DONE and self._stopping is None:
            waiting = self._waiting
            ready = []
            for dependent in self._dependents[index]:
                waiting[dependent] -= 1
                if waiting[dependent] == 0:
                    ready.append(dependent)
            if ready:
                self._schedule(ready)
        if self._unfinished == 0:
            self._finished()

    def _finish_failed(self, index: int, error: BaseException, start: float) -> None:
        self._states[index] = _FAILED
        self._errors[index] = error
        end = self._end[index] = time.time()
        if self._recorder is not None:
            self._recorder.failed(index, error, self._attempts[index], start, end)
        if self._failed is None and self._stopping is None:
            self._failed = index
        self._running.pop(index, None)
        self._stop(RunStatus.FAILED)
        self._settle(index)

    def _finish_stopped(self, index: int, cancelled: asyncio.CancelledError, start: float) -> None:
        if self._stopping is None:
            # Cancelled by something other than this runtime: that is the task failing.
            self._finish_failed(index, cancelled, start)
            return
        self._states[index] = _CANCELLED
        end = self._end[index] = time.time()
        if self._recorder is not None:
            self._recorder.cancelled(index, self._attempts[index], start, end)
        self._settle(index)

    def _stop(self, status: RunStatus) -> None:
        """Start nothing more and cancel what runs (fail-fast, or a cancel request)."""
        if self._stopping is not None:
            return
        self._stopping = status
        self._ready.clear()
        self._queued.clear()
        for task in self._running.values():
            task.cancel()
        self._finished()

    def _finished(self) -> None:
        """Wake :meth:`run`: every task finished, or the execution is stopping."""
        done = self._done
        if done is not None and not done.done():
            done.set_result(None)

    def _poll_cancel(self) -> None:
        rc = self._rc
        done = self._done
        if rc is None or done is None or done.done():
            return
        if not rc.cancel_requested:
            self._poll = asyncio.get_running_loop().call_later(
                CANCEL_POLL_INTERVAL, self._poll_cancel
            )
            return
        self._stop(RunStatus.CANCELLED)

    # -- the result ----------------------------------------------------------------------------

    def _result(self, began: float, ended: float) -> WorkflowResult:
        specs, states, outputs = self._specs, self._states, self._outputs
        tasks = {
            spec.name: TaskResult(
                spec.name,
                states[i],
                outputs[i],
                self._attempts[i],
                self._start[i],
                self._end[i],
                self._errors.get(i),
            )
            for i, spec in enumerate(specs)
        }
        failed = self._failed
        rc = self._rc
        return WorkflowResult(
            workflow_id=self._workflow.workflow_id,
            status=self._stopping or RunStatus.SUCCEEDED,
            outputs={spec.name: outputs[i] for i, spec in enumerate(specs) if states[i] in _DONE},
            tasks=tasks,
            start=began,
            end=ended,
            error=self._errors[failed] if failed is not None else None,
            failed_task=specs[failed].name if failed is not None else None,
            run_id=rc.run.id if rc is not None else None,
            execution_id=rc.execution_id if rc is not None else None,
        )
