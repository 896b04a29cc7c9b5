"""Capturing an attempt's provenance when its run context is entered.

What it costs (measured on a laptop-class machine, local disk): about a millisecond outside git
(host facts and the distribution list are cached per process), plus one ``git status`` of a few
milliseconds inside a clean work tree, plus one ``git diff`` when it is dirty. The source copy and
the diff go to files beside the run under ``execution/<execution_id>/`` (written without fsync:
they are immutable and their hashes are in ``run.json``), and a file identical to one an earlier
attempt of the run wrote is referenced rather than written again. The installed distributions,
the same for every run a process starts, go once per workspace to
``.molexp/environments/<sha256>.json`` (content-addressed, created exclusively and fsynced), which
each attempt references.

Nothing here may fail a run: every step catches its own errors and records them in
``Provenance.errors``.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from molexp.workspace._environment import (
    Environment,
    environment,
    platform_text,
    python_version,
    user_name,
)
from molexp.workspace._git import capture_git
from molexp.workspace._ownership import hostname
from molexp.workspace._payload import hash_bytes
from molexp.workspace._provenance import GIT_NO_SOURCE, GitState, Provenance, ProvenanceFile
from molexp.workspace._redact import redact_argv

if TYPE_CHECKING:
    from molexp.workspace._metadata import ExecutionRecord
    from molexp.workspace._run import Run

DIFF_LIMIT = 16 * 1024 * 1024
"""A larger uncommitted diff is hashed but not kept."""
SOURCE_LIMIT = 4 * 1024 * 1024
"""A larger workflow source file is not copied."""
ENVIRONMENTS_DIR = ".molexp/environments"
"""Where a workspace keeps each distinct set of installed distributions, by content hash."""
DIFF_FILE = "git.diff"

_kept_lock = threading.Lock()
_kept_environments: set[tuple[str, str, str]] = set()
"""(store URL, workspace id, key) of the environment files this process wrote or found intact
(a workspace deleted and made again at the same URL has a new id, so its file is written again)."""


def resolve_source(text: str | os.PathLike[str] | None) -> Path | None:
    """Where a workflow source path points: absolute as given; relative to the current directory,
    else to the directory of the ``__main__`` script (``workflow_source="train.py"`` declared
    in ``train.py`` itself)."""
    if text is None or not os.fspath(text):
        return None
    path = Path(text).expanduser()
    if path.is_absolute():
        return path
    candidates = [Path.cwd() / path]
    main_file = getattr(sys.modules.get("__main__"), "__file__", None)
    if isinstance(main_file, str):
        candidates.append(Path(main_file).resolve().parent / path)
    for candidate in candidates:
        if candidate.exists():
            return candidate
    return candidates[0]


def _earlier(history: Sequence[ExecutionRecord]) -> list[Provenance]:
    return [r.provenance for r in reversed(history) if r.provenance is not None]


def _keep(
    run: Run,
    execution_id: str,
    name: str,
    data: bytes,
    reusable: Sequence[ProvenanceFile | None],
) -> ProvenanceFile:
    """A file beside the run holding ``data``: one an earlier attempt wrote with the same bytes,
    or a new ``execution/<execution_id>/<name>``."""
    digest = hash_bytes(data)
    for earlier in reusable:
        if earlier is not None and earlier.content_hash == digest:
            return earlier
    rel = f"execution/{execution_id}/{name}"
    run.storage.write_bytes(f"{run.key}/{rel}", data, durable=False)
    return ProvenanceFile(path=rel, content_hash=digest, size=len(data))


def _keep_environment(run: Run, env: Environment) -> ProvenanceFile:
    """The workspace's file holding ``env``: written the first time (exclusively, so concurrent
    writers agree), checked once per process when it exists, and then only referenced."""
    storage = run.storage
    key = f"{ENVIRONMENTS_DIR}/{env.payload_hash.removeprefix('sha256:')}.json"
    kept = (storage.url, run.experiment.project.workspace.id, key)
    with _kept_lock:
        known = kept in _kept_environments
    if not known:
        try:
            storage.write_bytes(key, env.payload, exclusive=True)
        except FileExistsError:
            if hash_bytes(storage.read_bytes(key)) != env.payload_hash:  # damaged: replace it
                storage.write_bytes(key, env.payload)
        with _kept_lock:
            _kept_environments.add(kept)
    return ProvenanceFile(
        path=key, content_hash=env.payload_hash, size=len(env.payload), scope="workspace"
    )


def capture(
    run: Run, execution_id: str, history: Sequence[ExecutionRecord], source: str | None
) -> Provenance:
    """The provenance of the attempt ``execution_id`` of ``run`` starting now. Never raises.

    ``history`` is the run's earlier attempts (for reusing identical files); ``source`` is the
    workflow source path the experiment declares, if any.
    """
    start = time.perf_counter()
    provenance = Provenance()
    errors = provenance.errors
    try:
        provenance.host = hostname()
        provenance.user = user_name()
        provenance.python = python_version()
        provenance.python_implementation = sys.implementation.name
        provenance.executable = sys.executable or None
        provenance.platform = platform_text()
        provenance.argv = redact_argv(sys.argv)
        provenance.cwd = os.getcwd()
    except Exception as exc:  # capturing never fails a run
        errors.append(f"host facts: {type(exc).__name__}: {exc}")
    try:
        env = environment()
        provenance.environment_hash = env.digest
        provenance.distributions = len(env.distributions)
        provenance.environment = _keep_environment(run, env)
    except Exception as exc:
        errors.append(f"environment: {type(exc).__name__}: {exc}")
    record_source(run, execution_id, provenance, history, source, force=True)
    provenance.capture_ms = round((time.perf_counter() - start) * 1000, 3)
    return provenance


def record_source(
    run: Run,
    execution_id: str,
    provenance: Provenance,
    history: Sequence[ExecutionRecord],
    source: str | os.PathLike[str] | None,
    *,
    force: bool = False,
) -> bool:
    """Capture the git state and a copy of the workflow source ``source`` into ``provenance``.

    Skipped (returning False) when ``source`` is the file already recorded, or is unknown and
    something is recorded already; git is asked again only when ``source`` lies in another work
    tree than the one recorded. Never raises.
    """
    start = time.perf_counter()
    try:
        path = resolve_source(source)
        if path is not None:
            path = path.resolve()
    except (OSError, RuntimeError) as exc:  # e.g. the current directory was deleted
        provenance.errors.append(f"source {source}: {type(exc).__name__}: {exc}")
        return False
    if path is None and not force:
        return False
    if path is not None and provenance.source_file == str(path):
        return False
    earlier = _earlier(history)
    try:
        _copy_source(run, execution_id, provenance, path, earlier)
        git = provenance.git
        same_tree = (
            path is not None
            and git.root is not None
            and git.status != GIT_NO_SOURCE
            and path.is_relative_to(git.root)
        )
        if not same_tree:
            provenance.git = _capture_git(run, execution_id, path, earlier)
    except Exception as exc:  # capturing never fails a run
        provenance.errors.append(f"source {source}: {type(exc).__name__}: {exc}")
    if provenance.capture_ms is not None:
        provenance.capture_ms = round(
            provenance.capture_ms + (time.perf_counter() - start) * 1000, 3
        )
    return True


def _copy_source(
    run: Run,
    execution_id: str,
    provenance: Provenance,
    path: Path | None,
    earlier: Sequence[Provenance],
) -> None:
    provenance.source_file = str(path) if path is not None else None
    provenance.source = None
    if path is None or not path.is_file():
        return
    if path.stat().st_size > SOURCE_LIMIT:
        provenance.errors.append(f"source {path}: larger than {SOURCE_LIMIT} bytes, not copied")
        return
    provenance.source = _keep(
        run,
        execution_id,
        f"source-{path.name}",
        path.read_bytes(),
        [p.source for p in earlier],
    )


def _capture_git(
    run: Run, execution_id: str, path: Path | None, earlier: Sequence[Provenance]
) -> GitState:
    found = capture_git(path)
    state = found.state
    if found.diff is not None:
        if len(found.diff) <= DIFF_LIMIT:
            state.diff = _keep(
                run, execution_id, DIFF_FILE, found.diff, [p.git.diff for p in earlier]
            )
        else:
            state.detail = (
                f"the diff ({len(found.diff)} bytes) is larger than {DIFF_LIMIT}: not kept"
            )
    return state
