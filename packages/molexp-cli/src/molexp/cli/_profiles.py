"""Profiles: ``molcfg.yaml`` (``version``, ``defaults``, ``profiles``, ``extends``) and overrides.

A profile is a named slice of configuration that tasks read as ``ctx.config``::

    version: 1
    defaults:
      train: {epochs: 20, lr: 1.0e-3}
    profiles:
      smoke:
        train: {epochs: 1}
      gpu:
        extends: smoke          # a name, or a list of names merged left to right
        device: cuda

The active config is ``defaults``, deep-merged with the profile's ``extends`` chain (parents
first) and then the profile itself, then every ``--override a.b=value`` in order. Mappings merge
key by key; any other value (lists included) replaces what was there. Values are JSON values:
numbers written ``1e-3`` are floats (YAML 1.2), dates stay strings.

An ``executor:`` section (at the top level, or in a profile, merged along the same ``extends``
chain) says where ``molexp run`` executes runs; it is kept out of the config, so it never changes
a run's ``config_hash`` or id (see :mod:`molexp.cli.executors`). A ``storage:`` section, merged
the same way and kept out of the config too, gives the storage options workspaces are opened
with: a URL scheme (``file``, ``s3``) or a URL prefix (``s3://bucket``) -> options, the table
:func:`molexp.workspace.storage.set_default_storage_options` takes::

    storage:
      s3: {endpoint_url: "http://127.0.0.1:9000"}
      file: {fsync: false}

PyYAML is imported only when a config file or an override is actually read.
"""

from __future__ import annotations

import copy
import difflib
import json
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from molexp.cli._errors import CliError, UsageError

if TYPE_CHECKING:
    import yaml

CONFIG_FILE_NAME = "molcfg.yaml"
SUPPORTED_VERSION = 1
_TOP_LEVEL_KEYS = ("version", "defaults", "profiles", "executor", "storage")
_EXTENDS = "extends"
_EXECUTOR = "executor"
"""Where runs execute (``molexp run --executor``): a top-level section and a per-profile key,
kept out of the config tasks see (see :mod:`molexp.cli.executors`)."""
_STORAGE = "storage"
"""The storage options workspaces are opened with: a top-level section and a per-profile key,
kept out of the config (they may hold credentials, and never change a run's id)."""
_STORAGE_TARGET = re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]*(?:://.*)?", re.S)
_LOCAL_SCHEMES = ("file", "local")

STORAGE_DEFAULTS_ENV = "MOLEXP_STORAGE_DEFAULTS"
"""How ``molexp run`` hands its ``storage:`` table to the ``molexp execute`` processes it starts
(``--jobs``, Dask workers, Slurm jobs): a JSON object, applied as their default storage options."""

# YAML 1.2 floats: PyYAML (YAML 1.1) reads `1e-3` as a string; researchers write it everywhere.
_FLOAT_12 = re.compile(
    r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
    |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
    |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
    |[-+]?\.(?:inf|Inf|INF)
    |\.(?:nan|NaN|NAN))$""",
    re.X,
)


class ProfileError(CliError):
    """A config file that cannot be used (malformed YAML, a bad shape, an ``extends`` cycle)."""


class ProfileUsageError(UsageError):
    """A profile request on the command line that cannot be met (exit code 2)."""


@dataclass(frozen=True)
class Profile:
    """The resolved configuration of one invocation: what ``run.start`` records on each run."""

    name: str | None
    """The profile's name (``--profile``), or None when only ``defaults`` apply."""
    config: dict[str, Any]
    """The merged config: defaults, the ``extends`` chain, the profile, then the overrides."""
    source: Path | None = None
    """The config file it came from, if any."""
    overrides: tuple[str, ...] = field(default=())
    """The ``--override`` arguments applied, as given."""
    executor: dict[str, Any] = field(default_factory=dict)
    """The merged ``executor:`` settings (top level, the ``extends`` chain, the profile); not
    part of :attr:`config`, so they never change a run's ``config_hash``."""
    storage: dict[str, dict[str, Any]] = field(default_factory=dict)
    """The merged ``storage:`` table (URL scheme or prefix -> storage options); not part of
    :attr:`config`, and never recorded on a run."""

    @property
    def config_hash(self) -> str:
        """The workspace layer's hash of :attr:`config` (key order does not matter)."""
        from molexp.workspace import config_hash

        return config_hash(self.config)

    @property
    def label(self) -> str:
        """How the profile is shown to the user."""
        return self.name if self.name is not None else "(defaults)"


@dataclass(frozen=True)
class ConfigFile:
    """A validated ``molcfg.yaml``: its defaults and its profiles (``extends`` kept apart)."""

    path: Path
    defaults: dict[str, Any]
    profiles: dict[str, dict[str, Any]]
    extends: dict[str, tuple[str, ...]]
    executor: dict[str, Any] = field(default_factory=dict)
    """The top-level ``executor:`` section."""
    executors: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Each profile's own ``executor:`` section (kept out of its config)."""
    storage: dict[str, dict[str, Any]] = field(default_factory=dict)
    """The top-level ``storage:`` section."""
    storages: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    """Each profile's own ``storage:`` section (kept out of its config)."""

    @property
    def names(self) -> list[str]:
        """The profile names, sorted."""
        return sorted(self.profiles)


# -- YAML ------------------------------------------------------------------------------------------


@cache
def _loader() -> type[yaml.SafeLoader]:
    """A safe loader with YAML 1.2 floats, no timestamps, and duplicate keys as errors."""
    import yaml

    class Loader(yaml.SafeLoader):
        """PyYAML's safe loader, with molexp's resolvers and constructors."""

    Loader.yaml_implicit_resolvers = {
        first: [(tag, regexp) for tag, regexp in resolvers if not tag.endswith(":timestamp")]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }
    Loader.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT_12, list("-+0123456789."))

    def construct_mapping(
        loader: yaml.SafeLoader, node: yaml.MappingNode, deep: bool = False
    ) -> dict[Any, Any]:
        """A mapping, refusing a key given twice (PyYAML silently keeps the last)."""
        loader.flatten_mapping(node)
        seen: dict[Any, yaml.Node] = {}
        for key_node, _ in node.value:
            key = loader.construct_object(key_node, deep=True)
            try:
                duplicate = key in seen
            except TypeError:  # an unhashable key: the base constructor reports it
                break
            if duplicate:
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping",
                    node.start_mark,
                    f"found duplicate key {key!r} (first defined on line "
                    f"{seen[key].start_mark.line + 1})",
                    key_node.start_mark,
                )
            seen[key] = key_node
        return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)

    Loader.add_constructor(
        yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
        construct_mapping,
    )
    return Loader


def _yaml_problem(exc: Exception) -> tuple[int | None, int | None, str]:
    """Line, column (1-based) and a one-line description of a PyYAML error."""
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    context = getattr(exc, "context", None)
    text = f"{problem} ({context})" if context and problem != str(exc) else str(problem)
    if mark is None:
        return None, None, text
    return mark.line + 1, mark.column + 1, text


#: How deeply a config value may nest: the workspace layer stores at most 100 levels
#: (``molexp.workspace._records.MAX_DEPTH``), counted from the run's config mapping.
_MAX_DEPTH = 99

#: What PyYAML's constructors raise besides ``YAMLError`` for text they cannot build a value from:
#: ``!!float abc`` and ``!!int x`` (ValueError, also for an integer of more than 4300 digits),
#: ``!!bool x`` (KeyError), and nesting deeper than the interpreter's recursion limit.
_CONSTRUCTOR_ERRORS = (ValueError, KeyError, RecursionError)


def _constructor_problem(exc: BaseException) -> str:
    if isinstance(exc, RecursionError):
        return "the value is nested too deeply"
    if isinstance(exc, KeyError):
        return f"a tagged value cannot be read ({exc.args[0]!r} is not valid for its tag)"
    return f"a tagged value cannot be read ({exc})"


def _load_yaml(text: str, *, origin: str) -> Any:
    import yaml

    try:
        return yaml.load(text, Loader=_loader())
    except yaml.YAMLError as exc:
        line, column, problem = _yaml_problem(exc)
        where = f"{origin}, line {line}, column {column}" if line is not None else origin
        raise ProfileError(f"malformed YAML in {where}: {problem}") from None
    except _CONSTRUCTOR_ERRORS as exc:
        raise ProfileError(f"malformed YAML in {origin}: {_constructor_problem(exc)}") from None


# -- validation ------------------------------------------------------------------------------------


def _utf8(text: str, what: str, origin: str) -> None:
    """Refuse a string UTF-8 cannot encode (a lone surrogate, e.g. YAML's ``"\\ud800"``)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ProfileError(
            f"{origin}: {what} holds {text[exc.start : exc.end]!r}, which is not valid UTF-8 "
            "text (a lone surrogate)"
        ) from None


def _json_value(value: Any, where: str, origin: str, *, depth: int = 1) -> Any:
    """``value`` if it is made of JSON values only; a clear error naming ``where`` otherwise.

    YAML anchors and aliases may share a list or mapping between places (checked again only
    where it sits deeper), but not nest one inside itself (``&a [*a]``), which no JSON value can
    hold.
    """
    # Depth-first, without recursion: a container is "open" until its members are checked.
    stack: list[tuple[Any, str, bool, int]] = [(value, where, False, depth)]
    open_: set[int] = set()
    done: dict[int, int] = {}  # id -> the deepest place it was checked at
    while stack:
        item, path, closing, depth = stack.pop()
        if closing:
            open_.discard(id(item))
            done[id(item)] = max(done.get(id(item), 0), depth)
            continue
        if isinstance(item, str):
            _utf8(item, f"the value at {path}", origin)
            continue
        if item is None or isinstance(item, (bool, int, float)):
            continue
        if isinstance(item, (list, dict)):
            if id(item) in open_:
                raise ProfileError(
                    f"{origin}: the value at {path} refers back to a value that contains it (a "
                    "YAML alias inside its own anchor); config values must be finite JSON values"
                )
            if depth > _MAX_DEPTH:
                raise ProfileError(
                    f"{origin}: the value at {path[:120]} is nested more than {_MAX_DEPTH} levels "
                    "deep; a run cannot store it"
                )
            if done.get(id(item), 0) >= depth:
                continue
            open_.add(id(item))
            stack.append((item, path, True, depth))
        if isinstance(item, list):
            stack.extend(
                (member, f"{path}[{i}]", False, depth + 1) for i, member in enumerate(item)
            )
        elif isinstance(item, dict):
            for key, member in item.items():
                if not isinstance(key, str):
                    raise ProfileError(
                        f"{origin}: key {key!r} under {path or 'the top level'} is a "
                        f"{type(key).__name__}; config keys must be strings (quote it)"
                    )
                _utf8(key, f"the key {key!r} under {path or 'the top level'}", origin)
                stack.append((member, f"{path}.{key}" if path else key, False, depth + 1))
        else:
            raise ProfileError(
                f"{origin}: the value at {path} is a {type(item).__name__}; config values must be "
                "JSON values (strings, numbers, booleans, null, lists and mappings)"
            )
    return value


def _mapping(value: Any, where: str, origin: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ProfileError(f"{origin}: {where} must be a mapping, got {_describe(value)}")
    checked: dict[str, Any] = _json_value(value, where, origin)
    return checked


def _describe(value: Any) -> str:
    if isinstance(value, list):
        return "a list"
    return f"{type(value).__name__} {value!r}"


def _storage(value: Any, where: str, origin: str) -> dict[str, dict[str, Any]]:
    """A ``storage:`` section: URL scheme or URL prefix -> the storage options for it.

    Local entries (``file``, ``local``) are checked against the built-in backend now; a plugin
    (``s3``) checks its own options when a workspace on it is opened.
    """
    section = _mapping(value, where, origin)
    table: dict[str, dict[str, Any]] = {}
    for target, options in section.items():
        key = f"{where}.{target}"
        if not _STORAGE_TARGET.fullmatch(target):
            raise ProfileError(
                f"{origin}: {where} has the key {target!r}, which is neither a URL scheme (file, "
                "s3) nor a URL prefix (s3://bucket); accepted: a scheme or a URL prefix mapped to "
                "storage options"
            )
        if not isinstance(options, dict):
            raise ProfileError(
                f"{origin}: {key} must map storage option names to values (e.g. "
                f"endpoint_url: http://host:9000), got {_describe(options)}"
            )
        scheme = target.partition("://")[0].lower()
        if scheme in _LOCAL_SCHEMES:
            _check_local_options(options, key, origin)
        table[target] = options
    return table


def _check_local_options(options: Mapping[str, Any], key: str, origin: str) -> None:
    """Refuse what the built-in local backend would not accept, naming ``key`` in ``origin``."""
    from molexp.workspace import StorageError
    from molexp.workspace.storage import LocalStorage

    try:
        LocalStorage.from_url(".", **options)  # checks the names; touches no file
    except StorageError as exc:
        raise ProfileError(f"{origin}: {key}: {exc}") from None
    fsync = options.get("fsync", True)
    if not isinstance(fsync, bool):
        raise ProfileError(f"{origin}: {key}.fsync must be true or false, got {_describe(fsync)}")


def parse_config(text: str, path: Path) -> ConfigFile:
    """Validate the text of a config file (``path`` is used in messages)."""
    origin = str(path)
    raw = _load_yaml(text, origin=origin)
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ProfileError(
            f"{origin}: the file must be a mapping with keys {', '.join(_TOP_LEVEL_KEYS)}; "
            f"got {_describe(raw)}"
        )
    unknown = [str(k) for k in raw if k not in _TOP_LEVEL_KEYS]
    if unknown:
        raise ProfileError(
            f"{origin}: unknown top-level key {unknown[0]!r}; a config file has only "
            f"{', '.join(_TOP_LEVEL_KEYS)} (put settings under defaults: or a profile)"
        )
    version = raw.get("version", SUPPORTED_VERSION)
    if version != SUPPORTED_VERSION or isinstance(version, bool):
        raise ProfileError(
            f"{origin}: version {version!r} is not supported; this molexp reads version "
            f"{SUPPORTED_VERSION}"
        )
    defaults = _mapping(raw.get("defaults"), "defaults", origin)
    declared = raw.get("profiles")
    if declared is None:
        declared = {}
    if not isinstance(declared, dict):
        raise ProfileError(
            f"{origin}: profiles must map profile names to mappings, got {_describe(declared)}"
        )
    profiles: dict[str, dict[str, Any]] = {}
    extends: dict[str, tuple[str, ...]] = {}
    executors: dict[str, dict[str, Any]] = {}
    storages: dict[str, dict[str, dict[str, Any]]] = {}
    for name, body in declared.items():
        if not isinstance(name, str) or not name.strip():
            raise ProfileError(f"{origin}: profile name {name!r} must be a non-empty string")
        content = _mapping(body, f"profiles.{name}", origin)
        executors[name] = _mapping(
            content.pop(_EXECUTOR, None), f"profiles.{name}.{_EXECUTOR}", origin
        )
        storages[name] = _storage(
            content.pop(_STORAGE, None), f"profiles.{name}.{_STORAGE}", origin
        )
        parents = content.pop(_EXTENDS, None)
        if parents is None:
            extends[name] = ()
        elif isinstance(parents, str):
            extends[name] = (parents,)
        elif isinstance(parents, list) and all(isinstance(p, str) for p in parents):
            extends[name] = tuple(parents)
        else:
            raise ProfileError(
                f"{origin}: profiles.{name}.extends must be a profile name or a list of names, "
                f"got {_describe(parents)}"
            )
        profiles[name] = content
    for name, parents in extends.items():
        for parent in parents:
            if parent not in profiles:
                raise ProfileError(
                    f"{origin}: profile {name!r} extends unknown profile {parent!r}"
                    f"{_suggest(parent, profiles)}; known profiles: {_known(profiles)}"
                )
    return ConfigFile(
        path=path,
        defaults=defaults,
        profiles=profiles,
        extends=extends,
        executor=_mapping(raw.get(_EXECUTOR), _EXECUTOR, origin),
        executors=executors,
        storage=_storage(raw.get(_STORAGE), _STORAGE, origin),
        storages=storages,
    )


def read_config(path: Path) -> ConfigFile:
    """Read and validate a config file."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ProfileUsageError(f"config file {path} does not exist") from None
    except IsADirectoryError:
        raise ProfileUsageError(f"config file {path} is a directory, not a YAML file") from None
    except UnicodeDecodeError as exc:
        raise ProfileError(f"{path} is not UTF-8 text ({exc.reason})") from None
    except OSError as exc:
        raise ProfileError(f"cannot read {path}: {exc.strerror}") from None
    return parse_config(text, path)


def _known(profiles: Iterable[str]) -> str:
    names = sorted(profiles)
    return ", ".join(names) if names else "none (the file defines no profiles)"


def _suggest(name: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


# -- merging -----------------------------------------------------------------------------------


def deep_merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``base`` updated by ``over``: mappings merge key by key, anything else (lists
    included) replaces. Neither input is modified or shared with the result."""
    merged: dict[str, Any] = copy.deepcopy(dict(base))
    stack: list[tuple[dict[str, Any], Mapping[str, Any]]] = [(merged, over)]
    while stack:
        target, source = stack.pop()
        for key, value in source.items():
            current = target.get(key)
            if isinstance(value, Mapping) and isinstance(current, dict):
                stack.append((current, value))
            else:
                target[key] = copy.deepcopy(value)
    return merged


def _linearize(config: ConfigFile, name: str) -> list[str]:
    """The profiles to merge for ``name``, parents first; a cycle is an error naming it."""
    order: list[str] = []
    done: set[str] = set()
    # Depth-first without recursion: (profile, path from the requested profile to it).
    stack: list[tuple[str, tuple[str, ...], bool]] = [(name, (name,), False)]
    while stack:
        current, path, expanded = stack.pop()
        if expanded:
            if current not in done:
                done.add(current)
                order.append(current)
            continue
        if current in done:
            continue
        stack.append((current, path, True))
        for parent in reversed(config.extends[current]):
            if parent in path:
                cycle = " -> ".join((*path[path.index(parent) :], parent))
                raise ProfileError(f"{config.path}: profiles extend each other in a cycle: {cycle}")
            stack.append((parent, (*path, parent), False))
    return order


def resolve(config: ConfigFile | None, name: str | None) -> dict[str, Any]:
    """The merged config of profile ``name`` (or of the defaults alone when ``name`` is None)."""
    if config is None:
        if name is not None:
            raise ProfileUsageError(
                f"--profile {name} needs a {CONFIG_FILE_NAME}, and none was found; "
                f"pass --config FILE or create {CONFIG_FILE_NAME} next to the script"
            )
        return {}
    merged = deep_merge({}, config.defaults)
    if name is None:
        return merged
    if name not in config.profiles:
        raise ProfileUsageError(
            f"unknown profile {name!r} in {config.path}{_suggest(name, config.profiles)}; "
            f"known profiles: {_known(config.profiles)}"
        )
    for profile in _linearize(config, name):
        merged = deep_merge(merged, config.profiles[profile])
    return merged


def resolve_executor(config: ConfigFile | None, name: str | None) -> dict[str, Any]:
    """The merged ``executor:`` settings of profile ``name``: the top-level section, then the
    sections of its ``extends`` chain and its own (an unknown profile was refused by
    :func:`resolve`)."""
    if config is None:
        return {}
    merged = deep_merge({}, config.executor)
    if name is None or name not in config.profiles:
        return merged
    for profile in _linearize(config, name):
        merged = deep_merge(merged, config.executors.get(profile, {}))
    return merged


def resolve_storage(config: ConfigFile | None, name: str | None) -> dict[str, dict[str, Any]]:
    """The merged ``storage:`` table of profile ``name``: the top-level section, then the sections
    of its ``extends`` chain and its own, option by option."""
    if config is None:
        return {}
    merged = deep_merge({}, config.storage)
    if name is None or name not in config.profiles:
        return merged
    for profile in _linearize(config, name):
        merged = deep_merge(merged, config.storages.get(profile, {}))
    return merged


# -- storage options in this process and its children ------------------------------------------


def apply_storage(profile: Profile) -> None:
    """Open workspaces with ``profile.storage`` from now on, in this process and in the
    ``molexp execute`` processes it starts (which read :data:`STORAGE_DEFAULTS_ENV`)."""
    if not profile.storage:
        os.environ.pop(STORAGE_DEFAULTS_ENV, None)
        return
    from molexp.workspace.storage import set_default_storage_options

    set_default_storage_options(profile.storage)
    os.environ[STORAGE_DEFAULTS_ENV] = json.dumps(profile.storage)


def apply_inherited_storage() -> None:
    """Apply the ``storage:`` table a parent ``molexp run`` passed in :data:`STORAGE_DEFAULTS_ENV`
    (nothing when it is unset)."""
    raw = os.environ.get(STORAGE_DEFAULTS_ENV, "").strip()
    if not raw:
        return
    from molexp.workspace.storage import set_default_storage_options

    try:
        table = json.loads(raw)
    except ValueError as exc:  # it may hold credentials: name the place, not the text
        raise CliError(
            f"the environment variable {STORAGE_DEFAULTS_ENV} is not valid JSON ({exc}); it is "
            "set by `molexp run` for the processes it starts: unset it"
        ) from None
    set_default_storage_options(table)


# -- overrides -------------------------------------------------------------------------------------


def parse_value(raw: str, where: str, origin: str, *, headline: str, depth: int = 1) -> Any:
    """``raw`` typed as YAML (``1e-3`` is a float, ``m3`` a string) and checked to be a JSON value
    ``depth`` mappings deep; a :class:`ProfileUsageError` starting with ``headline`` otherwise."""
    import yaml

    try:
        value = yaml.load(raw, Loader=_loader())
    except yaml.YAMLError as exc:
        _, column, problem = _yaml_problem(exc)
        at = f" at character {column}" if column is not None else ""
        raise ProfileUsageError(
            f"{headline}: the value {raw!r} is not valid YAML{at}: {problem}"
        ) from None
    except _CONSTRUCTOR_ERRORS as exc:
        raise ProfileUsageError(
            f"{headline}: the value {raw!r} is not valid YAML: {_constructor_problem(exc)}"
        ) from None
    try:
        _json_value(value, where, origin, depth=depth)
    except ProfileError as exc:
        raise ProfileUsageError(str(exc)) from None
    return value


def parse_override(text: str) -> tuple[tuple[str, ...], Any]:
    """``"a.b=value"`` as ``(("a", "b"), value)``, the value typed as YAML (``1e-3`` is a float)."""
    key, sep, raw = text.partition("=")
    path = tuple(part.strip() for part in key.split("."))
    if not sep or not key.strip() or not all(path):
        raise ProfileUsageError(
            f"bad --override {text!r}: expected KEY=VALUE with a dotted key, e.g. train.lr=0.01"
        )
    try:
        key.encode("utf-8")
    except UnicodeEncodeError:  # bytes the terminal's encoding could not decode
        raise ProfileUsageError(
            f"bad --override {text!r}: the key {key!r} is not valid UTF-8 text"
        ) from None
    # The value sits len(path) mappings deep in the config.
    value = parse_value(
        raw,
        ".".join(path),
        f"--override {text!r}",
        headline=f"bad --override {text!r}",
        depth=len(path),
    )
    return path, value


def apply_override(config: dict[str, Any], path: Sequence[str], value: Any, text: str) -> None:
    """Set ``config[path[0]][path[1]]... = value``, creating missing mappings on the way."""
    target = config
    for depth, part in enumerate(path[:-1]):
        child = target.get(part)
        if child is None:
            child = target[part] = {}
        elif not isinstance(child, dict):
            where = ".".join(path[: depth + 1])
            raise ProfileUsageError(
                f"bad --override {text!r}: {where} is {_describe(child)}, not a mapping, so it has "
                f"no key {path[depth + 1]!r}"
            )
        target = child
    target[path[-1]] = copy.deepcopy(value)


# -- the entry point -------------------------------------------------------------------------------


def find_config(search: Iterable[Path]) -> Path | None:
    """The first ``molcfg.yaml`` in ``search`` (directories), or None."""
    for directory in search:
        candidate = directory / CONFIG_FILE_NAME
        if candidate.is_file():
            return candidate
    return None


def load_profile(
    name: str | None = None,
    *,
    config: Path | None = None,
    overrides: Sequence[str] = (),
    search: Iterable[Path] = (),
) -> Profile:
    """Resolve the active profile.

    ``config`` is an explicit file (``--config``); otherwise the first ``molcfg.yaml`` found in
    ``search`` is used, if any. Without a file, only ``overrides`` make up the config (and asking
    for a profile by name is an error).
    """
    parsed = [(text, *parse_override(text)) for text in overrides]
    path = config if config is not None else find_config(search)
    config_file = read_config(path) if path is not None else None
    merged = resolve(config_file, name)
    for text, key, value in parsed:
        apply_override(merged, key, value, text)
    return Profile(
        name=name,
        config=merged,
        source=path,
        overrides=tuple(overrides),
        executor=resolve_executor(config_file, name),
        storage=resolve_storage(config_file, name),
    )
