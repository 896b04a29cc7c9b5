"""The git state of the work tree holding a workflow's source: commit, branch, dirty, and the diff.

``git status`` (porcelain v2, with the branch header) gives the commit, the branch, whether
tracked files changed and how many files are untracked; ``git diff HEAD --binary``, run at the
same time, gives the uncommitted diff, whose sha256 identifies the uncommitted state exactly (same
commit + same diff hash = same tracked files). Together that costs a few milliseconds; the calls
share a timeout, and a failure becomes a status with a reason, never an exception.

Without a ``git`` executable the commit and branch are still read from the ``.git`` directory
(HEAD, loose refs, packed-refs), and the dirty state is reported unknown. Outside a work tree no
process is started at all: the ``.git`` marker is looked for first.

Nothing about the tree is cached between calls, because the tree may change between two attempts
in one process (a notebook); only the location of the ``git`` executable is, per ``PATH``.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from molexp.workspace._provenance import (
    GIT_CLEAN,
    GIT_DIRTY,
    GIT_ERROR,
    GIT_MISSING,
    GIT_NO_SOURCE,
    GIT_NOT_A_REPOSITORY,
    GIT_SOURCE_MISSING,
    GitState,
)
from molexp.workspace._redact import strip_userinfo

GIT_TIMEOUT = 2.0
"""Seconds one capture may spend in git (both calls together)."""

_SHA = re.compile(r"[0-9a-f]{40}([0-9a-f]{24})?")
_REMOTE_SECTION = re.compile(r'^\s*\[\s*remote\s+"origin"\s*\]\s*$')
_SECTION = re.compile(r"^\s*\[")
_URL_LINE = re.compile(r"^\s*url\s*=\s*(?P<url>.+?)\s*$")
_which_cache: dict[str | None, str | None] = {}


@dataclass
class GitCapture:
    """What :func:`capture_git` found: the state, and the diff's bytes when the tree is dirty."""

    state: GitState
    diff: bytes | None = None


def git_executable() -> str | None:
    """The ``git`` on ``PATH`` (looked up once per distinct ``PATH``), or None."""
    path = os.environ.get("PATH")
    if path not in _which_cache:
        _which_cache[path] = shutil.which("git", path=path)
    return _which_cache[path]


def find_work_tree(start: Path) -> tuple[Path, Path] | None:
    """The top of the work tree holding ``start`` and its git directory, or None outside one."""
    for directory in (start, *start.parents):
        marker = directory / ".git"
        if marker.is_dir():
            return directory, marker
        if marker.is_file():  # a linked worktree or a submodule: "gitdir: <path>"
            try:
                text = marker.read_text(errors="replace").strip()
            except OSError:
                return None
            if text.startswith("gitdir:"):
                return directory, (directory / text.removeprefix("gitdir:").strip()).resolve()
            return None
    return None


def _common_dir(git_dir: Path) -> Path:
    commondir = git_dir / "commondir"
    if commondir.is_file():
        return (git_dir / commondir.read_text().strip()).resolve()
    return git_dir


def read_head(git_dir: Path) -> tuple[str | None, str | None]:
    """The commit and branch checked out, read from the files of ``git_dir`` (no git needed)."""
    try:
        head = (git_dir / "HEAD").read_text().strip()
        if not head.startswith("ref:"):
            return (head if _SHA.fullmatch(head) else None), None
        ref = head.removeprefix("ref:").strip()
        branch = ref.removeprefix("refs/heads/") if ref.startswith("refs/heads/") else None
        common = _common_dir(git_dir)
        for base in (git_dir, common):
            loose = base / ref
            if loose.is_file():
                sha = loose.read_text().strip()
                return (sha if _SHA.fullmatch(sha) else None), branch
        packed = common / "packed-refs"
        if packed.is_file():
            for line in packed.read_text().splitlines():
                sha, _, name = line.partition(" ")
                if name == ref and _SHA.fullmatch(sha):
                    return sha, branch
        return None, branch
    except OSError:
        return None, None


def read_remote(git_dir: Path) -> str | None:
    """The ``origin`` remote's URL from the repository config, credentials stripped."""
    try:
        lines = (_common_dir(git_dir) / "config").read_text(errors="replace").splitlines()
    except OSError:
        return None
    inside = False
    for line in lines:
        if _SECTION.match(line):
            inside = bool(_REMOTE_SECTION.match(line))
            continue
        if inside and (match := _URL_LINE.match(line)):
            return strip_userinfo(match["url"].strip('"'))
    return None


def _parse_status(output: bytes) -> tuple[str | None, str | None, bool, int]:
    """Commit, branch, whether tracked files changed, and the untracked count, from
    ``git status --porcelain=v2 --branch -z``."""
    commit: str | None = None
    branch: str | None = None
    changed = False
    untracked = 0
    for entry in output.split(b"\0"):
        if entry.startswith(b"# branch.oid "):
            oid = entry[len(b"# branch.oid ") :].decode(errors="replace")
            commit = oid if _SHA.fullmatch(oid) else None
        elif entry.startswith(b"# branch.head "):
            head = entry[len(b"# branch.head ") :].decode(errors="replace")
            branch = None if head == "(detached)" else head
        elif entry[:2] in (b"1 ", b"2 ", b"u "):
            changed = True
        elif entry.startswith(b"? "):
            untracked += 1
    return commit, branch, changed, untracked


def _first_line(data: bytes) -> str:
    text = data.decode(errors="replace").strip()
    return text.splitlines()[0] if text else "no message"


def capture_git(
    source: str | os.PathLike[str] | None, *, timeout: float | None = None
) -> GitCapture:
    """The git state of the work tree holding ``source`` (a file or directory). Never raises.

    ``timeout`` defaults to :data:`GIT_TIMEOUT` (read at call time).
    """
    if source is None:
        return GitCapture(GitState(status=GIT_NO_SOURCE, detail="no workflow source path is known"))
    path = Path(source)
    try:
        path = path.resolve()
        exists = path.exists()
    except (OSError, RuntimeError) as exc:
        return GitCapture(GitState(status=GIT_ERROR, source=str(source), detail=str(exc)))
    if not exists:
        return GitCapture(
            GitState(
                status=GIT_SOURCE_MISSING, source=str(path), detail=f"{path} does not exist here"
            )
        )
    found = find_work_tree(path if path.is_dir() else path.parent)
    if found is None:
        return GitCapture(
            GitState(
                status=GIT_NOT_A_REPOSITORY,
                source=str(path),
                detail=f"{path} is not inside a git work tree",
            )
        )
    root, git_dir = found
    commit, branch = read_head(git_dir)
    state = GitState(
        status=GIT_ERROR,
        source=str(path),
        root=str(root),
        commit=commit,
        branch=branch,
        remote=read_remote(git_dir),
    )
    git = git_executable()
    if git is None:
        state.status = GIT_MISSING
        state.detail = "no git executable on PATH: commit and branch read from .git, dirty unknown"
        return GitCapture(state)
    return _ask_git(git, root, state, GIT_TIMEOUT if timeout is None else timeout)


def _ask_git(git: str, root: Path, state: GitState, timeout: float) -> GitCapture:
    """Run ``git status`` and ``git diff HEAD`` side by side (the diff is used only when the
    status says tracked files changed; on a clean tree it is empty and quick)."""
    base = [git, "-C", str(root), "--no-optional-locks", "-c", "core.quotepath=off"]
    status_cmd = [
        *base,
        "status",
        "--porcelain=v2",
        "--branch",
        "-z",
        "--no-renames",
        "--untracked-files=normal",
        "--ignore-submodules=dirty",
    ]
    diff_cmd = [
        *base,
        "diff",
        "HEAD",
        "--binary",
        "--no-color",
        "--no-ext-diff",
        "--no-textconv",
        "--no-renames",
        "--src-prefix=a/",
        "--dst-prefix=b/",
        "--ignore-submodules=dirty",
    ]
    try:
        (status_code, status_out, status_err), (diff_code, diff_out, diff_err) = _run_both(
            status_cmd, diff_cmd, timeout
        )
    except subprocess.TimeoutExpired:
        state.detail = f"git timed out after {timeout:g} s; dirty unknown"
        return GitCapture(state)
    except OSError as exc:
        state.detail = f"git could not be started ({exc}); dirty unknown"
        return GitCapture(state)
    if status_code != 0:
        state.detail = f"git status failed: {_first_line(status_err)}"
        return GitCapture(state)
    commit, branch, changed, untracked = _parse_status(status_out)
    state.commit, state.branch, state.untracked = commit, branch, untracked
    state.dirty = changed
    state.status = GIT_DIRTY if changed else GIT_CLEAN
    state.detail = None
    if commit is None:
        state.detail = "the repository has no commit yet"
        return GitCapture(state)
    if not changed:
        return GitCapture(state)
    if diff_code != 0:
        state.detail = f"git diff failed: {_first_line(diff_err)}; the diff was not kept"
        return GitCapture(state)
    state.diff_hash = f"sha256:{hashlib.sha256(diff_out).hexdigest()}"
    return GitCapture(state, diff_out)


def _run_both(
    first: list[str], second: list[str], timeout: float
) -> tuple[tuple[int, bytes, bytes], tuple[int, bytes, bytes]]:
    """Run two commands at once; both outcomes, or TimeoutExpired (both killed) past
    ``timeout`` seconds in all."""
    deadline = time.monotonic() + timeout
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for command in (first, second):
            procs.append(
                subprocess.Popen(
                    command,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                )
            )
        results = []
        for proc in procs:
            left = max(0.05, deadline - time.monotonic())
            out, err = proc.communicate(timeout=left)
            results.append((proc.returncode, out, err))
        return results[0], results[1]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
