"""Fast start: `molexp --help` and `molexp runs list` import no workflow runtime, YAML, rich or S3
code, and `molexp --help` imports no command module (checked with `python -X importtime`, which
lists every module a process imports)."""

from __future__ import annotations

import importlib
import subprocess
import sys

import click
import pytest

import molexp as me
from molexp.cli._app import COMMANDS
from molexp.cli._inspect import ASSETS_COMMANDS, RUNS_COMMANDS
from molexp.cli._lazy import LazyCommand

TABLES = {"molexp": COMMANDS, "molexp runs": RUNS_COMMANDS, "molexp assets": ASSETS_COMMANDS}
COMMAND_MODULES = sorted({entry.module for table in TABLES.values() for entry in table.values()})

HEAVY = ("yaml", "rich", "molexp.workflow", "s3fs", "botocore", "aiobotocore", "molexp_storage_s3")


def _imported(args: list[str], cwd) -> set[str]:
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "molexp.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return {
        line.rsplit("|", 1)[1].strip()
        for line in proc.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }


@pytest.mark.parametrize("args", [["--help"], ["runs", "list"], ["ls"], ["run", "--help"]])
def test_light_commands_import_nothing_heavy(tmp_path, args):
    exp = me.Workspace(tmp_path / "lab").Project("p").Experiment("e", params={"lr": 0.1})
    with exp.Run(id="done").start(profile_config={"a": 1}, profile_name="x") as ctx:
        ctx.set_result("loss", 0.5)
    modules = _imported(args, tmp_path)
    assert "molexp.cli" in modules
    heavy = sorted(m for m in modules if m.split(".")[0] in HEAVY or m.startswith(HEAVY))
    assert heavy == []


def test_run_imports_yaml_only_when_there_is_a_config(cli, script, tmp_path):
    script(
        "plain.py",
        """
        wf = workflow(name="w")


        @wf.task
        def t(ctx: TaskContext) -> int:
            return 1


        spec = wf.build()
        ws = me.Workspace(HERE / "lab")
        spec.bind_to(ws.Project("p").Experiment("e"))
        me.entry(ws)
        """,
    )
    assert "yaml" not in _imported(["run", "plain.py"], tmp_path)
    (tmp_path / "molcfg.yaml").write_text("defaults: {a: 1}\n")
    assert "yaml" in _imported(["run", "plain.py"], tmp_path)


@pytest.mark.parametrize(
    ("group", "name", "entry"),
    [(group, name, entry) for group, table in TABLES.items() for name, entry in table.items()],
    ids=lambda value: value if isinstance(value, str) else "",
)
def test_the_command_table_says_what_each_command_says(group, name, entry: LazyCommand):
    """`molexp --help` shows the table's help without importing the command: it must be the
    command's own one-line help, at every width the listing may shorten it to."""
    command = getattr(importlib.import_module(entry.module), entry.attribute)
    assert isinstance(command, click.Command)
    assert command.name == name
    assert command.get_short_help_str(10_000) == entry.help
    listed = click.Command(name, help=entry.help)
    for limit in range(10, 130):
        assert listed.get_short_help_str(limit) == command.get_short_help_str(limit), limit


def test_help_imports_no_command_module(tmp_path):
    modules = _imported(["--help"], tmp_path)
    assert sorted(m for m in modules if m in COMMAND_MODULES) == []


def test_a_group_imports_only_its_own_module(tmp_path):
    modules = _imported(["runs", "--help"], tmp_path)
    assert "molexp.cli._inspect" in modules
    assert sorted(m for m in modules if m in COMMAND_MODULES) == ["molexp.cli._inspect"]


@pytest.mark.parametrize(
    ("args", "listed"),
    [
        (["--help"], sorted(COMMANDS)),
        (["runs", "--help"], ["cancel", "diff", "list", "show"]),
        (["assets", "--help"], ["lineage", "query"]),
    ],
)
def test_help_lists_every_command_with_its_help(cli, args, listed):
    result = cli(*args)
    assert result.code == 0, result
    section = result.out.split("Commands:\n", 1)[1]
    rows = [line.split(None, 1) for line in section.splitlines() if line.startswith("  ")]
    assert [row[0] for row in rows] == listed
    tables = {"runs": RUNS_COMMANDS, "assets": ASSETS_COMMANDS}
    for name, text in rows:
        entry = tables.get(args[0], COMMANDS).get(name)
        if entry is not None:  # as shortened to fit the width
            assert entry.help.startswith(text.removesuffix("...")), (text, entry.help)
