"""The inspection commands on one small workspace: ls, runs list/show/cancel, logs, assets,
plugins, init — each in its human form and, where it lists, its --json form."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import molexp as me


@pytest.fixture(scope="module")
def lab(shared_dir, helpers):
    """Built once for the module: two succeeded runs (defaults), two failed runs (smoke), and one
    run created but never executed. The tests below only read it."""
    helpers.write_train(shared_dir)
    cli = helpers.Cli(shared_dir)
    assert cli("run", "train.py").code == 0
    (shared_dir / "make-fail").write_text("")
    assert cli("run", "train.py", "--profile", "smoke").code == 1
    exp = me.Workspace(shared_dir / "lab").project("demo").experiment("baseline")
    exp.Run(parameters={"lr": 0.5, "seed": 1, "replica": 9}, id="waiting")
    return helpers.run_records(shared_dir)


@pytest.fixture
def cli(shared_dir, helpers):
    """``molexp`` run in the module's shared directory."""
    return helpers.Cli(shared_dir)


def _by_status(lab: dict, status: str) -> list[str]:
    return sorted(i for i, r in lab.items() if r["status"] == status)


def test_ls_shows_the_tree_with_counts(cli, lab, shared_dir):
    tmp_path = shared_dir
    result = cli("ls")
    assert result.code == 0, result
    assert result.out.splitlines()[0].startswith(f"Lab  {tmp_path / 'lab'}")
    assert "5 runs: 1 created, 2 succeeded, 2 failed" in result.out
    assert "└── demo" in result.out and "baseline" in result.out

    data = cli("ls", "--json").json()
    assert data["runs"] == 5
    assert data["counts"] == {"created": 1, "succeeded": 2, "failed": 2}
    [project] = data["projects"]
    assert project["id"] == "demo"
    assert project["experiments"][0]["counts"]["failed"] == 2

    inside = cli("ls", str(tmp_path / "lab/projects/demo"), "--json", cwd=tmp_path.parent)
    assert inside.code == 0 and inside.json()["projects"][0]["id"] == "demo", inside


def test_runs_list_filters_sorts_and_shows_params_and_results(cli, lab):
    table = cli("runs", "list")
    assert table.code == 0, table
    header = table.out.splitlines()[0].split()
    assert header == [
        "ID",
        "EXPERIMENT",
        "STATUS",
        "PROFILE",
        "STARTED",
        "TIME",
        "PARAMS",
        "RESULTS",
    ]
    for run_id in lab:
        assert run_id in table.out
    assert "loss=0.25" not in table.out  # failed runs have no loss
    assert "loss=1.5" in table.out and "lr=0.5" in table.out

    rows = cli("runs", "list", "--json").json()
    assert {r["id"] for r in rows} == set(lab)
    assert {"parameters", "results", "status", "profile", "config_hash", "run_dir"} <= set(rows[0])

    failed = cli("runs", "list", "--status", "failed", "--json").json()
    assert sorted(r["id"] for r in failed) == _by_status(lab, "failed")
    assert all(r["profile"] == "smoke" for r in failed)
    assert all(r["error"]["type"] == "ValueError" for r in failed)

    by_seed = cli("runs", "list", "--sort", "params.seed", "--desc", "--json").json()
    seeds = [r["parameters"]["seed"] for r in by_seed]
    assert seeds == sorted(seeds, reverse=True)
    limited = cli("runs", "list", "--status", "succeeded", "--limit", "1", "--json").json()
    assert len(limited) == 1
    none = cli("runs", "list", "--experiment", "nothing-here")
    assert none.code == 0 and none.out.strip() == "no runs"


def test_runs_show(cli, lab):
    failed = _by_status(lab, "failed")[0]
    shown = cli("runs", "show", failed)
    assert shown.code == 0, shown
    assert f"demo/baseline/{failed}" in shown.out
    assert "ValueError: fit failed on purpose" in shown.out
    assert "execution history (1 attempt(s))" in shown.out
    assert "error_trace" in shown.out and "smoke" in shown.out
    with_trace = cli("runs", "show", failed, "--traceback")
    assert "Traceback (most recent call last)" in with_trace.out  # the run's, asked for

    data = cli("runs", "show", failed, "--json").json()
    assert data["status"] == "failed"
    assert data["execution_history"][0]["error"]["type"] == "ValueError"
    assert {a["kind"] for a in data["assets"]} >= {"error_trace", "execution_state"}

    ok = _by_status(lab, "succeeded")[0]
    data = cli("runs", "show", ok, "--json").json()
    assert {a["name"] for a in data["assets"]} >= {"metrics.json", "train"}


def test_runs_cancel(cli, lab, tmp_path):
    exp = me.Workspace(tmp_path / "other").Project("p").Experiment("e")
    exp.Run(id="waiting")
    cancelled = cli("runs", "cancel", "waiting", "-w", str(tmp_path / "other"))
    assert cancelled.code == 0 and "cancelled p/e/waiting" in cancelled.out, cancelled
    assert exp.get_run("waiting").reload().status == "cancelled"
    again = cli("runs", "cancel", "waiting", "-w", str(tmp_path / "other"))
    assert again.code == 1 and "already finished (cancelled)" in again.err, again
    done = _by_status(lab, "succeeded")[0]
    refused = cli("runs", "cancel", done)
    assert refused.code == 1 and "already finished (succeeded)" in refused.err, refused


def test_logs(cli, lab):
    ok = _by_status(lab, "succeeded")[0]
    result = cli("logs", ok, "train")
    assert result.code == 0, result
    assert result.out == "epochs=3 loss=1.5\n"
    assert cli("logs", ok).out == "epochs=3 loss=1.5\n"
    assert cli("logs", ok, "train", "-n", "0").out == ""
    followed = cli("logs", ok, "--follow")  # a finished run: prints what there is and stops
    assert followed.code == 0 and "[train] epochs=3 loss=1.5" in followed.out, followed
    missing = cli("logs", ok, "nope")
    assert missing.code == 1 and "has no log 'nope' (its logs: train)" in missing.err, missing
    failed = _by_status(lab, "failed")[0]
    none = cli("logs", failed)
    assert none.code == 1 and "has no logs yet" in none.err, none


def test_assets_query(cli, lab):
    artifacts = cli("assets", "query", "--kind", "artifact", "--json").json()
    assert {a["name"] for a in artifacts} == {"metrics.json"}
    assert len(artifacts) == 2
    assert all(a["producer"]["task"] == "fit" for a in artifacts)
    ok = _by_status(lab, "succeeded")[0]
    of_run = cli("assets", "query", "--run", ok, "--json").json()
    assert {a["kind"] for a in of_run} >= {"artifact", "log", "execution_state"}
    traces = cli("assets", "query", "--kind", "error_trace", "--producer-task", "fit")
    assert traces.code == 0, traces
    table = cli("assets", "query", "--name", "metrics.json", "--newest", "--limit", "1")
    assert table.code == 0 and table.out.count("metrics.json") == 1, table


def test_plugins_list(cli):
    result = cli("plugins", "list", "--json")
    assert result.code == 0, result
    backends = {b["scheme"]: b for b in result.json()}
    assert backends["file"]["distribution"] == "molexp-workspace"
    assert backends["file"]["version"]
    text = cli("plugins", "list").out
    assert "file" in text and "molexp-workspace" in text


def test_init(cli, tmp_path):
    created = cli("init", "fresh", "--name", "Fresh Lab", cwd=tmp_path)
    assert created.code == 0, created
    meta = json.loads((tmp_path / "fresh" / "workspace.json").read_text())
    assert meta["name"] == "Fresh Lab"
    again = cli("init", "fresh", cwd=tmp_path)
    assert again.code == 0 and "already a workspace" in again.out
    listed = cli("ls", "--json", cwd=tmp_path / "fresh")
    assert listed.json()["runs"] == 0


def test_workspace_from_environment_and_subdirectories(cli, lab, shared_dir, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    lab_dir = shared_dir / "lab"
    env = {"MOLEXP_WORKSPACE": str(lab_dir)}
    assert len(cli("runs", "list", "--json", cwd=elsewhere, env=env).json()) == 5
    deep = lab_dir / "projects" / "demo"
    assert len(cli("runs", "list", "--json", cwd=deep).json()) == 5
    assert len(cli("runs", "list", "--json", "-w", str(lab_dir), cwd=Path("/")).json()) == 5
