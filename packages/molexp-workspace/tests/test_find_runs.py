"""Finding runs by parameter value: ``exp.find_runs`` / ``ws.find_runs`` answer exactly what a
filter over ``list_runs`` would, from a derived index that follows runs made, changed and deleted
by anyone, and that can be deleted or damaged at any time."""

from __future__ import annotations

import math
import sqlite3
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import fsspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import molexp as me
from molexp.workspace import NotFoundError, RunStatus

# On a failing example hypothesis' pytest plugin imports libcst, whose import warns (mypy_extensions
# TypedDict deprecation); under `filterwarnings = error` that would crash the session instead of
# reporting the failure.
pytestmark = pytest.mark.filterwarnings(
    "ignore:mypy_extensions.TypedDict is deprecated:DeprecationWarning"
)

MEMFS = fsspec.filesystem("memory")


@pytest.fixture(autouse=True)
def _private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOLEXP_CACHE_DIR", str(tmp_path / "cache"))


def json_equal(a: Any, b: Any) -> bool:
    """The documented equality, written independently of the index: numbers by value (NaN
    matches NaN), booleans only booleans, containers member by member."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b or (a != a and b != b)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


def brute_force(exp: me.Experiment, params: dict[str, Any], status: str | None = None) -> list[str]:
    """What find_runs must answer: list_runs filtered in Python."""
    return [
        r.id
        for r in exp.list_runs(status=status)
        if all(k in r.parameters and json_equal(r.parameters[k], v) for k, v in params.items())
    ]


def ids(runs: list[me.Run]) -> list[str]:
    return [r.id for r in runs]


# -- generated experiments ---------------------------------------------------------------------

NAMES = st.sampled_from(["lr", "model", "n", "opt", "flag", "x.y", ""])
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-3, 3)
    | st.sampled_from([0.0, -0.0, 1.0, 2.0, 0.5, 1e-3, math.inf, -math.inf, math.nan, 2**53 + 1])
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.sampled_from(["", "a", "1", "true", "null", "é", 'a"b\\'])
    | st.text(st.characters(blacklist_categories=("Cs",)), max_size=4)
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(NAMES, inner, max_size=3),
    max_leaves=6,
)
PARAMS = st.dictionaries(NAMES, VALUES, max_size=4)


def pick_query(draw: st.DrawFn, runs: list[dict[str, Any]]) -> dict[str, Any]:
    """A query built mostly from values the runs have (so there are hits), sometimes not."""
    query: dict[str, Any] = {}
    for _ in range(draw(st.integers(1, 3))):
        source = draw(st.sampled_from(runs)) if runs and draw(st.booleans()) else {}
        if source:
            name = draw(st.sampled_from(sorted(source)))
            value = source[name]
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                value = draw(st.sampled_from([value, float(value), value]))
        else:
            name, value = draw(NAMES), draw(VALUES)
        query[name] = value
    return query


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[int], Any]:
    first = draw(st.lists(PARAMS, min_size=1, max_size=8))
    later = draw(st.lists(PARAMS, max_size=4))
    deleted = draw(st.lists(st.integers(0, len(first) - 1), max_size=3, unique=True))
    queries = [pick_query(draw, first + later) for _ in range(3)]
    return first, later, deleted, queries


class Sandbox:
    """A fresh workspace on one backend (fsync off: speed, not durability, is at stake here)."""

    def __init__(self, backend: str, base: Path) -> None:
        if backend == "local":
            self.url = str(base / uuid.uuid4().hex / "lab")
        else:
            self.url = f"memory://find-{uuid.uuid4().hex}/lab"
        self.ws = me.Workspace(self.url, storage_options={"fsync": False})

    def close(self) -> None:
        self.ws.run_index.close()
        if self.url.startswith("memory://"):
            root = self.url.removeprefix("memory://")
            for key in [k for k in MEMFS.store if k.startswith("/" + root.split("/")[0])]:
                MEMFS.store.pop(key, None)


@pytest.fixture(scope="module", params=["local", "memory"])
def new_sandbox(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Any]:
    opened: list[Sandbox] = []
    base = tmp_path_factory.mktemp("find")

    def make() -> Sandbox:
        sandbox = Sandbox(request.param, base)
        opened.append(sandbox)
        return sandbox

    yield make
    for sandbox in opened:
        sandbox.close()


@settings(max_examples=40, suppress_health_check=[HealthCheck.too_slow])
@given(scenario=scenarios())
def test_find_runs_equals_the_brute_force_filter(new_sandbox: Any, scenario: Any) -> None:
    first, later, deleted, queries = scenario
    sandbox = new_sandbox()
    try:
        exp = sandbox.ws.Project("p").Experiment("e")
        runs = [exp.Run(parameters=p) for p in first]

        def check() -> None:
            for query in queries:
                assert ids(exp.find_runs(query)) == brute_force(exp, query), query
                assert ids(exp.list_runs(params=query)) == brute_force(exp, query), query

        check()  # a cold index
        for p in later:  # runs made after the index was built
            exp.Run(parameters=p)
        for i in deleted:  # and runs deleted behind its back
            sandbox.ws.storage.remove(runs[i].key, recursive=True)
        check()
        check()  # a warm index
    finally:
        sandbox.close()


# -- the index follows the runs ----------------------------------------------------------------


def test_runs_made_by_another_workspace_object_are_found(ws: me.Workspace) -> None:
    exp = ws.Project("p").Experiment("e")
    first = exp.Run(parameters={"model": "a", "n": 1})
    assert ids(exp.find_runs({"model": "a"})) == [first.id]
    other = me.Workspace(ws.url).project("p").experiment("e")
    second = other.Run(parameters={"model": "a", "n": 2})
    other.Run(parameters={"model": "b", "n": 3})
    assert ids(exp.find_runs({"model": "a"})) == [first.id, second.id]
    assert ids(exp.find_runs({"model": "a", "n": 2.0})) == [second.id]


def test_runs_made_by_another_process_are_found(tmp_path: Path) -> None:
    root = tmp_path / "lab"
    exp = me.Workspace(root).Project("p").Experiment("e")
    mine = exp.Run(parameters={"model": "a"})
    assert ids(exp.find_runs({"model": "a"})) == [mine.id]
    script = textwrap.dedent(
        f"""
        import molexp as me
        exp = me.Workspace({str(root)!r}).project("p").experiment("e")
        for i in range(3):
            print(exp.Run(parameters={{"model": "a", "i": i}}).id)
        """
    )
    made = subprocess.run(
        [sys.executable, "-c", script], check=True, capture_output=True, text=True
    ).stdout.split()
    assert ids(exp.find_runs({"model": "a"})) == [mine.id, *made]
    assert ids(me.Workspace(root).project("p").experiment("e").find_runs({"i": 1})) == [made[1]]


def test_processes_creating_and_querying_at_once_agree_with_the_files(tmp_path: Path) -> None:
    """Two processes create runs while two others query (each syncing the shared index): every
    answer holds only matching runs, and once the writers are done every answer is complete."""
    root = tmp_path / "lab"
    me.Workspace(root).Project("p").Experiment("e")
    writer = textwrap.dedent(
        f"""
        import sys
        import molexp as me
        ws = me.Workspace({str(root)!r}, storage_options={{"fsync": False}})
        exp = ws.project("p").experiment("e")
        for i in range(40):
            exp.Run(parameters={{"w": i % 2, "by": sys.argv[1]}})
        """
    )
    querier = textwrap.dedent(
        f"""
        import molexp as me
        for _ in range(30):
            exp = me.Workspace({str(root)!r}).project("p").experiment("e")
            for run in exp.find_runs({{"w": 0}}):
                assert run.parameters["w"] == 0, run.parameters
        """
    )
    procs = [subprocess.Popen([sys.executable, "-c", writer, name]) for name in ("a", "b")] + [
        subprocess.Popen([sys.executable, "-c", querier]) for _ in range(2)
    ]
    exp = me.Workspace(root).project("p").experiment("e")
    while any(proc.poll() is None for proc in procs[:2]):
        assert all(r.parameters["w"] == 0 for r in exp.find_runs({"w": 0}))
    assert [proc.wait() for proc in procs] == [0, 0, 0, 0]
    assert ids(exp.find_runs({"w": 0})) == brute_force(exp, {"w": 0})
    assert len(exp.find_runs({"w": 0})) == 40
    fresh = me.Workspace(root).project("p").experiment("e")
    assert ids(fresh.find_runs({"w": 1, "by": "b"})) == brute_force(fresh, {"w": 1, "by": "b"})


def test_deleted_runs_vanish(ws: me.Workspace) -> None:
    exp = ws.Project("p").Experiment("e")
    keep, drop = exp.Run(parameters={"m": 1}), exp.Run(parameters={"m": 1})
    assert ids(exp.find_runs({"m": 1})) == [keep.id, drop.id]
    ws.storage.remove(drop.key, recursive=True)
    assert ids(exp.find_runs({"m": 1})) == [keep.id]
    assert ids(ws.find_runs({"m": 1})) == [keep.id]


def test_a_run_made_anew_under_a_deleted_runs_id_is_found_by_its_new_parameters(
    ws: me.Workspace,
) -> None:
    exp = ws.Project("p").Experiment("e")
    old = exp.Run(parameters={"m": 1}, id="r1")
    assert ids(exp.find_runs({"m": 1})) == ["r1"]
    ws.storage.remove(old.key, recursive=True)
    exp.Run(parameters={"m": 2}, id="r1")
    assert ids(exp.find_runs({"m": 2})) == ["r1"]
    assert exp.find_runs({"m": 1}) == []


def test_a_project_made_anew_does_not_inherit_the_old_rows(ws: me.Workspace) -> None:
    exp = ws.Project("p").Experiment("e")
    exp.Run(parameters={"m": 1}, id="r1")
    assert ids(exp.find_runs({"m": 1})) == ["r1"]
    ws.delete_project("p")
    again = ws.Project("p").Experiment("e")
    again.Run(parameters={"m": 2}, id="r1")
    assert ids(again.find_runs({"m": 2})) == ["r1"]
    assert again.find_runs({"m": 1}) == []


def test_status_filter_reflects_run_json_now(ws: me.Workspace) -> None:
    exp = ws.Project("p").Experiment("e")
    done, failed, waiting = (exp.Run(parameters={"m": 1}) for _ in range(3))
    assert ids(exp.find_runs({"m": 1}, status="created")) == [done.id, failed.id, waiting.id]
    # Another session executes two of them after this one built the index.
    other = me.Workspace(ws.url).project("p").experiment("e")
    with other.get_run(done.id).start():
        pass
    with pytest.raises(RuntimeError), other.get_run(failed.id).start():
        raise RuntimeError("diverged")
    assert ids(exp.find_runs({"m": 1}, status=RunStatus.SUCCEEDED)) == [done.id]
    assert ids(exp.find_runs({"m": 1}, status="failed")) == [failed.id]
    assert ids(exp.find_runs({"m": 1}, status="created")) == [waiting.id]
    assert ids(exp.list_runs(status="failed", params={"m": 1})) == [failed.id]
    assert exp.find_runs({"m": 1}, status="failed")[0].status == RunStatus.FAILED


def test_no_params_is_every_run(ws: me.Workspace) -> None:
    exp = ws.Project("p").Experiment("e", params={"lr": 0.1})
    runs = [exp.Run(), exp.Run(parameters={"lr": 0.2})]
    assert ids(exp.find_runs()) == ids(exp.find_runs({})) == ids(runs)
    assert ids(exp.find_runs(status="created")) == ids(runs)


def test_the_same_run_objects_as_list_runs(ws: me.Workspace) -> None:
    exp = ws.Project("p").Experiment("e")
    run = exp.Run(parameters={"m": 1})
    assert exp.find_runs({"m": 1})[0] is run
    assert exp.find_runs({"m": 1})[0] is exp.list_runs()[0]


# -- across the workspace ----------------------------------------------------------------------


def test_workspace_find_runs_across_projects_and_experiments(ws: me.Workspace) -> None:
    a = ws.Project("A")
    b = ws.Project("B")
    a1, a2, b1 = a.Experiment("one"), a.Experiment("two"), b.Experiment("one")
    r_a1 = a1.Run(parameters={"m": "x"})
    r_b1 = b1.Run(parameters={"m": "x"})
    a2.Run(parameters={"m": "y"})
    r_a2 = a2.Run(parameters={"m": "x", "n": 1})
    assert ids(ws.find_runs({"m": "x"})) == [r_a1.id, r_b1.id, r_a2.id]
    assert ids(ws.find_runs({"m": "x"}, project="A")) == [r_a1.id, r_a2.id]
    assert ids(ws.find_runs({"m": "x"}, project=b)) == [r_b1.id]
    assert ids(ws.find_runs({"m": "x"}, experiment="one")) == [r_a1.id, r_b1.id]
    assert ids(ws.find_runs({"m": "x"}, project="A", experiment="one")) == [r_a1.id]
    assert ids(ws.find_runs({"m": "x"}, experiment=a2)) == [r_a2.id]
    assert ids(ws.find_runs(status="created", project="B")) == [r_b1.id]
    with pytest.raises(NotFoundError, match="'nope'"):
        ws.find_runs({"m": "x"}, project="nope")
    with pytest.raises(NotFoundError, match="no experiment 'nope' in any project"):
        ws.find_runs({"m": "x"}, experiment="nope")
    with pytest.raises(ValueError, match="belongs to project 'a'"):
        ws.find_runs({"m": "x"}, project="B", experiment=a1)


def test_an_empty_workspace_finds_nothing(ws: me.Workspace) -> None:
    assert ws.find_runs({"m": 1}) == []
    assert not ws.is_materialized


# -- the index is derived ----------------------------------------------------------------------


def test_a_deleted_index_is_rebuilt(ws: me.Workspace) -> None:
    exp = ws.Project("p").Experiment("e")
    run = exp.Run(parameters={"m": 1})
    assert ids(exp.find_runs({"m": 1})) == [run.id]
    location = ws.run_index.location
    assert location.exists()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{location}{suffix}").unlink(missing_ok=True)
    later = exp.Run(parameters={"m": 1})
    assert ids(exp.find_runs({"m": 1})) == [run.id, later.id]
    assert location.exists()


@pytest.mark.parametrize("garbage", [b"", b"not a database at all" * 100, b"SQLite format 3\0" * 8])
def test_a_damaged_index_is_rebuilt_silently(ws: me.Workspace, garbage: bytes) -> None:
    exp = ws.Project("p").Experiment("e")
    run = exp.Run(parameters={"m": 1})
    assert ids(exp.find_runs({"m": 1})) == [run.id]
    location = ws.run_index.location
    ws.run_index.close()
    for suffix in ("-wal", "-shm"):
        Path(f"{location}{suffix}").unlink(missing_ok=True)
    location.write_bytes(garbage)
    fresh = me.Workspace(ws.url).project("p").experiment("e")
    assert ids(fresh.find_runs({"m": 1})) == [run.id]  # no warning: filterwarnings=error
    assert ids(exp.find_runs({"m": 1})) == [run.id]
    with closing(sqlite3.connect(location)) as db:  # rebuilt in place, not held in memory
        assert db.execute("SELECT run FROM runs").fetchall() == [(run.id,)]


def test_an_index_that_cannot_be_written_is_held_in_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    monkeypatch.setenv("MOLEXP_CACHE_DIR", str(blocker))
    ws = me.Workspace(f"memory://find-{uuid.uuid4().hex}/lab")
    exp = ws.Project("p").Experiment("e")
    run = exp.Run(parameters={"m": 1})
    assert ids(exp.find_runs({"m": 1})) == [run.id]
    assert ids(exp.find_runs({"m": 1})) == [run.id]
    assert blocker.read_text() == ""


def test_an_unreadable_run_json_is_skipped_with_a_warning_naming_it(ws: me.Workspace) -> None:
    exp = ws.Project("p").Experiment("e")
    good, bad = exp.Run(parameters={"m": 1}), exp.Run(parameters={"m": 1})
    ws.storage.write_bytes(f"{bad.key}/run.json", b"{ torn")
    with pytest.warns(me.workspace.CorruptRecordWarning, match="run.json"):
        assert ids(exp.find_runs({"m": 1})) == [good.id]


# -- bad input ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda e: e.find_runs({1: "a"}), TypeError, "parameter names must be strings, got int 1"),
        (lambda e: e.find_runs({"m": object()}), TypeError, "value of parameter 'm'"),
        (lambda e: e.find_runs({"m": {1, 2}}), TypeError, "value of parameter 'm'"),
        (lambda e: e.find_runs("m=1"), TypeError, "must be a dict of parameter name"),
        (lambda e: e.find_runs({"m": 1}, status="done"), ValueError, "unknown run status 'done'"),
        (lambda e: e.list_runs(status="Done"), ValueError, "expected one of created, running"),
        (
            lambda e: e.project.workspace.find_runs({"m": 1}, status="x"),
            ValueError,
            "unknown run status",
        ),
        (
            lambda e: e.project.workspace.find_runs({2: 1}),
            TypeError,
            "parameter names must be strings",
        ),
    ],
)
def test_bad_input_is_a_clear_error_that_changes_nothing(
    exp: me.Experiment, call: Any, error: type[Exception], message: str
) -> None:
    exp.Run(parameters={"m": 1})
    location = exp.project.workspace.run_index.location
    with pytest.raises(error, match=message):
        call(exp)
    assert not location.exists()
