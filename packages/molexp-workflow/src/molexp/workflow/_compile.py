"""Compilation: declared tasks → validated :class:`TaskSpec` objects in a topological order.

Every check happens here, before anything runs, and every error says what to change: unknown
dependencies (with a did-you-mean), duplicate names, cycles (named, edge by edge), signatures that
cannot take a TaskContext, and channels used on one side only. All walks are loops, so a graph of
any depth compiles.
"""

from __future__ import annotations

import difflib
import inspect
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from molexp.workflow._errors import WorkflowValidationError
from molexp.workflow._task import Task, TaskBody, TaskSpec, check_signature, is_async_body

DependencyRef = str | Callable[..., Any] | Task
"""How ``depends_on`` names a task: by name, by its decorated function, or by its Task object."""


@dataclass(frozen=True, slots=True)
class Declaration:
    """One task as the builder recorded it, before validation."""

    name: str
    body: TaskBody
    origin: object
    depends_on: tuple[DependencyRef, ...]
    retries: int
    retry_delay: float
    timeout: float | None
    emits: tuple[str, ...]
    consumes: tuple[str, ...] = ()
    actor: bool = False

    @property
    def where(self) -> str:
        """Where the task is defined, for error messages."""
        target = inspect.unwrap(self.origin) if inspect.isfunction(self.origin) else self.origin
        code = getattr(target, "__code__", None)
        if code is not None:
            return f"{code.co_filename}:{code.co_firstlineno}"
        return f"an instance of {type(self.origin).__qualname__}"


@dataclass(frozen=True, slots=True)
class Compiled:
    """The validated graph: specs in topological order and each channel's emitters/consumers."""

    specs: tuple[TaskSpec, ...]
    channels: dict[str, tuple[frozenset[str], tuple[str, ...]]]


def _fail(message: str) -> WorkflowValidationError:
    return WorkflowValidationError(message)


def _check_unique(workflow: str, declared: Sequence[Declaration]) -> None:
    seen: dict[str, list[Declaration]] = {}
    for decl in declared:
        seen.setdefault(decl.name, []).append(decl)
    for name, group in seen.items():
        if len(group) > 1:
            places = " and ".join(d.where for d in group)
            raise _fail(
                f"workflow {workflow!r} declares task {name!r} {len(group)} times ({places}); "
                "task names must be unique: rename one with @wf.task(name=...)"
            )


def _resolve(
    workflow: str, declared: Sequence[Declaration], names: dict[str, int]
) -> list[tuple[str, ...]]:
    """Each declaration's dependencies as task names; an unknown one is a clear error."""
    by_object: dict[int, list[str]] = {}
    for decl in declared:
        by_object.setdefault(id(decl.origin), []).append(decl.name)
    resolved: list[tuple[str, ...]] = []
    for decl in declared:
        deps: list[str] = []
        for ref in decl.depends_on:
            if isinstance(ref, str):
                dep = ref
                if dep not in names:
                    close = difflib.get_close_matches(dep, list(names), n=1)
                    hint = (
                        f"did you mean {close[0]!r}?"
                        if close
                        else f"its tasks are: {', '.join(sorted(names)[:20])}"
                    )
                    raise _fail(
                        f"task {decl.name!r} depends on {dep!r}, which is not a task of workflow "
                        f"{workflow!r}; {hint}"
                    )
            else:
                matches = by_object.get(id(ref), [])
                label = getattr(ref, "__qualname__", None) or repr(ref)
                if len(matches) != 1:
                    problem = (
                        "is not a task of this workflow"
                        if not matches
                        else f"is declared as several tasks ({', '.join(matches)})"
                    )
                    raise _fail(
                        f"task {decl.name!r} depends on {label}, which {problem}; name the "
                        "dependency by its task name instead"
                    )
                dep = matches[0]
            if dep not in deps:
                deps.append(dep)
        resolved.append(tuple(deps))
    return resolved


def _check_bodies(declared: Sequence[Declaration]) -> None:
    for decl in declared:
        check_signature(decl.name, decl.body)
        generator = inspect.isasyncgenfunction(decl.body)
        if decl.actor:
            if not (generator or is_async_body(decl.body)):
                raise _fail(
                    f"actor {decl.name!r} must be `async def` (a coroutine, or an async "
                    "generator whose yielded values are emitted)"
                )
            if generator and not decl.emits:
                raise _fail(
                    f"actor {decl.name!r} is an async generator but emits on no channel: add "
                    "emits=[...] so its yielded values go somewhere, or return a value instead"
                )
        elif generator:
            raise _fail(
                f"task {decl.name!r} is an async generator; a streaming task is an actor: "
                "declare it with @wf.actor(consumes=[...], emits=[...])"
            )


def _channels(
    declared: Sequence[Declaration],
) -> dict[str, tuple[frozenset[str], tuple[str, ...]]]:
    emitters: dict[str, list[str]] = {}
    consumers: dict[str, list[str]] = {}
    for decl in declared:
        for channel in decl.emits:
            emitters.setdefault(channel, []).append(decl.name)
        for channel in decl.consumes:
            consumers.setdefault(channel, []).append(decl.name)
    for channel, names in consumers.items():
        if channel not in emitters:
            raise _fail(
                f"actor {names[0]!r} consumes channel {channel!r}, but no task emits on it: "
                f"add emits=[{channel!r}] to the task that produces its messages"
            )
    for channel, names in emitters.items():
        if channel not in consumers:
            raise _fail(
                f"task {names[0]!r} emits on channel {channel!r}, but no actor consumes it: "
                f"add an @wf.actor(consumes=[{channel!r}]), or drop the emits"
            )
    return {
        channel: (frozenset(names), tuple(consumers[channel]))
        for channel, names in emitters.items()
    }


def _order(
    workflow: str,
    declared: Sequence[Declaration],
    deps: Sequence[tuple[str, ...]],
    channels: dict[str, tuple[frozenset[str], tuple[str, ...]]],
) -> list[int]:
    """A topological order (declaration order among equals), or an error naming a cycle.

    An actor finishes only after the emitters of what it consumes, so those are edges too: an
    emitter that waits for its own consumer would deadlock.
    """
    index = {decl.name: i for i, decl in enumerate(declared)}
    preds: list[list[tuple[int, str]]] = [[] for _ in declared]
    for i, names in enumerate(deps):
        for dep in names:
            preds[i].append((index[dep], ""))
    for channel, (emitters, consumers) in channels.items():
        for consumer in consumers:
            for emitter in sorted(emitters, key=index.__getitem__):
                preds[index[consumer]].append((index[emitter], f"via channel {channel!r}"))
    succs: list[list[int]] = [[] for _ in declared]
    missing = [0] * len(declared)
    for i, edges in enumerate(preds):
        for pred, _ in edges:
            succs[pred].append(i)
            missing[i] += 1
    ready = deque(i for i, n in enumerate(missing) if n == 0)
    order: list[int] = []
    while ready:
        i = ready.popleft()
        order.append(i)
        for succ in succs[i]:
            missing[succ] -= 1
            if missing[succ] == 0:
                ready.append(succ)
    if len(order) == len(declared):
        return order
    raise _fail(_describe_cycle(workflow, declared, preds, missing))


def _describe_cycle(
    workflow: str,
    declared: Sequence[Declaration],
    preds: Sequence[Sequence[tuple[int, str]]],
    missing: Sequence[int],
) -> str:
    """Walk back from a task left unordered until a task repeats: that loop is a cycle."""
    node = next(i for i, n in enumerate(missing) if n > 0)
    position: dict[int, int] = {}
    path: list[tuple[int, str]] = []  # (task, how the task before it in the path waits for it)
    how = ""
    while node not in position:
        position[node] = len(path)
        path.append((node, how))
        node, how = next((p, h) for p, h in preds[node] if missing[p] > 0)
    # ``path`` runs backwards from ``node``: each task waits for the next. Report it forwards.
    back = path[position[node] + 1 :]
    chain = [node, *(task for task, _ in reversed(back)), node]
    hows = [how, *(h for _, h in reversed(back))]
    text = repr(declared[node].name)
    for task, step in zip(chain[1:], hows, strict=True):
        text += f" → {declared[task].name!r}" + (f" ({step})" if step else "")
    note = (
        " (an actor runs until every emitter of the channels it consumes has finished)"
        if any(hows)
        else ""
    )
    return (
        f"workflow {workflow!r} has a cycle: {text}; each task waits for the one before it, so "
        f"none can start{note}: remove one of these dependencies"
    )


def compile_declarations(workflow: str, declared: Sequence[Declaration]) -> Compiled:
    """Validate the declarations of ``workflow`` and order them; raise on the first problem."""
    if not declared:
        raise _fail(f"workflow {workflow!r} has no tasks: declare one with @wf.task")
    _check_unique(workflow, declared)
    names = {decl.name: i for i, decl in enumerate(declared)}
    deps = _resolve(workflow, declared, names)
    _check_bodies(declared)
    channels = _channels(declared)
    order = _order(workflow, declared, deps, channels)
    specs = tuple(
        TaskSpec(
            name=decl.name,
            depends_on=deps[i],
            body=decl.body,
            origin=decl.origin,
            is_async=is_async_body(decl.body),
            retries=decl.retries,
            retry_delay=decl.retry_delay,
            timeout=decl.timeout,
            emits=decl.emits,
            consumes=decl.consumes,
            streams=decl.actor and inspect.isasyncgenfunction(decl.body),
        )
        for i, decl in ((i, declared[i]) for i in order)
    )
    return Compiled(specs, channels)
