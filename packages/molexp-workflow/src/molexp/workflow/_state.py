"""Persistence of task states under a run, and resume from an earlier attempt.

Each task's state (and, once it succeeded, its output) is kept in the run's execution state
(``execution/state.json``). Saves are batched — on a short timer while tasks finish (spaced so
that saving takes at most a tenth of the time, however large the state grows), at once when a
task fails, and at the end — so a thousand quick tasks cost a handful of writes, not a thousand.

A later attempt reuses a task's saved output when the task's *key* is unchanged: a hash of its
code, the run's config and the digests of its inputs. Only outputs that JSON stores exactly (no
tuples, sets, non-string keys, NaN, subclasses or foreign objects) are saved; any other output is
marked ``stored: false`` with the reason, and its task, and those fed by it, run again. A task
whose code hash is unknown (it reads a value with no stable encoding) is never reused either, and
its entry says why (``not_reusable``).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import math
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from molexp.workflow._code import code_identities
from molexp.workflow._errors import WorkflowError
from molexp.workspace import canonical_json

if TYPE_CHECKING:
    from molexp.workflow._workflow import Workflow
    from molexp.workspace import RunContext

STATE_FORMAT = 1
FLUSH_INTERVAL = 0.2
"""Seconds between saves while tasks keep finishing, at the least."""
FLUSH_SHARE = 0.1
"""At most this share of the time goes to timed saves: a save that took 50 ms waits 0.5 s."""


def _inexact(value: Any) -> str | None:
    """Why ``value`` would not come back from JSON identical (type for type), or None."""
    stack = [value]
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind is str or kind is int or kind is bool or item is None:
            continue
        if kind is float:
            if not math.isfinite(item):
                return f"it holds the float {item!r}, which JSON cannot store"
        elif kind is list:
            stack.extend(item)
        elif kind is dict:
            for key, member in item.items():
                if type(key) is not str:
                    return f"it holds a dict key of type {type(key).__name__}"
                stack.append(member)
        else:
            return f"it holds a {kind.__qualname__}, which JSON would not give back as such"
    return None


def encode_output(value: Any) -> tuple[str | None, str | None]:
    """``(canonical JSON, None)`` for a value JSON stores exactly, else ``(None, reason)``."""
    try:
        text = json.dumps(
            value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        )
    except (TypeError, ValueError, RecursionError) as exc:
        return None, f"it cannot be written as JSON ({exc})"
    reason = _inexact(value)
    return (None, reason) if reason is not None else (text, None)


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat()


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class StateRecorder:
    """The execution state of one attempt: keys, digests and saved entries, by task index."""

    def __init__(
        self, run_context: RunContext, workflow: Workflow, *, config_hash: str, resume: bool
    ) -> None:
        specs = tuple(workflow.tasks.values())
        self._store = run_context.execution_state
        self._execution_id = run_context.execution_id
        self._workflow = workflow
        self._specs = specs
        self._config_hash = config_hash
        identities = code_identities(spec.origin for spec in specs)
        self._code = [identity.hash for identity in identities]
        self._code_reasons = [identity.reason for identity in identities]
        self._keys: list[str | None] = [None] * len(specs)
        self._digests: list[str | None] = [None] * len(specs)
        self._entries: dict[str, dict[str, Any]] = self._previous_entries() if resume else {}
        self._timer: asyncio.TimerHandle | None = None
        self._save_seconds = 0.0

    def _previous_entries(self) -> dict[str, dict[str, Any]]:
        try:
            state = self._store.load()
        except ValueError as exc:
            raise WorkflowError(
                f"{self._store.key} is not valid JSON ({exc}): execute with resume=False to "
                "run every task again and replace it"
            ) from None
        if not isinstance(state, dict) or not isinstance(state.get("tasks"), dict):
            return {}  # nothing saved, or not a state this layer wrote: every task runs
        version = state.get("format")
        if isinstance(version, int) and version > STATE_FORMAT:
            raise WorkflowError(
                f"{self._store.key} has format {version}, written by a newer molexp-workflow "
                f"(this one reads up to {STATE_FORMAT}): upgrade molexp-workflow to resume the run"
            )
        return {
            name: entry
            for name, entry in state["tasks"].items()
            if name in self._workflow.tasks and isinstance(entry, dict)
        }

    def reuse(self, index: int) -> tuple[bool, Any]:
        """Compute the task's key; ``(True, output)`` if an earlier attempt saved its output
        under the same key (the task then need not run)."""
        key = self._key(index)
        self._keys[index] = key
        spec = self._specs[index]
        entry = self._entries.get(spec.name)
        if (
            key is None
            or entry is None
            or not spec.reusable
            or entry.get("state") != "succeeded"
            or entry.get("stored") is not True
            or entry.get("key") != key
        ):
            return False, None
        self._digests[index] = entry.get("digest")
        return True, entry.get("output")

    def _key(self, index: int) -> str | None:
        code = self._code[index]
        if code is None:
            return None
        parts: list[Any] = [code, self._config_hash]
        for dep in self._workflow._deps[index]:
            digest = self._digests[dep]
            if digest is None:
                return None
            parts.append([self._specs[dep].name, digest])
        return _digest(canonical_json(parts))

    def started(self, index: int, start: float) -> None:
        """Record that the task started."""
        self._entries[self._specs[index].name] = {
            "state": "running",
            "execution_id": self._execution_id,
            "started_at": _iso(start),
        }
        self._changed()

    def succeeded(self, index: int, output: Any, attempts: int, start: float, end: float) -> None:
        """Record the task's output (or why it cannot be stored)."""
        entry = self._finished(index, "succeeded", attempts, start, end)
        entry["key"] = self._keys[index]
        text, reason = encode_output(output)
        if text is None:
            entry["stored"] = False
            entry["reason"] = f"output not stored: {reason}; the task runs again on resume"
        else:
            digest = _digest(text)
            self._digests[index] = digest
            entry["stored"] = True
            entry["digest"] = digest
            entry["output"] = json.loads(text)  # a copy: later mutation of the output is not saved
        self._changed()

    def failed(
        self, index: int, error: BaseException, attempts: int, start: float, end: float
    ) -> None:
        """Record the failure and save at once."""
        entry = self._finished(index, "failed", attempts, start, end)
        entry["error"] = f"{type(error).__qualname__}: {error}"
        self.flush()

    def cancelled(self, index: int, attempts: int, start: float, end: float) -> None:
        """Record that the task was stopped while running."""
        self._finished(index, "cancelled", attempts, start, end)
        self._changed()

    def _finished(
        self, index: int, state: str, attempts: int, start: float, end: float
    ) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "state": state,
            "execution_id": self._execution_id,
            "attempts": attempts,
            "started_at": _iso(start),
            "finished_at": _iso(end),
            "duration": round(end - start, 6),
        }
        reason = self._code_reasons[index]
        if reason is not None:
            entry["not_reusable"] = (
                f"its code hash is unknown: {reason}; the task runs again on resume"
            )
        self._entries[self._specs[index].name] = entry
        return entry

    def _changed(self) -> None:
        if self._timer is None:
            delay = max(FLUSH_INTERVAL, self._save_seconds / FLUSH_SHARE)
            self._timer = asyncio.get_running_loop().call_later(delay, self._due)

    def _due(self) -> None:
        self._timer = None
        # A timed save is a checkpoint: if the store fails now, the final save (which raises)
        # writes the same state again.
        with contextlib.suppress(Exception):
            self.flush()

    def flush(self) -> None:
        """Save the state now (and drop a pending timed save)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        began = time.perf_counter()
        self._store.save(
            {
                "format": STATE_FORMAT,
                "workflow_id": self._workflow.workflow_id,
                "workflow": self._workflow.name,
                "execution_id": self._execution_id,
                "updated_at": datetime.now(UTC).isoformat(),
                "tasks": self._entries,
            }
        )
        self._save_seconds = time.perf_counter() - began
