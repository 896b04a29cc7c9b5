"""Run import-linter (`.importlinter`) over the whole split `molexp` package.

`molexp` is one package spread over several distributions: packages/molexp-workspace/src/molexp
holds `__init__.py` (which extends `__path__` with pkgutil) and `workspace/`, while
molexp-workflow and molexp-cli add `workflow/` and `cli/` from their own src directories.
import-linter's graph builder (grimp) locates a root package with `importlib.util.find_spec`
without importing it, so it sees only the directory that holds `__init__.py` and would report
`molexp.workflow` and `molexp.cli` as missing.

This script assembles one read-only view of the package, a temporary directory of symlinks to
the real source files (grimp follows symlinks), puts it first on PYTHONPATH and runs
`lint-imports` with the repository's `.importlinter`. Two distributions that ship the same path
inside `molexp/` are reported as an error here, since their wheels would overwrite each other.

Usage: python tools/lint_imports.py [lint-imports options, e.g. --verbose]
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TOP_LEVEL = ("molexp", "molexp_storage_s3")


def build_view(view: Path) -> None:
    """Link every distribution's top-level packages into ``view``, merging split ones."""
    owners: dict[Path, Path] = {}
    for src in sorted(ROOT.glob("packages/*/src")):
        for top in TOP_LEVEL:
            portion = src / top
            if not portion.is_dir():
                continue
            target_dir = view / top
            target_dir.mkdir(exist_ok=True)
            for entry in sorted(portion.iterdir()):
                if entry.name == "__pycache__":
                    continue
                link = target_dir / entry.name
                relative = link.relative_to(view)
                if relative in owners:
                    sys.exit(
                        f"lint_imports: {relative} is shipped by two distributions: "
                        f"{owners[relative]} and {entry}"
                    )
                owners[relative] = entry
                link.symlink_to(entry, target_is_directory=entry.is_dir())


def main(argv: list[str]) -> int:
    with tempfile.TemporaryDirectory(prefix="molexp-importlinter-") as tmp:
        view = Path(tmp)
        build_view(view)
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(view), env.get("PYTHONPATH")]))
        command = ["lint-imports", "--config", str(ROOT / ".importlinter"), "--no-cache", *argv]
        return subprocess.run(command, env=env, cwd=ROOT, check=False).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
