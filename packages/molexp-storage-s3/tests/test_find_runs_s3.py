"""Finding runs by parameter value in a workspace on S3: the index lives in each machine's local
cache and follows what other machines create and delete in the bucket."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import molexp as me


def machine(url: str, options: dict[str, Any], cache: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The experiment as seen from a machine with its own cache directory."""
    monkeypatch.setenv("MOLEXP_CACHE_DIR", str(cache))
    return me.Workspace(url, storage_options=options).project("p").experiment("e")


def test_find_runs_on_s3_follows_other_machines(
    s3_url: str, options: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MOLEXP_CACHE_DIR", str(tmp_path / "a"))
    ws = me.Workspace(s3_url, name="Lab", storage_options=options)
    exp = ws.Project("p").Experiment("e")
    mine = [exp.Run(parameters={"model": m, "lr": 0.1}) for m in ("x", "y", "x")]
    assert [r.id for r in exp.find_runs({"model": "x"})] == [mine[0].id, mine[2].id]
    assert ws.run_index.location.is_relative_to(tmp_path / "a")

    other = machine(s3_url, options, tmp_path / "b", monkeypatch)
    theirs = other.Run(parameters={"model": "x", "lr": 1})
    other.project.workspace.storage.remove(mine[0].key, recursive=True)
    with other.get_run(theirs.id).start():
        pass

    monkeypatch.setenv("MOLEXP_CACHE_DIR", str(tmp_path / "a"))
    assert [r.id for r in exp.find_runs({"model": "x"})] == [mine[2].id, theirs.id]
    assert [r.id for r in exp.find_runs({"lr": 1.0}, status="succeeded")] == [theirs.id]
    assert [r.id for r in ws.find_runs({"model": "x"}, status="created")] == [mine[2].id]
    assert [r.id for r in other.find_runs({"model": "x"})] == [mine[2].id, theirs.id]


def test_many_hits_are_read_concurrently_and_agree_with_list_runs(
    s3_url: str, options: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MOLEXP_CACHE_DIR", str(tmp_path / "cache"))
    exp = me.Workspace(s3_url, storage_options=options).Project("p").Experiment("e")
    for i in range(40):
        exp.Run(parameters={"k": i % 3, "i": i})
    expected = [r.id for r in exp.list_runs() if r.parameters["k"] == 0]
    assert len(expected) == 14
    assert [r.id for r in exp.find_runs({"k": 0})] == expected
    fresh = machine(s3_url, options, tmp_path / "cold", monkeypatch)
    assert [r.id for r in fresh.find_runs({"k": 0.0})] == expected
