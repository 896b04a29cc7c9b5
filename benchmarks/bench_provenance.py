"""Benchmark: what capturing an attempt's provenance costs when a run context is entered.

For each situation, RUNS runs are started and finished in one process (``ctx.__enter__`` /
``ctx.__exit__``), and two numbers are reported as medians (the first attempt, which pays the
per-process caches, is shown apart):

* **capture**: the ``capture_ms`` each attempt recorded in its own provenance;
* **enter**: the wall time of ``RunContext.__enter__`` as a whole (which also claims the attempt
  and writes ``run.json`` atomically, with fsync), next to the same with capturing switched off.

Situations: no workflow source; a source outside git; a small clean git work tree; the same tree
dirty; and, when run from a git checkout, this repository itself (``--repo PATH`` for another).

Usage::

    python benchmarks/bench_provenance.py            # 30 runs per situation, ~5 seconds
    python benchmarks/bench_provenance.py --runs 100
    python benchmarks/bench_provenance.py --repo ~/big-monorepo
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import molexp as me
from molexp.workspace import _context

GIT_ENV = {
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_AUTHOR_NAME": "bench",
    "GIT_AUTHOR_EMAIL": "bench@example.org",
    "GIT_COMMITTER_NAME": "bench",
    "GIT_COMMITTER_EMAIL": "bench@example.org",
}


def measure(base: Path, source: str | None, runs: int, *, capture: bool = True) -> dict:
    root = Path(tempfile.mkdtemp(dir=base))
    exp = me.Workspace(root / "lab").Project("p").Experiment("e", workflow_source=source)
    original = _context.capture
    if not capture:
        _context.capture = lambda *args, **kwargs: None
    enters, captures = [], []
    try:
        for i in range(runs):
            run = exp.Run(id=f"r{i}")
            ctx = run.start()
            start = time.perf_counter()
            ctx.__enter__()
            enters.append((time.perf_counter() - start) * 1000)
            ctx.__exit__(None, None, None)
            prov = run.metadata.execution_history[-1].provenance
            if prov is not None and prov.capture_ms is not None:
                captures.append(prov.capture_ms)
    finally:
        _context.capture = original
    return {
        "enter": statistics.median(enters[1:]),
        "capture": statistics.median(captures[1:]) if captures else None,
        "first": captures[0] if captures else enters[0],
    }


def make_repo(base: Path) -> Path:
    repo = base / "repo"
    repo.mkdir()
    (repo / "train.py").write_text("LR = 0.1\n")
    for args in (["init", "-q", "-b", "main"], ["add", "train.py"], ["commit", "-q", "-m", "v1"]):
        subprocess.run(["git", *args], cwd=repo, env={**os.environ, **GIT_ENV}, check=True)
    return repo / "train.py"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--repo", type=Path, default=Path(__file__).resolve().parents[1])
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="bench-provenance-"))
    try:
        plain = base / "plain" / "train.py"
        plain.parent.mkdir()
        plain.write_text("LR = 0.1\n")
        cases: list[tuple[str, str | None]] = [("no workflow source", None)]
        cases.append(("source outside git", str(plain)))
        if shutil.which("git") is not None:
            source = make_repo(base)
            cases.append(("small clean git tree", str(source)))
            cases.append(("small dirty git tree", "dirty:" + str(source)))
            if (args.repo / ".git").exists():
                cases.append((f"{args.repo.name} (as it is now)", str(args.repo / "README.md")))
        off = measure(base, None, args.runs, capture=False)
        print(f"{'situation':<32} {'capture':>9} {'enter':>9} {'first':>9}   (ms, medians)")
        print(f"{'capturing switched off':<32} {'-':>9} {off['enter']:>9.2f} {'-':>9}")
        for title, source_text in cases:
            if source_text is not None and source_text.startswith("dirty:"):
                source_text = source_text.removeprefix("dirty:")
                Path(source_text).write_text("LR = 0.2  # changed\n")
            found = measure(base, source_text, args.runs)
            print(
                f"{title:<32} {found['capture']:>9.2f} {found['enter']:>9.2f} "
                f"{found['first']:>9.2f}"
            )
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
