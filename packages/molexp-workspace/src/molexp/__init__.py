"""molexp: a research-execution system whose workspace keeps a durable record of every run.

``import molexp as me`` gives the workspace API; sibling distributions add subpackages
(``molexp.workflow``, ``molexp.cli``) to this same package.
"""

__path__ = __import__("pkgutil").extend_path(__path__, __name__)

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
