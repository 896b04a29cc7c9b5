"""Fixtures of the server tests: a real workspace with a real sweep, and a real server process.

The helpers live in ``server_testkit.py`` beside this file (tests import it by that unique name:
pytest runs in importlib mode, where ``conftest`` itself is not importable).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from server_testkit import Server, Sweep, build_sweep, start_server, stop_server


@pytest.fixture(scope="session")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> Sweep:
    """The sweep workspace, made once per session (tests must not change it: the cancel and
    growing-log tests make their own runs)."""
    return build_sweep(tmp_path_factory.mktemp("server") / "lab")


@pytest.fixture(scope="session")
def server(sweep: Sweep) -> Iterator[Server]:
    """The server of the sweep workspace, without a token, for the whole session."""
    srv = start_server(sweep.root)
    yield srv
    stop_server(srv)
