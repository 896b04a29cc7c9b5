"""A whole workspace on ``s3://``: hierarchy, run lifecycle, assets, the catalog and
``RunContext.open``, all against the moto server over HTTP."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import molexp as me
from molexp.workspace import (
    ArtifactAsset,
    AssetKind,
    CheckpointAsset,
    DataAsset,
    ErrorTraceAsset,
    LogAsset,
    RunStatus,
    StorageError,
)
from molexp_storage_s3 import S3Storage


@pytest.fixture
def ws(s3_url: str, options: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("MOLEXP_CACHE_DIR", str(tmp_path / "cache"))
    return me.Workspace(s3_url, name="Lab", storage_options=options)


def _s3(ws: me.Workspace) -> S3Storage:
    assert isinstance(ws.storage, S3Storage)
    return ws.storage


def _objects(ws: me.Workspace) -> dict[str, bytes]:
    """Every object of the workspace, by key (read directly from the bucket)."""
    storage = _s3(ws)
    found: dict[str, bytes] = {}
    pending = [""]
    while pending:
        current = pending.pop()
        for child in storage.list(current):
            key = f"{current}/{child}" if current else child
            if storage.is_dir(key):
                pending.append(key)
            else:
                found[key] = storage.read_bytes(key)
    return found


def test_hierarchy_is_plain_json_in_the_bucket(ws: me.Workspace, s3_url: str) -> None:
    assert ws.root == s3_url and ws.url == s3_url and not ws.is_materialized
    exp = ws.Project("QM9 study").Experiment("baseline", params={"lr": 1e-3}, n_replicas=2)
    run = exp.Run(parameters={"lr": 1e-3}, id="r1")
    assert run.run_dir == f"{s3_url}/projects/qm9-study/experiments/baseline/runs/run-r1"
    keys = set(_objects(ws))
    assert {
        "workspace.json",
        "projects/qm9-study/project.json",
        "projects/qm9-study/experiments/baseline/experiment.json",
        "projects/qm9-study/experiments/baseline/runs/run-r1/run.json",
    } <= keys
    reopened = me.Workspace.load(s3_url)  # the endpoint comes from MOLEXP_STORAGE_OPTIONS
    assert reopened.id == ws.id and reopened.name == "Lab"
    assert [p.id for p in reopened.list_projects()] == ["qm9-study"]
    assert [r.id for r in reopened.project("qm9-study").experiment("baseline").list_runs()] == [
        "r1"
    ]


def test_run_lifecycle_and_every_asset_kind(ws: me.Workspace, tmp_path: Path) -> None:
    exp = ws.Project("p").Experiment("e", params={"lr": 0.1})
    run = exp.Run(parameters={"lr": 0.1}, id="r")
    model = tmp_path / "model.bin"
    model.write_bytes(b"\x00weights" * 1000)
    folder = tmp_path / "plots"
    (folder / "sub").mkdir(parents=True)
    (folder / "loss.svg").write_text("<svg/>")
    (folder / "sub" / "acc.svg").write_text("<svg></svg>")
    with run.start(profile_config={"scale": 2}, profile_name="smoke") as ctx:
        assert run.reload().status == RunStatus.RUNNING or run.status == RunStatus.RUNNING
        ctx.artifact.save("metrics.json", {"loss": 0.25})
        ctx.artifact.save("note", "a text")
        ctx.artifact.save("model.bin", model)
        ctx.artifact.save("plots", folder)
        ctx.checkpoint("state", {"epoch": 1})
        ctx.checkpoint("state", {"epoch": 2})
        ctx.log("train").append("epoch 1")
        ctx.log("train").append("epoch 2")
        ctx.set_result("loss", 0.25)
    assert run.status == RunStatus.SUCCEEDED
    again = me.Workspace.load(ws.url).project("p").experiment("e").get_run("r")
    assert again.status == RunStatus.SUCCEEDED and again.results == {"loss": 0.25}
    assert again.metadata.profile_name == "smoke" and again.metadata.config == {"scale": 2}

    artifacts = {a.name: a for a in run.assets.list(kind=AssetKind.ARTIFACT)}
    assert set(artifacts) == {"metrics.json", "note", "model.bin", "plots"}
    assert isinstance(artifacts["metrics.json"], ArtifactAsset)
    assert artifacts["metrics.json"].load() == {"loss": 0.25}
    assert artifacts["note"].load() == "a text"
    assert artifacts["model.bin"].read_bytes() == model.read_bytes()
    assert ws.storage.read_bytes(f"{run.key}/artifacts/plots/sub/acc.svg") == b"<svg></svg>"
    assert artifacts["plots"].url.startswith("s3://")

    checkpoints = run.assets.list(kind=AssetKind.CHECKPOINT)
    assert [c.load() for c in checkpoints] == [{"epoch": 1}, {"epoch": 2}]
    last = checkpoints[-1]
    assert isinstance(last, CheckpointAsset) and last.step == 2
    previous = last.previous()
    assert previous is not None and previous.step == 1

    (log,) = run.assets.list(kind=AssetKind.LOG)
    assert isinstance(log, LogAsset)
    assert log.lines() == ["epoch 1", "epoch 2"] and log.tail(1) == ["epoch 2"]
    assert log.record.size == len(b"epoch 1\nepoch 2\n") == log.size


def test_a_failing_run_keeps_its_traceback(ws: me.Workspace) -> None:
    run = ws.Project("p").Experiment("e").Run(id="bad")
    with pytest.raises(ZeroDivisionError), run.start():
        1 / 0  # noqa: B018 - the failure under test
    assert run.status == RunStatus.FAILED and run.error is not None
    (trace,) = run.assets.list(kind=AssetKind.ERROR_TRACE)
    assert isinstance(trace, ErrorTraceAsset)
    assert "ZeroDivisionError" in trace.traceback


def test_thousand_logged_lines_make_a_handful_of_log_requests(ws: me.Workspace) -> None:
    run = ws.Project("p").Experiment("e").Run(id="chatty")
    ws.catalog.query_assets()  # build the catalog cache first: count the log's requests only
    ws.catalog.refresh_interval = 3600
    with run.start() as ctx:
        log = ctx.log("train")
        with _s3(ws).requests.track() as sent:
            for step in range(1000):
                log.append(f"step={step} loss={1 / (step + 1):.5f}")
            log.close()
    log_requests = [r for r in sent if r.key.endswith("logs/train.log")]
    # HEAD when opened, one PUT of all 1,000 lines when closed, HEAD for the final size.
    assert len(log_requests) <= 3, log_requests
    # All in all: the log's record (read, written at the first line, rewritten with the final
    # size) and the two catalog journal entries of those writes.
    assert len(sent) <= 8, sent
    (asset,) = run.assets.list(kind=AssetKind.LOG)
    assert isinstance(asset, LogAsset)
    lines = asset.lines()
    assert len(lines) == 1000 and lines[0] == "step=0 loss=1.00000"


def test_data_assets_copy_and_move_to_s3(ws: me.Workspace, tmp_path: Path) -> None:
    src = tmp_path / "qm9.csv"
    src.write_text("smiles,energy\nC,1.0\n")
    copied = ws.data_assets.import_asset("qm9", src, meta={"license": "CC-BY"})
    assert isinstance(copied, DataAsset) and src.exists()
    assert copied.read_text() == "smiles,energy\nC,1.0\n"
    assert copied.record.payload.endswith("/payload/qm9.csv")

    folder = tmp_path / "features"
    (folder / "a").mkdir(parents=True)
    (folder / "a" / "x.npy").write_bytes(b"\x93NUMPY")
    moved = ws.Project("p").data_assets.import_asset("features", folder, action="move")
    assert not folder.exists()  # removed only once the asset is recorded
    assert ws.storage.read_bytes(f"{moved.record.payload}/a/x.npy") == b"\x93NUMPY"
    assert {a.name for a in ws.catalog.query_assets(kind=AssetKind.DATA)} == {"qm9", "features"}

    with ws.Project("p").Experiment("e").Run(id="user").start() as ctx:
        found = ctx.find_asset("qm9")
        assert found is not None and found.id == copied.id


@pytest.mark.parametrize("action", ["symlink", "hardlink"])
def test_links_are_a_clear_error_on_s3(ws: me.Workspace, tmp_path: Path, action: Any) -> None:
    src = tmp_path / "data.bin"
    src.write_bytes(b"x")
    with pytest.raises(StorageError, match=f"{action}.*local workspace.*copy"):
        ws.data_assets.import_asset("data", src, action=action)
    assert src.exists()
    assert ws.catalog.query_assets(kind=AssetKind.DATA) == []


def test_catalog_is_served_from_a_local_cache_and_refreshed_from_the_journal(
    ws: me.Workspace, s3_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = ws.Project("p").Experiment("e").Run(id="a")
    with run.start() as ctx:
        ctx.artifact.save("first.json", {"n": 1})
    assert ws.catalog.location.is_relative_to(tmp_path / "cache")

    # Another machine: its own cache directory, its own Workspace object.
    monkeypatch.setenv("MOLEXP_CACHE_DIR", str(tmp_path / "other-cache"))
    other = me.Workspace(s3_url)
    assert other.catalog.location.is_relative_to(tmp_path / "other-cache")
    assert [a.name for a in other.catalog.query_assets(kind=AssetKind.ARTIFACT)] == ["first.json"]

    with ws.Project("p").Experiment("e").Run(id="b").start() as ctx:
        ctx.artifact.save("second.json", {"n": 2})
    other.catalog.refresh()
    names = {a.name for a in other.catalog.query_assets(kind=AssetKind.ARTIFACT)}
    assert names == {"first.json", "second.json"}

    # Queries answer from the cache: no request reaches the bucket.
    storage = _s3(other)
    other.catalog.refresh_interval = 3600
    with storage.requests.track() as sent:
        for _ in range(20):
            other.catalog.query_assets(kind=AssetKind.ARTIFACT, name="second.json")
    assert sent == []


def test_run_context_open_on_an_s3_run_url(ws: me.Workspace) -> None:
    run = ws.Project("p").Experiment("e", params={"lr": 0.1}).Run(parameters={"lr": 0.1}, id="w")
    url = run.run_dir
    assert isinstance(url, str) and url.startswith("s3://")
    ctx = me.RunContext.open(url)  # a worker that only knows the URL
    assert (ctx.workspace.id, ctx.project.id, ctx.experiment.id, ctx.run.id) == (
        ws.id,
        "p",
        "e",
        "w",
    )
    with ctx:
        ctx.set_result("done", True)
        ctx.artifact.save("out.json", [1, 2])
    assert run.reload().status == RunStatus.SUCCEEDED and run.results == {"done": True}


def test_storage_options_are_never_written_to_the_store(
    s3_url: str, options: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MOLEXP_CACHE_DIR", str(tmp_path / "cache"))
    secret = "molexp-testing-secret"  # the test credentials' secret, passed explicitly too
    ws = me.Workspace(
        s3_url,
        storage_options={**options, "key": "molexp-testing", "secret": secret, "region": "eu-1"},
    )
    with ws.Project("p").Experiment("e").Run(id="r").start() as ctx:
        ctx.artifact.save("a.json", {"x": 1})
    assert secret not in repr(ws.storage) and secret not in repr(_s3(ws).options)
    for key, data in _objects(ws).items():
        text = data.decode(errors="replace")
        for value in (options["endpoint_url"], secret, "eu-1", "endpoint_url"):
            assert value not in text, f"{value!r} written into {key}"
    assert json.loads(ws.storage.read_bytes("workspace.json"))["name"]
