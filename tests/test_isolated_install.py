"""Each distribution, installed alone from its wheel into a fresh virtual environment, works.

A shared development environment cannot prove a layer boundary: there every distribution is
installed, so a missing dependency or a stray import goes unnoticed. Here each wheel is built from
packages/<dist>/, installed into its own new virtual environment together with only what it
declares (sibling molexp wheels from the local wheelhouse, third-party packages from the package
index or uv's cache), and then imported and used for one real thing (DESIGN §1).

The wheels are built once per session; environments are created with uv (a declared development
dependency), which makes each one a matter of a second.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import tomllib
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ROOT / "packages"

# distribution -> the one directory (inside the wheel) that holds all of its code
OWNED_DIR = {
    "molexp-workspace": "molexp/",
    "molexp-workflow": "molexp/workflow/",
    "molexp-cli": "molexp/cli/",
    "molexp-storage-s3": "molexp_storage_s3/",
    "molexp-server": "molexp/server/",
}
DISTRIBUTIONS = list(OWNED_DIR)


def _version(dist: str) -> str:
    with (PACKAGES / dist / "pyproject.toml").open("rb") as f:
        version: str = tomllib.load(f)["project"]["version"]
    return version


def _run(cmd: list[str], *, cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run(
        cmd, cwd=cwd, env=env, capture_output=True, text=True, check=False, stdin=subprocess.DEVNULL
    )
    if proc.returncode != 0:
        pytest.fail(
            f"command failed ({proc.returncode}): {' '.join(cmd)}\n"
            f"--- stdout ---\n{proc.stdout}\n--- stderr ---\n{proc.stderr}",
            pytrace=False,
        )
    return proc.stdout


def _uv() -> str:
    try:
        from uv import find_uv_bin
    except ImportError:  # pragma: no cover - uv is a declared dev dependency (hatch.toml)
        pytest.fail("uv is not installed: run the tests through `hatch run test`", pytrace=False)
    return str(find_uv_bin())


def _clean_env() -> dict[str, str]:
    """The caller's environment without anything that would leak the dev environment in."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env.pop("UV_PYTHON", None)
    return env


@pytest.fixture(scope="session")
def wheelhouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Build every distribution's wheel once, with the dev environment's hatchling."""
    out = tmp_path_factory.mktemp("wheelhouse")
    for dist in DISTRIBUTIONS:
        _run(
            [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(out)],
            cwd=PACKAGES / dist,
        )
    return out


def _wheel(wheelhouse: Path, dist: str) -> Path:
    name = dist.replace("-", "_")
    (wheel,) = wheelhouse.glob(f"{name}-{_version(dist)}-*.whl")
    return wheel


class Venv:
    """A fresh virtual environment holding one distribution and its declared dependencies."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.bin = path / ("Scripts" if os.name == "nt" else "bin")
        self.python = self.bin / ("python.exe" if os.name == "nt" else "python")

    def run_python(self, code: str, *args: str, cwd: Path) -> str:
        # -I: isolated mode, so neither the cwd nor PYTHON* variables can add to sys.path.
        return _run(
            [str(self.python), "-I", "-c", textwrap.dedent(code), *args],
            cwd=cwd,
            env=_clean_env(),
        )


Installer = Callable[[str], Venv]


@pytest.fixture
def install(wheelhouse: Path, tmp_path: Path) -> Installer:
    """Create a fresh environment holding the given distribution and what it declares."""

    def _install(dist: str) -> Venv:
        venv = Venv(tmp_path / f"venv-{dist}")
        uv = _uv()
        env = _clean_env()
        _run([uv, "venv", "--quiet", "--python", sys.executable, str(venv.path)], env=env)
        # The wheel itself, by path; its molexp siblings are found only in the local wheelhouse.
        install_cmd = [uv, "pip", "install", "--quiet", "--python", str(venv.python)]
        _run(
            [*install_cmd, "--find-links", str(wheelhouse), str(_wheel(wheelhouse, dist))], env=env
        )
        return venv

    return _install


def _expected(*dists: str) -> dict[str, str]:
    return {dist: _version(dist) for dist in dists}


def _installed_molexp_dists(venv: Venv, cwd: Path) -> dict[str, str]:
    out = venv.run_python(
        """
        import json
        from importlib.metadata import distributions
        print(json.dumps({d.metadata["Name"]: d.version for d in distributions()
                          if d.metadata["Name"].startswith("molexp")}))
        """,
        cwd=cwd,
    )
    found: dict[str, str] = json.loads(out)
    return found


# ------------------------------------------------------------------------------------------------
# The wheels hold exactly their own files
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dist", DISTRIBUTIONS)
def test_wheel_contains_only_its_own_package(wheelhouse: Path, dist: str) -> None:
    with zipfile.ZipFile(_wheel(wheelhouse, dist)) as zf:
        names = [n for n in zf.namelist() if ".dist-info/" not in n]
    owned = OWNED_DIR[dist]
    assert names, f"{dist}: the wheel ships no code"
    stray = [n for n in names if not n.startswith(owned)]
    assert not stray, f"{dist}: files outside {owned}: {stray}"
    assert f"{owned}py.typed" in names, f"{dist}: no py.typed marker"
    assert not [n for n in names if "/tests/" in n or "__pycache__" in n]
    if dist != "molexp-workspace":
        # Only molexp-workspace may ship molexp/__init__.py: another copy would overwrite it.
        assert "molexp/__init__.py" not in names
        assert not [n for n in names if n.startswith("molexp/workspace/")]
    else:
        assert "molexp/__init__.py" in names
        assert "molexp/workspace/__init__.py" in names
        for sibling in ("workflow", "cli", "server"):
            assert not [n for n in names if n.startswith(f"molexp/{sibling}/")]


# ------------------------------------------------------------------------------------------------
# Each distribution alone in a fresh environment
# ------------------------------------------------------------------------------------------------


def test_workspace_alone(install: Installer, tmp_path: Path) -> None:
    venv = install("molexp-workspace")
    assert _installed_molexp_dists(venv, tmp_path) == _expected("molexp-workspace")
    lab = tmp_path / "lab"
    venv.run_python(
        """
        import importlib.util
        import sys
        from importlib.metadata import entry_points
        from pathlib import Path

        import molexp as me

        tmp = Path(sys.argv[1])
        ws = me.Workspace(tmp)
        ws.Project("demo")
        assert (tmp / "workspace.json").exists(), "Workspace.Project did not materialize"

        # Nothing from the upper layers, the plugins or their stacks is installed ...
        assert importlib.util.find_spec("molexp.workflow") is None, "molexp.workflow importable"
        assert importlib.util.find_spec("molexp.cli") is None, "molexp.cli importable"
        for name in ("molexp_storage_s3", "s3fs", "botocore", "yaml", "click", "rich"):
            assert importlib.util.find_spec(name) is None, f"{name} is installed"
        # ... and importing the workspace layer pulled in none of them.
        loaded = sorted(m for m in sys.modules if m.split(".")[0] in {"s3fs", "botocore", "yaml"})
        assert not loaded, loaded

        # The storage entry points it declares resolve to code inside this wheel.
        eps = entry_points(group="molexp.storage")
        assert "memory" in eps.names, sorted(eps.names)
        for ep in eps:
            ep.load()
        """,
        str(lab),
        cwd=tmp_path,
    )


def test_workflow_alone(install: Installer, tmp_path: Path) -> None:
    venv = install("molexp-workflow")
    assert _installed_molexp_dists(venv, tmp_path) == _expected(
        "molexp-workflow", "molexp-workspace"
    )
    venv.run_python(
        """
        import importlib.util
        from pathlib import Path

        import molexp as me
        import molexp.workflow

        assert me.Workspace is not None
        # molexp.workflow is a subpackage of the one installed `molexp` package
        assert Path(molexp.workflow.__file__).parent.parent == Path(me.__file__).parent
        assert importlib.util.find_spec("molexp.cli") is None, "molexp.cli importable"
        for name in ("click", "rich", "s3fs", "yaml"):
            assert importlib.util.find_spec(name) is None, f"{name} is installed"
        """,
        cwd=tmp_path,
    )


def test_cli_alone(install: Installer, tmp_path: Path) -> None:
    venv = install("molexp-cli")
    assert _installed_molexp_dists(venv, tmp_path) == _expected(
        "molexp-cli", "molexp-workflow", "molexp-workspace"
    )
    env = _clean_env()
    help_text = _run([str(venv.bin / "molexp"), "--help"], cwd=tmp_path, env=env)
    assert "Usage: molexp" in help_text
    version = _run([str(venv.bin / "molexp"), "--version"], cwd=tmp_path, env=env)
    assert _version("molexp-cli") in version
    venv.run_python("import molexp as me, molexp.cli, molexp.workflow", cwd=tmp_path)
    # `molexp serve` needs the `server` extra, and says so.
    serve = subprocess.run(
        [str(venv.bin / "molexp"), "serve", str(tmp_path)],
        cwd=tmp_path, env=env, capture_output=True, text=True, check=False,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert serve.returncode == 1 and "molexp-cli[server]" in serve.stderr, serve.stderr


def test_storage_s3_alone(install: Installer, tmp_path: Path) -> None:
    venv = install("molexp-storage-s3")
    assert _installed_molexp_dists(venv, tmp_path) == _expected(
        "molexp-storage-s3", "molexp-workspace"
    )
    venv.run_python(
        """
        import importlib.util

        import molexp_storage_s3
        import molexp as me

        assert me.Workspace is not None
        assert importlib.util.find_spec("s3fs") is not None, "s3fs (a declared dependency) missing"
        assert importlib.util.find_spec("molexp.workflow") is None, "molexp.workflow importable"
        assert importlib.util.find_spec("molexp.cli") is None, "molexp.cli importable"
        """,
        cwd=tmp_path,
    )


def test_server_alone(install: Installer, tmp_path: Path) -> None:
    venv = install("molexp-server")
    assert _installed_molexp_dists(venv, tmp_path) == _expected("molexp-server", "molexp-workspace")
    # One real thing: serve a workspace from a separate process and read its runs over HTTP.
    venv.run_python(
        """
        import importlib.util
        import json
        import re
        import subprocess
        import sys
        import time
        import urllib.request
        from pathlib import Path

        import molexp as me
        import molexp.server

        for name in ("molexp.workflow", "molexp.cli", "s3fs"):
            assert importlib.util.find_spec(name) is None, f"{name} is installed"
        ws = me.Workspace(Path(sys.argv[1]), name="Lab")
        run = ws.Project("demo").Experiment("e", params={"lr": 0.1}).Run()
        with run.start() as ctx:
            ctx.set_result("loss", 0.5)
        proc = subprocess.Popen(
            [sys.executable, "-m", "molexp.server", sys.argv[1], "--port", "0", "--no-warm"],
            stderr=subprocess.PIPE, text=True,
        )
        try:
            url = re.search(r"molexp serve: (\\S+)", proc.stderr.readline()).group(1)
            for _ in range(200):
                try:
                    with urllib.request.urlopen(url + "api/projects/demo/experiments/e/runs") as r:
                        page = json.load(r)
                    break
                except OSError:
                    time.sleep(0.05)
            assert page["total"] == 1 and page["items"][0]["results"] == {"loss": 0.5}, page
            with urllib.request.urlopen(url) as r:
                assert "demo" in r.read().decode()
        finally:
            proc.terminate()
            proc.wait(timeout=10)
            proc.stderr.close()
        """,
        str(tmp_path / "lab"),
        cwd=tmp_path,
    )
