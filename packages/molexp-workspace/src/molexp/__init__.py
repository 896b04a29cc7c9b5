"""molexp: a research-execution system whose workspace keeps a durable record of every run.

``import molexp as me`` gives the workspace API; sibling distributions add subpackages
(``molexp.workflow``, ``molexp.cli``) to this same package.
"""

__path__ = __import__("pkgutil").extend_path(__path__, __name__)

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from molexp.workspace import (
        ExecutionRecord,
        Experiment,
        GridSpace,
        ParamSpace,
        Project,
        Run,
        RunContext,
        RunMetadata,
        RunStatus,
        UniformSpace,
        Workspace,
        entry,
    )

__all__ = [
    "ExecutionRecord",
    "Experiment",
    "GridSpace",
    "ParamSpace",
    "Project",
    "Run",
    "RunContext",
    "RunMetadata",
    "RunStatus",
    "UniformSpace",
    "Workspace",
    "entry",
]


def __getattr__(name: str) -> Any:
    """Import the workspace API (every public name of ``molexp.workspace``) and subpackages such
    as ``molexp.workflow`` on first use."""
    if not name.startswith("_"):
        workspace = importlib.import_module("molexp.workspace")
        if name in __all__ or name in workspace.__all__:
            value = getattr(workspace, name)
            globals()[name] = value
            return value
        try:
            return importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"{__name__}.{name}":
                raise
    raise AttributeError(f"module 'molexp' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
