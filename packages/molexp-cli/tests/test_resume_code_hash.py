"""`molexp run --resume` after an edit to a module constant runs the task that reads it again."""

from __future__ import annotations

from pathlib import Path
from typing import Any

SCALED = """\
SCALE = 2

wf = workflow(name="scaled")


@wf.task
def scaled(ctx: TaskContext) -> int:
    with (HERE / "scaled-calls.txt").open("a") as fh:
        fh.write("x")
    return 10 * SCALE


@wf.task(depends_on=["scaled"])
def finish(ctx: TaskContext) -> int:
    if not (HERE / "failed-once").exists():
        (HERE / "failed-once").write_text("")
        raise ValueError("finish failed on purpose")
    ctx.set_result("value", ctx.inputs)
    return ctx.inputs


spec = wf.build()
ws = me.Workspace(HERE / "lab", name="Lab")
exp = ws.Project("demo").Experiment("baseline")
spec.bind_to(exp)
me.entry(ws)
"""


def test_resume_runs_a_task_again_when_a_constant_it_reads_changed(
    cli: Any, script: Any, records: Any, tmp_path: Path
):
    path = script("scaled.py", SCALED)
    no_bytecode = {"PYTHONDONTWRITEBYTECODE": "1"}  # the edit below must not meet a stale .pyc
    first = cli("run", "scaled.py", env=no_bytecode)
    assert first.code == 1, first
    assert (tmp_path / "scaled-calls.txt").read_text() == "x"

    path.write_text(path.read_text().replace("SCALE = 2", "SCALE = 30"))
    resumed = cli("run", "scaled.py", "--resume", env=no_bytecode)
    assert resumed.code == 0, resumed
    (record,) = records().values()
    assert [a["status"] for a in record["execution_history"]] == ["failed", "succeeded"]
    assert (tmp_path / "scaled-calls.txt").read_text() == "xx"  # not reused: SCALE changed
    assert record["results"]["value"] == 300
