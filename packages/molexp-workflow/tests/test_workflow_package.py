"""molexp.workflow is a subpackage of the one `molexp` package, not a package of its own."""

from __future__ import annotations

from pathlib import Path

import molexp
import molexp.workflow


def test_workflow_lives_in_the_molexp_package() -> None:
    assert molexp.workflow.__name__ == "molexp.workflow"
    assert Path(molexp.workflow.__file__).parent.parent.name == "molexp"
    # The workspace API is still what `import molexp` gives.
    assert molexp.Workspace is not None


def test_public_names_are_declared() -> None:
    assert isinstance(molexp.workflow.__all__, list)
    for name in molexp.workflow.__all__:
        assert hasattr(molexp.workflow, name), name
