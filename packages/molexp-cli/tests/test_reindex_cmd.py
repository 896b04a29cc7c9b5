"""``molexp reindex``: the real executable rebuilds the asset catalog from the records."""

from __future__ import annotations

import json
from pathlib import Path

import molexp as me


def make_lab(root: Path) -> me.Workspace:
    ws = me.Workspace(root, name="Lab")
    for run_id in ("a", "b"):
        with ws.Project("p").Experiment("e").Run(id=run_id).start() as ctx:
            ctx.artifact.save("metrics.json", {"run": run_id})
            ctx.log("train").append("step 1")
    ws.catalog.index.close()
    return ws


def test_reindex_rebuilds_a_deleted_index_and_counts_the_assets(cli, tmp_path):
    ws = make_lab(tmp_path / "lab")
    expected = len(ws.catalog.query_assets())
    ws.catalog.index.close()
    ws.catalog.location.unlink()

    result = cli("reindex", "--workspace", "lab")
    assert result.code == 0, result
    assert result.out == f"rebuilt the asset catalog of {ws.url}: {expected} asset(s)\n"
    assert ws.catalog.location.exists()
    listed = cli("assets", "query", "--workspace", "lab", "--name", "metrics.json", "--json")
    assert listed.code == 0, listed
    assert sorted(a["producer"]["run_id"] for a in listed.json()) == ["a", "b"]


def test_reindex_takes_in_a_record_the_index_never_saw(cli, tmp_path):
    ws = make_lab(tmp_path / "lab")
    record = next(Path(ws.root).rglob("metrics.json.json"))
    lost = json.loads(record.read_text())
    ws.catalog.index.close()
    ws.catalog.location.unlink()
    me.Workspace.load(ws.root).catalog.rebuild()
    # A record written without the index (as by a machine whose journal entry failed).
    copy = record.with_name("copy.json.json")
    lost["id"] = "f" * 16
    lost["name"] = "copy.json"
    lost["record"] = lost["record"].replace("metrics.json.json", "copy.json.json")
    copy.write_text(json.dumps(lost))

    data = cli("reindex", "--workspace", "lab", "--json").json()
    assert data == {"workspace": ws.url, "assets": 5}
    names = [a.name for a in me.Workspace.load(ws.root).catalog.query_assets(name="copy.json")]
    assert names == ["copy.json"]


def test_reindex_without_a_workspace_is_one_clear_line(cli):
    result = cli("reindex")
    assert result.code == 1, result
    assert result.err.startswith("error: no workspace found")
    assert result.err.count("\n") == 1 and "Traceback" not in result.err
