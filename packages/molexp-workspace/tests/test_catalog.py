"""The workspace catalog: typed queries across scopes, scoped views, the derived index (rebuild,
pending/commit), lineage, and registration from several processes at once."""

from __future__ import annotations

import multiprocessing
import sqlite3
import textwrap
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

import molexp as me
from molexp.workspace import (
    Asset,
    AssetKind,
    AssetRecord,
    ErrorTraceAsset,
    ScopeLevel,
)
from molexp.workspace.storage import Storage


@pytest.fixture(autouse=True)
def _private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOLEXP_CACHE_DIR", str(tmp_path / "cache"))


def ids(assets: list[Asset]) -> list[str]:
    return [a.id for a in assets]


def record_files(storage: Storage) -> set[str]:
    """Every asset record on disk: ``.assets/`` of runs and ``asset.json`` of data assets."""
    found: set[str] = set()
    pending = [""]
    while pending:
        key = pending.pop()
        for child in storage.list(key):
            child_key = f"{key}/{child}" if key else child
            if child in ("payload", "artifacts", ".molexp"):
                continue
            if storage.is_dir(child_key):
                pending.append(child_key)
            elif child_key.endswith(".json") and (
                "/.assets/" in child_key or child_key.endswith("/asset.json")
            ):
                found.add(child_key)
    return found


@dataclass
class Lab:
    ws: me.Workspace
    p1: me.Project
    p2: me.Project
    e1: me.Experiment
    e2: me.Experiment
    p2e1: me.Experiment
    r1: me.Run
    r2: me.Run
    r3: me.Run
    r4: me.Run
    qm9: Asset
    features: Asset
    split: Asset
    between: datetime


def _fail(run: me.Run, message: str) -> None:
    def attempt() -> None:
        with run.start() as ctx:
            ctx.artifact.save("metrics.json", {"loss": float("nan")})
            raise RuntimeError(message)

    with pytest.raises(RuntimeError, match=message):
        attempt()


@pytest.fixture
def lab(ws: me.Workspace, tmp_path: Path) -> Lab:
    """Data at every scope, one succeeded and three failed runs in two projects; p1 and p2 both
    have an experiment with the id ``e1``."""
    src = tmp_path / "qm9.csv"
    src.write_text("smiles\nC\n")
    qm9 = ws.data_assets.import_asset("qm9", src, tags=["raw", "public"])
    p1, p2 = ws.Project("P1"), ws.Project("P2")
    e1, e2, p2e1 = p1.Experiment("E1"), p1.Experiment("E2"), p2.Experiment("E1")
    features = p1.data_assets.import_asset("features", src, tags=["derived"])
    split = e1.data_assets.import_asset("split", src, tags=["raw"])
    r1 = e1.Run(id="r1")
    with r1.start() as ctx:
        with ctx.task_scope("train"):
            ctx.artifact.save("model.bin", b"weights", tags=["final"])
            ctx.checkpoint("model", data={"epoch": 1})
        ctx.artifact.save("metrics.json", {"loss": 0.1}, tags=["eval", "final"])
        ctx.log("train").append("loss=0.1")
    time.sleep(0.002)
    between = datetime.now(UTC)
    time.sleep(0.002)
    r2, r3, r4 = e1.Run(id="r2"), e2.Run(id="r3"), p2e1.Run(id="r4")
    _fail(r2, "r2 diverged")
    _fail(r3, "r3 ran out of memory")
    _fail(r4, "r4 bad input")
    return Lab(ws, p1, p2, e1, e2, p2e1, r1, r2, r3, r4, qm9, features, split, between)


# -- query_assets -----------------------------------------------------------------------------


def test_all_failed_run_stack_traces_of_one_experiment_in_one_call(lab: Lab) -> None:
    traces = lab.ws.catalog.query_assets(kind="error_trace", experiment=lab.e1)
    assert len(traces) == 1
    (trace,) = traces
    assert isinstance(trace, ErrorTraceAsset)
    assert trace.producer.run_id == "r2"
    assert "RuntimeError: r2 diverged" in trace.traceback
    everywhere = lab.ws.catalog.query_assets(kind=AssetKind.ERROR_TRACE)
    assert sorted(t.producer.run_id for t in everywhere) == ["r2", "r3", "r4"]


def test_query_by_kind_and_name(lab: Lab) -> None:
    catalog = lab.ws.catalog
    assert ids(catalog.query_assets(kind="data")) == [lab.qm9.id, lab.features.id, lab.split.id]
    logs_and_ckpts = catalog.query_assets(kind=["log", AssetKind.CHECKPOINT])
    assert sorted(a.kind for a in logs_and_ckpts) == ["checkpoint", "log"]
    metrics = catalog.query_assets(name="metrics.json")
    assert sorted(a.producer.run_id for a in metrics) == ["r1", "r2", "r3", "r4"]
    assert len(catalog.query_assets(name=["qm9", "split"])) == 2
    assert catalog.query_assets(name="metrics.json", kind="log") == []
    with pytest.raises(ValueError, match="not_a_kind"):
        catalog.query_assets(kind="not_a_kind")


def test_query_by_scope_level(lab: Lab) -> None:
    catalog = lab.ws.catalog
    assert ids(catalog.query_assets(scope="workspace")) == [lab.qm9.id]
    assert ids(catalog.query_assets(scope=ScopeLevel.PROJECT)) == [lab.features.id]
    assert ids(catalog.query_assets(scope="experiment")) == [lab.split.id]
    run_level = catalog.query_assets(scope="run")
    assert {a.scope.level for a in run_level} == {ScopeLevel.RUN}
    assert len(run_level) == len(lab.ws.assets.list()) - 3


def test_query_by_scope_object_covers_that_scope_and_below(lab: Lab) -> None:
    catalog = lab.ws.catalog
    everything = catalog.query_assets()
    assert ids(catalog.query_assets(scope=lab.ws)) == ids(everything)
    in_p1 = catalog.query_assets(scope=lab.p1)
    assert lab.qm9.id not in ids(in_p1)
    assert {lab.features.id, lab.split.id} <= set(ids(in_p1))
    assert {a.scope.project_id for a in in_p1} == {"p1"}
    in_e1 = catalog.query_assets(scope=lab.e1)
    assert {(a.scope.level, a.scope.run_id) for a in in_e1} == {
        (ScopeLevel.EXPERIMENT, None),
        (ScopeLevel.RUN, "r1"),
        (ScopeLevel.RUN, "r2"),
    }
    assert {a.name for a in catalog.query_assets(scope=lab.r2)} == {"metrics.json", "error.txt"}


def test_query_by_project_experiment_and_run(lab: Lab) -> None:
    catalog = lab.ws.catalog
    assert ids(catalog.query_assets(project=lab.p1)) == ids(catalog.query_assets(project="p1"))
    assert {a.scope.project_id for a in catalog.query_assets(project="p2")} == {"p2"}
    # An experiment object names one experiment; p1 and p2 both have one with the id "e1".
    in_e1 = catalog.query_assets(experiment=lab.e1, kind="artifact")
    assert {a.producer.run_id for a in in_e1} == {"r1", "r2"}
    in_p2e1 = catalog.query_assets(project="p2", experiment="e1", kind="artifact")
    assert {a.producer.run_id for a in in_p2e1} == {"r4"}
    assert ids(catalog.query_assets(run=lab.r1)) == ids(catalog.query_assets(run="r1"))
    assert {a.name for a in catalog.query_assets(run=lab.r1)} == {
        "model.bin",
        "model",
        "metrics.json",
        "train",
    }


def test_query_by_producer_run_and_task(lab: Lab) -> None:
    catalog = lab.ws.catalog
    by_object = catalog.query_assets(producer_run=lab.r2)
    assert {a.name for a in by_object} == {"metrics.json", "error.txt"}
    assert ids(catalog.query_assets(producer_run="r2")) == ids(by_object)
    assert catalog.query_assets(producer_run="no-such-run") == []
    trained = catalog.query_assets(producer_task="train")
    assert sorted(a.name for a in trained) == ["model", "model.bin"]
    assert (
        catalog.query_assets(producer_task="train", kind="artifact")[0].read_bytes() == b"weights"
    )
    # Imported data has no producer unless a run imported it.
    assert lab.qm9.producer is None


def test_query_by_tags_requires_every_tag(lab: Lab) -> None:
    catalog = lab.ws.catalog
    assert ids(catalog.query_assets(tags="raw")) == [lab.qm9.id, lab.split.id]
    assert ids(catalog.query_assets(tags=["raw", "public"])) == [lab.qm9.id]
    assert sorted(a.name for a in catalog.query_assets(tags="final")) == [
        "metrics.json",
        "model.bin",
    ]
    assert [a.name for a in catalog.query_assets(tags=["final", "eval"])] == ["metrics.json"]
    assert catalog.query_assets(tags=["raw", "eval"]) == []


def test_query_by_creation_time(lab: Lab) -> None:
    catalog = lab.ws.catalog
    after = catalog.query_assets(created_after=lab.between)
    before = catalog.query_assets(created_before=lab.between)
    assert {a.producer.run_id for a in after} == {"r2", "r3", "r4"}
    assert set(ids(before)) | set(ids(after)) == set(ids(catalog.query_assets()))
    assert not set(ids(before)) & set(ids(after))
    # The same instant in another time zone selects the same assets.
    elsewhere = lab.between.astimezone(timezone(timedelta(hours=-7)))
    assert ids(catalog.query_assets(created_after=elsewhere)) == ids(after)
    assert ids(catalog.query_assets(created_before=elsewhere)) == ids(before)
    window = catalog.query_assets(
        created_after=lab.between, created_before=datetime.now(UTC) + timedelta(hours=1)
    )
    assert ids(window) == ids(after)
    assert catalog.query_assets(created_after=datetime.now(UTC) + timedelta(hours=1)) == []


def test_query_order_and_limit(lab: Lab) -> None:
    catalog = lab.ws.catalog
    oldest_first = catalog.query_assets()
    assert oldest_first[0].id == lab.qm9.id
    times = [a.created_at for a in oldest_first]
    assert times == sorted(times)
    assert ids(catalog.query_assets(newest_first=True)) == ids(oldest_first)[::-1]
    (latest_trace,) = catalog.query_assets(kind="error_trace", newest_first=True, limit=1)
    assert latest_trace.producer.run_id == "r4"
    assert ids(catalog.query_assets(limit=2)) == ids(oldest_first)[:2]


def test_scoped_views_see_their_scope_and_below(lab: Lab) -> None:
    all_ids = set(ids(lab.ws.catalog.query_assets()))
    assert set(ids(lab.ws.assets.list())) == all_ids
    assert len(lab.ws.assets) == len(all_ids)
    project_view = lab.p1.assets.list()
    assert {a.scope.project_id for a in project_view} == {"p1"}
    assert lab.qm9 not in project_view and lab.features in project_view
    assert {a.scope.project_id for a in lab.p2.assets.list()} == {"p2"}
    exp_view = lab.e1.assets.list()
    assert lab.split in exp_view and lab.features not in exp_view
    assert {a.scope.experiment_id for a in exp_view} == {"e1"}
    assert {a.scope.run_id for a in exp_view if a.scope.run_id} == {"r1", "r2"}
    assert {a.scope.run_id for a in lab.r1.assets.list()} == {"r1"}
    assert [a.kind for a in lab.r1.assets.list(kind="log")] == ["log"]
    assert lab.e1.assets.get("metrics.json").producer.run_id == "r2"  # the newest
    assert [a.name for a in lab.p1.assets.list(tags="derived")] == ["features"]
    with pytest.raises(me.workspace.NotFoundError, match="qm9"):
        lab.e1.assets.get("qm9")
    sizes = [len(lab.r1.assets), len(lab.e1.assets), len(lab.p1.assets), len(lab.ws.assets)]
    assert sizes == sorted(sizes) and sizes[0] < sizes[-1]


# -- the derived index ------------------------------------------------------------------------


def _snapshot(ws: me.Workspace) -> set[tuple[str, str, str, str | None]]:
    return {(a.id, a.kind.value, a.name, a.content_hash) for a in ws.catalog.query_assets()}


def test_deleting_the_index_loses_nothing(lab: Lab) -> None:
    ws = lab.ws
    expected = _snapshot(ws)
    location = ws.catalog.location
    if ws.storage.local_path("") is not None:
        assert location == ws.storage.local_path(".molexp/catalog.sqlite")
    assert location.exists()
    location.unlink()
    fresh = me.Workspace(ws.url)
    assert _snapshot(fresh) == expected
    assert location.exists()
    # The rebuilt index answers the same queries, lineage and checkpoint chains included.
    (ckpt,) = fresh.catalog.query_assets(kind="checkpoint")
    assert [c.load() for c in ckpt.chain()] == [{"epoch": 1}]
    assert (
        len(
            fresh.catalog.query_assets(
                kind="error_trace", experiment=fresh.project("p1").experiment("e1")
            )
        )
        == 1
    )
    # And an explicit rebuild gives the same, and says how many assets it holds.
    assert fresh.catalog.rebuild() == len(expected)
    assert _snapshot(fresh) == expected


def test_a_project_or_experiment_named_like_a_run_subdirectory_is_rebuilt(ws: me.Workspace) -> None:
    for project, experiment in [
        ("logs", "artifacts"),
        ("payload", "execution"),
        ("ok", "data_assets"),
    ]:
        run = ws.Project(project).Experiment(experiment).Run(id="r")
        with run.start() as ctx:
            ctx.artifact.save("a.json", [project, experiment])
    expected = _snapshot(ws)
    assert len(expected) == 3
    assert ws.catalog.rebuild() == 3
    assert _snapshot(ws) == expected


def test_a_workspace_object_keeps_registering_after_its_index_is_deleted(tmp_path: Path) -> None:
    ws = me.Workspace(tmp_path / "lab", name="Lab")
    exp = ws.Project("P").Experiment("E")
    with exp.Run(id="a").start() as ctx:
        ctx.artifact.save("one", 1)
    ws.catalog.location.unlink()
    with exp.Run(id="b").start() as ctx:
        ctx.artifact.save("two", 2)
    assert {a.name for a in ws.assets.list()} == {"one", "two"}
    assert {a.name for a in me.Workspace(ws.url).assets.list()} == {"one", "two"}


def test_a_workspace_object_that_outlives_a_rebuilt_index_keeps_registering(
    tmp_path: Path,
) -> None:
    ws = me.Workspace(tmp_path / "lab", name="Lab")
    exp = ws.Project("P").Experiment("E")
    with exp.Run(id="a").start() as ctx:
        ctx.artifact.save("one", 1)
    ws.catalog.location.unlink()
    assert len(me.Workspace(ws.url).assets.list()) == 1  # another object rebuilds it first
    with exp.Run(id="b").start() as ctx:
        ctx.artifact.save("two", 2)  # then the old object registers again
    assert {a.name for a in me.Workspace(ws.url).assets.list()} == {"one", "two"}


PENDING_WORKER = textwrap.dedent(
    """
    import os
    import molexp as me
    from molexp.workspace import AssetRecord
    from molexp.workspace._records import write_record

    ws = me.Workspace(ROOT)
    run = ws.project("p").experiment("e").get_run("r")
    (template,) = ws.catalog.query_assets(run=run)

    def record(name):
        return AssetRecord.model_validate(
            {**template.record.model_dump(), "id": f"id-{name}", "name": name,
             "record": f"{run.key}/.assets/artifact/{name}.json"}
        )

    never_written = record("never-written")
    def die_before_writing():
        raise RuntimeError("killed before the record was written")
    try:
        ws.catalog.register(never_written, die_before_writing)
    except RuntimeError:
        pass

    written = record("written")
    def die_after_writing():
        write_record(ws.storage, written.record, written)
        os._exit(3)  # the process dies between the record write and the commit
    ws.catalog.register(written, die_after_writing)
    """
)


def _spawn(script: Path, args: list[dict]) -> list[int]:
    import runpy

    ctx = multiprocessing.get_context("spawn")
    procs = [
        ctx.Process(target=runpy.run_path, args=(str(script),), kwargs={"init_globals": a})
        for a in args
    ]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(120)
    return [proc.exitcode for proc in procs]


def test_pending_rows_are_reconciled_with_the_records_on_next_open(tmp_path: Path) -> None:
    """A writer indexes an asset as pending, writes its record, then commits. A writer that died
    in between leaves a pending row: the next opener drops it if the record was never written and
    commits it if it was."""
    ws = me.Workspace(tmp_path / "lab", name="Lab")
    with ws.Project("P").Experiment("E").Run(id="r").start() as ctx:
        ctx.artifact.save("template", 0)
    script = tmp_path / "pending_worker.py"
    script.write_text(PENDING_WORKER)
    assert _spawn(script, [{"ROOT": str(ws.root)}]) == [3]
    db = sqlite3.connect(ws.catalog.location)
    pending = dict(db.execute("SELECT name, committed FROM assets"))
    db.close()
    assert pending == {"template": 1, "never-written": 0, "written": 0}
    fresh = me.Workspace(ws.root)
    assert {a.name for a in fresh.assets.list()} == {"template", "written"}
    assert fresh.catalog.get("id-written").record.name == "written"
    assert fresh.catalog.get("id-never-written") is None
    rows = fresh.catalog.index.db.execute("SELECT count(*) FROM assets WHERE committed = 0")
    assert rows.fetchone() == (0,)


# -- lineage ----------------------------------------------------------------------------------


def test_lineage_up_and_down_is_transitive(ws: me.Workspace, tmp_path: Path) -> None:
    src = tmp_path / "raw.csv"
    src.write_text("x\n1\n")
    raw = ws.data_assets.import_asset("raw", src)
    exp = ws.Project("P").Experiment("E")
    with exp.Run(id="featurize").start() as ctx:
        ctx.find_asset("raw")
        features_src = tmp_path / "features.parquet"
        features_src.write_bytes(b"PAR1")
        features = exp.data_assets.import_asset("features", features_src, action="move")
    with exp.Run(id="train").start() as ctx:
        with ctx.task_scope("fit"):
            assert ctx.find_asset("features") == features
            model = ctx.artifact.save("model.bin", b"weights")
        with ctx.task_scope("evaluate"):
            assert ctx.find_asset("model.bin") == model
            report = ctx.artifact.save("report.json", {"acc": 0.9})
        unrelated = ctx.artifact.save("notes.txt", "read nothing")
    assert features.producer.run_id == "featurize"
    assert features.producer.inputs == [raw.id]
    catalog = ws.catalog
    assert catalog.lineage(report) == [model, features, raw]
    assert catalog.lineage(model, direction="up") == [features, raw]
    assert catalog.lineage(raw, direction="down") == [features, model, report]
    assert catalog.lineage(features.id, direction="down") == [model, report]
    assert catalog.lineage(unrelated) == [] and catalog.lineage(unrelated, direction="down") == []
    with pytest.raises(ValueError, match="'up' or 'down'"):
        catalog.lineage(report, direction="sideways")
    # Lineage lives in the records, so it survives a rebuild of the index.
    catalog.rebuild()
    assert catalog.lineage(raw, direction="down") == [features, model, report]


# -- deleting a project -----------------------------------------------------------------------


def test_delete_project_forgets_its_assets(lab: Lab) -> None:
    ws = lab.ws
    kept = {a.id for a in ws.assets.list() if a.scope.project_id != "p1"}
    assert kept and len(kept) < len(ws.assets)
    ws.delete_project("p1")
    assert {a.id for a in ws.assets.list()} == kept
    assert ws.catalog.query_assets(project="p1") == []
    assert ws.catalog.get(lab.features.id) is None
    assert lab.qm9 in ws.assets.list()
    ws.catalog.rebuild()
    assert {a.id for a in ws.assets.list()} == kept


# -- several processes at once ----------------------------------------------------------------


REGISTER_WORKER = textwrap.dedent(
    """
    from pathlib import Path
    import molexp as me

    ws = me.Workspace(ROOT)
    exp = ws.project("p").experiment("e")
    run = exp.Run(id=f"w{INDEX}")
    src = Path(ROOT).parent / f"src-{INDEX}.txt"
    src.write_text(f"data of worker {INDEX}")
    BARRIER.wait()  # every worker opens the (missing) index and registers at the same time
    with run.start() as ctx:
        for k in range(N):
            ctx.artifact.save(f"a{k}.json", {"worker": INDEX, "k": k})
            ctx.log("progress").append(f"{k}")
        ctx.checkpoint("model", data={"worker": INDEX})
    exp.data_assets.import_asset(f"data-{INDEX}", src, action="move")
    """
)


def test_several_processes_registering_at_once_lose_nothing(tmp_path: Path) -> None:
    workers, per_worker = 4, 30
    ws = me.Workspace(tmp_path / "lab", name="Lab")
    ws.Project("P").Experiment("E")
    assert not ws.catalog.location.exists()
    script = tmp_path / "register_worker.py"
    script.write_text(REGISTER_WORKER)
    barrier = multiprocessing.get_context("spawn").Barrier(workers)
    args = [
        {"ROOT": str(ws.root), "INDEX": i, "N": per_worker, "BARRIER": barrier}
        for i in range(workers)
    ]
    assert _spawn(script, args) == [0] * workers
    expected = workers * (per_worker + 3)  # artifacts, one log, one checkpoint, one data asset
    on_disk = record_files(ws.storage)
    assert len(on_disk) == expected
    fresh = me.Workspace(ws.root)
    assets = fresh.assets.list()
    assert len(assets) == expected
    assert {a.record.record for a in assets} == on_disk
    for i in range(workers):
        mine = fresh.catalog.query_assets(producer_run=f"w{i}", kind="artifact")
        assert sorted(a.load()["k"] for a in mine) == list(range(per_worker))
        (log,) = fresh.catalog.query_assets(producer_run=f"w{i}", kind="log")
        assert log.lines() == [str(k) for k in range(per_worker)]
    assert len(fresh.catalog.query_assets(kind="data", scope="experiment")) == workers
    assert fresh.catalog.rebuild() == expected
    rows = fresh.catalog.index.db.execute("SELECT count(*) FROM assets WHERE committed = 0")
    assert rows.fetchone() == (0,)


@pytest.mark.parametrize(
    "statement",
    [
        # what registering, committing and forgetting an asset run, once per asset
        "DELETE FROM assets WHERE record_key = ? AND id != ?",
        "DELETE FROM tags WHERE asset_id = ?",
        "DELETE FROM inputs WHERE asset_id = ?",
        "UPDATE assets SET committed = 1 WHERE id = ?",
        "DELETE FROM assets WHERE id = ?",
        # the selective queries
        "SELECT record FROM assets WHERE committed = 1 AND producer_key IN (?)",
        "SELECT record FROM assets WHERE committed = 1 AND producer_run IN (?)",
        (
            "SELECT record FROM assets WHERE committed = 1 AND kind IN (?) AND project_id IN (?)"
            " AND experiment_id IN (?)"
        ),
        "SELECT record FROM assets WHERE committed = 1 AND name IN (?)",
        "SELECT input_id FROM inputs WHERE asset_id = ?",
        "SELECT asset_id FROM inputs WHERE input_id = ?",
    ],
)
def test_per_asset_statements_use_an_index(tmp_path: Path, statement: str) -> None:
    """Registering costs the same with 100 or 100,000 assets present, and a rebuild is linear,
    only if no per-asset statement scans a table (benchmarks/bench_catalog.py measures it)."""
    ws = me.Workspace(tmp_path / "lab", name="Lab").materialize()
    db = ws.catalog.index.db
    plan = db.execute(f"EXPLAIN QUERY PLAN {statement}", ("x",) * statement.count("?"))
    details = [row[-1] for row in plan.fetchall()]
    assert not [d for d in details if d.startswith("SCAN")], details


def test_records_are_plain_readable_json(lab: Lab) -> None:
    for asset in lab.ws.assets.list():
        text = lab.ws.storage.read_bytes(asset.record.record).decode()
        record = AssetRecord.model_validate_json(text)
        assert record.schema_version == 1
        assert record.id == asset.id and record.kind == asset.kind
        assert text.startswith("{\n")
