"""TaskContext: what a task receives — its inputs, the config and params, and the run's helpers."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from molexp.workflow._actors import Channel, Receiver, lookup
from molexp.workflow._errors import RunRequiredError

if TYPE_CHECKING:
    from molexp.workspace import (
        ArtifactStore,
        Asset,
        AssetKind,
        CheckpointAsset,
        LogHandle,
        RunContext,
    )


class TaskContext:
    """The one argument of every task.

    ``inputs`` is the output of the task's dependency when it has one, a dict by task name when
    it has several, and None for a root task. The workspace helpers (``set_result``,
    ``artifact``, ``log``, ``checkpoint``, ``find_asset``, ``get_data_dir``) are those of the
    run's :class:`~molexp.RunContext`; without a run they raise :class:`RunRequiredError`.
    """

    __slots__ = ("_channels", "attempt", "config", "inputs", "name", "params", "run_context")

    def __init__(
        self,
        name: str,
        inputs: Any,
        *,
        config: Mapping[str, Any],
        params: Mapping[str, Any],
        run_context: RunContext | None,
        channels: Mapping[str, Channel],
        attempt: int = 1,
    ) -> None:
        self.name = name
        """The task's name."""
        self.inputs = inputs
        """The upstream output(s): one value, a dict by task name, or None for a root task."""
        self.config = config
        """The active profile config, read-only (empty when there is none)."""
        self.params = params
        """The run's parameters, read-only (those given to a standalone ``execute``)."""
        self.run_context = run_context
        """The run's :class:`~molexp.RunContext`, or None when executing without a run."""
        self.attempt = attempt
        """Which attempt this is (1 unless the task is being retried)."""
        self._channels = channels

    def next_attempt(self) -> TaskContext:
        """A context for the task's next attempt (the runtime's, when it retries)."""
        return TaskContext(
            self.name,
            self.inputs,
            config=self.config,
            params=self.params,
            run_context=self.run_context,
            channels=self._channels,
            attempt=self.attempt + 1,
        )

    def _run(self, helper: str) -> RunContext:
        run_context = self.run_context
        if run_context is None:
            raise RunRequiredError(
                f"ctx.{helper} needs a run, but task {self.name!r} is executing without one: "
                "execute the workflow with `await spec.execute(run=run)`"
            )
        return run_context

    def set_result(self, key: str, value: Any) -> None:
        """Record a lightweight JSON value on the run (``run.json``)."""
        self._run("set_result").set_result(key, value)

    @property
    def artifact(self) -> ArtifactStore:
        """The run's artifacts: ``ctx.artifact.save("metrics.json", {...})``."""
        return self._run("artifact").artifact

    def log(self, name: str) -> LogHandle:
        """The run's log ``name``: ``ctx.log("train").append("loss=0.1")``."""
        return self._run("log").log(name)

    def checkpoint(
        self,
        name: str,
        data: Any = None,
        *,
        tags: Sequence[str] | None = None,
        meta: dict[str, Any] | None = None,
    ) -> CheckpointAsset:
        """Save the next checkpoint of ``name``, chained to the previous one."""
        return self._run("checkpoint").checkpoint(name, data, tags=tags, meta=meta)

    def find_asset(self, name: str, kind: AssetKind | str | None = None) -> Asset | None:
        """The asset ``name``, searched run → experiment → project → workspace."""
        return self._run("find_asset").find_asset(name, kind)

    def get_data_dir(self, asset_name: str, fallback: str | os.PathLike[str] | None = None) -> Path:
        """A local directory for ``asset_name`` (or for ``fallback``, created on demand)."""
        return self._run("get_data_dir").get_data_dir(asset_name, fallback)

    def emit(self, channel: str, message: Any) -> None:
        """Send ``message`` on a channel this task declares with ``emits=``."""
        lookup(self._channels, channel).emit(message)

    def receive(self, channel: str) -> Receiver:
        """``async for message in ctx.receive(channel)`` in an actor that consumes ``channel``."""
        return lookup(self._channels, channel).receive()

    def __repr__(self) -> str:
        return f"TaskContext({self.name!r}, attempt={self.attempt})"
