"""Parameter spaces, replica seeds and ``me.entry`` registration."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from uuid import uuid4

import fsspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import molexp as me
from molexp.workspace import clear_entries, default_seeds, registered_workspaces

# On a failing example hypothesis' pytest plugin imports libcst, whose import warns (mypy_extensions
# TypedDict deprecation); under `filterwarnings = error` that would crash the session instead of
# reporting the failure.
pytestmark = pytest.mark.filterwarnings(
    "ignore:mypy_extensions.TypedDict is deprecated:DeprecationWarning"
)

MEMFS = fsspec.filesystem("memory")


def _forget_memory(root: str) -> None:
    """Drop everything at or below ``root`` from the process-wide in-memory filesystem."""
    for key in [k for k in MEMFS.store if k == root or k.startswith(root + "/")]:
        MEMFS.store.pop(key, None)
    MEMFS.pseudo_dirs[:] = [
        d for d in MEMFS.pseudo_dirs if d != root and not d.startswith(root + "/")
    ]


# The fixed default seed sequence: run ids are derived from seeds, so changing it would silently
# re-run every experiment that relies on the defaults.
PINNED_SEEDS = [585934658, 1957428508, 768076439, 169068159, 382056316]


@pytest.fixture(params=["local", "memory"])
def any_ws(request, tmp_path):
    if request.param == "local":
        yield me.Workspace(tmp_path / "lab")
        return
    ws = me.Workspace(f"memory://t-{uuid4().hex}")
    yield ws
    _forget_memory(ws.storage.root)  # type: ignore[attr-defined]


# -- GridSpace ---------------------------------------------------------------------------------


def test_grid_iterates_every_combination_last_name_fastest():
    grid = me.GridSpace({"lr": [1e-3, 1e-4], "batch": [32, 64]})
    expected = [
        {"lr": 1e-3, "batch": 32},
        {"lr": 1e-3, "batch": 64},
        {"lr": 1e-4, "batch": 32},
        {"lr": 1e-4, "batch": 64},
    ]
    assert list(grid) == expected
    assert len(grid) == 4
    assert isinstance(grid, me.ParamSpace)
    # Iterating again gives the same points, and the points handed out are independent copies.
    first = next(iter(grid))
    first["lr"] = "changed"
    assert list(grid) == expected


def test_grid_accepts_tuples_and_ranges_and_single_values():
    grid = me.GridSpace({"a": (1, 2), "b": range(3), "c": ["only"]})
    assert len(grid) == 6 == len(list(grid))
    assert [p["b"] for p in grid] == [0, 1, 2, 0, 1, 2]
    assert {p["c"] for p in grid} == {"only"}


@settings(max_examples=50, deadline=None)
@given(
    st.dictionaries(
        st.text(min_size=1, max_size=5),
        st.lists(st.integers(), min_size=1, max_size=4, unique=True),
        max_size=4,
    )
)
def test_grid_is_the_cartesian_product_in_declaration_order(space):
    grid = me.GridSpace(space)
    points = list(grid)
    assert len(points) == len(grid)
    combos = itertools.product(*space.values())
    expected = [dict(zip(space, combo, strict=True)) for combo in combos]
    assert points == expected
    assert list(grid) == points


@pytest.mark.parametrize(
    ("space", "error", "message"),
    [
        ({"lr": "abc"}, TypeError, r"'lr' must be a list, got str 'abc'; write \['abc'\]"),
        ({"lr": b"ab"}, TypeError, r"'lr' must be a list, got bytes"),
        ({"lr": 0.1}, TypeError, r"'lr' must be a list, got float 0.1; write \[0.1\]"),
        ({"lr": {"a": 1}}, TypeError, r"'lr' must be a list, got dict"),
        ({"lr": {0.1, 0.2}}, TypeError, r"'lr' must be a list, got set"),
        ({"lr": []}, ValueError, r"values of 'lr' are empty"),
        ({1: [1]}, TypeError, r"parameter names must be strings, got 1"),
        ([("lr", [1])], TypeError, r"takes a dict of name -> list of values, got list"),
    ],
)
def test_grid_errors_name_the_parameter(space, error, message):
    with pytest.raises(error, match=message):
        me.GridSpace(space)


# -- UniformSpace ------------------------------------------------------------------------------

SPACE = {"lr": [1e-2, 1e-3, 1e-4, 1e-5, 3e-4, 5e-4], "layers": list(range(10))}


def test_uniform_is_deterministic_for_a_seed_and_differs_between_seeds():
    a = list(me.UniformSpace(SPACE, n_samples=20, seed=42))
    assert a == list(me.UniformSpace(SPACE, n_samples=20, seed=42))
    assert a != list(me.UniformSpace(SPACE, n_samples=20, seed=43))
    space = me.UniformSpace(SPACE, n_samples=20, seed=42)
    assert list(space) == list(space) == a  # iterating twice replays the same draws
    assert len(space) == 20 == len(a)
    for point in a:
        assert set(point) == {"lr", "layers"}
        assert point["lr"] in SPACE["lr"] and point["layers"] in SPACE["layers"]
    assert len({json.dumps(p, sort_keys=True) for p in a}) > 1  # really random draws
    # A shorter run of the same seed is a prefix of a longer one.
    assert list(me.UniformSpace(SPACE, n_samples=5, seed=42)) == a[:5]
    # No seed is still deterministic.
    assert list(me.UniformSpace(SPACE, n_samples=5, seed=None)) == list(
        me.UniformSpace(SPACE, n_samples=5, seed=None)
    )


def test_uniform_draws_are_the_same_in_another_process():
    code = (
        "import json, molexp as me; "
        f"print(json.dumps(list(me.UniformSpace({SPACE!r}, n_samples=8, seed=7))))"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=env,
        check=True,
        timeout=60,
    ).stdout
    assert json.loads(out) == list(me.UniformSpace(SPACE, n_samples=8, seed=7))


@pytest.mark.parametrize("n", [0, -1, True, 2.5, "3", None])
def test_uniform_rejects_bad_sample_counts(n):
    with pytest.raises(ValueError, match=f"n_samples must be a whole number >= 1, got {n!r}"):
        me.UniformSpace(SPACE, n_samples=n)


def test_uniform_rejects_non_lists():
    with pytest.raises(TypeError, match=r"UniformSpace values of 'lr' must be a list, got str"):
        me.UniformSpace({"lr": "0.1"}, n_samples=3)
    with pytest.raises(ValueError, match="'lr' are empty"):
        me.UniformSpace({"lr": ()}, n_samples=3)


# -- ParamSpace --------------------------------------------------------------------------------


def test_param_space_is_an_explicit_ordered_list():
    points = [{"lr": 0.1, "tag": "a"}, {"lr": 0.01}, {"lr": 0.1, "tag": "a"}]
    space = me.ParamSpace(points)
    assert list(space) == points
    assert len(space) == 3
    points[0]["lr"] = 99  # the space copied its input
    assert next(iter(space)) == {"lr": 0.1, "tag": "a"}
    next(iter(space))["lr"] = 42  # and hands out copies
    assert list(space) == [{"lr": 0.1, "tag": "a"}, {"lr": 0.01}, {"lr": 0.1, "tag": "a"}]
    # A one-shot generator is consumed once and can then be iterated any number of times.
    gen_space = me.ParamSpace({"i": i} for i in range(3))
    assert list(gen_space) == list(gen_space) == [{"i": 0}, {"i": 1}, {"i": 2}]
    assert list(me.ParamSpace()) == [] and len(me.ParamSpace()) == 0


def test_param_space_rejects_non_string_names():
    with pytest.raises(TypeError, match="parameter names must be strings"):
        me.ParamSpace([{"ok": 1}, {2: "bad"}])


# -- replica seeds -----------------------------------------------------------------------------


def test_default_seed_sequence_is_fixed():
    assert default_seeds(5) == PINNED_SEEDS
    assert default_seeds(3) == PINNED_SEEDS[:3]
    assert default_seeds(0) == []
    many = default_seeds(1000)
    assert many[:5] == PINNED_SEEDS
    assert len(set(many)) == 1000
    assert all(0 <= s < 2**31 for s in many)


def test_default_seeds_are_the_same_in_another_process():
    code = "from molexp.workspace import default_seeds; print(default_seeds(5))"
    env = {**os.environ, "PYTHONHASHSEED": "987"}
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=env,
        check=True,
        timeout=60,
    ).stdout
    assert json.loads(out) == PINNED_SEEDS


@pytest.mark.parametrize("n", [None, 1, 3, 5])
def test_get_seeds_default_is_truncated_to_n_replicas(any_ws, n):
    exp = any_ws.Project("P").Experiment("E", n_replicas=n)
    expected = PINNED_SEEDS[: n or 1]
    assert exp.n_replicas == (n or 1)
    assert exp.seeds is None
    assert exp.get_seeds() == expected
    exp.get_seeds().append(0)  # a copy
    assert exp.get_seeds() == expected
    reopened = me.Workspace.load(any_ws.url).project("p").experiment("e")
    assert reopened.get_seeds() == expected
    assert reopened.n_replicas == (n or 1)


def test_changing_n_replicas_changes_the_default_seeds(any_ws):
    exp = any_ws.Project("P").Experiment("E", n_replicas=2)
    assert exp.get_seeds() == PINNED_SEEDS[:2]
    assert any_ws.Project("P").Experiment("E", n_replicas=4) is exp
    assert exp.get_seeds() == PINNED_SEEDS[:4]
    assert (
        me.Workspace.load(any_ws.url).project("p").experiment("e").get_seeds() == (PINNED_SEEDS[:4])
    )


@pytest.mark.parametrize("n", [None, 3])
def test_explicit_seeds_are_respected(any_ws, n):
    exp = any_ws.Project("P").Experiment("E", n_replicas=n, seeds=[42, 123, 456])
    assert exp.get_seeds() == [42, 123, 456]
    assert exp.seeds == [42, 123, 456]
    assert exp.n_replicas == 3
    reopened = me.Workspace.load(any_ws.url).project("p").experiment("e")
    assert reopened.get_seeds() == [42, 123, 456]
    raw = json.loads(any_ws.storage.read_bytes("projects/p/experiments/e/experiment.json"))
    assert raw["seeds"] == [42, 123, 456] and raw["n_replicas"] == 3


def test_n_replicas_of_explicit_seeds_changes_only_with_the_seeds(any_ws):
    project = any_ws.Project("P")
    exp = project.Experiment("E", seeds=[1, 2])
    key = "projects/p/experiments/e/experiment.json"
    before = any_ws.storage.read_bytes(key)
    with pytest.raises(ValueError, match=r"explicit seeds \[1, 2\]"):
        project.Experiment("E", n_replicas=3)
    assert any_ws.storage.read_bytes(key) == before
    assert project.Experiment("E", seeds=[1, 2, 3]) is exp
    assert exp.get_seeds() == [1, 2, 3] and exp.n_replicas == 3


# -- me.entry ----------------------------------------------------------------------------------


@pytest.fixture
def clean_registry():
    saved = registered_workspaces()
    clear_entries()
    yield
    clear_entries()
    for ws in saved:
        me.entry(ws)


def test_entry_registers_once_and_is_readable(clean_registry, tmp_path):
    ws = me.Workspace(tmp_path / "lab")
    assert registered_workspaces() == []
    assert me.entry(ws) is ws
    assert me.entry(ws) is ws
    registered = registered_workspaces()
    assert len(registered) == 1 and registered[0] is ws
    other = me.Workspace(f"memory://t-{uuid4().hex}")
    me.entry(other)
    me.entry(ws)
    assert [w is x for w, x in zip(registered_workspaces(), [ws, other], strict=True)] == [
        True,
        True,
    ]
    registered_workspaces().clear()  # a copy: the registry is not changed through it
    assert len(registered_workspaces()) == 2
    # Registration is not a write: the workspace is still lazy.
    assert not ws.is_materialized and not (tmp_path / "lab").exists()
    clear_entries()
    assert registered_workspaces() == []


@pytest.mark.parametrize("thing", ["./lab", None, 3])
def test_entry_refuses_what_is_not_a_workspace(clean_registry, thing):
    with pytest.raises(TypeError, match=f"takes a molexp.Workspace, got {type(thing).__name__}"):
        me.entry(thing)
    assert registered_workspaces() == []
