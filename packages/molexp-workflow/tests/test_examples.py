"""The getting-started examples run end to end, each in a fresh directory."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "getting_started"


def run_example(name: str, cwd: Path, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.parametrize("name", ["01_first_workflow.py", "02_actors.py"])
def test_standalone_examples_write_nothing(name: str, tmp_path: Path):
    output = run_example(name, tmp_path)
    assert "status: succeeded" in output
    assert list(tmp_path.iterdir()) == []


def test_the_tracked_run_example_records_and_resumes(tmp_path: Path):
    first = run_example("03_tracked_run.py", tmp_path, str(tmp_path / "lab"))
    assert "tasks: fetch succeeded, train succeeded, evaluate succeeded" in first
    for shown in ("run.json", "artifacts/", "metrics.json", "train.log", '"final_loss"'):
        assert shown in first
    run_dir = tmp_path / "lab/projects/qm9/experiments/baseline/runs/run-baseline-defaults"
    assert (run_dir / "run.json").is_file()
    again = run_example("03_tracked_run.py", tmp_path, str(tmp_path / "lab"))
    assert "tasks: fetch reused, train reused, evaluate reused" in again
