"""molexp.cli: the ``molexp`` command.

``molexp run SCRIPT`` executes the experiments a script binds to workflows, with profiles from
``molcfg.yaml`` and deterministic run ids; ``molexp execute RUN`` executes one existing run (what
schedulers and workers call); ``molexp ls``, ``runs``, ``logs``, ``assets`` and ``plugins``
inspect a workspace. The pieces are importable for tools that drive molexp themselves::

    from molexp.cli import derive_run_id, load_profile

    profile = load_profile("smoke", config=Path("molcfg.yaml"), overrides=["train.lr=1e-3"])
    profile.config, profile.config_hash

Importing this package loads click and nothing heavier: the workspace layer, the workflow runtime,
YAML and rich are imported by the commands that use them.
"""

from __future__ import annotations

from molexp.cli._app import main
from molexp.cli._errors import CliError, ScriptImportError, UsageError
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
