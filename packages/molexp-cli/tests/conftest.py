"""Helpers for the CLI tests: the real ``molexp`` executable, run in a subprocess.

Every test that exercises a command runs the installed console script (found next to the Python
running the tests, else on PATH) in a fresh process, in a temporary directory, exactly as a user
would: what is tested is the command line, its output and its exit code.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest


def _find_molexp() -> str:
    beside = Path(sys.executable).parent / ("molexp.exe" if os.name == "nt" else "molexp")
    if beside.is_file():
        return str(beside)
    found = shutil.which("molexp")
    if found is None:
        pytest.fail("the `molexp` executable is not installed (pip install -e packages/molexp-cli)")
    return found


MOLEXP = _find_molexp()


@dataclass
class Result:
    """What one ``molexp`` invocation did."""

    args: list[str]
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)

    def __str__(self) -> str:  # shown by pytest when an assertion fails
        return (
            f"molexp {' '.join(self.args)} -> {self.code}\n"
            f"--- stdout ---\n{self.out}--- stderr ---\n{self.err}"
        )


class Cli:
    """Runs ``molexp`` in ``cwd`` with a clean environment."""

    def __init__(self, cwd: Path) -> None:
        self.cwd = cwd
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("MOLEXP_")}
        self.env["COLUMNS"] = "200"

    def __call__(
        self, *args: str, cwd: Path | None = None, env: dict[str, str] | None = None
    ) -> Result:
        proc = subprocess.run(
            [MOLEXP, *args],
            cwd=cwd or self.cwd,
            env={**self.env, **(env or {})},
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            timeout=120,
            check=False,
        )
        return Result(list(args), proc.returncode, proc.stdout, proc.stderr)

    def popen(self, *args: str) -> subprocess.Popen[str]:
        """Start ``molexp`` in the background (stdout piped, stderr merged into it)."""
        return subprocess.Popen(
            [MOLEXP, *args],
            cwd=self.cwd,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    """``molexp`` run in ``tmp_path``."""
    return Cli(tmp_path)


HEADER = """\
from pathlib import Path

import molexp as me
from molexp.workflow import TaskContext, workflow

HERE = Path(__file__).resolve().parent
"""


def write_script(directory: Path, name: str, body: str) -> Path:
    """Write ``name`` into ``directory``: the common imports, then ``body`` (dedented)."""
    path = directory / name
    path.write_text(HEADER + "\n" + textwrap.dedent(body))
    return path


TRAIN = """\
wf = workflow(name="train")


@wf.task
def prepare(ctx: TaskContext) -> int:
    with (HERE / "prepare-calls.txt").open("a") as f:
        f.write(f"{ctx.params['replica']}\\n")
    return int(ctx.config.get("train", {}).get("epochs", 1))


@wf.task(depends_on=["prepare"])
def fit(ctx: TaskContext) -> float:
    marker = HERE / f"fail-once-{ctx.params['replica']}"
    if (HERE / "make-fail").exists() and not marker.exists():
        marker.write_text("failed once")
        raise ValueError("fit failed on purpose")
    loss = ctx.params["lr"] * ctx.inputs
    ctx.set_result("loss", loss)
    ctx.set_result("epochs", ctx.inputs)
    ctx.log("train").append(f"epochs={ctx.inputs} loss={loss}")
    ctx.artifact.save("metrics.json", {"loss": loss})
    return loss


spec = wf.build()
ws = me.Workspace(HERE / "lab", name="Lab")
exp = ws.Project("demo").Experiment("baseline", params={"lr": 0.5}, n_replicas=2)
spec.bind_to(exp)
me.entry(ws)

if __name__ == "__main__":
    (HERE / "main-block-ran").write_text("the CLI must not run this")
"""

MOLCFG = """\
version: 1
defaults:
  train:
    epochs: 3
profiles:
  smoke:
    train:
      epochs: 1
  long:
    extends: smoke
    train:
      epochs: 10
"""


def write_train(directory: Path) -> Path:
    """Write ``train.py`` and ``molcfg.yaml`` into ``directory``; return the script's path."""
    (directory / "molcfg.yaml").write_text(MOLCFG)
    return write_script(directory, "train.py", TRAIN)


@pytest.fixture
def train(tmp_path: Path) -> Path:
    """A script with one experiment of two replicas (failing once per replica when the file
    ``make-fail`` exists), and a ``molcfg.yaml`` with ``smoke`` and ``long`` profiles."""
    return write_train(tmp_path)


@pytest.fixture(scope="module")
def shared_dir(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Path:
    """A directory shared by the tests of one module (for a workspace built once)."""
    return tmp_path_factory.mktemp(request.module.__name__.rsplit(".", 1)[-1])


@pytest.fixture(scope="module")
def helpers() -> Any:
    """The helpers of this file, for module-scoped fixtures: ``helpers.Cli``, ...``"""
    import types

    return types.SimpleNamespace(Cli=Cli, write_train=write_train, run_records=run_records)


def run_records(root: Path) -> dict[str, dict[str, Any]]:
    """Every ``run.json`` below ``root``, by run id."""
    return {
        p.parent.name.removeprefix("run-"): json.loads(p.read_text())
        for p in sorted(root.glob("lab/projects/*/experiments/*/runs/run-*/run.json"))
    }


def prepare_calls(root: Path) -> list[str]:
    """Which replicas' ``prepare`` task ran, in order."""
    path = root / "prepare-calls.txt"
    return path.read_text().split() if path.exists() else []


@pytest.fixture
def records(tmp_path: Path) -> Any:
    """``records()``: every ``run.json`` under ``tmp_path``, by run id."""
    return lambda: run_records(tmp_path)


@pytest.fixture
def calls(tmp_path: Path) -> Any:
    """``calls()``: the replicas whose ``prepare`` task ran, in order."""
    return lambda: prepare_calls(tmp_path)


@pytest.fixture
def script(tmp_path: Path) -> Any:
    """``script(name, body)``: write a script into ``tmp_path`` (see :func:`write_script`)."""
    return lambda name, body: write_script(tmp_path, name, body)
