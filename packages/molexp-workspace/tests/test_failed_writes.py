"""A write of ``run.json`` that fails changes nothing: not the file, and not the run in memory.

Otherwise a value the caller was told failed to save (``set_result`` raised) would stay in memory
and be stored by the next successful write. The store fails on demand through a thin wrapper
around :class:`LocalStorage` (the store is not what is under test; the run context is).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import molexp as me
from molexp.workspace import RunStatus, StorageError
from molexp.workspace.storage import LocalStorage


class _Failing(LocalStorage):
    """A local store on which writing a file whose key ends with ``failing`` fails while armed
    (as a full disk or a refusing server would)."""

    failing = "/run.json"
    armed = False
    refused = 0

    def write_bytes(
        self, key: str, data: bytes, *, exclusive: bool = False, durable: bool = True
    ) -> None:
        if self.armed and key.endswith(self.failing):
            self.refused += 1
            raise StorageError(f"writing {self.url_for(key)} failed: no space left on device")
        super().write_bytes(key, data, exclusive=exclusive, durable=durable)


def _failing_workspace(root: Path) -> tuple[me.Workspace, _Failing]:
    ws = me.Workspace(root / "lab", name="Lab")
    storage = _Failing(ws.storage.url)
    ws.storage = storage
    return ws, storage


@pytest.fixture
def failing(tmp_path: Path) -> tuple[me.Workspace, _Failing]:
    return _failing_workspace(tmp_path)


def _on_disk(run: me.Run) -> dict[str, Any]:
    """The run as a fresh process would read it."""
    fresh = me.Workspace.load(run.storage.url).project("p").experiment("e").get_run(run.id)
    dumped: dict[str, Any] = fresh.metadata.model_dump(mode="json")
    return dumped


def _in_memory(run: me.Run) -> dict[str, Any]:
    dumped: dict[str, Any] = run.metadata.model_dump(mode="json")
    return dumped


def test_a_result_whose_write_failed_is_never_saved_later(
    failing: tuple[me.Workspace, _Failing],
) -> None:
    ws, storage = failing
    run = ws.Project("p").Experiment("e").Run(id="r")
    with run.start() as ctx:
        ctx.set_result("kept", 1)
        before = _in_memory(run)
        storage.armed = True
        with pytest.raises(StorageError, match="no space left"):
            ctx.set_result("lost", 2)
        storage.armed = False
        assert run.results == {"kept": 1}
        assert ctx.get_result("lost") is None and ctx.results == {"kept": 1}
        assert _in_memory(run) == before == _on_disk(run)
        ctx.set_result("next", 3)
        assert run.results == {"kept": 1, "next": 3}
        assert _on_disk(run)["results"] == {"kept": 1, "next": 3}
    assert run.status == RunStatus.SUCCEEDED
    assert _on_disk(run) == _in_memory(run)
    assert _on_disk(run)["results"] == {"kept": 1, "next": 3}


def test_labels_whose_write_failed_are_never_saved_later(
    failing: tuple[me.Workspace, _Failing],
) -> None:
    ws, storage = failing
    run = ws.Project("p").Experiment("e").Run(id="r")
    with run.start() as ctx:
        ctx.set_labels({"kept": "yes"})
        before = _in_memory(run)
        storage.armed = True
        with pytest.raises(StorageError):
            ctx.set_labels({"lost": "yes", "kept": "overwritten"})
        storage.armed = False
        assert run.metadata.labels == {"kept": "yes"}
        assert run.metadata.execution_history[-1].labels == {"kept": "yes"}
        assert _in_memory(run) == before == _on_disk(run)
        ctx.set_labels({"next": "yes"})
    on_disk = _on_disk(run)
    assert on_disk["labels"] == {"kept": "yes", "next": "yes"}
    assert on_disk["execution_history"][-1]["labels"] == {"kept": "yes", "next": "yes"}
    assert on_disk == _in_memory(run)


def test_a_start_whose_write_failed_leaves_the_run_as_it_was_and_can_be_retried(
    failing: tuple[me.Workspace, _Failing],
) -> None:
    ws, storage = failing
    run = ws.Project("p").Experiment("e").Run(id="r")
    before = _in_memory(run)
    storage.armed = True
    with pytest.raises(StorageError), run.start(profile_config={"lr": 0.1}, profile_name="fast"):
        pytest.fail("the body of an attempt that could not start must not run")
    storage.armed = False
    assert storage.refused == 1
    assert run.context is None and run.status == RunStatus.CREATED
    assert _in_memory(run) == before == _on_disk(run)
    # The attempt number it claimed is free again: the retry is attempt 1, not a refusal.
    with run.start(profile_config={"lr": 0.1}, profile_name="fast") as ctx:
        ctx.set_result("x", 1)
    history = run.metadata.execution_history
    assert [r.status for r in history] == [RunStatus.SUCCEEDED]
    assert run.metadata.config == {"lr": 0.1} and run.metadata.profile_name == "fast"
    claims = storage.list(f"{run.key}/execution")
    assert [c for c in claims if c.startswith("attempt-")] == ["attempt-000001.json"]
    assert _on_disk(run) == _in_memory(run)


def test_an_end_whose_write_failed_leaves_a_recognisably_unfinished_run(
    failing: tuple[me.Workspace, _Failing],
) -> None:
    ws, storage = failing
    run = ws.Project("p").Experiment("e").Run(id="r")
    with pytest.raises(StorageError), run.start() as ctx:  # noqa: PT012
        ctx.set_result("x", 1)
        storage.armed = True
    storage.armed = False
    # Memory agrees with the file: still running, owned by this process, the record unfinished.
    assert _in_memory(run) == _on_disk(run)
    assert run.status == RunStatus.RUNNING and run.metadata.owner is not None
    assert run.metadata.finished_at is None
    record = run.metadata.execution_history[-1]
    assert record.status == RunStatus.RUNNING and record.finished_at is None
    assert run.context is None and not ctx.active


def test_a_heartbeat_whose_write_failed_changes_nothing(
    failing: tuple[me.Workspace, _Failing],
) -> None:
    ws, storage = failing
    run = ws.Project("p").Experiment("e").Run(id="r")
    with run.start() as ctx:
        before = _in_memory(run)
        storage.armed = True
        with pytest.raises(StorageError):
            ctx._heartbeat()
        storage.armed = False
        assert _in_memory(run) == before == _on_disk(run)
        ctx._heartbeat()
        assert _in_memory(run) == _on_disk(run)
        assert _in_memory(run)["owner"]["heartbeat_at"] != before["owner"]["heartbeat_at"]


def test_a_workflow_snapshot_or_a_recorded_source_whose_write_failed_changes_nothing(
    failing: tuple[me.Workspace, _Failing], tmp_path: Path
) -> None:
    ws, storage = failing
    run = ws.Project("p").Experiment("e").Run(id="r")
    storage.armed = True
    with pytest.raises(StorageError):
        run.set_workflow({"workflow_id": "w1"})
    storage.armed = False
    assert run.metadata.workflow_snapshot is None
    source = tmp_path / "train.py"
    source.write_text("LR = 0.1\n")
    with run.start() as ctx:
        before = _in_memory(run)
        storage.armed = True
        with pytest.raises(StorageError):
            ctx.record_source(source)
        storage.armed = False
        assert _in_memory(run) == before == _on_disk(run)
        ctx.record_source(source)
        provenance = run.metadata.execution_history[-1].provenance
        assert provenance is not None and provenance.source_file == str(source.resolve())
        assert _on_disk(run) == _in_memory(run)


def test_a_cancel_whose_write_failed_leaves_the_run_as_it_was(
    failing: tuple[me.Workspace, _Failing],
) -> None:
    ws, storage = failing
    run = ws.Project("p").Experiment("e").Run(id="r")
    before = _in_memory(run)
    storage.armed = True
    with pytest.raises(StorageError):
        run.cancel("no longer needed")
    storage.armed = False
    assert run.status == RunStatus.CREATED and run.error is None
    assert _in_memory(run) == before == _on_disk(run)


_OPERATIONS = st.lists(
    st.tuples(
        st.sampled_from(["result", "labels"]),
        st.sampled_from(["a", "b", "c"]),
        st.integers(min_value=-5, max_value=5),
        st.booleans(),
    ),
    min_size=1,
    max_size=12,
)


@settings(max_examples=25, deadline=None)
@given(operations=_OPERATIONS)
def test_the_run_holds_exactly_the_writes_that_succeeded(
    operations: list[tuple[str, str, int, bool]],
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        ws, storage = _failing_workspace(Path(tmp))
        run = ws.Project("p").Experiment("e").Run(id="r")
        results: dict[str, int] = {}
        labels: dict[str, str] = {}
        with run.start() as ctx:
            for operation, key, value, fails in operations:
                storage.armed = fails
                try:
                    if operation == "result":
                        ctx.set_result(key, value)
                    else:
                        ctx.set_labels({key: str(value)})
                except StorageError:
                    assert fails
                else:
                    assert not fails
                    if operation == "result":
                        results[key] = value
                    else:
                        labels[key] = str(value)
                finally:
                    storage.armed = False
                assert run.results == results and run.metadata.labels == labels
            assert _on_disk(run) == _in_memory(run)
        on_disk = _on_disk(run)
        assert on_disk["results"] == results and on_disk["labels"] == labels
        assert on_disk["execution_history"][-1]["labels"] == labels
