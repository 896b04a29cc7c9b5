"""The facts about this process that an attempt records: host, user, Python, platform, and the
versions of the installed distributions.

Everything here is cheap after the first call in a process: the host facts never change and are
cached; the distributions are read from the *names* of the ``*.dist-info`` directories on
``sys.path`` (``name-version.dist-info``), which costs a directory listing where parsing every
distribution's metadata with ``importlib.metadata`` costs a hundred milliseconds or more, and the
result is cached until a directory on ``sys.path`` changes (an install adds or removes a
``dist-info`` directory, which changes the directory's modification time). Those times are looked
at again when ``sys.path`` itself changed or a second has passed, not on every call: a process
starting many runs a second pays one ``stat`` per ``sys.path`` entry a second, not per run.

Environment variables are never read here (the user name comes from the password database, not
from ``$USER``).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
import threading
import time
from dataclasses import dataclass
from functools import cache

_NORMALIZE = re.compile(r"[-_.]+")
_cache_lock = threading.Lock()
_cached: tuple[tuple[tuple[str, int], ...], Environment] | None = None
_checked: tuple[tuple[str, ...], float] | None = None
"""``sys.path`` and the monotonic time when the cached scan was last found current."""
RECHECK_SECONDS = 1.0


@dataclass(frozen=True)
class Environment:
    """The installed distributions, with their serialized form ready to keep beside a run."""

    distributions: dict[str, str]
    """Canonical name → version, sorted by name."""
    payload: bytes
    """``{"schema_version": 1, "distributions": {...}}`` as indented JSON."""
    digest: str
    """``sha256:<hex>`` of the canonical JSON of ``distributions``."""
    payload_hash: str
    """``sha256:<hex>`` of ``payload``."""


def normalize_name(name: str) -> str:
    """A distribution name in its canonical form (PEP 503): lowercase, runs of ``-_.`` as ``-``."""
    return _NORMALIZE.sub("-", name).lower()


@cache
def user_name() -> str | None:
    """The operating-system account running this process, or None where it cannot be told
    without reading the environment."""
    try:
        import pwd

        return pwd.getpwuid(os.getuid()).pw_name
    except (ImportError, KeyError, OSError):
        return None


@cache
def platform_text() -> str:
    """``<system>-<release>-<machine>`` (with the C library where known), e.g.
    ``Linux-6.1.0-x86_64-glibc2.36``; read from ``os.uname`` rather than ``platform.platform()``,
    which reads the interpreter binary and costs milliseconds."""
    if hasattr(os, "uname"):
        uname = os.uname()
        text = f"{uname.sysname}-{uname.release}-{uname.machine}"
    else:  # Windows
        import platform

        text = f"{platform.system()}-{platform.release()}-{platform.machine()}"
    try:
        libc = os.confstr("CS_GNU_LIBC_VERSION")
    except (AttributeError, ValueError, OSError):
        libc = None
    if libc:
        text += "-" + libc.replace(" ", "")
    return text


def python_version() -> str:
    """``major.minor.micro`` (with the release level when not final)."""
    info = sys.version_info
    text = f"{info.major}.{info.minor}.{info.micro}"
    if info.releaselevel != "final":
        text += f"{info.releaselevel[0]}{info.serial}"
    return text


def _path_key() -> tuple[tuple[str, int], ...]:
    key: list[tuple[str, int]] = []
    for entry in sys.path:
        try:
            key.append((entry, os.stat(entry or ".").st_mtime_ns))
        except OSError:
            continue
    return tuple(key)


def _egg_info_version(path: str) -> str | None:
    """The Version line of an ``*.egg-info`` (a directory with PKG-INFO, or the file itself)."""
    target = os.path.join(path, "PKG-INFO") if os.path.isdir(path) else path
    try:
        with open(target, encoding="utf-8", errors="replace") as stream:
            for line in stream:
                if line.startswith("Version:"):
                    return line.partition(":")[2].strip() or None
                if not line.strip():
                    break
    except OSError:
        return None
    return None


def _scan() -> dict[str, str]:
    found: dict[str, str] = {}
    for entry in sys.path:
        directory = entry or "."
        try:
            names = os.listdir(directory)
        except OSError:  # not a directory (a zip), or gone
            continue
        for name in names:
            if name.endswith(".dist-info"):
                dist, _, version = name[: -len(".dist-info")].partition("-")
            elif name.endswith(".egg-info"):
                parts = name[: -len(".egg-info")].split("-")
                dist = parts[0]
                version = parts[1] if len(parts) > 1 else ""
                if not version:
                    version = _egg_info_version(os.path.join(directory, name)) or ""
            else:
                continue
            if dist and version:
                found.setdefault(normalize_name(dist), version)  # first on sys.path wins
    return dict(sorted(found.items()))


def environment() -> Environment:
    """Every installed distribution visible on ``sys.path`` (see :class:`Environment`).

    Cached per process until a ``sys.path`` directory changes (looked at once a second).
    """
    global _cached, _checked
    paths = tuple(sys.path)
    now = time.monotonic()
    with _cache_lock:
        if (
            _cached is not None
            and _checked is not None
            and _checked[0] == paths
            and now - _checked[1] < RECHECK_SECONDS
        ):
            return _cached[1]
    key = _path_key()
    with _cache_lock:
        if _cached is not None and _cached[0] == key:
            _checked = (paths, now)
            return _cached[1]
    found = _scan()
    payload = json.dumps({"schema_version": 1, "distributions": found}, indent=1).encode() + b"\n"
    canonical = json.dumps(found, sort_keys=True, separators=(",", ":")).encode()
    env = Environment(
        found,
        payload,
        f"sha256:{hashlib.sha256(canonical).hexdigest()}",
        f"sha256:{hashlib.sha256(payload).hexdigest()}",
    )
    with _cache_lock:
        _cached = (key, env)
        _checked = (paths, now)
    return env


def distributions() -> dict[str, str]:
    """Every installed distribution visible on ``sys.path``: canonical name → version, sorted."""
    return dict(environment().distributions)
