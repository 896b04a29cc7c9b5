"""Importing a user's script the way ``molexp run`` and ``molexp execute`` do.

The script is imported as a module, not run as ``__main__``: its ``if __name__ == "__main__":``
block does not run behind the CLI's back. Its directory goes first on ``sys.path`` (as when Python
runs a script), ``sys.argv`` is ``[script]`` while it is imported, and the workspace registrations
of any earlier import are cleared first, so what is registered afterwards is this script's.

When the script raises, the user sees the script's own traceback, labelled as such, and none of
molexp's frames; when a workspace's storage fails it (an unknown storage option, an unreachable
S3 endpoint), one line saying why.
"""

from __future__ import annotations

import hashlib
import importlib.util
import keyword
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType, TracebackType
from typing import TYPE_CHECKING

from molexp.cli._errors import CliError, ScriptImportError

if TYPE_CHECKING:
    from molexp.workspace import Workspace

FALLBACK_MODULE_NAME = "__molexp_script__"


@dataclass(frozen=True)
class LoadedScript:
    """A script imported by the CLI and the workspaces it registered with ``me.entry(ws)``."""

    path: Path
    """The script's absolute path."""
    sha256: str
    """The sha256 of the script's source bytes, as imported."""
    module: ModuleType
    workspaces: list[Workspace]


def source_hash(path: Path) -> str:
    """The sha256 (hex) of a file's bytes."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _module_name(path: Path) -> str:
    """The script's stem when that names no other module; a private name otherwise."""
    stem = path.stem
    if not stem.isidentifier() or keyword.iskeyword(stem) or stem in sys.modules:
        return FALLBACK_MODULE_NAME
    try:
        if importlib.util.find_spec(stem) is not None:
            return FALLBACK_MODULE_NAME
    except (ImportError, ValueError):
        return FALLBACK_MODULE_NAME
    return stem


def _script_traceback(exc: BaseException, path: Path) -> str:
    """The traceback of ``exc`` from the script's first frame on (none of the CLI's frames)."""
    tb: TracebackType | None = exc.__traceback__
    script = str(path)
    while tb is not None and tb.tb_frame.f_code.co_filename != script:
        tb = tb.tb_next
    if tb is None:  # a SyntaxError, or a failure before the script's code ran
        return "".join(traceback.format_exception_only(type(exc), exc))
    return "".join(traceback.format_exception(type(exc), exc, tb))


def import_script(script: Path) -> LoadedScript:
    """Import ``script`` and return it with the workspaces it registered (maybe none)."""
    from molexp.workspace import StorageError, clear_entries, registered_workspaces

    path = script.expanduser().resolve()
    if not path.is_file():
        raise CliError(f"script {script} does not exist (or is not a file)")
    try:
        digest = source_hash(path)
    except OSError as exc:
        raise CliError(f"cannot read script {script}: {exc.strerror}") from None
    name = _module_name(path)
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise CliError(f"cannot import {script}: not a Python source file")
    module = importlib.util.module_from_spec(spec)
    clear_entries()
    directory = str(path.parent)
    if directory not in sys.path:
        sys.path.insert(0, directory)
    saved_argv = sys.argv
    sys.argv = [str(path)]
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except KeyboardInterrupt:
        raise
    except SystemExit as exc:
        sys.modules.pop(name, None)
        raise ScriptImportError(
            f"the script {script} called sys.exit({exc.code!r}) while being imported; move that "
            'code under `if __name__ == "__main__":`',
            "",
        ) from None
    except BaseException as exc:
        sys.modules.pop(name, None)
        if isinstance(exc, StorageError):  # a store it could not open or use: the message says why
            raise CliError(f"the script {script} failed to import: {exc}") from None
        raise ScriptImportError(
            f"the script {script} failed to import; its traceback (from the script, not molexp):",
            _script_traceback(exc, path),
        ) from None
    finally:
        sys.argv = saved_argv
    return LoadedScript(path=path, sha256=digest, module=module, workspaces=registered_workspaces())
