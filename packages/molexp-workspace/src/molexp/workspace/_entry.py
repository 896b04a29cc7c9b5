"""Script registration: ``me.entry(ws)`` tells ``molexp run`` which workspaces a script defines."""

from __future__ import annotations

import threading

from molexp.workspace._workspace import Workspace

_registered: list[Workspace] = []
_lock = threading.Lock()


def entry(workspace: Workspace) -> Workspace:
    """Register ``workspace`` for discovery by the CLI; returns it. Registering twice is a no-op."""
    if not isinstance(workspace, Workspace):
        raise TypeError(f"entry() takes a molexp.Workspace, got {type(workspace).__name__}")
    with _lock:
        if all(ws is not workspace for ws in _registered):
            _registered.append(workspace)
    return workspace


def registered_workspaces() -> list[Workspace]:
    """The workspaces registered with :func:`entry` in this process, in registration order."""
    with _lock:
        return list(_registered)


def clear_entries() -> None:
    """Forget every registration (the CLI calls this before importing a script)."""
    with _lock:
        _registered.clear()
