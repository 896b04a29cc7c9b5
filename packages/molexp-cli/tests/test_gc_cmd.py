"""``molexp gc``: the real executable on a workspace holding what crashed writers leave."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

import molexp as me


def backdate(path: Path, hours: float) -> None:
    stamp = time.time() - hours * 3600
    os.utime(path, (stamp, stamp))
    for dirpath, dirnames, filenames in os.walk(path):
        for name in dirnames + filenames:
            os.utime(os.path.join(dirpath, name), (stamp, stamp))


@pytest.fixture
def lab(tmp_path: Path) -> dict[str, Path]:
    """A workspace with one finished run and an artifact, plus three pieces of debris two
    hours old: a temporary file, an unrecorded artifact payload, an unrecorded data asset."""
    ws = me.Workspace(tmp_path / "lab", name="Lab")
    run = ws.Project("p").Experiment("e").Run(id="r")
    with run.start() as ctx:
        ctx.artifact.save("metrics.json", {"loss": 0.1})
    ws.catalog.index.close()
    run_dir = Path(run.run_dir)
    debris = {
        "temporary": run_dir / ".run.json.4242.0badc0de.tmp",
        "artifact": run_dir / "artifacts" / "lost.bin",
        "data-asset": tmp_path / "lab" / "data_assets" / "lost-0badc0de",
    }
    debris["temporary"].write_bytes(b"{")
    debris["artifact"].write_bytes(b"x" * 2048)
    (debris["data-asset"] / "payload").mkdir(parents=True)
    (debris["data-asset"] / "payload" / "big.bin").write_bytes(b"y" * 10_000)
    backdate(tmp_path / "lab", 2)
    return debris


def test_dry_run_lists_and_removes_nothing(cli, lab):
    result = cli("gc", "--workspace", "lab", "--dry-run")
    assert result.code == 0, result
    assert result.out.splitlines()[0].startswith("would remove 3 items, 11.8 KiB to free")
    for kind, path in lab.items():
        assert path.exists()
        assert any(kind in line and path.name in line for line in result.out.splitlines())


def test_gc_removes_debris_and_reports_bytes_freed(cli, lab, tmp_path):
    data = cli("gc", "--workspace", "lab", "--json").json()
    assert data["dry_run"] is False and data["failed"] == []
    assert {item["kind"] for item in data["removed"]} == set(lab)
    assert data["total_bytes"] == 1 + 2048 + 10_000
    assert not any(path.exists() for path in lab.values())
    assert (tmp_path / "lab/projects/p/experiments/e/runs/run-r/artifacts/metrics.json").exists()

    again = cli("gc", "--workspace", "lab")
    assert again.code == 0, again
    assert again.out.startswith("removed 0 items, 0 B freed")
    assets = cli("assets", "query", "--workspace", "lab", "--json")
    assert assets.code == 0, assets
    assert [a["name"] for a in assets.json()] == ["metrics.json"]


def test_older_than_keeps_younger_debris(cli, lab):
    kept = cli("gc", "--workspace", "lab", "--older-than", "3h")
    assert kept.code == 0, kept
    assert kept.out.startswith("removed 0 items")
    assert all(path.exists() for path in lab.values())
    gone = cli("gc", "--workspace", "lab", "--older-than", "90m")
    assert gone.code == 0 and gone.out.startswith("removed 3 items"), gone


@pytest.mark.parametrize("age", ["2x", "1.5h", "-1h", "h", ""])
def test_a_bad_age_is_one_line_naming_the_accepted_forms(cli, lab, age):
    result = cli("gc", "--workspace", "lab", "--older-than", age)
    assert result.code == 2, result
    assert result.err.count("\n") == 1 and result.err.startswith("error: --older-than")
    assert "30m, 1h, 2d" in result.err and "Traceback" not in result.err
    assert all(path.exists() for path in lab.values())


def test_no_workspace_is_a_clear_error(cli):
    result = cli("gc")
    assert result.code == 1, result
    assert result.err.startswith("error: no workspace found")
