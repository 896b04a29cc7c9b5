"""The identity of a task's code: a hash that is the same in every process, and changes when
anything the task's code reads changes.

Resume trusts this hash to decide that a finished task's output can be reused, so it covers:

* the source of the task's function (or of a task object's class, with its methods);
* every module-level name that code reads, and what an imported user module gives it
  (``helpers.featurize``): numbers, strings, containers and other plain values by a canonical
  encoding of their value; functions and classes of the user's own code by their source and,
  in turn, by what *their* code reads (cycles are followed once); the standard library, builtins
  and installed packages (site-packages) by qualified name and distribution version, not source;
* the values the function closes over, its defaults, a task object's attributes and
  ``functools.partial`` arguments: by value when they have a stable encoding, else by type.

A module-level value with no stable encoding (a random generator, an open file, a model object)
leaves the hash unknown, and so does user code whose source cannot be found (typed into a REPL):
such a task never reuses an earlier output, and :func:`code_identity` says why. A class can give
its instances an identity with a ``__molexp_identity__(self)`` method returning a plain value.

The work is cached per function and class: an entry is reused while every name it read still
holds the same object, and recomputed when one does not, or when it holds a mutable value (a
list, a dict, a set) whose content may have changed in place.
"""

from __future__ import annotations

import builtins
import dataclasses
import dis
import enum
import functools
import hashlib
import importlib.metadata
import inspect
import logging
import os
import platform
import sys
import sysconfig
import textwrap
import weakref
from collections.abc import Callable, Iterable
from pathlib import PurePath
from types import CellType, CodeType, FunctionType, MethodType, ModuleType
from typing import Any, NamedTuple, TypeAlias

from molexp.workspace import canonical_json

_MISSING: Any = object()
_GLOBAL_LOADS = frozenset({"LOAD_GLOBAL", "LOAD_NAME", "LOAD_FROM_DICT_OR_GLOBALS"})
_source_digests: weakref.WeakKeyDictionary[CodeType | type, str | None] = (
    weakref.WeakKeyDictionary()
)
_code_reads: weakref.WeakKeyDictionary[CodeType, tuple[tuple[str, ...], tuple[str, ...]]] = (
    weakref.WeakKeyDictionary()
)


class CodeIdentity(NamedTuple):
    """A task's code hash, or None and the reason it cannot be known."""

    hash: str | None
    reason: str | None


class _Unstable(Exception):
    """A value with no stable encoding; the message completes "... which ..."."""


def _digest(value: object) -> str:
    return hashlib.sha256(canonical_json(value).encode("utf-8", "surrogatepass")).hexdigest()


# -- what is source, what is a library ---------------------------------------------------------


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


def _reads(code: CodeType) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The global names ``code`` (nested functions and comprehensions included) loads, and every
    name it uses (the candidates for attributes of a user module it reads)."""
    try:
        return _code_reads[code]
    except KeyError:
        pass
    loads: set[str] = set()
    names: set[str] = set()
    stack = [code]
    while stack:
        current = stack.pop()
        names.update(current.co_names)
        loads.update(
            str(ins.argval) for ins in dis.get_instructions(current) if ins.opname in _GLOBAL_LOADS
        )
        stack.extend(const for const in current.co_consts if isinstance(const, CodeType))
    reads = (tuple(sorted(loads)), tuple(sorted(names)))
    _code_reads[code] = reads
    return reads


@functools.cache
def _library_roots() -> tuple[str, ...]:
    paths = sysconfig.get_paths()
    keys = ("stdlib", "platstdlib", "purelib", "platlib")
    return tuple(sorted({os.path.realpath(paths[key]) for key in keys if key in paths}))


@functools.cache
def _library_file(filename: str) -> bool:
    """Whether ``filename`` belongs to the standard library or an installed package."""
    if filename.startswith("<frozen "):
        return True
    if filename.startswith("<"):  # exec'd or typed in: user code without a file
        return False
    path = os.path.realpath(filename)
    parts = PurePath(path).parts
    if "site-packages" in parts or "dist-packages" in parts:
        return True
    return any(path.startswith(root + os.sep) for root in _library_roots())


def _library_module(name: str) -> bool:
    """Whether the module called ``name`` is the standard library's or an installed package's."""
    if name.partition(".")[0] in sys.stdlib_module_names:
        return True
    module = sys.modules.get(name)
    file = getattr(module, "__file__", None) or next(iter(getattr(module, "__path__", ())), None)
    return isinstance(file, str) and _library_file(file)


@functools.cache
def _distributions() -> dict[str, list[str]]:
    return dict(importlib.metadata.packages_distributions())


@functools.cache
def _distribution(module: str) -> tuple[str, ...]:
    """What identifies the version of a library module: ``python==3.x.y`` for the standard
    library, ``name==version`` of the distributions providing it otherwise."""
    top = module.partition(".")[0]
    if top in sys.stdlib_module_names:
        return (f"python=={platform.python_version()}",)
    found = []
    for dist in sorted(set(_distributions().get(top, ()))):
        try:
            found.append(f"{dist}=={importlib.metadata.version(dist)}")
        except importlib.metadata.PackageNotFoundError:
            found.append(dist)
    return tuple(found)


def _named(value: object) -> tuple[str, str] | None:
    """``(module, qualified name)`` of a library object that this name finds again."""
    module = getattr(value, "__module__", None)
    name = getattr(value, "__qualname__", None) or getattr(value, "__name__", None)
    if not isinstance(module, str) or not isinstance(name, str) or not _library_module(module):
        return None
    found: object = sys.modules.get(module, _MISSING)
    for part in name.split("."):
        found = getattr(found, part, _MISSING)
    return (module, name) if found is value else None


def _type_label(value: object) -> str:
    kind = type(value)
    if kind.__module__ == "builtins":
        return kind.__qualname__
    return f"{kind.__module__}.{kind.__qualname__}"


# -- the cache ---------------------------------------------------------------------------------


class _Pinned:
    """Holds a value that takes no weak reference; called like a weak reference."""

    __slots__ = ("value",)

    def __init__(self, value: object) -> None:
        self.value = value

    def __call__(self) -> object:
        return self.value


Holder: TypeAlias = Callable[[], object]


def _hold(value: object) -> Holder:
    """A reference to ``value`` that does not keep a function or class alive."""
    try:
        return weakref.ref(value)
    except TypeError:
        return _Pinned(value)


Node: TypeAlias = FunctionType | type
Check: TypeAlias = tuple[Holder | None, str, Holder]
"""A name an entry read: in a module or class (None: in the function's globals and builtins),
and the object it held."""


@dataclasses.dataclass(slots=True)
class _Entry:
    """One function's or class's own identity, and what to compare to know it still holds."""

    digest: str
    edges: tuple[weakref.ref[Node], ...]
    problem: str | None
    volatile: bool
    checks: tuple[Check, ...]
    code: CodeType | None = None
    defaults: object = None
    kwdefaults: object = None
    cells: tuple[Holder, ...] = ()


_entries: weakref.WeakKeyDictionary[Node, _Entry] = weakref.WeakKeyDictionary()


def _cell_contents(cell: CellType) -> object:
    try:
        return cell.cell_contents
    except ValueError:  # an empty cell: the variable is not bound yet
        return _MISSING


def _lookup(fn: FunctionType, name: str) -> object:
    """What a global name in ``fn``'s code finds: in its module, else in its builtins."""
    value = fn.__globals__.get(name, _MISSING)
    return vars(builtins).get(name, _MISSING) if value is _MISSING else value


def _current(namespace: Holder | None, name: str, node: Node) -> object:
    """What a check's name holds now."""
    if namespace is not None:
        owner = namespace()
        return _MISSING if owner is None else vars(owner).get(name, _MISSING)
    return _lookup(node, name) if isinstance(node, FunctionType) else _MISSING


def _still_valid(node: Node, entry: _Entry) -> bool:
    if entry.volatile:
        return False
    if isinstance(node, FunctionType):
        cells = node.__closure__ or ()
        if (
            node.__code__ is not entry.code
            or node.__defaults__ is not entry.defaults
            or node.__kwdefaults__ is not entry.kwdefaults
            or len(cells) != len(entry.cells)
            or any(h() is not _cell_contents(c) for c, h in zip(cells, entry.cells, strict=True))
        ):
            return False
    return all(held() is _current(ns, name, node) for ns, name, held in entry.checks) and all(
        edge() is not None for edge in entry.edges
    )


def _entry(node: Node, fresh: dict[int, _Entry]) -> _Entry:
    """The current entry of ``node``, checked (or computed) once per batch: ``fresh``."""
    entry = fresh.get(id(node))
    if entry is not None:
        return entry
    entry = _entries.get(node)
    if entry is None or not _still_valid(node, entry):
        encoder = _Encoder()
        entry = encoder.function(node) if isinstance(node, FunctionType) else encoder.cls(node)
        _entries[node] = entry
    fresh[id(node)] = entry
    return entry


# -- encoding ----------------------------------------------------------------------------------


def _methods(cls: type) -> Iterable[tuple[str, FunctionType]]:
    """The functions a class defines: methods, static and class methods, property accessors.
    Generated ones (a dataclass's ``__init__``, without a file) follow from the class's source."""
    for name, member in vars(cls).items():
        inner = member.__func__ if isinstance(member, staticmethod | classmethod) else member
        accessors = (
            (member.fget, member.fset, member.fdel) if isinstance(member, property) else (inner,)
        )
        for function in accessors:
            if isinstance(function, FunctionType) and not function.__code__.co_filename.startswith(
                "<"
            ):
                yield name, function


class _Encoder:
    """Encodes the values one function or class reads, collecting the user functions and
    classes among them (to follow), the names to check, and the first problem."""

    def __init__(self) -> None:
        self.edges: list[Node] = []
        self.checks: list[Check] = []
        self.volatile = False
        self.problem: str | None = None
        self.names: tuple[str, ...] = ()
        self._open: set[int] = set()

    def strict(self, value: object, what: str) -> object:
        """``value`` encoded; a value with no stable encoding records a problem."""
        try:
            return self.value(value)
        except _Unstable as exc:
            reason = str(exc)
        except Exception as exc:  # an object that fails when looked at (a broken proxy, ...)
            reason = f"holds a {_type_label(value)} that could not be encoded ({exc!r})"
        if self.problem is None:
            self.problem = f"{what}, which {reason}"
        return None

    def lenient(self, value: object) -> object:
        """``value`` encoded, or identified by its type when it has no stable encoding."""
        try:
            return self.value(value)
        except Exception:  # no stable encoding (_Unstable), or it failed when looked at
            return ["object", _type_label(value)]

    def value(self, value: object) -> object:
        """``value`` encoded; raises :class:`_Unstable` when it has no stable encoding."""
        kind = type(value)
        if value is None or kind is bool or kind is str or kind is int:
            return value
        if type(value) is float:
            return ["float", value.hex()]
        if kind is tuple or kind is list or kind is set or kind is frozenset or kind is dict:
            return self._container(value)
        if type(value) is bytes:
            return ["bytes", value.hex()]
        if type(value) is complex:
            return ["complex", value.real.hex(), value.imag.hex()]
        if type(value) is bytearray:
            self.volatile = True
            return ["bytearray", value.hex()]
        if type(value) is range:
            return ["range", value.start, value.stop, value.step]
        if isinstance(value, ModuleType):
            return self._module(value)
        if isinstance(value, FunctionType | type):
            return self._reference(value)
        return self._object(value)

    def _container(self, value: Any) -> object:
        if id(value) in self._open:
            raise _Unstable(f"holds a {type(value).__name__} that contains itself")
        self._open.add(id(value))
        try:
            kind = type(value)
            if kind is not tuple and kind is not frozenset:
                self.volatile = True
            if kind is dict:
                pairs = [[self.value(k), self.value(v)] for k, v in value.items()]
                return ["dict", sorted(pairs, key=lambda pair: canonical_json(pair[0]))]
            items = [self.value(item) for item in value]
            if kind is set or kind is frozenset:
                items.sort(key=canonical_json)
            return [kind.__name__, items]
        finally:
            self._open.discard(id(value))

    def _module(self, module: ModuleType) -> object:
        name = module.__name__
        if _library_module(name):
            return ["module", name, *_distribution(name)]
        if id(module) in self._open:
            return ["module", name]
        self._open.add(id(module))
        try:
            held: Holder = weakref.ref(module)
            namespace = vars(module)
            read = {}
            for attribute in self.names:
                found = namespace.get(attribute, _MISSING)
                self.checks.append((held, attribute, _hold(found)))
                if found is not _MISSING:
                    read[attribute] = self.strict(found, f"it reads {name}.{attribute}")
            return ["module", name, read]
        finally:
            self._open.discard(id(module))

    def _reference(self, value: Node) -> object:
        if isinstance(value, FunctionType):
            library = _library_file(value.__code__.co_filename)
        else:
            library = _library_module(value.__module__)
        if library:
            return [
                "library",
                value.__module__,
                value.__qualname__,
                *_distribution(value.__module__),
            ]
        self.edges.append(value)
        return ["function" if isinstance(value, FunctionType) else "class", value.__qualname__]

    def _object(self, value: Any) -> object:
        kind = type(value)
        hook = getattr(kind, "__molexp_identity__", None)
        if hook is not None:
            self.volatile = True
            try:
                given = hook(value)
            except Exception as exc:
                raise _Unstable(
                    f"holds a {_type_label(value)} whose __molexp_identity__() raised {exc!r}"
                ) from None
            return ["identity", self.value(kind), self.value(given)]
        if isinstance(value, enum.Enum):
            return ["enum", self.value(kind), value.name]
        if isinstance(value, tuple) and hasattr(kind, "_fields"):
            return ["namedtuple", self.value(kind), [self.value(item) for item in value]]
        if isinstance(value, PurePath):
            return ["path", kind.__name__, str(value)]
        if isinstance(value, logging.Logger):
            return ["logger", value.name]
        if dataclasses.is_dataclass(value):
            self.volatile = True
            fields = dataclasses.fields(value)
            return [
                "dataclass",
                self.value(kind),
                [[f.name, self.value(getattr(value, f.name))] for f in fields],
            ]
        named = _named(value)
        if named is not None:
            return ["library", *named, *_distribution(named[0])]
        if isinstance(value, functools.partial):
            keywords = sorted([k, self.value(v)] for k, v in value.keywords.items())
            return ["partial", self.value(value.func), self.value(value.args), keywords]
        if isinstance(value, MethodType):
            return ["method", self.value(value.__self__), self.value(value.__func__)]
        wrapped = getattr(value, "__wrapped__", None)
        if wrapped is not None:
            return ["wrapped", _type_label(value), self.value(wrapped)]
        raise _Unstable(f"holds a {_type_label(value)}, a value with no stable encoding")

    def function(self, fn: FunctionType) -> _Entry:
        """The entry of a user function: its source, the globals it reads, what it holds."""
        code = fn.__code__
        source = _source_digest(code)
        if source is None:
            self.problem = f"the source of {fn.__qualname__} ({code.co_filename}) is not available"
        loads, self.names = _reads(code)
        read = {}
        for name in loads:
            value = _lookup(fn, name)
            self.checks.append((None, name, _hold(value)))
            read[name] = (
                ["unbound"]
                if value is _MISSING
                else self.strict(value, f"{fn.__qualname__} reads the module-level name {name!r}")
            )
        cells = tuple(_cell_contents(cell) for cell in fn.__closure__ or ())
        kwdefaults = fn.__kwdefaults__ or {}
        local = [
            source,
            read,
            [None if v is _MISSING else self.lenient(v) for v in cells],
            [self.lenient(v) for v in fn.__defaults__ or ()],
            sorted([k, self.lenient(v)] for k, v in kwdefaults.items()),
        ]
        return _Entry(
            digest=_digest(local),
            edges=tuple(weakref.ref(edge) for edge in self.edges),
            problem=self.problem,
            volatile=self.volatile,
            checks=tuple(self.checks),
            code=code,
            defaults=fn.__defaults__,
            kwdefaults=fn.__kwdefaults__,
            cells=tuple(_hold(value) for value in cells),
        )

    def cls(self, cls: type) -> _Entry:
        """The entry of a user class: its source, its bases, and its methods (followed)."""
        source = _source_digest(cls)
        if source is None and issubclass(cls, tuple) and hasattr(cls, "_fields"):
            source = _digest(["namedtuple", cls.__qualname__, list(cls._fields)])
        if source is None:
            self.problem = f"the source of class {cls.__qualname__} is not available"
        held: Holder = weakref.ref(cls)
        methods = []
        for name, function in sorted(_methods(cls), key=lambda item: item[0]):
            self.checks.append((held, name, _hold(vars(cls)[name])))
            methods.append([name, self.value(function)])
        bases = [self.value(base) for base in cls.__bases__]
        return _Entry(
            digest=_digest([source, bases, methods]),
            edges=tuple(weakref.ref(edge) for edge in self.edges),
            problem=self.problem,
            volatile=self.volatile,
            checks=tuple(self.checks),
        )


# -- the task's identity -----------------------------------------------------------------------


def _peel(obj: object) -> tuple[object, list[functools.partial[Any]]]:
    """``obj`` without its partial, bound-method and ``functools.wraps`` layers, and the
    partials peeled off."""
    partials: list[functools.partial[Any]] = []
    while True:
        if isinstance(obj, functools.partial):
            partials.append(obj)
            obj = obj.func
        elif isinstance(obj, MethodType):
            obj = obj.__func__
        elif isinstance(obj, FunctionType) and hasattr(obj, "__wrapped__"):
            obj = inspect.unwrap(obj)
        else:
            return obj, partials


_identities: weakref.WeakKeyDictionary[
    FunctionType, tuple[tuple[tuple[weakref.ref[Node], _Entry], ...], CodeIdentity]
] = weakref.WeakKeyDictionary()
"""A task function's identity, with the entries it was computed from."""


def _unchanged(
    reached: tuple[tuple[weakref.ref[Node], _Entry], ...], fresh: dict[int, _Entry]
) -> bool:
    for held, entry in reached:
        node = held()
        if node is None or _entry(node, fresh) is not entry:
            return False
    return True


def _identity(obj: object, fresh: dict[int, _Entry]) -> CodeIdentity:
    target, partials = _peel(obj)
    cacheable = target if isinstance(target, FunctionType) and not partials else None
    if cacheable is not None:
        cached = _identities.get(cacheable)
        if cached is not None and _unchanged(cached[0], fresh):
            return cached[1]
    root = _Encoder()
    if isinstance(target, FunctionType):
        head = [root.value(target), None]
    else:
        attributes = sorted(getattr(target, "__dict__", {}).items())
        head = [root.value(type(target)), [[name, root.lenient(v)] for name, v in attributes]]
    for partial in partials:
        keywords = sorted([k, root.lenient(v)] for k, v in partial.keywords.items())
        head.append([[root.lenient(v) for v in partial.args], keywords])
    problem = root.problem
    reached: dict[int, tuple[weakref.ref[Node], _Entry]] = {}
    stack = list(root.edges)
    while stack:
        node = stack.pop()
        if id(node) in reached:
            continue
        entry = _entry(node, fresh)
        reached[id(node)] = (weakref.ref(node), entry)
        if problem is None:
            problem = entry.problem
        stack.extend(edge for edge in (held() for held in entry.edges) if edge is not None)
    if problem is not None:
        identity = CodeIdentity(None, problem)
    else:
        digests = sorted(entry.digest for _, entry in reached.values())
        identity = CodeIdentity(_digest([head, digests])[:16], None)
    if cacheable is not None:
        _identities[cacheable] = (tuple(reached.values()), identity)
    return identity


def code_identities(objects: Iterable[object]) -> list[CodeIdentity]:
    """The code identities of several tasks, computed together: each function, class and task
    object is looked at once, however many tasks share it."""
    fresh: dict[int, _Entry] = {}
    done: dict[int, tuple[object, CodeIdentity]] = {}
    identities = []
    for obj in objects:
        found = done.get(id(obj))
        if found is None:
            found = done[id(obj)] = (obj, _identity(obj, fresh))
        identities.append(found[1])
    return identities


def code_identity(obj: object) -> CodeIdentity:
    """The code hash of a function, ``functools.partial`` or task object, or why it is unknown."""
    return _identity(obj, {})


def code_hash(obj: object) -> str | None:
    """A short hash of the code of a function, ``functools.partial`` or task object, and of
    everything it reads; None when that cannot be known (see :func:`code_identity`)."""
    return code_identity(obj).hash


def source_file(obj: object) -> str | None:
    """The file that defines ``obj`` (a function, or a task object's class), when known."""
    target, _ = _peel(obj)
    if not isinstance(target, FunctionType):
        target = type(target)
    try:
        return inspect.getsourcefile(target)
    except TypeError:
        return None
