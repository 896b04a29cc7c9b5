"""``import molexp as me`` reaches the whole workspace API, and nothing that is not there."""

from __future__ import annotations

import subprocess
import sys

import pytest

import molexp as me
import molexp.workspace as mw


@pytest.mark.parametrize("name", sorted(mw.__all__))
def test_every_workspace_name_is_the_same_object_on_molexp(name: str) -> None:
    assert getattr(me, name) is getattr(mw, name)


def test_an_unknown_name_is_an_attribute_error_naming_it() -> None:
    with pytest.raises(AttributeError, match="'no_such_thing'"):
        _ = me.no_such_thing


def test_importing_molexp_loads_no_workspace_module() -> None:
    code = "import sys, molexp; print(sorted(m for m in sys.modules if m.startswith('molexp.')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
