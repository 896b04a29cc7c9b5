"""Deterministic run ids: the same experiment, replica and profile always name the same run.

``molexp run`` derives each run's id from a canonical encoding (sorted keys at every depth) of
what makes the run what it is: its project and experiment, its parameters (the experiment's
params plus ``seed`` and ``replica``), the replica index, and the active profile's name and
config hash. Running the same command again finds the same runs; a changed profile, override or
parameter gives new ids, hence new runs, never a silent skip.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

RUN_ID_LENGTH = 12
"""Hex characters of the sha256 kept in a run id (48 bits: collisions are out of reach for any
realistic sweep, and the id still fits on a line)."""


def replica_parameters(params: Mapping[str, Any], *, seed: int, replica: int) -> dict[str, Any]:
    """A replica's parameters: the experiment's params with its ``seed`` and ``replica`` index.

    The replica's seed wins over a ``seed`` in the experiment's params.
    """
    return {**params, "seed": seed, "replica": replica}


def run_identity(
    *,
    project: str,
    experiment: str,
    parameters: Mapping[str, Any],
    replica: int,
    profile_name: str | None,
    config_hash: str,
) -> dict[str, Any]:
    """Everything a derived run id depends on, as one JSON object."""
    return {
        "project": project,
        "experiment": experiment,
        "parameters": dict(parameters),
        "replica": replica,
        "profile": profile_name,
        "config_hash": config_hash,
    }


def derive_run_id(
    *,
    project: str,
    experiment: str,
    parameters: Mapping[str, Any],
    replica: int,
    profile_name: str | None,
    config_hash: str,
) -> str:
    """The run id ``molexp run`` uses: the first 12 hex characters of the sha256 of the canonical
    JSON of :func:`run_identity`. Dict order never changes it."""
    from molexp.workspace import canonical_json

    identity = run_identity(
        project=project,
        experiment=experiment,
        parameters=parameters,
        replica=replica,
        profile_name=profile_name,
        config_hash=config_hash,
    )
    return hashlib.sha256(canonical_json(identity).encode()).hexdigest()[:RUN_ID_LENGTH]
