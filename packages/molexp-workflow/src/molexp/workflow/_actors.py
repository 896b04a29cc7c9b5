"""Actor channels: what emitting tasks send, every consuming actor receives, in order.

A channel exists for one execution. Each consuming actor has its own queue (a broadcast), and the
channel closes when every task that declares ``emits=`` for it has finished, which ends the
consumers' ``async for`` loops: that is how an actor shuts down cleanly. Emitting works from the
event loop and from synchronous task bodies running in the worker pool.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncGenerator, Mapping
from contextlib import aclosing
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from molexp.workflow._errors import ChannelError
from molexp.workspace import NotFoundError

if TYPE_CHECKING:
    from molexp.workflow._context import TaskContext
    from molexp.workflow._task import TaskSpec

current_task: ContextVar[str | None] = ContextVar("molexp_workflow_task", default=None)
"""The task executing in this asyncio task or worker thread (set in workflows with channels)."""

_CLOSED = object()


class Receiver:
    """``async for message in ctx.receive(channel)``: the messages of one channel for one actor,
    ending when the channel closes."""

    __slots__ = ("_queue", "channel")

    def __init__(self, channel: str, queue: asyncio.Queue[Any]) -> None:
        self.channel = channel
        self._queue = queue

    def __aiter__(self) -> Receiver:
        return self

    async def __anext__(self) -> Any:
        message = await self._queue.get()
        if message is _CLOSED:
            self._queue.put_nowait(_CLOSED)  # a later loop over the same channel ends at once too
            raise StopAsyncIteration
        return message


class Channel:
    """One declared channel during one execution (what ``RunContext.emit``/``receive`` reach)."""

    def __init__(
        self,
        name: str,
        emitters: frozenset[str],
        consumers: tuple[str, ...],
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self.name = name
        self._emitters = emitters
        self._open_emitters = len(emitters)
        self._queues: dict[str, asyncio.Queue[Any]] = {c: asyncio.Queue() for c in consumers}
        self._loop = loop
        self._loop_thread = threading.get_ident()
        self.closed = False

    def emit(self, message: Any) -> None:
        """Send ``message`` to every consumer; only from a task that declares ``emits=`` for it."""
        task = current_task.get()
        if task not in self._emitters:
            where = f"task {task!r}" if task is not None else "code outside the workflow's tasks"
            raise ChannelError(
                f"{where} emits on channel {self.name!r} without declaring it: add "
                f"emits=[{self.name!r}] to the task's declaration"
            )
        if threading.get_ident() == self._loop_thread:
            if self.closed:
                raise ChannelError(f"channel {self.name!r} is closed: its emitters have finished")
            self._put(message)
        else:
            self._loop.call_soon_threadsafe(self._put, message)

    def _put(self, message: Any) -> None:
        if self.closed:  # a late message from a worker thread whose task was given up
            return
        for queue in self._queues.values():
            queue.put_nowait(message)

    def receive(self) -> Receiver:
        """The calling actor's stream of this channel's messages."""
        task = current_task.get()
        queue = self._queues.get(task) if task is not None else None
        if queue is None:
            where = f"task {task!r}" if task is not None else "code outside the workflow's tasks"
            raise ChannelError(
                f"{where} receives from channel {self.name!r} without consuming it: declare it "
                f"with @wf.actor(consumes=[{self.name!r}])"
            )
        return Receiver(self.name, queue)

    def emitter_finished(self) -> None:
        """Count one emitter as done; the last one closes the channel."""
        self._open_emitters -= 1
        if self._open_emitters == 0:
            self.close()

    def close(self) -> None:
        """End every consumer's stream after the messages already sent."""
        if not self.closed:
            self.closed = True
            for queue in self._queues.values():
                queue.put_nowait(_CLOSED)


def lookup(channels: Mapping[str, Channel], name: str) -> Channel:
    """The channel ``name``; a :class:`NotFoundError` listing the declared ones otherwise."""
    try:
        return channels[name]
    except KeyError:
        declared = ", ".join(sorted(channels)) or "none"
        raise NotFoundError(
            f"channel {name!r} is not declared by this workflow (declared: {declared}); declare "
            "it with emits=/consumes= on the tasks that use it"
        ) from None


async def drive_stream(spec: TaskSpec, ctx: TaskContext, channels: Mapping[str, Channel]) -> None:
    """Run an async-generator actor, emitting each value it yields on its ``emits`` channels."""
    targets = [channels[name] for name in spec.emits]
    stream: AsyncGenerator[Any, None] = spec.body(ctx)
    async with aclosing(stream):
        async for item in stream:
            for channel in targets:
                channel.emit(item)
