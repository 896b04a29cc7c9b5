"""Two runs of one experiment, before and after a code change, told apart from their records.

1. ``flow.py`` is copied into a fresh git repository and committed.
2. Run ``before`` executes it (in its own process).
3. ``SHRINK`` is edited in the work tree (not committed), and run ``after`` executes it.
4. What each attempt recorded is printed: commit, dirty flag, diff hash, source hash.
5. ``molexp runs diff before after`` shows what differs (``--changed``: only that).
6. ``molexp assets lineage`` shows what the model was made from.
7. ``molexp export after --format ro-crate`` writes a Workflow Run RO-Crate, which is read back
   with the ``rocrate`` library.

Usage::

    python examples/provenance/walkthrough.py          # in a fresh temporary directory
    python examples/provenance/walkthrough.py ./demo   # in ./demo (must not exist yet)

Needs ``molexp-cli`` with the RO-Crate extra (``pip install -e 'packages/molexp-cli[ro-crate]'``)
and ``git`` on PATH.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
GIT_IDENTITY = {
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_AUTHOR_NAME": "Example",
    "GIT_AUTHOR_EMAIL": "example@example.org",
    "GIT_COMMITTER_NAME": "Example",
    "GIT_COMMITTER_EMAIL": "example@example.org",
}


def sh(*args: str, cwd: Path, title: str | None = None) -> str:
    """Run a command, print it and its output, and return the output."""
    shown = " ".join(args)
    print(f"\n$ {title or shown}")
    done = subprocess.run(
        args,
        cwd=cwd,
        env={**os.environ, **GIT_IDENTITY},
        capture_output=True,
        text=True,
        check=False,
    )
    if done.stdout.strip():
        print(done.stdout.rstrip())
    if done.returncode != 0:
        print(done.stderr, file=sys.stderr)
        raise SystemExit(f"failed: {shown}")
    return done.stdout


def molexp(*args: str, cwd: Path) -> str:
    return sh(sys.executable, "-m", "molexp.cli", *args, cwd=cwd, title="molexp " + " ".join(args))


def main() -> None:
    if shutil.which("git") is None:
        raise SystemExit("this example needs git on PATH")
    if len(sys.argv) > 1:
        base = Path(sys.argv[1]).resolve()
        base.mkdir(parents=True)  # refuses an existing directory
    else:
        base = Path(tempfile.mkdtemp(prefix="provenance-")).resolve()
    repo, lab = base / "code", base / "lab"
    repo.mkdir()
    shutil.copy(HERE / "flow.py", repo / "flow.py")
    print(f"working in {base}")
    sh("git", "init", "-q", "-b", "main", cwd=repo)
    sh("git", "add", "flow.py", cwd=repo)
    sh("git", "commit", "-q", "-m", "fit-weight v1", cwd=repo)

    sh(sys.executable, "flow.py", str(lab), "before", cwd=repo, title="python flow.py lab before")
    source = repo / "flow.py"
    source.write_text(source.read_text().replace("SHRINK = 1.0", "SHRINK = 5.0"))
    sh("git", "diff", "--stat", cwd=repo)
    sh(sys.executable, "flow.py", str(lab), "after", cwd=repo, title="python flow.py lab after")

    import molexp as me
    from molexp.workspace import latest_provenance

    exp = me.Workspace.load(lab).project("demo").experiment("fit")
    print("\nwhat each attempt recorded:")
    for run_id in ("before", "after"):
        found = latest_provenance(exp.get_run(run_id))
        assert found is not None
        record, prov = found
        git = prov.git
        diff = git.diff_hash[:19] if git.diff_hash else "-"
        source_hash = prov.source.content_hash[:19] if prov.source else "-"
        print(
            f"  {run_id:<6}  attempt {record.execution_id}  commit {str(git.commit)[:12]}  "
            f"{git.status:<5}  diff {diff:<19}  source {source_hash}  "
            f"(captured in {prov.capture_ms:.1f} ms, first attempt of its process)"
        )

    molexp("runs", "diff", "before", "after", "--changed", cwd=lab)
    molexp("assets", "lineage", "model", "--run", "after", cwd=lab)
    crate_dir = base / "crate-after"
    molexp("export", "after", "--format", "ro-crate", str(crate_dir), cwd=lab)

    from rocrate.rocrate import ROCrate

    crate = ROCrate(crate_dir)
    (action,) = crate.get_by_type("CreateAction")
    print("\nread back with rocrate:")
    print(f"  main entity  {crate.mainEntity.id}  {crate.mainEntity.type}")
    print(f"  action       {action.id}  {action['startTime']} .. {action['endTime']}")
    print(f"  instrument   {action['instrument'].id}")
    for obj in action["object"]:
        print(f"  object       {obj.id}  {obj.get('name')}  {obj.get('value', '')}")
    for result in action["result"]:
        print(f"  result       {result.id}  sha256 {str(result.get('sha256'))[:12]}")


if __name__ == "__main__":
    main()
