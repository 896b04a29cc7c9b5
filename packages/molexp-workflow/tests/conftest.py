"""Fixtures of the workflow tests: real workspaces in a temporary directory, clean bindings."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import molexp as me
from molexp.workflow import bindings


@pytest.fixture(autouse=True)
def _no_bindings() -> Iterator[None]:
    """Each test starts and ends with an empty binding registry."""
    bindings.clear_bindings()
    yield
    bindings.clear_bindings()


@pytest.fixture
def ws(tmp_path: Path) -> me.Workspace:
    """A fresh local workspace."""
    return me.Workspace(tmp_path / "lab")


@pytest.fixture
def exp(ws: me.Workspace) -> me.Experiment:
    """An experiment with one parameter, ready for runs."""
    return ws.Project("demo").Experiment("baseline", params={"lr": 0.001})


class Calls:
    """Counts task invocations through files, so counts survive processes and attempts."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def hit(self, name: str) -> None:
        with (self.root / f"{name}.calls").open("a") as fh:
            fh.write("x")

    def count(self, name: str) -> int:
        path = self.root / f"{name}.calls"
        return len(path.read_text()) if path.exists() else 0


@pytest.fixture
def calls(tmp_path: Path) -> Calls:
    """Invocation counters kept in files."""
    return Calls(tmp_path / "calls")
