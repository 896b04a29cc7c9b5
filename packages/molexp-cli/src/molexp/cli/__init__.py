"""molexp.cli: the ``molexp`` command.

``molexp run SCRIPT`` executes the experiments a script binds to workflows, with profiles from
``molcfg.yaml`` and deterministic run ids; ``molexp execute RUN`` executes one existing run (what
schedulers and workers call); ``molexp ls``, ``runs``, ``logs``, ``assets`` and ``plugins``
inspect a workspace. The pieces are importable for tools that drive molexp themselves::

    from molexp.cli import derive_run_id, load_profile

    profile = load_profile("smoke", config=Path("molcfg.yaml"), overrides=["train.lr=1e-3"])
    profile.config, profile.config_hash

Importing this package loads click and nothing heavier: the profile and run-id helpers are
imported on first use (PEP 562), and the workspace layer, the workflow runtime, YAML and rich by
the commands that use them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from molexp.cli._app import main
from molexp.cli._errors import CliError, ScriptImportError, UsageError

if TYPE_CHECKING:
    from molexp.cli._profiles import (
        CONFIG_FILE_NAME,
        ConfigFile,
        Profile,
        ProfileError,
        ProfileUsageError,
        deep_merge,
        load_profile,
        parse_config,
        parse_override,
        read_config,
    )
    from molexp.cli._runids import RUN_ID_LENGTH, derive_run_id, replica_parameters, run_identity

_EXPORTS = {
    **dict.fromkeys(
        (
            "CONFIG_FILE_NAME",
            "ConfigFile",
            "Profile",
            "ProfileError",
            "ProfileUsageError",
            "deep_merge",
            "load_profile",
            "parse_config",
            "parse_override",
            "read_config",
        ),
        "molexp.cli._profiles",
    ),
    **dict.fromkeys(
        ("RUN_ID_LENGTH", "derive_run_id", "replica_parameters", "run_identity"),
        "molexp.cli._runids",
    ),
}
"""The names imported on first use, and the module that defines each."""


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'molexp.cli' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))


__all__ = [
    "CONFIG_FILE_NAME",
    "RUN_ID_LENGTH",
    "CliError",
    "ConfigFile",
    "Profile",
    "ProfileError",
    "ProfileUsageError",
    "ScriptImportError",
    "UsageError",
    "deep_merge",
    "derive_run_id",
    "load_profile",
    "main",
    "parse_config",
    "parse_override",
    "read_config",
    "replica_parameters",
    "run_identity",
]
