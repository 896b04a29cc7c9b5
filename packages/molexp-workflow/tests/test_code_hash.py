"""Task code hashes cover what the code reads: module constants, helpers, user modules.

Resume reuses a finished task only when its code hash is unchanged, so these tests edit a real
script between real executions (each in a fresh process) and check which tasks run again.
"""

from __future__ import annotations

import builtins
import copy
import json
import math
import os
import random
import subprocess
import sys
import textwrap
from pathlib import Path
from types import FunctionType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import molexp as me
from molexp.workflow import Task, TaskContext, TaskState, workflow

HELPERS = """\
def featurize(x):
    return x + 1


def double(x):
    return 2 * x
"""

FLOW = """\
import json
import random
import sys
from pathlib import Path

import molexp as me
from molexp.workflow import workflow

import helpers
from helpers import double

SCALE = 2
LABELS = frozenset({"alpha", "beta", "gamma", "delta"})  # iterated in a per-process order
OPTIONS = {"b": (2.5, None), "a": [True, b"x"]}
RNG = random.Random(0)
HERE = Path(__file__).resolve().parent


def count(name):
    with (HERE / "calls.txt").open("a") as fh:
        fh.write(name + "\\n")


def unrelated():
    return "not read by any task"


wf = workflow(name="hashing")


@wf.task
def scaled(ctx):
    count("scaled")
    assert len(LABELS) == 4 and OPTIONS
    return 10 * SCALE


@wf.task(depends_on=["scaled"])
def report(ctx):
    count("report")
    return {"value": ctx.inputs}


@wf.task
def features(ctx):
    count("features")
    return helpers.featurize(3)


@wf.task
def direct(ctx):
    count("direct")
    return double(4)


@wf.task
def noisy(ctx):
    count("noisy")
    return RNG.random()


spec = wf.build()

if __name__ == "__main__":
    exp = me.Workspace(HERE / "lab").Project("p").Experiment("e")
    result = spec.execute_sync(run=exp.Run(id="fixed"))
    states = {name: task.state.value for name, task in result.tasks.items()}
    print(json.dumps({"states": states, "outputs": result.outputs}))
"""


class Project:
    """A script and the helper module it imports, executed in fresh processes."""

    def __init__(self, root: Path) -> None:
        self.root = root
        (root / "helpers.py").write_text(HELPERS)
        (root / "flow.py").write_text(FLOW)

    def edit(self, name: str, old: str, new: str) -> None:
        path = self.root / name
        text = path.read_text()
        assert text.count(old) == 1, old
        path.write_text(text.replace(old, new))

    def execute(self) -> tuple[dict[str, str], dict[str, Any], list[str]]:
        """Run the script; the task states, the outputs, and the tasks whose body ran."""
        calls = self.root / "calls.txt"
        calls.unlink(missing_ok=True)
        # No bytecode cache: an edit in the same second, of the same size, must not be missed.
        env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
        done = subprocess.run(
            [sys.executable, str(self.root / "flow.py")],
            cwd=self.root,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        shown = json.loads(done.stdout)
        ran = sorted(calls.read_text().split()) if calls.exists() else []
        return shown["states"], shown["outputs"], ran

    def state(self) -> dict[str, Any]:
        path = self.root / "lab/projects/p/experiments/e/runs/run-fixed/execution/state.json"
        return json.loads(path.read_text())["tasks"]  # type: ignore[no-any-return]


def test_edits_to_what_a_task_reads_make_it_run_again_on_resume(tmp_path: Path):
    project = Project(tmp_path)
    states, outputs, ran = project.execute()
    assert set(states.values()) == {"succeeded"}
    assert ran == ["direct", "features", "noisy", "report", "scaled"]
    assert outputs["report"] == {"value": 20}

    # Nothing changed: everything is reused (the hashes are the same in a new process, whose
    # string hashing, and so set order, differs), except the task that reads a value with no
    # stable encoding (a random generator), which runs every time and says why in the state.
    states, _, ran = project.execute()
    assert ran == ["noisy"]
    assert states["noisy"] == "succeeded"
    assert {states[name] for name in ("scaled", "report", "features", "direct")} == {"reused"}
    note = project.state()["noisy"]["not_reusable"]
    assert "'RNG'" in note and "random.Random" in note and "runs again on resume" in note
    assert "not_reusable" not in project.state()["scaled"]

    # A module-level constant: the task that reads it runs again, and so does its downstream.
    project.edit("flow.py", "SCALE = 2", "SCALE = 3")
    states, outputs, ran = project.execute()
    assert ran == ["noisy", "report", "scaled"]
    assert outputs["report"] == {"value": 30}
    assert states["features"] == states["direct"] == "reused"

    # A helper in an imported module, read as an attribute of the module.
    project.edit("helpers.py", "return x + 1", "return x + 100")
    states, outputs, ran = project.execute()
    assert ran == ["features", "noisy"]
    assert outputs["features"] == 103

    # A helper imported by name (`from helpers import double`).
    project.edit("helpers.py", "return 2 * x", "return 3 * x")
    states, outputs, ran = project.execute()
    assert ran == ["direct", "noisy"]
    assert outputs["direct"] == 12

    # A function that no task reads: nothing runs again.
    project.edit("flow.py", '"not read by any task"', '"still not read by any task"')
    states, _, ran = project.execute()
    assert ran == ["noisy"]
    assert states["scaled"] == states["features"] == "reused"


# -- in one process ----------------------------------------------------------------------------


def code_hash(fn: Any) -> str | None:
    """The code hash a compiled task gets for ``fn`` (a function or a task object)."""
    wf = workflow(name="probe")
    if isinstance(fn, Task):
        wf.add(fn)
        return wf.build().tasks[fn.task_name].code_hash
    wf.task(name="probe")(fn)
    return wf.build().tasks["probe"].code_hash


def reading(value: object) -> FunctionType:
    """A function whose module-level name ``VALUE`` holds ``value``."""

    def probe(ctx: TaskContext) -> object:
        return VALUE  # type: ignore[name-defined]  # noqa: F821 - a global of the new function

    namespace = {"VALUE": value, "__builtins__": builtins}
    return FunctionType(probe.__code__, namespace, "probe")


scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=6)
    | st.binary(max_size=4)
)
constants = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.lists(inner, max_size=3).map(tuple)
        | st.dictionaries(st.text(max_size=4), inner, max_size=3)
        | st.frozensets(st.integers() | st.text(max_size=3), max_size=3)
    ),
    max_leaves=8,
)


def same(a: object, b: object) -> bool:
    """Equal and of the same types at every depth (``1``, ``1.0`` and ``True`` differ, and so
    do ``0.0`` and ``-0.0``; a NaN is the same as itself)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float) and isinstance(b, float):
        return a.hex() == b.hex()
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, frozenset) and isinstance(b, frozenset):
        return {(type(x), x) for x in a} == {(type(x), x) for x in b}
    return a == b


@settings(max_examples=300, deadline=None)
@given(constants, constants)
def test_constants_hash_equal_exactly_when_they_are_the_same(a: object, b: object):
    assert (code_hash(reading(a)) == code_hash(reading(b))) == same(a, b)


@settings(deadline=None)
@given(constants)
def test_a_copy_of_a_constant_hashes_the_same(value: object):
    first = code_hash(reading(value))
    assert first is not None
    assert code_hash(reading(copy.deepcopy(value))) == first


def test_dict_order_and_set_order_do_not_matter():
    assert code_hash(reading({"a": 1, "b": 2})) == code_hash(reading({"b": 2, "a": 1}))
    assert code_hash(reading({3, 1, 2})) == code_hash(reading({2, 3, 1}))
    assert code_hash(reading({"a": 1})) != code_hash(reading({"a": 1.0}))


def test_a_changed_global_is_seen_in_the_same_process():
    namespace: dict[str, Any] = {"__builtins__": builtins}

    def probe(ctx: TaskContext) -> object:
        return LIMITS  # type: ignore[name-defined]  # noqa: F821 - a global of the new function

    fn = FunctionType(probe.__code__, namespace, "probe")
    namespace["LIMITS"] = [1, 2]
    first = code_hash(fn)
    namespace["LIMITS"].append(3)  # changed in place
    second = code_hash(fn)
    namespace["LIMITS"] = (1, 2)  # rebound
    third = code_hash(fn)
    namespace["LIMITS"] = [1, 2]
    assert len({first, second, third}) == 3
    assert code_hash(fn) == first


SETTING = 1


def calls_helper(ctx: TaskContext) -> int:
    return ping(3)


def ping(n: int) -> int:
    """Mutually recursive with pong: the walk must follow the cycle once and stop."""
    return SETTING if n <= 0 else pong(n - 1)


def pong(n: int) -> int:
    return ping(n - 1) + math.floor(0.5)


def test_helpers_are_followed_through_cycles(monkeypatch: pytest.MonkeyPatch):
    first = code_hash(calls_helper)
    assert first is not None
    monkeypatch.setitem(globals(), "SETTING", 2)  # read two calls down, through the cycle
    assert code_hash(calls_helper) != first
    monkeypatch.undo()
    assert code_hash(calls_helper) == first


class Scaler(Task):
    def run(self, ctx: TaskContext) -> int:
        return ping(1)


def test_a_task_class_covers_what_its_methods_read(monkeypatch: pytest.MonkeyPatch):
    first = code_hash(Scaler())
    assert first is not None
    monkeypatch.setitem(globals(), "SETTING", 5)
    assert code_hash(Scaler()) != first


class Versioned:
    """Declares its own identity: what resume should compare instead of the object."""

    def __init__(self, version: int) -> None:
        self.version = version
        self.cache: dict[str, Any] = {}

    def __molexp_identity__(self) -> object:
        return {"version": self.version}


def test_an_object_can_declare_its_identity():
    assert code_hash(reading(Versioned(1))) is not None
    assert code_hash(reading(Versioned(1))) == code_hash(reading(Versioned(1)))
    assert code_hash(reading(Versioned(1))) != code_hash(reading(Versioned(2)))


def test_library_code_is_identified_by_name():
    # math.sqrt and len have no Python source: they are known by name and version, so the hash
    # is known (user code without source would leave it unknown).
    def uses_libraries(ctx: TaskContext) -> object:
        return json.dumps([math.sqrt(4), os.sep, len("x"), Path("a")])

    first = code_hash(uses_libraries)
    assert first is not None
    assert code_hash(uses_libraries) == first


def test_unknown_values_and_missing_source_leave_the_hash_unknown(exp: me.Experiment):
    generator = random.Random(0)
    assert code_hash(reading(generator)) is None
    cyclic: list[object] = []
    cyclic.append(cyclic)
    assert code_hash(reading(cyclic)) is None

    namespace: dict[str, Any] = {}
    exec(textwrap.dedent("def typed_in(ctx):\n    return 1\n"), namespace)  # no source file
    wf = workflow(name="unknown")
    wf.task(name="rng")(reading(generator))
    wf.task(name="typed_in")(namespace["typed_in"])
    spec = wf.build()
    assert spec.tasks["rng"].code_hash is None

    run = exp.Run()
    first = spec.execute_sync(run=run)
    again = spec.execute_sync(run=run)
    assert first.ok and again.ok
    assert {task.state for task in again.tasks.values()} == {TaskState.SUCCEEDED}
    state = json.loads((Path(run.run_dir) / "execution" / "state.json").read_text())["tasks"]
    assert "random.Random" in state["rng"]["not_reusable"]
    assert "source of typed_in" in state["typed_in"]["not_reusable"]
