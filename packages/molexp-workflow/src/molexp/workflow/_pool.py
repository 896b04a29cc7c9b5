"""The worker threads of synchronous task bodies, for one execution.

The pool grows by one thread whenever a call finds no idle thread, up to its size. Threads are
started with ``_thread.start_new_thread``, which does not wait for the new thread to be scheduled:
a hundred blocking bodies all start within a few milliseconds, where ``ThreadPoolExecutor`` starts
its threads one scheduling round-trip at a time (on a busy machine, about a millisecond each). The
trace and profile hooks of ``threading.settrace``/``setprofile`` (coverage, profilers) are
installed in each thread, as ``threading.Thread`` does.
"""

from __future__ import annotations

import _thread
import asyncio
import contextlib
import queue
import sys
import threading
from collections.abc import Callable
from typing import Any

_Job = tuple["asyncio.Future[Any]", Callable[[], Any]]


class WorkerPool:
    """Runs ``call()`` in a worker thread; the asyncio future it returns gets the outcome."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._loop = asyncio.get_running_loop()
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._idle = threading.Semaphore(0)
        self._threads = 0
        self._busy = 0  # calls submitted and not yet returned (counted on the event loop)
        self._abandoned = 0  # of those, calls whose caller gave up (timeout, cancellation)
        self._drained: asyncio.Future[None] | None = None

    def submit(self, call: Callable[[], Any]) -> asyncio.Future[Any]:
        """Queue ``call``; start a thread for it when none is idle and the pool is not full.

        A thread still busy with an abandoned call does not count against the size, so that a
        retry after a timeout does not wait for the attempt it replaces.
        """
        future = self._loop.create_future()
        future.add_done_callback(self._given_up)
        self._busy += 1
        self._jobs.put((future, call))
        if not self._idle.acquire(blocking=False) and (
            self._threads - self._abandoned < self._size
        ):
            self._threads += 1
            _thread.start_new_thread(self._work, ())
        return future

    def _given_up(self, future: asyncio.Future[Any]) -> None:
        if future.cancelled():
            self._abandoned += 1

    def _work(self) -> None:
        trace, profile = threading.gettrace(), threading.getprofile()
        if trace is not None:
            sys.settrace(trace)
        if profile is not None:
            sys.setprofile(profile)
        while (job := self._jobs.get()) is not None:
            future, call = job
            result: Any = None
            error: BaseException | None = None
            if not future.done():  # a call given up before it started is skipped
                try:
                    result = call()
                except BaseException as exc:  # delivered to the awaiting task, whatever it is
                    error = exc
            self._idle.release()  # before the result is seen: the next call finds this thread
            # A closed loop (RuntimeError) means nobody waits for this result any more.
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._returned, future, result, error)

    def _returned(
        self, future: asyncio.Future[Any], result: Any, error: BaseException | None
    ) -> None:
        self._busy -= 1
        if future.cancelled():
            self._abandoned -= 1
        elif error is None:
            future.set_result(result)
        elif isinstance(error, StopIteration):  # an asyncio future refuses to carry one
            future.set_exception(RuntimeError(f"the task body raised {error!r}"))
        else:
            future.set_exception(error)
        if self._busy == 0 and self._drained is not None and not self._drained.done():
            self._drained.set_result(None)

    async def close(self) -> None:
        """Let the threads end, after the calls still running have returned (a timed-out or
        cancelled body cannot be interrupted; its result is dropped)."""
        for _ in range(self._threads):
            self._jobs.put(None)
        if self._busy:
            self._drained = self._loop.create_future()
            await self._drained
