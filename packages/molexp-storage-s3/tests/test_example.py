"""examples/storage/s3_workspace.py runs its tracked sweep on s3:// (here against the session's
server, given as a URL, the endpoint coming from MOLEXP_STORAGE_OPTIONS as in real use)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "storage" / "s3_workspace.py"


def test_example_sweep_runs_on_s3(s3_url: str, tmp_path: Path) -> None:
    pytest.importorskip("molexp.workflow", reason="the example executes workflows")
    done = subprocess.run(
        [sys.executable, str(EXAMPLE), s3_url],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert out.count(" succeeded ") == 3, out
    assert "backend S3Storage" in out
    assert "the log of run lr-0.1, read back from S3: 200 lines" in out
    assert "workspace.json" in out and "/logs/train.log" in out
