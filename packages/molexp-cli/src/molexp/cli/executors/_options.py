"""The executor flags of ``molexp run``, as one decorator.

``@executor_options`` adds ``--executor``, ``--address``, ``--array``, ``--partition``,
``--time``, ``--cpus``, ``--mem``, ``--gpus``, ``--account`` and ``--wait`` to a click command and
hands the command one ``executor_flags`` argument (an :class:`ExecutorFlags`) instead of ten.
:func:`resolve_settings` merges them over the profile's ``executor:`` section.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar, cast

import click

from molexp.cli.executors._settings import (
    EXECUTOR_KINDS,
    ExecutorFlags,
    ExecutorSettings,
    apply_flags,
    settings_from_config,
)

if TYPE_CHECKING:
    from molexp.cli._profiles import Profile

F = TypeVar("F", bound=Callable[..., Any])

_OPTIONS = (
    click.option(
        "--executor",
        "executor_kind",
        type=click.Choice(EXECUTOR_KINDS),
        help="Where runs execute: local (default), dask or slurm. Also `executor: {kind: ...}` "
        "in molcfg.yaml.",
    ),
    click.option(
        "--address",
        metavar="URL",
        help="dask: the scheduler, e.g. tcp://10.0.0.5:8786 (default: a LocalCluster of --jobs "
        "worker processes started for this command).",
    ),
    click.option(
        "--array/--no-array",
        "array",
        default=None,
        help="slurm: submit the runs as one job array, at most --jobs at once (default: one job "
        "per run).",
    ),
    click.option("--partition", metavar="NAME", help="slurm: the partition (queue)."),
    click.option("--time", "time_limit", metavar="LIMIT", help="slurm: time limit per run."),
    click.option(
        "--cpus", type=click.IntRange(min=1), help="slurm/dask: CPUs per run (Dask resource CPU)."
    ),
    click.option(
        "--mem", metavar="SIZE", help="slurm/dask: memory per run, e.g. 4G (Dask resource MEMORY)."
    ),
    click.option(
        "--gpus", metavar="[TYPE:]N", help="slurm/dask: GPUs per run (Dask resource GPU)."
    ),
    click.option("--account", metavar="NAME", help="slurm: the account to charge."),
    click.option(
        "--wait/--no-wait",
        "wait",
        default=None,
        help="slurm: follow the jobs until every run ended, with progress and the exit code of "
        "a local run (default: submit and return).",
    ),
)


def executor_options(fn: F) -> F:
    """Add the executor flags to a click command; it receives them as ``executor_flags``."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        flags = ExecutorFlags(
            kind=kwargs.pop("executor_kind"),
            address=kwargs.pop("address"),
            array=kwargs.pop("array"),
            partition=kwargs.pop("partition"),
            time=kwargs.pop("time_limit"),
            cpus=kwargs.pop("cpus"),
            mem=kwargs.pop("mem"),
            gpus=kwargs.pop("gpus"),
            account=kwargs.pop("account"),
            wait=kwargs.pop("wait"),
        )
        return fn(*args, executor_flags=flags, **kwargs)

    decorated: Any = wrapper
    for option in reversed(_OPTIONS):
        decorated = option(decorated)
    return cast(F, decorated)


def resolve_settings(
    profile: Profile, flags: ExecutorFlags, *, jobs: int | None
) -> ExecutorSettings:
    """The executor settings of one ``molexp run``: the profile's ``executor:`` section, then
    the flags (``jobs`` is ``--jobs`` when it was given, else None)."""
    origin = str(profile.source) if profile.source is not None else "molcfg.yaml"
    settings = settings_from_config(profile.executor, origin=origin)
    if jobs is not None:
        flags = dataclasses.replace(flags, jobs=jobs)
    return apply_flags(settings, flags)
