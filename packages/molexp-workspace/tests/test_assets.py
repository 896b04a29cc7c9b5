"""Run-time assets: artifacts, logs, checkpoints, error traces, execution state, producers.

Every test runs on local disk and on fsspec's in-memory filesystem (the ``ws`` fixture).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

import molexp as me
from molexp.workspace import (
    ArtifactAsset,
    AssetKind,
    AssetRecord,
    CheckpointAsset,
    DataAsset,
    ErrorTraceAsset,
    ExecutionStateAsset,
    InvalidNameError,
    LogAsset,
    RunStateError,
    RunStatus,
    ScopeLevel,
)
from molexp.workspace.storage import Storage


@pytest.fixture(autouse=True)
def _private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Non-local workspaces keep their catalog in the user cache: keep it inside the test."""
    monkeypatch.setenv("MOLEXP_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture
def run(exp: me.Experiment) -> me.Run:
    return exp.Run(parameters={"seed": 1}, id="r1")


def sha(data: bytes) -> str:
    return f"sha256:{hashlib.sha256(data).hexdigest()}"


def tree(storage: Storage, key: str = "") -> set[str]:
    """Every file key under ``key`` (works on every backend)."""
    found: set[str] = set()
    pending = [key]
    while pending:
        current = pending.pop()
        for child in storage.list(current):
            child_key = f"{current}/{child}" if current else child
            if storage.is_dir(child_key):
                pending.append(child_key)
            else:
                found.add(child_key)
    return found


def record_on_disk(ws: me.Workspace, asset: me.workspace.Asset) -> AssetRecord:
    return AssetRecord.model_validate_json(ws.storage.read_bytes(asset.record.record))


# -- artifacts --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value", [{"loss": 0.25, "tags": ["a", "é"]}, [1, 2.5, None, "x"]], ids=["dict", "list"]
)
def test_artifact_json_values_are_saved_as_json(ws: me.Workspace, run: me.Run, value) -> None:
    with run.start() as ctx:
        asset = ctx.artifact.save("metrics.json", value)
    assert isinstance(asset, ArtifactAsset)
    assert asset.kind == AssetKind.ARTIFACT
    assert asset.record.payload == f"{run.key}/artifacts/metrics.json"
    assert asset.record.record == f"{run.key}/.assets/artifact/metrics.json.json"
    raw = ws.storage.read_bytes(asset.record.payload)
    assert json.loads(raw) == value
    assert asset.record.encoding == "json"
    assert asset.size == len(raw)
    assert asset.content_hash == sha(raw)
    assert asset.load() == value
    assert asset.read_json() == value
    # The record beside the payload is the authoritative copy, and the catalog agrees with it.
    assert record_on_disk(ws, asset) == asset.record
    (indexed,) = ws.catalog.query_assets(kind="artifact", run=run)
    assert indexed.id == asset.id
    assert isinstance(indexed, ArtifactAsset)
    assert indexed.load() == value


def test_artifact_bytes_are_saved_as_is(ws: me.Workspace, run: me.Run) -> None:
    data = bytes(range(256)) * 3
    with run.start() as ctx:
        asset = ctx.artifact.save("weights.bin", data)
        assert ctx.artifact.load("weights.bin") == data
    assert asset.record.encoding == "bytes"
    assert asset.read_bytes() == data
    assert asset.load() == data
    assert asset.size == len(data)
    assert asset.content_hash == sha(data)


def test_artifact_str_is_saved_as_utf8_text(ws: me.Workspace, run: me.Run) -> None:
    text = "line one\nligne deux é ✓\n"
    with run.start() as ctx:
        asset = ctx.artifact.save("notes.txt", text)
    assert asset.record.encoding == "text"
    assert asset.load() == text
    assert asset.read_text() == text
    assert asset.read_bytes() == text.encode()
    assert asset.size == len(text.encode())


def test_artifact_path_to_a_file_is_copied(ws: me.Workspace, run: me.Run, tmp_path: Path) -> None:
    src = tmp_path / "model.pt"
    src.write_bytes(b"\x00weights\xff" * 1000)
    with run.start() as ctx:
        asset = ctx.artifact.save("model.pt", src)
    assert asset.record.encoding == "file"
    assert asset.read_bytes() == src.read_bytes()
    assert asset.size == src.stat().st_size
    assert asset.content_hash == sha(src.read_bytes())
    assert src.read_bytes() == b"\x00weights\xff" * 1000  # the source is left alone
    if ws.storage.local_path("") is not None:
        assert asset.path is not None and asset.path.read_bytes() == src.read_bytes()
    else:
        assert asset.path is None
        assert asset.url.startswith("memory://")


def test_artifact_path_to_a_directory_is_copied_recursively(
    ws: me.Workspace, run: me.Run, tmp_path: Path
) -> None:
    src = tmp_path / "plots"
    (src / "sub" / "deeper").mkdir(parents=True)
    (src / "a.png").write_bytes(b"A" * 10)
    (src / "sub" / "b.csv").write_bytes(b"B" * 20)
    (src / "sub" / "deeper" / "c.txt").write_bytes(b"C" * 30)
    with run.start() as ctx:
        asset = ctx.artifact.save("plots", src)
    key = asset.record.payload
    assert asset.record.encoding == "directory"
    assert tree(ws.storage, key) == {f"{key}/a.png", f"{key}/sub/b.csv", f"{key}/sub/deeper/c.txt"}
    assert ws.storage.read_bytes(f"{key}/sub/deeper/c.txt") == b"C" * 30
    assert asset.size == 60
    assert asset.content_hash is not None and asset.content_hash.startswith("sha256:")


def test_saving_an_artifact_again_replaces_it(
    ws: me.Workspace, run: me.Run, tmp_path: Path
) -> None:
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "inside.txt").write_text("inside")
    versions = [{"v": 1}, folder, {"v": 3}, b"four", "five"]
    with run.start() as ctx:
        ids = []
        for value in versions:
            asset = ctx.artifact.save("result", value)
            ids.append(asset.id)
            (only,) = ws.catalog.query_assets(kind="artifact", name="result")
            assert only.id == asset.id
            assert record_on_disk(ws, asset).id == asset.id
        assert ctx.artifact.load("result") == "five"
    assert len(set(ids)) == len(versions)
    key = f"{run.key}/artifacts/result"
    assert ws.storage.read_bytes(key) == b"five"
    assert tree(ws.storage, f"{run.key}/artifacts") == {key}
    assert [a.name for a in run.assets.list()] == ["result"]


def test_artifact_outside_an_executing_run_is_refused(ws: me.Workspace, run: me.Run) -> None:
    ctx = run.start()
    with pytest.raises(RunStateError, match=r"artifact\.save"):
        ctx.artifact.save("x.json", {"a": 1})
    with run.start() as entered:
        pass
    with pytest.raises(RunStateError):
        entered.artifact.save("x.json", {"a": 1})
    with pytest.raises(RunStateError):
        entered.checkpoint("ckpt", data=1)
    with pytest.raises(RunStateError):
        entered.log("train").append("late")
    assert ws.assets.list() == []


BAD_NAMES = ["a/b", "..", ".", "x\x00y", "", "../escape", "/etc/passwd", "a\\b", " pad", "é" * 101]


def _save_artifact(ctx: me.RunContext, name: str) -> None:
    ctx.artifact.save(name, {"x": 1})


def _append_log(ctx: me.RunContext, name: str) -> None:
    ctx.log(name).append("line")


def _checkpoint(ctx: me.RunContext, name: str) -> None:
    ctx.checkpoint(name, data={"x": 1})


@pytest.mark.parametrize("name", BAD_NAMES)
@pytest.mark.parametrize(
    "action", [_save_artifact, _append_log, _checkpoint], ids=lambda f: f.__name__
)
def test_unsafe_names_are_refused_and_nothing_is_written(
    ws: me.Workspace, run: me.Run, name: str, action
) -> None:
    with run.start() as ctx:
        before = tree(ws.storage)
        with pytest.raises(InvalidNameError, match=r"not a safe file name|not valid UTF-8"):
            action(ctx, name)
        assert tree(ws.storage) == before
        assert ws.assets.list() == []
    assert run.status == RunStatus.SUCCEEDED


@pytest.mark.parametrize("name", ["metrics v2.json", "résumé.txt", ".hidden", "a" * 200, "x..y"])
def test_ordinary_names_are_accepted(ws: me.Workspace, run: me.Run, name: str) -> None:
    with run.start() as ctx:
        saved = ctx.artifact.save(name, "ok")
        ctx.log(name).append("ok")
        ckpt = ctx.checkpoint(name, data="ok")
    assert saved.load() == "ok"
    assert ckpt.load() == "ok"
    assert {a.kind for a in ws.catalog.query_assets(name=name)} == {"artifact", "log", "checkpoint"}


# -- logs -------------------------------------------------------------------------------------


def test_log_append_tail_and_lines(ws: me.Workspace, run: me.Run) -> None:
    with run.start() as ctx:
        handle = ctx.log("train")
        assert handle.asset is None  # nothing is registered before the first line
        for i in range(1, 501):
            handle.append(f"step={i} loss={1 / i:.4f}")
        assert ctx.log("train") is handle
        asset = handle.asset
        assert isinstance(asset, LogAsset)
        assert asset.tail(3) == [f"step={i} loss={1 / i:.4f}" for i in (498, 499, 500)]
        assert asset.lines()[0] == "step=1 loss=1.0000"
        assert len(asset.lines()) == 500
        live = ws.storage.size(f"{run.key}/logs/train.log")
        assert asset.size == live  # the size is read live while the run appends
    assert asset.record.payload == f"{run.key}/logs/train.log"
    assert asset.tail(1) == ["step=500 loss=0.0020"]
    assert asset.tail(1000) == asset.lines()


def test_log_asset_is_registered_once_and_its_record_is_not_rewritten_per_line(
    ws: me.Workspace, run: me.Run
) -> None:
    storage = ws.storage
    record_key = f"{run.key}/.assets/log/train.json"
    local = storage.local_path(record_key)
    with run.start() as ctx:
        log = ctx.log("train")
        log.append("first")
        written = storage.read_bytes(record_key)
        stat = os.stat(local) if local is not None else None
        for i in range(2000):
            log.append(f"line {i}")
        assert storage.read_bytes(record_key) == written
        if local is not None:
            after = os.stat(local)
            assert (after.st_ino, after.st_mtime_ns) == (stat.st_ino, stat.st_mtime_ns)
        assert len(ws.catalog.query_assets(kind="log")) == 1
    # At the end of the attempt the size is recorded, in the record and in the catalog.
    size = storage.size(f"{run.key}/logs/train.log")
    assert size == len(b"first\n") + sum(len(f"line {i}\n") for i in range(2000))
    on_disk = AssetRecord.model_validate_json(storage.read_bytes(record_key))
    assert on_disk.size == size
    (indexed,) = ws.catalog.query_assets(kind="log", name="train")
    assert indexed.record.size == size
    assert indexed.id == on_disk.id


def test_a_later_attempt_appends_to_the_same_log_asset(ws: me.Workspace, run: me.Run) -> None:
    with run.start() as ctx:
        ctx.log("train").append("attempt 1")
        first_id = ctx.log("train").asset.id
    with run.start() as ctx:
        ctx.log("train").append("attempt 2")
        assert ctx.log("train").asset.id == first_id
    (log,) = ws.catalog.query_assets(kind="log")
    assert log.id == first_id
    assert log.lines() == ["attempt 1", "attempt 2"]
    assert log.record.size == len(b"attempt 1\nattempt 2\n")


# -- checkpoints ------------------------------------------------------------------------------


def test_checkpoints_chain_within_a_run_and_across_attempts(ws: me.Workspace, run: me.Run) -> None:
    saved = {}

    def first_attempt() -> None:
        with run.start() as ctx:
            saved["c1"] = ctx.checkpoint("model", data={"epoch": 1})
            saved["c2"] = ctx.checkpoint("model", data={"epoch": 2})
            saved["other"] = ctx.checkpoint("optimizer", data=b"\x01\x02")
            saved["execution"] = ctx.execution_id
            raise RuntimeError("preempted")

    with pytest.raises(RuntimeError, match="preempted"):
        first_attempt()
    c1, c2, other, first_execution = saved["c1"], saved["c2"], saved["other"], saved["execution"]
    with run.start() as ctx:
        c3 = ctx.checkpoint("model", data={"epoch": 3})
        second_execution = ctx.execution_id
    assert all(isinstance(c, CheckpointAsset) for c in (c1, c2, c3, other))
    assert [c1.step, c2.step, c3.step] == [1, 2, 3]
    assert other.step == 1  # each name has its own chain
    assert other.previous() is None and other.load() == b"\x01\x02"
    assert c1.record.previous is None
    assert c2.record.previous == c1.id
    assert c3.record.previous == c2.id
    assert c3.previous() == c2 and c2.previous() == c1 and c1.previous() is None
    assert [c.id for c in c3.chain()] == [c1.id, c2.id, c3.id]
    assert [c.load() for c in c3.chain()] == [{"epoch": 1}, {"epoch": 2}, {"epoch": 3}]
    assert c1.producer.execution_id == c2.producer.execution_id == first_execution
    assert c3.producer.execution_id == second_execution != first_execution
    assert c3.record.payload == f"{run.key}/.ckpt/model/000003"
    assert {f"{run.key}/.ckpt/model/00000{i}" for i in (1, 2, 3)} <= tree(ws.storage, run.key)
    # A fresh workspace object finds the chain through the catalog alone.
    fresh = me.Workspace(ws.url)
    (latest,) = fresh.catalog.query_assets(
        kind="checkpoint", name="model", newest_first=True, limit=1
    )
    assert latest.id == c3.id
    assert [c.load()["epoch"] for c in latest.chain()] == [1, 2, 3]


def test_checkpoint_of_a_file_keeps_its_suffix(
    ws: me.Workspace, run: me.Run, tmp_path: Path
) -> None:
    src = tmp_path / "state.npz"
    src.write_bytes(b"npz-bytes")
    with run.start() as ctx:
        ckpt = ctx.checkpoint("model", data=src)
    assert ckpt.record.payload.endswith("/.ckpt/model/000001.npz")
    assert ckpt.load() == b"npz-bytes"


# -- error traces and execution state ---------------------------------------------------------


def test_a_failed_attempt_registers_its_error_trace(ws: me.Workspace, run: me.Run) -> None:
    def train() -> None:
        raise ValueError("loss became NaN at step 1234")

    with pytest.raises(ValueError, match="NaN"), run.start():
        train()
    assert run.status == RunStatus.FAILED
    (trace,) = ws.catalog.query_assets(kind="error_trace", run=run)
    assert isinstance(trace, ErrorTraceAsset)
    assert "ValueError: loss became NaN at step 1234" in trace.traceback
    assert "in train" in trace.traceback  # the whole traceback, not just the message
    assert trace.record.payload == f"{run.key}/{run.error.traceback_path}"
    assert trace.producer.execution_id == run.error.execution_id
    assert trace.meta == {"type": "ValueError", "message": "loss became NaN at step 1234"}
    assert trace.size == len(trace.read_bytes())
    assert trace.content_hash == sha(trace.read_bytes())
    # Another failure adds a trace; a success adds none.
    with pytest.raises(KeyError), run.start():
        raise KeyError("missing")
    with run.start():
        pass
    traces = ws.catalog.query_assets(kind="error_trace", run=run)
    assert len(traces) == 2
    assert "KeyError: 'missing'" in traces[1].traceback


def test_a_failure_recorded_with_its_own_traceback_text(ws: me.Workspace, run: me.Run) -> None:
    with run.start() as ctx:
        ctx.record_failure(RuntimeError("task t failed"), traceback_text="remote traceback\n")
    (trace,) = ws.catalog.query_assets(kind="error_trace")
    assert trace.traceback == "remote traceback\n"
    assert trace.size == len(b"remote traceback\n")
    assert trace.content_hash == sha(b"remote traceback\n")
    assert run.status == RunStatus.FAILED


def test_execution_state_registers_one_asset(ws: me.Workspace, run: me.Run) -> None:
    with run.start() as ctx:
        assert ctx.execution_state.load() is None
        ctx.execution_state.save({"done": ["a"]})
        record_key = f"{run.key}/.assets/execution_state/state.json"
        written = ws.storage.read_bytes(record_key)
        ctx.execution_state.save({"done": ["a", "b"]})
        assert ws.storage.read_bytes(record_key) == written
    with run.start() as ctx:
        assert ctx.execution_state.load() == {"done": ["a", "b"]}
        ctx.execution_state.save({"done": ["a", "b", "c"]})
    (state,) = ws.catalog.query_assets(kind="execution_state")
    assert isinstance(state, ExecutionStateAsset)
    assert state.load() == {"done": ["a", "b", "c"]}
    assert state.record.payload == f"{run.key}/execution/state.json"


# -- producers and lineage --------------------------------------------------------------------


def test_producer_records_run_execution_and_task(ws: me.Workspace, run: me.Run) -> None:
    with run.start() as ctx:
        with ctx.task_scope("train"):
            assert ctx.current_task == "train"
            in_task = ctx.artifact.save("model.bin", b"m")
            ctx.log("train").append("x")
        outside = ctx.artifact.save("summary.json", {"ok": True})
        execution_id = ctx.execution_id
    producer = in_task.producer
    assert producer is not None
    assert (producer.run_id, producer.experiment_id, producer.project_id) == (
        "r1",
        "baseline",
        "qm9",
    )
    assert producer.execution_id == execution_id
    assert producer.task == "train"
    assert producer.run_key == "qm9/baseline/r1"
    assert outside.producer.task is None
    assert in_task.scope.level == ScopeLevel.RUN
    assert (in_task.scope.project_id, in_task.scope.experiment_id, in_task.scope.run_id) == (
        "qm9",
        "baseline",
        "r1",
    )
    names = {a.name for a in ws.catalog.query_assets(producer_task="train")}
    assert names == {"model.bin", "train"}


def test_find_asset_records_lineage_per_task(ws: me.Workspace, run: me.Run, tmp_path: Path) -> None:
    src = tmp_path / "raw.csv"
    src.write_text("a,b\n1,2\n")
    raw = ws.data_assets.import_asset("raw", src)
    with run.start() as ctx:
        with ctx.task_scope("prep"):
            found = ctx.find_asset("raw")
            clean = ctx.artifact.save("clean.csv", "a,b\n1,2\n")
        with ctx.task_scope("report"):
            report = ctx.artifact.save("report.txt", "no inputs read here")
    assert isinstance(found, DataAsset) and found.id == raw.id
    assert clean.producer.inputs == [raw.id]
    assert report.producer.inputs == []
    assert record_on_disk(ws, clean).producer.inputs == [raw.id]
    assert ws.catalog.lineage(clean) == [raw]
    assert ws.catalog.lineage(raw, direction="down") == [clean]
