"""Fast start: `molexp --help` and `molexp runs list` import no workflow runtime, YAML, rich or S3
code (checked with `python -X importtime`, which lists every module a process imports)."""

from __future__ import annotations

import subprocess
import sys

import pytest

import molexp as me

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
