"""Shared settings of the reliability suite (fault injection and bad input, issue 8).

The kill -9 tests run a CI-sized number of trials by default and the long variant when asked
through the environment (never skipped: the count changes, the tests stay the same)::

    MOLEXP_RELIABILITY_TRIALS=500 python -m hatch run test tests/reliability/test_kill9.py

``MOLEXP_RELIABILITY_RUNS`` sets the runs per process of the 8-process test (default 1,000).

``MOLEXP_RELIABILITY_SEED`` changes the seed of the random kill instants (default 8).
"""

from __future__ import annotations

import os

import pytest


def env_int(name: str, default: int) -> int:
    """A positive integer from the environment, or ``default``."""
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = int(text)
    except ValueError:
        raise pytest.UsageError(f"{name} must be a whole number, got {text!r}") from None
    if value < 1:
        raise pytest.UsageError(f"{name} must be >= 1, got {value}")
    return value


@pytest.fixture(scope="session")
def kill_trials() -> int | None:
    """Trials per operation in the kill -9 tests: MOLEXP_RELIABILITY_TRIALS, else None (each
    operation's CI default)."""
    text = os.environ.get("MOLEXP_RELIABILITY_TRIALS", "").strip()
    return env_int("MOLEXP_RELIABILITY_TRIALS", 1) if text else None


@pytest.fixture(scope="session")
def kill_seed() -> int:
    """The seed of the random kill instants."""
    return env_int("MOLEXP_RELIABILITY_SEED", 8)


@pytest.fixture(scope="session")
def many_runs() -> int:
    """Runs per process in the many-writers test: MOLEXP_RELIABILITY_RUNS, else 1,000."""
    return env_int("MOLEXP_RELIABILITY_RUNS", 1000)
