"""``molexp serve``: the CLI side of molexp-server (the server itself is tested in its package)."""

from __future__ import annotations

import json
import re
import signal
import urllib.request
from pathlib import Path

import pytest

import molexp as me

pytest.importorskip("molexp.server", reason="molexp-server is not installed (molexp-cli[server])")


@pytest.fixture
def lab(tmp_path: Path) -> Path:
    ws = me.Workspace(tmp_path / "lab", name="Lab")
    with ws.Project("demo").Experiment("e", params={"lr": 0.1}).Run().start() as ctx:
        ctx.set_result("loss", 0.25)
    return tmp_path / "lab"


def test_serve_help(cli) -> None:
    result = cli("serve", "--help")
    assert result.code == 0, result
    assert "Browse WORKSPACE" in result.out and "--token" in result.out


def test_serve_without_a_workspace_is_one_line(cli) -> None:
    result = cli("serve", "nowhere", "--port", "0")
    assert result.code == 1, result
    assert result.err.startswith("error: no workspace at") and "Traceback" not in result.err


def test_serve_a_public_address_needs_a_token(cli, lab: Path) -> None:
    result = cli("serve", str(lab), "--host", "0.0.0.0", "--port", "0")
    assert result.code == 1, result
    assert "needs a token" in result.err and "Traceback" not in result.err
    short = cli("serve", str(lab), "--port", "0", "--token", "short")
    assert short.code == 1 and "at least 16 characters" in short.err


def test_serve_serves_until_interrupted(cli, lab: Path) -> None:
    # No WORKSPACE: the one workspace below the current directory (tmp_path/lab) is found.
    proc = cli.popen("serve", "--port", "0")
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        match = re.search(r"molexp serve: (http://127\.0\.0\.1:\d+/)", line)
        assert match, line
        with urllib.request.urlopen(match.group(1) + "api/projects/demo/experiments/e/runs") as r:
            page = json.load(r)
        assert page["total"] == 1 and page["items"][0]["results"] == {"loss": 0.25}
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
