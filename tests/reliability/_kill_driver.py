"""The victim of the kill -9 tests (test_kill9.py): a fork server and the operations it loops on.

Started once per test as ``python _kill_driver.py``, it imports molexp, warms it up (imports,
pydantic models, the environment scan of provenance capture) in a scratch workspace, and then
reads one JSON job per line from stdin. For each job it forks a child that opens the job's
workspace, prints ``{"ready": pid}`` and loops over one kind of operation for ever, appending a
JSON line to the job's "reported" file (flushed and fsynced) after each operation *completes*.
The test kills the child with SIGKILL at a random instant; the server reaps it and prints
``{"exit": pid, "status": ...}``. Forking from a warm process makes a trial cost milliseconds
instead of a fresh interpreter's half second, so CI affords dozens of trials per operation.

The child is an ordinary molexp process: nothing here changes how molexp writes.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import molexp as me

#: A child that was not killed after this long stops by itself (a hung test, not a result).
SAFETY_SECONDS = 60.0
BIG_FILE_BYTES = 4 << 20

Report = Callable[..., None]


def sha256(data: bytes) -> str:
    return f"sha256:{hashlib.sha256(data).hexdigest()}"


def file_sha(path: Path) -> str:
    return sha256(path.read_bytes())


def forever() -> Any:
    deadline = time.monotonic() + SAFETY_SECONDS
    i = 0
    while time.monotonic() < deadline:
        yield i
        i += 1
    os._exit(3)


# -- the operations -------------------------------------------------------------------------------


def scenario_create(ws: me.Workspace, job: dict[str, Any], report: Report) -> None:
    """Create runs (explicit and fresh ids) and, now and then, a new experiment."""
    trial = job["trial"]
    exp = ws.Project("p").Experiment("e")
    for i in forever():
        if i % 10 == 9:
            exp = ws.Project("p").Experiment(f"x-{trial}-{i}", params={"trial": trial})
            report(op="experiment", experiment=exp.id)
        params = {"trial": trial, "i": i}
        run = exp.Run(parameters=params, id=f"t{trial}-{i}" if i % 2 == 0 else None)
        report(op="run", experiment=exp.id, run=run.id, params=params)


def scenario_lifecycle(ws: me.Workspace, job: dict[str, Any], report: Report) -> None:
    """Create a run, start it, set five results, finish it; again (with a busy heartbeat)."""
    trial = job["trial"]
    exp = ws.Project("p").Experiment("e")
    for i in forever():
        run = exp.Run(parameters={"trial": trial, "i": i}, id=f"t{trial}-{i}")
        report(op="created", run=run.id)
        with run.start(heartbeat_interval=0.02) as ctx:
            report(op="started", run=run.id)
            for j in range(5):
                value = {"trial": trial, "i": i, "j": j, "pad": "x" * (j * 40)}
                ctx.set_result(f"r{j}", value)
                report(op="result", run=run.id, key=f"r{j}", value=value)
        report(op="finished", run=run.id)


def scenario_artifact(ws: me.Workspace, job: dict[str, Any], report: Report) -> None:
    """Save JSON, bytes and text artifacts, a 4 MiB file, and replace one name again and again."""
    trial = job["trial"]
    scratch = Path(job["scratch"])
    run = ws.Project("p").Experiment("e").Run(id=f"t{trial}")
    with run.start() as ctx:
        report(op="started", run=run.id)
        for i in forever():
            kind = i % 6
            if kind == 0:
                src = scratch / f"big-{trial}-{i}.bin"
                src.write_bytes(os.urandom(BIG_FILE_BYTES))
                name, value = f"big-{i}.bin", None
                asset = ctx.artifact.save(name, src)
                digest = file_sha(src)
                src.unlink()
            elif kind == 1:
                name, value = f"raw-{i}.bin", None
                data = os.urandom(1000 + i)
                asset = ctx.artifact.save(name, data)
                digest = sha256(data)
            elif kind == 2:
                name, value = "latest.json", {"trial": trial, "i": i}
                asset = ctx.artifact.save(name, value)
                digest = asset.content_hash
            elif kind == 3:
                name, value = f"note-{i}.txt", f"trial {trial} note {i}\n" * (i % 7 + 1)
                asset = ctx.artifact.save(name, value)
                digest = sha256(value.encode())
            else:
                name, value = f"a-{i}.json", {"trial": trial, "i": i, "rows": list(range(i % 50))}
                asset = ctx.artifact.save(name, value)
                digest = asset.content_hash
            report(op="artifact", run=run.id, name=name, id=asset.id, sha=digest, value=value)


def log_line(trial: int, i: int) -> str:
    return f"trial={trial} line={i} " + "x" * (i % 97)


def scenario_log(ws: me.Workspace, job: dict[str, Any], report: Report) -> None:
    """Append lines to a run's log."""
    trial = job["trial"]
    run = ws.Project("p").Experiment("e").Run(id=f"t{trial}")
    with run.start() as ctx:
        report(op="started", run=run.id)
        log = ctx.log("train")
        for i in forever():
            line = log_line(trial, i)
            log.append(line)
            report(op="line", run=run.id, i=i, text=line)


def scenario_checkpoint(ws: me.Workspace, job: dict[str, Any], report: Report) -> None:
    """Checkpoint one chain of one run, attempt after attempt (JSON values and files)."""
    trial = job["trial"]
    scratch = Path(job["scratch"])
    run = ws.Project("p").Experiment("e").Run(id="ckpt")
    with run.start() as ctx:
        report(op="started", run=run.id)
        for i in forever():
            if i % 4 == 3:
                src = scratch / f"weights-{trial}-{i}.bin"
                src.write_bytes(os.urandom(200_000))
                asset = ctx.checkpoint("model", src)
                digest, value = file_sha(src), None
                src.unlink()
            else:
                value = {"trial": trial, "i": i}
                asset = ctx.checkpoint("model", value)
                digest = asset.content_hash
            report(
                op="checkpoint", run=run.id, step=asset.step, id=asset.id, sha=digest, value=value
            )


def _libraries(ws: me.Workspace) -> list[Any]:
    project = ws.Project("p")
    return [ws.data_assets, project.data_assets, project.Experiment("e").data_assets]


def scenario_import_copy(ws: me.Workspace, job: dict[str, Any], report: Report) -> None:
    """Import files and directories by copy, at the workspace, project and experiment scope."""
    trial = job["trial"]
    scratch = Path(job["scratch"])
    libraries = _libraries(ws)
    for i in forever():
        if i % 4 == 3:
            src = scratch / f"dir-{trial}-{i}"
            (src / "sub").mkdir(parents=True)
            for k in range(3):
                (src / "sub" / f"part-{k}.bin").write_bytes(os.urandom(30_000 + k))
        else:
            src = scratch / f"file-{trial}-{i}.bin"
            src.write_bytes(os.urandom(50_000 + i))
        asset = libraries[i % 3].import_asset(f"d-{trial}-{i}", src, action="copy")
        report(op="import", name=asset.name, id=asset.id, sha=asset.content_hash, source=str(src))


def scenario_import_move(ws: me.Workspace, job: dict[str, Any], report: Report) -> None:
    """Move the sources the test prepared (files and directories) into the workspace."""
    libraries = _libraries(ws)
    sources = sorted(Path(job["sources"]).iterdir())
    for i in forever():
        if i >= len(sources):
            time.sleep(0.01)  # everything moved: wait for the kill
            continue
        src = sources[i]
        asset = libraries[i % 3].import_asset(src.name, src, action="move")
        report(op="import", name=asset.name, id=asset.id, sha=asset.content_hash, source=str(src))


def scenario_catalog(ws: me.Workspace, job: dict[str, Any], report: Report) -> None:
    """Register assets, rebuild the index, delete it under a live reader, and delete projects
    (which drops their rows from the index)."""
    trial = job["trial"]
    scratch = Path(job["scratch"])
    run = ws.Project("p").Experiment("e").Run(id=f"t{trial}")
    with run.start() as ctx:
        report(op="started", run=run.id)
        for i in forever():
            step = i % 8
            if step == 3:
                count = ws.catalog.rebuild()
                report(op="rebuild", count=count)
            elif step == 5:
                ws.catalog.location.unlink(missing_ok=True)
                count = len(me.Workspace(ws.url).catalog.query_assets())
                report(op="reindexed", count=count)
            elif step == 7:
                doomed = ws.Project(f"doomed-{trial}-{i}")
                src = scratch / f"doomed-{trial}-{i}.txt"
                src.write_text("soon gone")
                doomed.data_assets.import_asset("gone", src)
                report(op="doomed", project=doomed.id)
                ws.delete_project(doomed.id)
                report(op="deleted", project=doomed.id)
            else:
                value = {"trial": trial, "i": i}
                asset = ctx.artifact.save(f"c-{i}.json", value)
                report(op="artifact", run=run.id, name=asset.name, id=asset.id, value=value)


SCENARIOS: dict[str, Callable[[me.Workspace, dict[str, Any], Report], None]] = {
    "create": scenario_create,
    "lifecycle": scenario_lifecycle,
    "artifact": scenario_artifact,
    "log": scenario_log,
    "checkpoint": scenario_checkpoint,
    "import-copy": scenario_import_copy,
    "import-move": scenario_import_move,
    "catalog": scenario_catalog,
}


# -- the fork server ------------------------------------------------------------------------------


def say(**message: Any) -> None:
    """One JSON line on stdout, in one write (the server and its children share the pipe)."""
    os.write(1, json.dumps(message).encode() + b"\n")


def child(job: dict[str, Any]) -> None:
    fd = os.open(job["reported"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    def report(**entry: Any) -> None:
        os.write(fd, json.dumps(entry).encode() + b"\n")
        os.fsync(fd)

    ws = me.Workspace(job["root"])
    ws.Project("p").Experiment("e")
    say(ready=os.getpid())
    SCENARIOS[job["scenario"]](ws, job, report)


def warm_up() -> None:
    """Touch every code path the children use once, so that they fork with it loaded."""
    with tempfile.TemporaryDirectory(prefix="molexp-kill-warmup-") as scratch:
        base = Path(scratch)
        ws = me.Workspace(base / "lab")
        exp = ws.Project("p").Experiment("e")
        src = base / "src.bin"
        src.write_bytes(b"warm")
        # An interval no child uses: the heartbeat thread of this process sleeps through the
        # forks, and the children start their own.
        with exp.Run(id="w").start(heartbeat_interval=3600.0) as ctx:
            ctx.set_result("x", 1)
            ctx.artifact.save("a.json", {"a": 1})
            ctx.artifact.save("b.bin", src)
            ctx.log("train").append("warm")
            ctx.checkpoint("model", {"w": 1})
        exp.data_assets.import_asset("d", src, action="copy")
        ws.catalog.rebuild()
        ws.catalog.index.close()


def serve() -> None:
    warm_up()
    say(warm=os.getpid())
    for line in sys.stdin:
        if not line.strip():
            continue
        job = json.loads(line)
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                child(job)
            except BaseException as exc:  # an error in a child is a finding: say what it was
                import traceback

                sys.stderr.write(f"child {os.getpid()} failed: {exc!r}\n")
                traceback.print_exc()
                sys.stderr.flush()
                code = 4
            finally:
                os._exit(code)
        say(pid=pid)
        _, status = os.waitpid(pid, 0)
        say(exit=pid, status=status)


if __name__ == "__main__":
    serve()
