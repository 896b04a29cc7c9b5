"""molexp_storage_s3 imports on top of the workspace layer only."""

from __future__ import annotations

import subprocess
import sys


def test_import_pulls_in_no_upper_layer() -> None:
    # A fresh interpreter, so that modules other tests imported do not count.
    code = (
        "import sys, molexp_storage_s3, molexp as me; "
        "assert me.Workspace is not None; "
        "bad = [m for m in sys.modules if m.startswith(('molexp.workflow', 'molexp.cli'))]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
