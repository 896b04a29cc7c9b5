"""Fixtures shared by the workspace tests: every workspace test runs on local disk and in memory."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

import molexp as me


def _memory_cleanup(url: str) -> None:
    from fsspec.implementations.memory import MemoryFileSystem

    fs = MemoryFileSystem()
    root = url.removeprefix("memory://")
    if fs.exists(root):
        fs.rm(root, recursive=True)


@pytest.fixture(params=["local", "memory"])
def ws_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A root URL for a fresh workspace, on each built-in backend."""
    if request.param == "local":
        yield str(tmp_path / "lab")
    else:
        url = f"memory://t-{uuid.uuid4().hex}/lab"
        yield url
        _memory_cleanup(url)


@pytest.fixture
def ws(ws_url: str) -> me.Workspace:
    """A fresh, not yet materialized workspace on each backend."""
    return me.Workspace(ws_url, name="Lab")


@pytest.fixture
def exp(ws: me.Workspace) -> me.Experiment:
    """An experiment with params, ready for runs."""
    return ws.Project("QM9").Experiment("baseline", params={"lr": 1e-3})
