"""Options shared by several commands."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from molexp.cli._discover import ENV_WORKSPACE

F = TypeVar("F", bound=Callable[..., Any])


def workspace_option(fn: F) -> F:
    """``-w/--workspace PATH`` (default: ``$MOLEXP_WORKSPACE``, else found from the current
    directory)."""
    option = click.option(
        "-w",
        "--workspace",
        metavar="PATH",
        envvar=ENV_WORKSPACE,
        help=f"The workspace root (or URL). Default: ${ENV_WORKSPACE}, else the current "
        "directory or a parent of it holding workspace.json.",
    )
    return option(fn)


def json_option(fn: F) -> F:
    """``--json``: machine-readable output."""
    return click.option("--json", "as_json", is_flag=True, help="Print JSON.")(fn)
