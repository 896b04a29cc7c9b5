"""examples/scale_out/sweep.py runs unchanged with --executor local, dask and slurm."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[4] / "examples" / "scale_out" / "sweep.py"


def _runs(directory: Path) -> dict[str, dict]:
    return {
        p.parent.name: json.loads(p.read_text())
        for p in directory.glob("lab/projects/*/experiments/*/runs/run-*/run.json")
    }


def test_the_example_runs_unchanged_on_every_executor(cli, slurm, tmp_path):
    pytest.importorskip("distributed", reason="Dask is not installed (molexp-cli[dask])")
    commands = {
        "local": ["--jobs", "2"],
        "dask": ["--executor", "dask"],
        "slurm": ["--executor", "slurm", "--jobs", "2", "--wait"],
    }
    found = {}
    for name, flags in commands.items():
        where = tmp_path / name
        where.mkdir()
        result = cli("run", str(EXAMPLE), "--experiment", "scale-1", *flags, cwd=where)
        assert result.code == 0, result
        assert "3 executed (3 succeeded, 0 not)" in result.out
        found[name] = _runs(where)
    assert "executor: slurm (job array, at most 2 at once, --wait)" in result.out
    # The same runs (ids derive from parameters and profile, not from where they execute), with
    # the same seeded results.
    assert found["local"].keys() == found["dask"].keys() == found["slurm"].keys()
    for run in found["local"]:
        results = {name: runs[run]["results"] for name, runs in found.items()}
        assert results["local"] == results["dask"] == results["slurm"]
        executors = {
            name: runs[run]["execution_history"][0]["labels"].get("molexp.executor")
            for name, runs in found.items()
        }
        assert executors == {"local": None, "dask": "dask", "slurm": "slurm"}
