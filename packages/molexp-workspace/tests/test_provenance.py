"""Provenance captured when an attempt starts: host, Python, command line, installed
distributions, and the git state of the workflow source — inside and outside git, with a dirty
tree, without a git executable, append-only across attempts, and with nothing secret written."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

import molexp as me
from molexp.workspace import _capture, _git, latest_provenance, load_environment
from molexp.workspace._redact import redact_argv, strip_userinfo

needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


def git(repo: Path, *args: str) -> str:
    """Run git in ``repo`` (with a fixed identity, ignoring the user's global config)."""
    env = {
        **os.environ,
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.org",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.org",
    }
    done = subprocess.run(
        ["git", *args], cwd=repo, env=env, capture_output=True, check=True, text=True
    )
    return done.stdout.strip()


def make_repo(path: Path) -> Path:
    """A git work tree at ``path`` with ``train.py`` committed on branch ``main``."""
    path.mkdir(parents=True, exist_ok=True)
    git(path, "init", "-q", "-b", "main")
    (path / "train.py").write_text("LR = 0.1\n")
    git(path, "add", "train.py")
    git(path, "commit", "-q", "-m", "first")
    return path / "train.py"


def start_once(exp: me.Experiment, run_id: str = "r") -> me.Run:
    run = exp.Run(id=run_id)
    with run.start():
        pass
    return run


def provenance_of(run: me.Run) -> me.Provenance:
    found = latest_provenance(run)
    assert found is not None
    return found[1]


# -- outside git, and the facts of the process ----------------------------------------------------


def test_every_attempt_records_host_python_command_line_and_distributions(ws: me.Workspace) -> None:
    exp = ws.Project("p").Experiment("e")
    run = start_once(exp)
    record = run.metadata.execution_history[-1]
    prov = record.provenance
    assert prov is not None
    assert prov.host and prov.host == record.host
    assert prov.python == ".".join(map(str, sys.version_info[:3]))
    assert prov.platform and prov.executable == sys.executable
    assert prov.argv == redact_argv(sys.argv)
    assert prov.git.status == "no-source" and prov.git.commit is None
    assert prov.errors == []
    assert prov.capture_ms is not None and prov.capture_ms < 2000
    # The distributions are a file shared in the workspace, named by its hash, not inlined.
    assert prov.environment is not None
    on_disk = run.storage.read_bytes(prov.environment.path)
    digest = hashlib.sha256(on_disk).hexdigest()
    assert prov.environment.path == f".molexp/environments/{digest}.json"
    assert prov.environment.scope == "workspace"
    assert prov.environment.content_hash == f"sha256:{digest}"
    assert not run.storage.exists(f"{run.key}/execution/{record.execution_id}")
    dists = load_environment(run, prov)
    assert dists is not None and dists["molexp-workspace"] and dists["pydantic"]
    assert prov.distributions == len(dists)
    assert "pydantic" not in run.storage.read_bytes(f"{run.key}/run.json").decode()


def test_the_distributions_are_kept_once_per_workspace_and_shared(ws: me.Workspace) -> None:
    runs = [start_once(ws.Project("p").Experiment(name)) for name in ("e", "f", "g")]
    kept = [provenance_of(run).environment for run in runs]
    assert kept[0] is not None and kept[0].scope == "workspace"
    assert kept == [kept[0]] * 3
    files = [name for name in ws.storage.list(_capture.ENVIRONMENTS_DIR) if name.endswith(".json")]
    assert files == [kept[0].path.rsplit("/", 1)[-1]]
    environments = [load_environment(run, provenance_of(run)) for run in runs]
    assert environments[0] and environments == [environments[0]] * 3


def test_a_workspace_made_again_in_the_same_place_keeps_its_own_distributions(
    tmp_path: Path,
) -> None:
    root = tmp_path / "lab"
    start_once(me.Workspace(root).Project("p").Experiment("e"))
    shutil.rmtree(root)  # this process remembers having written the file: it must not trust that
    run = start_once(me.Workspace(root).Project("p").Experiment("e"))
    assert load_environment(run, provenance_of(run))


def test_the_distribution_list_matches_importlib_metadata(ws: me.Workspace) -> None:
    from importlib.metadata import distributions

    from molexp.workspace._environment import distributions as scanned
    from molexp.workspace._environment import normalize_name

    expected: dict[str, str] = {}
    for dist in distributions():
        expected.setdefault(normalize_name(dist.metadata["Name"]), dist.version)
    assert scanned() == dict(sorted(expected.items()))


def test_outside_git_the_status_says_so_and_no_git_runs(
    ws: me.Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = tmp_path / "plain" / "train.py"
    source.parent.mkdir()
    source.write_text("print('hi')\n")
    calls: list[object] = []
    monkeypatch.setattr(_git.subprocess, "Popen", lambda *a, **k: calls.append(a))
    exp = ws.Project("p").Experiment("e", workflow_source=str(source))
    prov = provenance_of(start_once(exp))
    assert prov.git.status == "not-a-repository"
    assert prov.git.commit is None and prov.git.dirty is None
    assert "not inside a git work tree" in (prov.git.detail or "")
    assert calls == []
    # The source file itself is kept, so the code that ran is known without git too.
    assert prov.source_file == str(source.resolve())
    assert prov.source is not None
    assert prov.source.content_hash == "sha256:" + hashlib.sha256(source.read_bytes()).hexdigest()


def test_a_workflow_source_that_does_not_exist_is_reported(ws: me.Workspace) -> None:
    exp = ws.Project("p").Experiment("e", workflow_source="no/such/train.py")
    prov = provenance_of(start_once(exp))
    assert prov.git.status == "source-missing"
    assert prov.source is None and prov.errors == []


# -- inside git -----------------------------------------------------------------------------------


@needs_git
def test_a_clean_work_tree_records_commit_branch_and_clean(
    ws: me.Workspace, tmp_path: Path
) -> None:
    source = make_repo(tmp_path / "repo")
    head = git(source.parent, "rev-parse", "HEAD")
    exp = ws.Project("p").Experiment("e", workflow_source=str(source))
    prov = provenance_of(start_once(exp))
    state = prov.git
    assert (state.status, state.commit, state.branch, state.dirty) == ("clean", head, "main", False)
    assert state.root == str(source.parent.resolve())
    assert state.diff_hash is None and state.diff is None and state.untracked == 0


@needs_git
def test_a_dirty_tree_records_the_diff_hash_and_keeps_the_diff(
    ws: me.Workspace, tmp_path: Path
) -> None:
    source = make_repo(tmp_path / "repo")
    source.write_text("LR = 0.2  # changed\n")
    (source.parent / "notes.txt").write_text("untracked\n")
    expected_diff = subprocess.run(
        ["git", "diff", "HEAD", "--binary", "--no-color", "--no-ext-diff", "--no-renames"],
        cwd=source.parent,
        capture_output=True,
        check=True,
    ).stdout
    exp = ws.Project("p").Experiment("e", workflow_source=str(source))
    run = start_once(exp)
    state = provenance_of(run).git
    assert state.status == "dirty" and state.dirty is True
    assert state.untracked == 1
    assert state.diff_hash == "sha256:" + hashlib.sha256(expected_diff).hexdigest()
    assert state.diff is not None and state.diff.content_hash == state.diff_hash
    kept = run.storage.read_bytes(f"{run.key}/{state.diff.path}")
    assert kept == expected_diff
    assert b"+LR = 0.2  # changed" in kept


@needs_git
def test_staged_changes_count_as_dirty(ws: me.Workspace, tmp_path: Path) -> None:
    source = make_repo(tmp_path / "repo")
    source.write_text("LR = 0.3\n")
    git(source.parent, "add", "train.py")
    exp = ws.Project("p").Experiment("e", workflow_source=str(source))
    state = provenance_of(start_once(exp)).git
    assert state.status == "dirty" and state.diff is not None


@needs_git
def test_a_relative_workflow_source_resolves_from_the_current_directory(
    ws: me.Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = make_repo(tmp_path / "repo")
    monkeypatch.chdir(source.parent)
    exp = ws.Project("p").Experiment("e", workflow_source="train.py")
    state = provenance_of(start_once(exp)).git
    assert state.status == "clean" and state.source == str(source.resolve())


@needs_git
def test_without_a_git_executable_commit_and_branch_come_from_the_git_directory(
    ws: me.Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = make_repo(tmp_path / "repo")
    head = git(source.parent, "rev-parse", "HEAD")
    git(source.parent, "pack-refs", "--all")  # the branch now lives in packed-refs only
    source.write_text("LR = 0.5\n")
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    exp = ws.Project("p").Experiment("e", workflow_source=str(source))
    run = start_once(exp)
    assert run.status == me.RunStatus.SUCCEEDED
    state = provenance_of(run).git
    assert state.status == "git-missing"
    assert (state.commit, state.branch, state.dirty) == (head, "main", None)
    assert "no git executable" in (state.detail or "")


@needs_git
def test_a_detached_head_has_no_branch(ws: me.Workspace, tmp_path: Path) -> None:
    source = make_repo(tmp_path / "repo")
    head = git(source.parent, "rev-parse", "HEAD")
    git(source.parent, "checkout", "-q", "--detach")
    exp = ws.Project("p").Experiment("e", workflow_source=str(source))
    state = provenance_of(start_once(exp)).git
    assert (state.commit, state.branch) == (head, None)


def test_git_that_hangs_is_cut_off_by_the_timeout(
    ws: me.Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if os.name == "nt":
        pytest.skip("a shell-script git needs a POSIX shell")
    repo = tmp_path / "repo"
    (repo / ".git" / "refs" / "heads").mkdir(parents=True)
    (repo / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (repo / ".git" / "refs" / "heads" / "main").write_text("a" * 40 + "\n")
    (repo / "train.py").write_text("pass\n")
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    fake = fake_bin / "git"
    fake.write_text("#!/bin/sh\nexec sleep 30\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake_bin}{os.pathsep}/usr/bin{os.pathsep}/bin")
    monkeypatch.setattr(_git, "GIT_TIMEOUT", 0.3)
    exp = ws.Project("p").Experiment("e", workflow_source=str(repo / "train.py"))
    start = time.monotonic()
    run = start_once(exp)
    assert time.monotonic() - start < 1.5
    state = provenance_of(run).git
    assert state.status == "error" and "timed out" in (state.detail or "")
    assert state.commit == "a" * 40 and state.branch == "main"


def test_capture_errors_are_recorded_and_never_fail_the_run(
    ws: me.Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object, **kwargs: object) -> object:
        raise RuntimeError("boom")

    monkeypatch.setattr(_capture, "environment", broken)
    monkeypatch.setattr(_capture, "capture_git", broken)
    exp = ws.Project("p").Experiment("e", workflow_source="train.py")
    run = start_once(exp)
    assert run.status == me.RunStatus.SUCCEEDED
    prov = provenance_of(run)
    assert prov.environment is None and prov.host
    assert any(e.startswith("environment: RuntimeError: boom") for e in prov.errors)
    assert any("RuntimeError: boom" in e and e.startswith("source") for e in prov.errors)


def test_a_deleted_current_directory_does_not_fail_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if os.name == "nt":
        pytest.skip("Windows cannot delete the current directory")
    ws = me.Workspace(tmp_path / "lab")
    exp = ws.Project("p").Experiment("e", workflow_source="train.py")
    gone = tmp_path / "gone"
    gone.mkdir()
    monkeypatch.chdir(gone)
    gone.rmdir()
    run = start_once(exp)
    assert run.status == me.RunStatus.SUCCEEDED
    prov = provenance_of(run)
    assert prov.cwd is None and prov.git.status == "no-source"
    assert any("FileNotFoundError" in e for e in prov.errors)


# -- append-only ----------------------------------------------------------------------------------


@needs_git
def test_a_rerun_appends_its_provenance_and_never_rewrites_the_old(
    ws: me.Workspace, tmp_path: Path
) -> None:
    source = make_repo(tmp_path / "repo")
    exp = ws.Project("p").Experiment("e", workflow_source=str(source))
    run = exp.Run(id="r")
    with pytest.raises(ZeroDivisionError), run.start():
        1 / 0  # noqa: B018
    first = run.metadata.execution_history[0].model_dump(mode="json")
    assert first["provenance"]["git"]["status"] == "clean"

    source.write_text("LR = 0.9\n")  # the code changes between the attempts
    with run.start():
        pass
    fresh = me.Workspace(ws.url).project("p").experiment("e").get_run("r")
    history = fresh.metadata.execution_history
    assert [h.status.value for h in history] == ["failed", "succeeded"]
    again = history[0].model_dump(mode="json")
    assert again["provenance"] == first["provenance"]
    second = history[1].provenance
    assert second is not None and second.git.status == "dirty"
    assert second.captured_at > history[0].provenance.captured_at  # type: ignore[union-attr]
    # The unchanged environment is referenced, not written again; the changed source is new.
    assert second.environment == history[0].provenance.environment  # type: ignore[union-attr]
    assert second.source != history[0].provenance.source  # type: ignore[union-attr]


def test_the_assets_an_attempt_read_are_recorded_on_it(ws: me.Workspace, tmp_path: Path) -> None:
    data = tmp_path / "qm9.csv"
    data.write_text("a,b\n")
    qm9 = ws.data_assets.import_asset("qm9", data)
    run = ws.Project("p").Experiment("e").Run(id="r")
    with run.start() as ctx:
        ctx.find_asset("qm9")
        ctx.find_asset("qm9")
        assert ctx.find_asset("nothing-like-it") is None
    assert run.metadata.execution_history[-1].inputs == [qm9.id]


# -- nothing secret is written --------------------------------------------------------------------


def _all_bytes(root: Path) -> bytes:
    return b"\n".join(p.read_bytes() for p in root.rglob("*") if p.is_file())


@needs_git
def test_no_environment_variable_or_credential_reaches_the_records(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secrets = [
        "fake-aws-secret-4711",
        "argv-token-0815",
        "url-password-1234",
        "remote-password-5678",
        "assigned-secret-9999",
    ]
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secrets[0])
    monkeypatch.setenv("MOLEXP_TEST_TOKEN", secrets[1])
    monkeypatch.setattr(
        sys,
        "argv",
        [
            "train.py",
            "--token",
            secrets[1],
            f"https://alice:{secrets[2]}@data.example.org/qm9",
            f"--api-key={secrets[4]}",
        ],
    )
    source = make_repo(tmp_path / "repo")
    git(
        source.parent,
        "remote",
        "add",
        "origin",
        f"https://bob:{secrets[3]}@git.example.org/lab/repo.git",
    )
    source.write_text("LR = 0.7\n")  # dirty: a diff is kept too
    ws = me.Workspace(tmp_path / "lab")
    exp = ws.Project("p").Experiment("e", workflow_source=str(source))
    run = start_once(exp)
    prov = provenance_of(run)
    assert prov.git.remote == "https://git.example.org/lab/repo.git"
    assert "https://data.example.org/qm9" in prov.argv
    everything = _all_bytes(tmp_path / "lab")
    for secret in secrets:
        assert secret.encode() not in everything, secret
    for name in ("AWS_SECRET_ACCESS_KEY", "MOLEXP_TEST_TOKEN"):
        assert name.encode() not in everything


def test_urls_lose_their_credentials_and_secret_options_their_values() -> None:
    assert strip_userinfo("https://u:p@host/x?q=1") == "https://host/x?q=1"
    assert strip_userinfo("s3://key:secret@bucket/lab") == "s3://bucket/lab"
    assert strip_userinfo("git@github.com:org/repo.git") == "git@github.com:org/repo.git"
    assert strip_userinfo("no url here") == "no url here"
    assert redact_argv(
        [
            "prog",
            "--password",
            "p1",
            "--db-password=p2",
            "api_key=p3",
            "--author",
            "Ada",
            "--max-tokens",
            "5",
            "--url",
            "https://u:p4@h/",
        ]
    ) == [
        "prog",
        "--password",
        "***",
        "--db-password=***",
        "api_key=***",
        "--author",
        "Ada",
        "--max-tokens",
        "5",
        "--url",
        "https://h/",
    ]


def test_provenance_is_readable_json_in_run_json(ws: me.Workspace) -> None:
    run = start_once(ws.Project("p").Experiment("e"))
    record = json.loads(run.storage.read_bytes(f"{run.key}/run.json"))
    prov = record["execution_history"][-1]["provenance"]
    assert {"host", "python", "platform", "argv", "git", "environment"} <= set(prov)
    assert prov["git"]["status"] == "no-source"
