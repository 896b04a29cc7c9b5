"""Reproducibility records through the command line: ``molexp runs diff``, ``molexp assets
lineage`` and ``molexp export --format ro-crate``, on two runs of one experiment made in real
processes before and after an uncommitted code change (and with a different installed version of
one distribution), in a real git work tree. Every command is the installed ``molexp``."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")

SECRETS = ("aws-secret-3141", "argv-token-2718", "remote-pass-1618")

FLOW = """\
import tempfile
from pathlib import Path

from molexp.workflow import TaskContext, workflow

FACTOR = {factor}

wf = workflow(name="flow")


@wf.task
def featurize(ctx: TaskContext) -> None:
    ctx.find_asset("qm9")
    ctx.artifact.save("features.json", {{"n": 2}})
    plots = Path(tempfile.mkdtemp())
    (plots / "a.txt").write_text("plot a")
    (plots / "sub").mkdir()
    (plots / "sub" / "b.txt").write_text("plot b")
    ctx.artifact.save("plots", plots)


@wf.task(depends_on=["featurize"])
def train(ctx: TaskContext) -> float:
    ctx.get_data_dir("features.json")
    loss = ctx.params["lr"] * FACTOR
    ctx.set_result("loss", loss)
    ctx.artifact.save("metrics.json", {{"loss": loss}})
    ctx.artifact.save("model.bin", b"w" * 16)
    ctx.log("train").append(f"loss={{loss}}")
    return loss


spec = wf.build()
"""

MAKE_RUN = """\
import asyncio
import sys
from pathlib import Path

import molexp as me

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from flow import spec  # noqa: E402

root, run_id, lr, profile = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4]
ws = me.Workspace(root, name="Lab")
if not ws.catalog.query_assets(name="qm9"):
    ws.data_assets.import_asset("qm9", HERE.parent / "data" / "qm9.csv")
exp = ws.Project("demo").Experiment("baseline", workflow_source=str(HERE / "flow.py"))
run = exp.Run(parameters={"lr": lr}, id=run_id)
config = {"train": {"epochs": 1 if profile == "smoke" else 10}}
asyncio.run(spec.execute(run=run, config=config, profile_name=profile))
print(run.status.value)
"""


def _git(repo: Path, *args: str) -> None:
    env = {
        **os.environ,
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.org",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.org",
    }
    subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True)


def _fake_site(root: Path, version: str) -> Path:
    """A directory for PYTHONPATH holding one installed distribution, ``fakepkg``."""
    site = root / f"site-{version}"
    info = site / f"fakepkg-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: fakepkg\nVersion: {version}\n")
    return site


def _make_run(base: Path, run_id: str, lr: float, profile: str, site: Path) -> None:
    env = {
        **os.environ,
        "PYTHONPATH": str(site),
        "AWS_SECRET_ACCESS_KEY": SECRETS[0],
    }
    done = subprocess.run(
        [
            sys.executable,
            str(base / "repo" / "make_run.py"),
            str(base / "lab"),
            run_id,
            str(lr),
            profile,
            "--token",
            SECRETS[1],
        ],
        cwd=base,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0 and done.stdout.strip() == "succeeded", done.stderr


@pytest.fixture(scope="module")
def lab(shared_dir: Path) -> Path:
    """Two runs of demo/baseline: ``before`` (committed code, fakepkg 1.0, lr 0.1, profile
    smoke) and ``after`` (an uncommitted change, fakepkg 2.0, lr 0.2, profile long)."""
    base = shared_dir
    (base / "data").mkdir()
    (base / "data" / "qm9.csv").write_text("smiles,energy\nC,-40.5\n")
    repo = base / "repo"
    repo.mkdir()
    (repo / "flow.py").write_text(FLOW.format(factor=2))
    (repo / "make_run.py").write_text(MAKE_RUN)
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "remote", "add", "origin", f"https://ci:{SECRETS[2]}@git.example.org/lab.git")
    _git(repo, "add", "flow.py", "make_run.py")
    _git(repo, "commit", "-q", "-m", "v1")
    _make_run(base, "before", 0.1, "smoke", _fake_site(base, "1.0"))
    (repo / "flow.py").write_text(FLOW.format(factor=3))
    _make_run(base, "after", 0.2, "long", _fake_site(base, "2.0"))
    return base


@pytest.fixture
def cli(lab: Path, helpers: Any) -> Any:
    """``molexp`` run in the module's workspace directory."""
    return helpers.Cli(lab / "lab")


def _rows(section: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {row["key"]: row for row in section}


# -- runs diff ------------------------------------------------------------------------------------


def test_runs_diff_json_tells_the_two_runs_apart(cli: Any) -> None:
    result = cli("runs", "diff", "before", "after", "--json")
    assert result.code == 0, result
    diff = result.json()
    assert diff["a"]["run"] == "demo/baseline/before" and not diff["same"]
    sections = diff["sections"]

    params = _rows(sections["parameters"])
    assert (params["lr"]["a"], params["lr"]["b"], params["lr"]["same"]) == (0.1, 0.2, False)

    config = _rows(sections["config"])
    assert (config["profile"]["a"], config["profile"]["b"]) == ("smoke", "long")
    assert config["config.train.epochs"]["a"] == 1 and config["config.train.epochs"]["b"] == 10
    assert not config["config_hash"]["same"]

    code = _rows(sections["code"])
    assert code["workflow"]["same"] and code["workflow_id"]["same"]
    # FACTOR is a module constant a task reads: the tasks' code hash covers it, and so do the
    # source hash and the git diff.
    assert not code["code_hash"]["same"] and not code["source_hash"]["same"]
    assert code["commit"]["same"] and len(code["commit"]["a"]) == 40
    assert (code["dirty"]["a"], code["dirty"]["b"]) == (False, True)
    assert (code["git_status"]["a"], code["git_status"]["b"]) == ("clean", "dirty")
    assert code["diff_hash"]["a"] is None and code["diff_hash"]["b"].startswith("sha256:")

    env = _rows(sections["environment"])
    distributions = {k: v for k, v in env.items() if k.startswith("dist:")}
    assert distributions == {
        "dist:fakepkg": {"key": "dist:fakepkg", "a": "1.0", "b": "2.0", "same": False}
    }
    assert env["python"]["same"] and env["host"]["same"]
    assert diff["identical_distributions"] > 10

    results = _rows(sections["results"])
    assert results["loss"]["a"] == pytest.approx(0.2) and results["loss"]["b"] == pytest.approx(0.6)
    artifacts = _rows(sections["artifacts"])
    assert not artifacts["metrics.json"]["same"] and artifacts["model.bin"]["same"]
    assert artifacts["metrics.json"]["a"]["content_hash"].startswith("sha256:")


def test_runs_diff_prints_both_runs_side_by_side(cli: Any) -> None:
    result = cli("runs", "diff", "demo/baseline/before", "demo/baseline/after")
    assert result.code == 0, result
    lines = result.out.splitlines()
    assert "A  demo/baseline/before" in lines[0] and "B  demo/baseline/after" in lines[0]
    fakepkg = next(line for line in lines if line.strip().startswith("fakepkg"))
    assert fakepkg.split() == ["fakepkg", "1.0", "2.0", "*"]
    dirty = next(line for line in lines if line.strip().startswith("dirty"))
    assert dirty.split() == ["dirty", "no", "yes", "*"]
    assert any("distributions identical" in line for line in lines)
    assert "difference(s), marked *" in lines[-1]

    changed = cli("runs", "diff", "before", "after", "--changed")
    assert changed.code == 0 and "workflow_id" not in changed.out and "source_hash" in changed.out

    same = cli("runs", "diff", "before", "before")
    assert same.code == 0 and same.out.splitlines()[-1] == "the runs are the same"


def test_runs_diff_of_an_unknown_run_is_a_clear_error(cli: Any) -> None:
    result = cli("runs", "diff", "before", "nosuchrun")
    assert result.code == 1 and "no run 'nosuchrun'" in result.err
    assert "Traceback" not in result.err


# -- assets lineage -------------------------------------------------------------------------------


def test_assets_lineage_prints_the_graph_both_ways(cli: Any) -> None:
    result = cli("assets", "lineage", "model.bin", "--run", "after")
    assert result.code == 0, result
    out = result.out
    assert out.splitlines()[0].startswith("artifact model.bin  run:demo/baseline/after")
    up, down = out.split("used by (down):")
    assert "made from (up):" in up
    assert "└── artifact features.json" in up and "by after/featurize" in up
    assert "    └── data qm9  workspace" in up
    assert "(nothing recorded)" in down

    qm9 = cli("assets", "lineage", "qm9", "--direction", "down", "--json")
    assert qm9.code == 0, qm9
    tree = qm9.json()
    assert tree["asset"]["kind"] == "data" and "up" not in tree
    features = [node for node in tree["down"] if node["name"] == "features.json"]
    assert sorted(node["producer"]["run_id"] for node in features) == ["after", "before"]
    for node in features:
        assert {child["name"] for child in node["children"]} == {
            "metrics.json",
            "model.bin",
            "train",
        }


def test_assets_lineage_needs_an_unambiguous_asset(cli: Any) -> None:
    ambiguous = cli("assets", "lineage", "model.bin")
    assert ambiguous.code == 1 and "2 assets are named 'model.bin'" in ambiguous.err
    missing = cli("assets", "lineage", "no-such-asset")
    assert missing.code == 1 and "no asset with the id or name" in missing.err


# -- export ---------------------------------------------------------------------------------------


def _read_crate(directory: Path) -> Any:
    from rocrate.rocrate import ROCrate

    return ROCrate(directory)


def _ids(value: Any) -> list[str]:
    items = value if isinstance(value, list) else [value]
    return [item.id for item in items]


def test_export_of_a_run_is_a_workflow_run_crate_that_reads_back(cli: Any, lab: Path) -> None:
    pytest.importorskip("rocrate")
    target = lab / "crates" / "after"
    result = cli("export", "after", "--format", "ro-crate", str(target), "--json")
    assert result.code == 0, result
    summary = result.json()
    assert summary["runs"] == 1 and summary["referenced"] == 1 and summary["files_checked"] > 3

    crate = _read_crate(target)
    conforms = set(_ids(crate.root_dataset["conformsTo"]))
    assert "https://w3id.org/ro/wfrun/workflow/0.6" in conforms
    assert "https://w3id.org/ro/wfrun/process/0.6" in conforms
    main = crate.mainEntity
    assert "ComputationalWorkflow" in main.type and "File" in main.type
    assert (target / main.id).read_text() == (lab / "repo" / "flow.py").read_text()
    assert main["sha256"] == hashlib.sha256((target / main.id).read_bytes()).hexdigest()

    (action,) = crate.get_by_type("CreateAction")
    assert action["instrument"].id == main.id
    assert action["startTime"] and action["endTime"]
    status = action["actionStatus"]
    assert getattr(status, "id", status) == "http://schema.org/CompletedActionStatus"
    assert action["agent"]["name"]
    objects = {obj.id: obj for obj in action["object"]}
    lr = next(obj for obj in objects.values() if obj.type == "PropertyValue")
    assert (lr["name"], lr["value"]) == ("lr", 0.2)
    assert lr["exampleOfWork"].type == "FormalParameter"
    assert lr["exampleOfWork"].id in _ids(main["input"])
    qm9 = next(obj for obj in objects.values() if obj.get("name") == "qm9")
    assert qm9.id.startswith("#asset-")
    assert qm9["sha256"] == hashlib.sha256(b"smiles,energy\nC,-40.5\n").hexdigest()
    config = next(obj for obj in objects.values() if obj.id.endswith("config.json"))
    assert json.loads((target / config.id).read_text()) == {"train": {"epochs": 10}}

    results = {Path(unquote(r.id)).name: r for r in action["result"]}
    assert {"metrics.json", "model.bin", "features.json", "train.log"} <= set(results)
    for entity in results.values():
        if entity.type == "Dataset":
            continue
        data = (target / unquote(entity.id)).read_bytes()
        assert entity["sha256"] == hashlib.sha256(data).hexdigest()
        assert int(entity["contentSize"]) == len(data)
    assert results["metrics.json"]["exampleOfWork"].id in _ids(main["output"])
    plots = results["plots"]
    assert plots.type == "Dataset"
    parts = {
        Path(unquote(p.id)).relative_to(unquote(plots.id)).as_posix(): p for p in plots["hasPart"]
    }
    assert set(parts) == {"a.txt", "sub/b.txt"}
    assert parts["sub/b.txt"]["sha256"] == hashlib.sha256(b"plot b").hexdigest()
    # molexp's own record, the environment and the diff travel with the action.
    about = [e for e in crate.get_entities() if getattr(e.get("about"), "id", None) == action.id]
    names = {Path(unquote(e.id)).name for e in about}
    assert {"run.json", "git.diff"} <= names
    assert "installed distributions" in {e.get("name") for e in about}


def test_export_of_an_experiment_holds_every_run_and_workflow_version(cli: Any, lab: Path) -> None:
    pytest.importorskip("rocrate")
    target = lab / "crates" / "experiment"
    result = cli("export", "demo/baseline", str(target), "--with-inputs")
    assert result.code == 0, result
    assert "2 run(s), 2 workflow version(s)" in result.out
    crate = _read_crate(target)
    actions = crate.get_by_type("CreateAction")
    assert sorted(a["identifier"] for a in actions) == ["after", "before"]
    instruments = {a["identifier"]: a["instrument"].id for a in actions}
    assert instruments["before"] != instruments["after"]
    assert crate.mainEntity.id == instruments["after"]
    copied = list((target / "inputs").rglob("qm9.csv"))
    assert len(copied) == 1 and copied[0].read_text().startswith("smiles")


def test_export_refuses_a_non_empty_directory_and_bad_targets(cli: Any, lab: Path) -> None:
    full = lab / "crates" / "full"
    full.mkdir(parents=True)
    (full / "keep.txt").write_text("mine")
    result = cli("export", "before", str(full))
    assert result.code == 1 and "not an empty directory" in result.err
    assert sorted(p.name for p in full.iterdir()) == ["keep.txt"]
    unknown = cli("export", "nothing-here", str(lab / "crates" / "x"))
    assert unknown.code == 1 and "nothing-here" in unknown.err
    both = cli("export", "before", str(lab / "crates" / "y"), "--with-inputs", "--metadata-only")
    assert both.code == 1 and "contradict" in both.err
    assert not (lab / "crates" / "x").exists() and not (lab / "crates" / "y").exists()


# -- nothing secret -------------------------------------------------------------------------------


def test_no_secret_reaches_any_record_or_export(cli: Any, lab: Path) -> None:
    pytest.importorskip("rocrate")
    assert cli("export", "before", str(lab / "crates" / "secrets")).code == 0
    written = [p for p in (lab / "lab").rglob("*") if p.is_file()]
    written += [p for p in (lab / "crates").rglob("*") if p.is_file()]
    assert len(written) > 20
    for path in written:
        data = path.read_bytes()
        for secret in (*SECRETS, "AWS_SECRET_ACCESS_KEY"):
            assert secret.encode() not in data, f"{secret} found in {path}"
    record = json.loads(
        (lab / "lab/projects/demo/experiments/baseline/runs/run-before/run.json").read_text()
    )
    prov = record["execution_history"][-1]["provenance"]
    assert prov["git"]["remote"] == "https://git.example.org/lab.git"
    assert prov["argv"][-2:] == ["--token", "***"]


def test_export_without_the_rocrate_library_says_how_to_install_it(
    cli: Any, lab: Path, tmp_path: Path
) -> None:
    fake = tmp_path / "no-rocrate" / "rocrate"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError('rocrate is not installed here')\n")
    result = cli(
        "export",
        "before",
        str(tmp_path / "crate"),
        env={"PYTHONPATH": str(fake.parent)},
    )
    assert result.code == 1, result
    assert "pip install 'molexp-cli[ro-crate]'" in result.err
    assert "Traceback" not in result.err and not (tmp_path / "crate").exists()


EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "provenance" / "walkthrough.py"


def test_the_provenance_example_tells_the_runs_apart_and_exports(tmp_path: Path) -> None:
    pytest.importorskip("rocrate")
    done = subprocess.run(
        [sys.executable, str(EXAMPLE), str(tmp_path / "demo")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "before: succeeded" in out and "after: succeeded" in out
    assert "source_hash" in out and "7 difference(s), marked *" in out
    dirty = next(line for line in out.splitlines() if line.strip().startswith("dirty "))
    assert dirty.split() == ["dirty", "no", "yes", "*"]
    assert "data measurements  workspace" in out
    assert "read back with rocrate:" in out and "ComputationalWorkflow" in out
    assert (tmp_path / "demo" / "crate-after" / "ro-crate-metadata.json").is_file()
