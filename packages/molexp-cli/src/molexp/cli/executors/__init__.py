"""Where ``molexp run`` executes runs: ``--executor local|dask|slurm``.

* ``local``: in this process, or in ``--jobs N`` child processes (:mod:`._local`);
* ``dask``: one Dask task per run on a ``dask.distributed`` cluster (:mod:`._dask`);
* ``slurm``: one ``sbatch`` job per run, or one job array for the sweep (:mod:`._slurm`).

Every remote unit of work is ``molexp execute RUN``, so a run executed anywhere is the same
record. The executor and its options come from ``molcfg.yaml`` (an ``executor:`` section, see
:mod:`._settings`) and from the flags of ``molexp run``, which win. Importing this package imports
neither Dask nor the workspace layer.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from molexp.cli.executors._base import (
        Batch,
        ExecutionReport,
        Executor,
        Submission,
        outcome_from_record,
    )
    from molexp.cli.executors._options import executor_options, resolve_settings
    from molexp.cli.executors._settings import (
        CONFIG_SECTION,
        EXECUTOR_KINDS,
        DaskSettings,
        ExecutorConfigError,
        ExecutorFlags,
        ExecutorSettings,
        SlurmSettings,
        apply_flags,
        settings_from_config,
    )
    from molexp.cli.executors._worker import install_termination_handler, worker_labels

# Loaded on first use, so that importing one executor module (e.g. the job listing of
# `molexp runs list`) does not pay for the settings, options and worker modules.
_LAZY: dict[str, str] = {
    **dict.fromkeys(
        ["Batch", "ExecutionReport", "Executor", "Submission", "outcome_from_record"],
        "molexp.cli.executors._base",
    ),
    **dict.fromkeys(["executor_options", "resolve_settings"], "molexp.cli.executors._options"),
    **dict.fromkeys(
        [
            "CONFIG_SECTION",
            "EXECUTOR_KINDS",
            "DaskSettings",
            "ExecutorConfigError",
            "ExecutorFlags",
            "ExecutorSettings",
            "SlurmSettings",
            "apply_flags",
            "settings_from_config",
        ],
        "molexp.cli.executors._settings",
    ),
    **dict.fromkeys(
        ["install_termination_handler", "worker_labels"], "molexp.cli.executors._worker"
    ),
}


def __getattr__(name: str) -> Any:
    """Import the module that defines ``name`` on first use."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def make_executor(settings: ExecutorSettings) -> Executor:
    """The executor ``settings.kind`` names."""
    if settings.kind == "dask":
        from molexp.cli.executors._dask import DaskExecutor

        return DaskExecutor(settings)
    if settings.kind == "slurm":
        from molexp.cli.executors._slurm import SlurmExecutor

        return SlurmExecutor(settings)
    from molexp.cli.executors._local import LocalExecutor

    return LocalExecutor(settings)


__all__ = [
    "CONFIG_SECTION",
    "EXECUTOR_KINDS",
    "Batch",
    "DaskSettings",
    "ExecutionReport",
    "Executor",
    "ExecutorConfigError",
    "ExecutorFlags",
    "ExecutorSettings",
    "SlurmSettings",
    "Submission",
    "apply_flags",
    "executor_options",
    "install_termination_handler",
    "make_executor",
    "outcome_from_record",
    "resolve_settings",
    "settings_from_config",
    "worker_labels",
]
