"""The identity of a task's code: a hash of its source that is the same in every process.

Resume trusts this hash to decide that a task's code did not change, so it covers the source text
and the simple values (numbers, strings, booleans, None) a function closes over, takes as defaults
or, for a task object, holds as attributes; anything else it holds is identified by type only.
When the source cannot be found (a function typed into a REPL), the hash is None and the task is
never reused.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import textwrap
import weakref
from collections.abc import Iterable
from types import CodeType, FunctionType, MethodType
from typing import Any

from molexp.workspace import canonical_json

_SIMPLE = (str, int, float, bool, type(None))
_source_digests: weakref.WeakKeyDictionary[CodeType | type, str | None] = (
    weakref.WeakKeyDictionary()
)


def _source_digest(obj: CodeType | type) -> str | None:
    """The sha256 of the dedented source of a code object or class, cached per object."""
    try:
        return _source_digests[obj]
    except KeyError:
        pass
    try:
        text = inspect.getsource(obj)
    except (OSError, TypeError):
        digest = None
    else:
        digest = hashlib.sha256(textwrap.dedent(text).encode()).hexdigest()
    _source_digests[obj] = digest
    return digest


def _simple(values: Iterable[object]) -> list[object]:
    return [v if type(v) in _SIMPLE else type(v).__qualname__ for v in values]


def _cell_values(fn: FunctionType) -> list[object]:
    values: list[object] = []
    for cell in fn.__closure__ or ():
        try:
            values.append(cell.cell_contents)
        except ValueError:  # an empty cell: the variable is not bound yet
            values.append(None)
    return values


def _peel(obj: object) -> tuple[object, list[Any]]:
    """``obj`` without its partial, bound-method and ``functools.wraps`` layers, and the simple
    arguments the partials bind."""
    bound: list[Any] = []
    while True:
        if isinstance(obj, functools.partial):
            bound.append([_simple(obj.args), sorted(obj.keywords), _simple(obj.keywords.values())])
            obj = obj.func
        elif isinstance(obj, MethodType):
            obj = obj.__func__
        elif isinstance(obj, FunctionType) and hasattr(obj, "__wrapped__"):
            obj = inspect.unwrap(obj)
        else:
            return obj, bound


def _identity(obj: object) -> list[Any] | None:
    """The parts that identify ``obj``'s code, or None when its source is unknown."""
    target, bound = _peel(obj)
    if isinstance(target, FunctionType):
        digest = _source_digest(target.__code__)
        values = [
            _simple(_cell_values(target)),
            _simple(target.__defaults__ or ()),
            _simple((target.__kwdefaults__ or {}).values()),
        ]
    else:
        digest = _source_digest(type(target))
        attributes = sorted(getattr(target, "__dict__", {}).items())
        values = [[name for name, _ in attributes], _simple(v for _, v in attributes)]
    if digest is None:
        return None
    return [digest, values, bound]


def code_hash(obj: object) -> str | None:
    """A short hash of the code of a function, ``functools.partial`` or task object."""
    identity = _identity(obj)
    if identity is None:
        return None
    return hashlib.sha256(canonical_json(identity).encode()).hexdigest()[:16]


def source_file(obj: object) -> str | None:
    """The file that defines ``obj`` (a function, or a task object's class), when known."""
    target, _ = _peel(obj)
    if not isinstance(target, FunctionType):
        target = type(target)
    try:
        return inspect.getsourcefile(target)
    except TypeError:
        return None
