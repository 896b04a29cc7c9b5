"""``molexp runs list --param NAME=VALUE``: runs selected by parameter value through the real
``molexp`` executable, values typed like ``--override`` values, bad ones refused in one line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import molexp as me


@pytest.fixture(scope="module")
def lab(shared_dir: Path) -> dict[str, str]:
    """Runs of two experiments with mixed parameter types; one of them succeeded."""
    ws = me.Workspace(shared_dir / "lab", name="Lab")
    one = ws.Project("demo").Experiment("one")
    two = ws.Project("demo").Experiment("two")
    made = {
        "a": one.Run(parameters={"model": "m1", "lr": 0.001, "n": 1, "flag": True}, id="a"),
        "b": one.Run(parameters={"model": "m2", "lr": 0.001, "n": 2, "flag": False}, id="b"),
        "c": one.Run(parameters={"model": "m1", "lr": 0.1, "n": 1.0, "train.lr": 3}, id="c"),
        "d": two.Run(parameters={"model": "m1", "lr": 0.001, "tags": ["x", 1]}, id="d"),
    }
    with made["a"].start():
        pass
    return {k: r.id for k, r in made.items()}


def found(cli: Any, *args: str) -> list[str]:
    result = cli("runs", "list", "--json", *args)
    assert result.code == 0, result
    return [row["id"] for row in result.json()]


def test_runs_list_by_parameter(shared_dir: Path, helpers: Any, lab: dict[str, str]) -> None:
    cli = helpers.Cli(shared_dir)
    assert found(cli, "--param", "model=m1") == ["a", "c", "d"]
    assert found(cli, "--param", "model=m1", "--param", "lr=1e-3") == ["a", "d"]
    assert found(cli, "--param", "n=1") == ["a", "c"]  # 1 and 1.0 are one number
    assert found(cli, "--param", "flag=true") == ["a"]
    assert found(cli, "--param", "flag=1") == []  # a boolean is not a number
    assert found(cli, "--param", "model='1'") == []
    assert found(cli, "--param", "tags=[x, 1]") == ["d"]
    assert found(cli, "--param", "train.lr=3") == ["c"]  # the name is literal
    assert found(cli, "--param", "model=m1", "--status", "succeeded") == ["a"]
    assert found(cli, "--param", "model=m1", "--experiment", "two") == ["d"]
    assert found(cli, "--param", "missing=1") == []

    table = cli("runs", "list", "--param", "model=m2")
    assert table.code == 0, table
    assert "demo/one" in table.out and "model=m2" in table.out
    assert " a " not in table.out


def test_runs_made_after_the_first_search_are_found(
    shared_dir: Path, helpers: Any, lab: dict[str, str]
) -> None:
    cli = helpers.Cli(shared_dir)
    assert found(cli, "--param", "model=m9") == []
    exp = me.Workspace(shared_dir / "lab").project("demo").experiment("two")
    exp.Run(parameters={"model": "m9"}, id="late")
    assert found(cli, "--param", "model=m9") == ["late"]


@pytest.mark.parametrize(
    ("param", "message"),
    [
        ("model", "'model' is not NAME=VALUE"),
        ("=m1", "'=m1' is not NAME=VALUE"),
        ("model=[m1", "the value '[m1' is not valid YAML"),
        ("model={a: 1, a: 2}", "duplicate key"),
    ],
)
def test_a_bad_param_is_a_one_line_usage_error(
    shared_dir: Path, helpers: Any, lab: dict[str, str], param: str, message: str
) -> None:
    result = helpers.Cli(shared_dir)("runs", "list", "--param", param)
    assert result.code == 2, result
    assert message in result.err and "--param" in result.err, result
    assert "Traceback" not in result.err


def test_a_param_given_twice_is_refused(
    shared_dir: Path, helpers: Any, lab: dict[str, str]
) -> None:
    result = helpers.Cli(shared_dir)("runs", "list", "--param", "n=1", "--param", "n=2")
    assert result.code == 2 and "'n' is given twice" in result.err, result
