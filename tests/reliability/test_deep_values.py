"""Values nested too deeply to store, found by the override tests (issue 8, DESIGN §7).

pydantic's JSON serializer stops at 255 levels and its JSON parser near 200, so a run record or
an asset record holding a deeper value could be written but not read back (the catalog answers
from JSON rows), or not written at all after the value was already taken in memory. Every value
stored in a record is now refused past 100 levels, before anything is written, and everything up
to that depth round-trips.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import molexp as me
from molexp.workspace import RunStatus
from molexp.workspace._records import MAX_DEPTH


def nested(depth: int) -> Any:
    """A list nested ``depth`` levels deep."""
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


def files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and ".molexp" not in p.parts
    }


@pytest.fixture
def run(tmp_path: Path) -> me.Run:
    return me.Workspace(tmp_path / "lab").Project("p").Experiment("e").Run(id="r")


def test_values_past_the_limit_are_refused_before_anything_is_written(
    run: me.Run, tmp_path: Path
) -> None:
    deep = nested(MAX_DEPTH)  # inside a dict: one level more than the limit
    exp = run.experiment
    with run.start() as ctx:
        ctx.set_result("ok", 1)
        before = files(tmp_path / "lab")
        calls = {
            "result 'deep'": lambda: ctx.set_result("deep", deep),
            "run parameters": lambda: exp.Run(parameters={"deep": deep}),
            "profile config": lambda: exp.Run(profile_config={"deep": deep}),
            "meta of artifact 'a'": lambda: ctx.artifact.save("a", 1, meta={"deep": deep}),
            "meta of checkpoint 'c'": lambda: ctx.checkpoint("c", 1, meta={"deep": deep}),
        }
        for what, call in calls.items():
            with pytest.raises(TypeError, match=f"{what} must hold JSON values nested at most"):
                call()
        # A value far deeper than Python's recursion limit is the same clear error.
        with pytest.raises(TypeError, match="nested at most"):
            ctx.set_result("deeper", nested(50_000))
        with pytest.raises(TypeError, match="artifact 'big': cannot save a list"):
            ctx.artifact.save("big", nested(50_000))
        assert files(tmp_path / "lab") == before
        assert ctx.results == {"ok": 1}
    # The run was not poisoned: it finished, and its record reads back.
    assert run.reload().status == RunStatus.SUCCEEDED


def test_values_up_to_the_limit_round_trip(run: me.Run) -> None:
    deep = nested(MAX_DEPTH - 1)
    with run.start() as ctx:
        ctx.set_result("deep", deep)
        ctx.artifact.save("a.json", deep, meta={"deep": deep})
    ws = me.Workspace.load(run.experiment.project.workspace.url)
    again = ws.project("p").experiment("e").get_run("r")
    assert again.results == {"deep": deep}
    (artifact,) = ws.catalog.query_assets(kind="artifact")
    assert artifact.meta == {"deep": deep} and artifact.load() == deep
    assert ws.catalog.rebuild() == 1


def test_a_value_shared_between_places_is_measured_where_it_sits_deepest(run: me.Run) -> None:
    """The same list reached twice (as YAML aliases or Python references make it) counts at its
    deepest place, whichever place the check meets first."""
    shared = nested(50)
    wrapped: Any = shared
    for _ in range(60):
        wrapped = [wrapped]
    for params in ({"a": shared, "b": wrapped}, {"b": wrapped, "a": shared}):
        with pytest.raises(TypeError, match="nested at most 100 levels"):
            run.experiment.Run(parameters=params)
