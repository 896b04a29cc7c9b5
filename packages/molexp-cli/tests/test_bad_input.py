"""Bad input (DESIGN §7): one line on stderr naming the problem, a non-zero exit, no traceback."""

from __future__ import annotations

import pytest

import molexp as me


def _one_line_error(result, code: int, *needles: str) -> None:
    assert result.code == code, result
    assert "Traceback" not in result.err, result
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result
    for needle in needles:
        assert needle in lines[0], result


@pytest.mark.parametrize(
    ("args", "code", "needles"),
    [
        (
            ["--profile", "smok"],
            2,
            ["unknown profile 'smok'", "did you mean 'smoke'", "long, smoke"],
        ),
        (["-o", "train.epochs"], 2, ["bad --override 'train.epochs'", "KEY=VALUE"]),
        (["-o", "a=[1,"], 2, ["bad --override 'a=[1,'", "not valid YAML"]),
        (["-o", "train.epochs.x=1"], 2, ["train.epochs is int 3, not a mapping"]),
        (["--config", "missing.yaml"], 2, ["missing.yaml does not exist"]),
        (["--jobs", "0"], 2, ["--jobs"]),
        (["--resume", "--rerun"], 2, ["exclude each other"]),
        (["--no-such-flag"], 2, ["No such option"]),
    ],
)
def test_bad_command_lines(cli, train, records, args, code, needles):
    _one_line_error(cli("run", "train.py", *args), code, *needles)
    assert records() == {}  # nothing was created


@pytest.mark.parametrize(
    ("text", "needles"),
    [
        (
            "version: 1\nprofiles:\n  smoke:\n    train: {epochs: 1}\n   lr: 2\n",
            ["malformed YAML in", "bad.yaml, line 5"],
        ),
        ("profiles:\n  a: {x: 1}\n  a: {x: 2}\n", ["bad.yaml, line 3", "duplicate key 'a'"]),
        (
            "profiles:\n  a: {extends: b}\n  b: {extends: c}\n  c: {extends: a}\n",
            ["a -> b -> c -> a"],
        ),
        ("defaults: {when: !!set {a, b}}\n", ["defaults.when", "JSON values"]),
    ],
)
def test_bad_config_files(cli, train, tmp_path, text, needles):
    (tmp_path / "bad.yaml").write_text(text)
    result = cli("run", "train.py", "--config", "bad.yaml", "--profile", "a")
    _one_line_error(result, 1, *needles)


def test_a_script_that_fails_to_import_shows_its_own_traceback(cli, script):
    script(
        "broken.py",
        """
        def load_data():
            return {}["missing-key"]


        DATA = load_data()
        """,
    )
    result = cli("run", "broken.py")
    assert result.code == 1, result
    first, *rest = result.err.splitlines()
    assert first.startswith("error: the script") and "failed to import" in first
    assert "from the script, not molexp" in first
    trace = "\n".join(rest)
    assert trace.startswith("Traceback (most recent call last):")
    assert 'broken.py", line' in trace and "load_data" in trace
    assert "KeyError: 'missing-key'" in trace
    assert "molexp/cli" not in result.err and "importlib" not in result.err


def test_a_script_with_a_syntax_error(cli, tmp_path):
    (tmp_path / "syntax.py").write_text("def f(:\n    pass\n")
    result = cli("run", "syntax.py")
    assert result.code == 1, result
    assert "failed to import" in result.err and "SyntaxError" in result.err
    assert "molexp/cli" not in result.err


def test_a_script_that_exits_while_imported(cli, tmp_path):
    (tmp_path / "exits.py").write_text("import sys\nsys.exit(3)\n")
    _one_line_error(cli("run", "exits.py"), 1, "sys.exit(3)", "__main__")


def test_a_script_that_registers_no_workspace(cli, script):
    script("quiet.py", 'ws = me.Workspace(HERE / "lab")\n')
    _one_line_error(cli("run", "quiet.py"), 1, "registered no workspace", "me.entry(ws)")


def test_a_missing_script(cli):
    _one_line_error(cli("run", "nowhere.py"), 2, "nowhere.py", "does not exist")


def test_experiments_without_a_workflow_are_named_and_skipped(cli, script, records):
    script(
        "partly.py",
        """
        wf = workflow(name="w")


        @wf.task
        def t(ctx: TaskContext) -> int:
            return 1


        spec = wf.build()
        ws = me.Workspace(HERE / "lab")
        project = ws.Project("p")
        spec.bind_to(project.Experiment("bound"))
        project.Experiment("forgotten")
        project.Experiment("also-forgotten")
        me.entry(ws)
        """,
    )
    result = cli("run", "partly.py")
    assert result.code == 0, result
    assert result.err.strip() == (
        "warning: 2 experiments have no bound workflow and are skipped: p/also-forgotten, "
        "p/forgotten"
    )
    assert [r["experiment_id"] for r in records().values()] == ["bound"]


def test_no_bound_workflow_at_all_is_an_error(cli, script):
    script(
        "unbound.py",
        """
        ws = me.Workspace(HERE / "lab")
        ws.Project("p").Experiment("e")
        me.entry(ws)
        """,
    )
    result = cli("run", "unbound.py")
    assert result.code == 1, result
    assert "Traceback" not in result.err
    assert result.err.splitlines()[-1].startswith("error: nothing to run")


def test_unknown_and_ambiguous_runs(cli, tmp_path):
    ws = me.Workspace(tmp_path / "lab")
    project = ws.Project("p")
    for experiment in ("a", "b"):
        project.Experiment(experiment).Run(id="same-id")
    project.Experiment("a").Run(id="abcd-1")
    project.Experiment("b").Run(id="abcd-2")
    _one_line_error(cli("runs", "show", "doesnotexist"), 1, "no run 'doesnotexist'")
    _one_line_error(cli("execute", "doesnotexist"), 1, "no run 'doesnotexist'")
    _one_line_error(cli("runs", "show", "x/y/z"), 1, "no project 'x'")
    _one_line_error(
        cli("runs", "show", "same-id"), 1, "ambiguous", "p/a/same-id, p/b/same-id", "PROJECT/"
    )
    _one_line_error(cli("runs", "cancel", "abcd"), 1, "ambiguous", "p/a/abcd-1, p/b/abcd-2")
    shown = cli("runs", "show", "p/b/same-id", "--json")
    assert shown.code == 0 and shown.json()["experiment_id"] == "b", shown
    assert cli("runs", "show", "abcd-2").code == 0


def test_no_workspace_found(cli, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    _one_line_error(cli("runs", "list", cwd=empty), 1, "no workspace found", "--workspace")
    _one_line_error(
        cli("ls", env={"MOLEXP_WORKSPACE": str(empty)}), 1, "no workspace at", "MOLEXP_WORKSPACE"
    )
    _one_line_error(cli("runs", "list", "--workspace", str(empty / "x")), 1, "no workspace at")


def test_bad_listing_options(cli, train):
    assert cli("run", "train.py").code == 0
    _one_line_error(cli("runs", "list", "--status", "weird"), 2, "'weird' is not one of")
    _one_line_error(cli("runs", "list", "--sort", "colour"), 2, "not a sort key", "params.NAME")
    _one_line_error(cli("no-such-command"), 2, "No such command")
