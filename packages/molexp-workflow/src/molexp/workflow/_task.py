"""Tasks: the reusable :class:`Task` base class and :class:`TaskSpec`, a compiled task."""

from __future__ import annotations

import functools
import inspect
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from molexp.workflow._code import code_hash
from molexp.workflow._errors import WorkflowValidationError

if TYPE_CHECKING:
    from molexp.workflow._context import TaskContext

TaskBody = Callable[["TaskContext"], Any]
"""What the runtime calls with a task's :class:`TaskContext` (a function or a bound method)."""


class Task(ABC):
    """A reusable task: subclass it, write ``run(self, ctx)`` (async or plain), and add instances
    to a workflow with ``wf.add(task, depends_on=[...])``.

    The class attributes are the defaults; the constructor overrides them per instance, so one
    class can appear several times in a workflow under different names.
    """

    name: str | None = None
    retries: int = 0
    retry_delay: float = 0.1
    timeout: float | None = None
    emits: str | Sequence[str] = ()

    def __init__(
        self,
        name: str | None = None,
        *,
        retries: int | None = None,
        retry_delay: float | None = None,
        timeout: float | None = None,
        emits: str | Sequence[str] | None = None,
    ) -> None:
        if name is not None:
            self.name = name
        if retries is not None:
            self.retries = retries
        if retry_delay is not None:
            self.retry_delay = retry_delay
        if timeout is not None:
            self.timeout = timeout
        if emits is not None:
            self.emits = emits

    @property
    def task_name(self) -> str:
        """The name the task has in a workflow: ``name``, or else the class name."""
        return self.name if self.name is not None else type(self).__name__

    @abstractmethod
    def run(self, ctx: TaskContext) -> Any:
        """The task's work; may be ``async def``. Its return value is the task's output."""


@dataclass(frozen=True, slots=True, eq=False)
class TaskSpec:
    """A compiled task: what it runs, what it waits for, and how failures are handled."""

    name: str
    depends_on: tuple[str, ...]
    body: TaskBody
    origin: object
    """The function or :class:`Task` the user wrote: its code identity and source file."""
    is_async: bool
    retries: int = 0
    retry_delay: float = 0.1
    timeout: float | None = None
    emits: tuple[str, ...] = ()
    consumes: tuple[str, ...] = ()
    streams: bool = False
    """An actor written as an async generator: what it yields is emitted on its ``emits``."""

    @property
    def is_actor(self) -> bool:
        """Whether this task consumes channels (it then runs alongside its producers)."""
        return bool(self.consumes)

    @property
    def code_hash(self) -> str | None:
        """A hash of the task's code and of everything it reads, the same in every process; None
        when that cannot be known (a value with no stable encoding, code without source)."""
        return code_hash(self.origin)

    @property
    def reusable(self) -> bool:
        """Whether a later attempt may reuse this task's saved output (never for channel users,
        whose messages a skipped run would not send)."""
        return not (self.emits or self.consumes)


def channel_names(value: str | Sequence[str] | None, *, what: str) -> tuple[str, ...]:
    """Normalise an ``emits=``/``consumes=`` argument to a tuple of non-empty names."""
    if value is None:
        return ()
    names = (value,) if isinstance(value, str) else tuple(value)
    for name in names:
        if not isinstance(name, str) or not name:
            raise WorkflowValidationError(f"{what} must name channels as strings, got {name!r}")
    return tuple(dict.fromkeys(names))


def check_policy(
    name: str, *, retries: int, retry_delay: float, timeout: float | None
) -> tuple[int, float, float | None]:
    """Validate a task's retry and timeout settings; a clear error naming the task."""
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise WorkflowValidationError(
            f"task {name!r}: retries must be a whole number >= 0, got {retries!r}"
        )
    if isinstance(retry_delay, bool) or not isinstance(retry_delay, int | float) or retry_delay < 0:
        raise WorkflowValidationError(
            f"task {name!r}: retry_delay must be a number of seconds >= 0, got {retry_delay!r}"
        )
    if timeout is not None and (
        isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0
    ):
        raise WorkflowValidationError(
            f"task {name!r}: timeout must be a number of seconds > 0 or None, got {timeout!r}"
        )
    return retries, float(retry_delay), None if timeout is None else float(timeout)


def check_limit(value: int | None, what: str) -> int | None:
    """Validate an optional positive limit (``max_concurrency``, ``max_workers``)."""
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise WorkflowValidationError(f"{what} must be a whole number >= 1 or None, got {value!r}")
    return value


def _takes_one_argument(body: Callable[..., Any]) -> bool:
    """Whether ``body`` can be called with exactly one positional argument."""
    if inspect.isfunction(body):
        code = body.__code__
        required = code.co_argcount - len(body.__defaults__ or ())
        kw_required = set(
            code.co_varnames[code.co_argcount : code.co_argcount + code.co_kwonlyargcount]
        )
        kw_required -= set(body.__kwdefaults__ or {})
        takes_varargs = bool(code.co_flags & inspect.CO_VARARGS)
        return required <= 1 and (code.co_argcount >= 1 or takes_varargs) and not kw_required
    try:
        signature = inspect.signature(body)
    except (TypeError, ValueError):  # a builtin without a signature: let the call decide
        return True
    try:
        signature.bind(None)
    except TypeError:
        return False
    return True


def check_signature(name: str, body: Callable[..., Any], *, what: str = "TaskContext") -> None:
    """Reject a body that cannot be called as ``body(ctx)``, saying how to write it."""
    if not callable(body):
        raise WorkflowValidationError(f"task {name!r}: {body!r} is not callable")
    if _takes_one_argument(body):
        return
    try:
        shown = f"{getattr(body, '__qualname__', name)}{inspect.signature(body)}"
    except (TypeError, ValueError):
        shown = repr(body)
    raise WorkflowValidationError(
        f"task {name!r}: {shown} cannot take a {what}; a task takes exactly one argument, "
        f"e.g. `async def {name}(ctx: {what}) -> ...` (read upstream outputs from ctx.inputs)"
    )


def is_async_body(body: Callable[..., Any]) -> bool:
    """Whether calling ``body`` returns a coroutine: an ``async def`` function or method (also
    behind ``functools.partial``), or an object whose ``__call__`` is ``async def``."""
    if inspect.iscoroutinefunction(body):
        return True
    if inspect.isfunction(body) or inspect.ismethod(body) or isinstance(body, functools.partial):
        return False
    return inspect.iscoroutinefunction(type(body).__call__)
