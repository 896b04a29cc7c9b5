"""Executor settings: the ``executor:`` section of ``molcfg.yaml`` and the flags of ``molexp run``.

``molcfg.yaml`` may say where runs execute, for every profile (a top-level ``executor:``) and per
profile (``profiles.NAME.executor``, merged over the top-level one and over the profiles it
``extends``). These settings are *not* part of the config tasks see, so they never change a run's
``config_hash`` or id: the same run executes the same way wherever it executes::

    version: 1
    executor:
      kind: local              # local | dask | slurm
    profiles:
      cluster:
        executor:
          kind: slurm
          wait: true
          cpus: 4
          mem: 8G
          slurm:
            partition: gpu
            time: "02:00:00"
            array: true
            sbatch: ["--qos=normal", "--constraint=avx2"]   # extra #SBATCH lines
            setup: ["module load python/3.11"]               # shell lines before each run
      dask:
        executor:
          kind: dask
          dask: {address: "tcp://10.0.0.5:8786", resources: {GPU: 1}}

Flags given to ``molexp run`` (``--executor``, ``--address``, ``--partition``...) override the
file. Bad settings are clear errors that name the file and the key.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from molexp.cli._errors import CliError, UsageError

EXECUTOR_KINDS = ("local", "dask", "slurm")
CONFIG_SECTION = "executor"

_COMMON_KEYS = ("kind", "wait", "jobs", "cpus", "mem", "gpus")
_DASK_KEYS = ("address", "workers", "processes", "resources", "worker_timeout")
_SLURM_KEYS = (
    "partition",
    "time",
    "account",
    "array",
    "array_limit",
    "sbatch",
    "setup",
    "python",
    "log_dir",
    "job_name",
    "poll_interval",
    "command_timeout",
    "retries",
)
_MEM = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]?)B?\s*$", re.IGNORECASE)
_TIME = re.compile(r"^(?:\d+-)?\d+(?::\d+){0,2}$|^(?:\d+-\d+)$|^(?:UNLIMITED|INFINITE)$")
_UNIT = {"": 1024**2, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}


class ExecutorConfigError(CliError):
    """A bad ``executor:`` section or executor flag."""


@dataclass(frozen=True)
class DaskSettings:
    """Where ``--executor dask`` sends runs."""

    address: str | None = None
    """A scheduler (``tcp://host:8786``); None starts a ``LocalCluster`` for the command."""
    workers: int | None = None
    """Worker processes of that ``LocalCluster`` when ``--jobs`` is not given (default: the CPU
    count)."""
    resources: dict[str, float] = field(default_factory=dict)
    """Abstract Dask resources each run needs (``{"GPU": 1}``): only workers started with
    ``--resources`` that offer them run it."""
    worker_timeout: float = 120.0
    """Seconds to reach the scheduler, and to wait for a first worker, before giving up."""
    processes: bool = False
    """The ``LocalCluster``'s workers are processes (on 127.0.0.1) rather than threads of
    ``molexp run``; every run executes in its own ``molexp execute`` process either way."""


@dataclass(frozen=True)
class SlurmSettings:
    """How ``--executor slurm`` submits runs."""

    partition: str | None = None
    time: str | None = None
    account: str | None = None
    array: bool = False
    """Submit the runs as one job array (else one job per run)."""
    array_limit: int | None = None
    """At most this many array tasks at once (``--array=0-N%LIMIT``)."""
    sbatch: tuple[str, ...] = ()
    """Extra ``#SBATCH`` lines (``--qos=normal``; the ``#SBATCH`` prefix is optional)."""
    setup: tuple[str, ...] = ()
    """Shell lines the job runs before ``molexp execute`` (``module load ...``)."""
    python: str | None = None
    """The Python that runs ``-m molexp.cli execute`` on the nodes (default: this one)."""
    log_dir: str = ".molexp/slurm"
    """Where job scripts and job output go (relative to the current directory); it must be
    reachable from the nodes."""
    job_name: str = "molexp"
    poll_interval: float = 2.0
    """Seconds between two looks at the queue while following jobs (``--wait``)."""
    command_timeout: float = 30.0
    """Seconds before an ``sbatch``/``squeue``/``scancel`` call is given up (then retried)."""
    retries: int = 3
    """Further tries of a Slurm command that timed out or met a transient error."""


@dataclass(frozen=True)
class ExecutorSettings:
    """Everything that decides where and how the runs of one ``molexp run`` execute."""

    kind: str = "local"
    jobs: int | None = None
    """Runs at once: child processes (local), ``LocalCluster`` workers (dask), the array
    concurrency limit (slurm). None: the executor's default."""
    wait: bool = False
    """Follow submitted jobs to their end (slurm; local and dask always do)."""
    cpus: int | None = None
    mem: str | None = None
    gpus: str | None = None
    dask: DaskSettings = field(default_factory=DaskSettings)
    slurm: SlurmSettings = field(default_factory=SlurmSettings)

    def dask_resources(self) -> dict[str, float]:
        """The Dask resources one run needs: ``dask.resources`` plus ``CPU``/``GPU``/``MEMORY``
        (bytes) from ``cpus``/``gpus``/``mem`` when given."""
        resources = dict(self.dask.resources)
        if self.cpus is not None:
            resources.setdefault("CPU", float(self.cpus))
        if self.gpus is not None:
            count = self.gpus.rsplit(":", 1)[-1]
            resources.setdefault("GPU", float(count) if count.isdigit() else 1.0)
        if self.mem is not None:
            resources.setdefault("MEMORY", float(memory_bytes(self.mem)))
        return resources


def memory_bytes(text: str) -> int:
    """``"4G"`` (Slurm's notation: K, M, G, T; no unit is MiB) in bytes."""
    match = _MEM.match(text)
    if match is None:
        raise ExecutorConfigError(
            f"memory {text!r} is not a size: write a number with K, M, G or T (e.g. 4G, 500M)"
        )
    return int(float(match[1]) * _UNIT[match[2].upper()])


# -- reading the config section -------------------------------------------------------------------


def _unknown(keys: Sequence[str], known: Sequence[str], where: str) -> None:
    for key in keys:
        if key not in known:
            close = difflib.get_close_matches(str(key), list(known), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ExecutorConfigError(
                f"{where}: unknown key {key!r}{hint}; known keys: {', '.join(known)}"
            )


def _typed(value: Any, kind: type | tuple[type, ...], where: str, what: str) -> Any:
    if isinstance(value, bool) and kind is not bool and bool not in _as_tuple(kind):
        raise ExecutorConfigError(f"{where} must be {what}, got {value!r}")
    if not isinstance(value, kind):
        raise ExecutorConfigError(f"{where} must be {what}, got {value!r}")
    return value


def _as_tuple(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def _positive(value: Any, where: str, *, integer: bool = True) -> Any:
    kind: type | tuple[type, ...] = int if integer else (int, float)
    what = "a positive integer" if integer else "a positive number"
    _typed(value, kind, where, what)
    if value <= 0:
        raise ExecutorConfigError(f"{where} must be {what}, got {value!r}")
    return value


def _lines(value: Any, where: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ExecutorConfigError(f"{where} must be a list of strings, got {value!r}")
    for line in value:
        if "\n" in line:
            raise ExecutorConfigError(f"{where}: {line!r} spans several lines; give one per item")
    return tuple(value)


def check_kind(kind: Any, where: str) -> str:
    """``kind`` if it names an executor; a clear error otherwise."""
    if kind not in EXECUTOR_KINDS:
        raise ExecutorConfigError(
            f"{where}: unknown executor {kind!r}; use one of {', '.join(EXECUTOR_KINDS)}"
        )
    return str(kind)


def check_time(value: str, where: str) -> str:
    """A Slurm time limit (``MM``, ``HH:MM:SS``, ``D-HH:MM``...)."""
    if not _TIME.match(value.strip()):
        raise ExecutorConfigError(
            f"{where}: {value!r} is not a Slurm time limit (MM, MM:SS, HH:MM:SS, D-HH, D-HH:MM, "
            "D-HH:MM:SS)"
        )
    return value.strip()


def _dask_section(raw: Mapping[str, Any], where: str) -> dict[str, Any]:
    _unknown(list(raw), _DASK_KEYS, where)
    out: dict[str, Any] = {}
    if raw.get("address") is not None:
        out["address"] = _typed(raw["address"], str, f"{where}.address", "a scheduler address")
    if raw.get("workers") is not None:
        out["workers"] = _positive(raw["workers"], f"{where}.workers")
    if raw.get("processes") is not None:
        out["processes"] = _typed(raw["processes"], bool, f"{where}.processes", "true or false")
    if raw.get("worker_timeout") is not None:
        out["worker_timeout"] = float(
            _positive(raw["worker_timeout"], f"{where}.worker_timeout", integer=False)
        )
    if raw.get("resources") is not None:
        resources = raw["resources"]
        if not isinstance(resources, Mapping):
            raise ExecutorConfigError(f"{where}.resources must map names to amounts")
        out["resources"] = {
            str(k): float(_positive(v, f"{where}.resources.{k}", integer=False))
            for k, v in resources.items()
        }
    return out


def _slurm_section(raw: Mapping[str, Any], where: str) -> dict[str, Any]:
    _unknown(list(raw), _SLURM_KEYS, where)
    out: dict[str, Any] = {}
    for key in ("partition", "account", "python", "log_dir", "job_name"):
        if raw.get(key) is not None:
            out[key] = _typed(raw[key], str, f"{where}.{key}", "a string")
    if raw.get("time") is not None:
        out["time"] = check_time(str(raw["time"]), f"{where}.time")
    if raw.get("array") is not None:
        out["array"] = _typed(raw["array"], bool, f"{where}.array", "true or false")
    if raw.get("array_limit") is not None:
        out["array_limit"] = _positive(raw["array_limit"], f"{where}.array_limit")
    for key in ("sbatch", "setup"):
        if raw.get(key) is not None:
            out[key] = _lines(raw[key], f"{where}.{key}")
    for key in ("poll_interval", "command_timeout"):
        if raw.get(key) is not None:
            out[key] = float(_positive(raw[key], f"{where}.{key}", integer=False))
    if raw.get("retries") is not None:
        retries = _typed(raw["retries"], int, f"{where}.retries", "a whole number")
        if retries < 0:
            raise ExecutorConfigError(f"{where}.retries must be 0 or more, got {retries}")
        out["retries"] = retries
    return out


def settings_from_config(section: Mapping[str, Any] | None, *, origin: str) -> ExecutorSettings:
    """The settings an ``executor:`` mapping (already merged) describes; ``origin`` names the
    file in messages."""
    if not section:
        return ExecutorSettings()
    where = f"{origin}: {CONFIG_SECTION}"
    if not isinstance(section, Mapping):
        raise ExecutorConfigError(f"{where} must be a mapping")
    _unknown(list(section), (*_COMMON_KEYS, "dask", "slurm"), where)
    values: dict[str, Any] = {}
    if section.get("kind") is not None:
        values["kind"] = check_kind(section["kind"], f"{where}.kind")
    if section.get("wait") is not None:
        values["wait"] = _typed(section["wait"], bool, f"{where}.wait", "true or false")
    if section.get("jobs") is not None:
        values["jobs"] = _positive(section["jobs"], f"{where}.jobs")
    if section.get("cpus") is not None:
        values["cpus"] = _positive(section["cpus"], f"{where}.cpus")
    if section.get("mem") is not None:
        mem = str(section["mem"])
        try:
            memory_bytes(mem)
        except ExecutorConfigError as exc:
            raise ExecutorConfigError(f"{where}.mem: {exc.message}") from None
        values["mem"] = mem
    if section.get("gpus") is not None:
        values["gpus"] = str(section["gpus"])
    for name, parse, cls in (
        ("dask", _dask_section, DaskSettings),
        ("slurm", _slurm_section, SlurmSettings),
    ):
        raw = section.get(name)
        if raw is None:
            continue
        if not isinstance(raw, Mapping):
            raise ExecutorConfigError(f"{where}.{name} must be a mapping")
        values[name] = cls(**parse(raw, f"{where}.{name}"))
    return ExecutorSettings(**values)


@dataclass(frozen=True)
class ExecutorFlags:
    """The executor flags of ``molexp run`` (None: not given)."""

    kind: str | None = None
    jobs: int | None = None
    wait: bool | None = None
    address: str | None = None
    array: bool | None = None
    partition: str | None = None
    time: str | None = None
    cpus: int | None = None
    mem: str | None = None
    gpus: str | None = None
    account: str | None = None


def apply_flags(settings: ExecutorSettings, flags: ExecutorFlags) -> ExecutorSettings:
    """``settings`` with every flag that was given taking precedence."""
    top: dict[str, Any] = {}
    for name in ("kind", "jobs", "wait", "cpus", "mem", "gpus"):
        value = getattr(flags, name)
        if value is not None:
            top[name] = value
    if flags.kind is not None:
        check_kind(flags.kind, "--executor")
    if flags.mem is not None:
        try:
            memory_bytes(flags.mem)
        except ExecutorConfigError as exc:
            raise UsageError(f"--mem: {exc.message}") from None
    dask = settings.dask
    if flags.address is not None:
        dask = replace(dask, address=flags.address)
    slurm = settings.slurm
    slurm_values: dict[str, Any] = {}
    for name in ("partition", "account", "array"):
        value = getattr(flags, name)
        if value is not None:
            slurm_values[name] = value
    if flags.time is not None:
        try:
            slurm_values["time"] = check_time(flags.time, "--time")
        except ExecutorConfigError as exc:
            raise UsageError(exc.message) from None
    if slurm_values:
        slurm = replace(slurm, **slurm_values)
    merged = replace(settings, dask=dask, slurm=slurm, **top)
    _check_consistent(merged, flags)
    return merged


def _check_consistent(settings: ExecutorSettings, flags: ExecutorFlags) -> None:
    """Flags that mean nothing for the chosen executor are usage errors, not silent no-ops."""
    kind = settings.kind
    slurm_only = [
        f"--{name}"
        for name in ("array", "partition", "time", "account")
        if getattr(flags, name) not in (None, False)
    ]
    if kind != "slurm" and slurm_only:
        raise UsageError(
            f"{', '.join(slurm_only)} only apply to --executor slurm (the executor is {kind})"
        )
    if kind != "dask" and flags.address is not None:
        raise UsageError(f"--address only applies to --executor dask (the executor is {kind})")
    if kind == "local" and any(getattr(flags, n) is not None for n in ("cpus", "mem", "gpus")):
        raise UsageError(
            "--cpus, --mem and --gpus ask a scheduler for resources; use them with "
            "--executor dask or --executor slurm"
        )
    if kind != "slurm" and flags.wait:
        raise UsageError(
            f"--wait only applies to --executor slurm ({kind} runs are always followed to "
            "their end)"
        )
