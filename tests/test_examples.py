"""The workspace examples run end to end and print what they promise (the workflow, CLI and S3
examples are run by their own packages' tests)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _run(script: Path, root: Path) -> str:
    done = subprocess.run(
        [sys.executable, str(script), str(root)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_workspace_api_example_walks_the_hierarchy(tmp_path: Path) -> None:
    root = tmp_path / "lab"
    out = _run(EXAMPLES / "workspace" / "workspace_api.py", root)
    assert "workspace.json exists? False" in out
    assert (root / "workspace.json").is_file()
    runs = sorted(root.glob("projects/qm9/experiments/baseline/runs/run-*/run.json"))
    statuses = {json.loads(p.read_text())["status"] for p in runs}
    assert statuses == {"succeeded", "failed"}


@pytest.mark.parametrize("again", [False, True])
def test_assets_example_finds_and_queries_assets(tmp_path: Path, again: bool) -> None:
    root = tmp_path / "lab"
    out = _run(EXAMPLES / "workspace" / "assets.py", root)
    if again:
        out = _run(EXAMPLES / "workspace" / "assets.py", root)
    assert (root / ".molexp" / "catalog.sqlite").is_file()
    assert list(root.glob("data_assets/*/asset.json"))
    assert list(root.glob("projects/*/experiments/*/runs/run-*/.assets/error_trace/*.json"))
    assert "error_trace" in out or "ErrorTraceAsset" in out
