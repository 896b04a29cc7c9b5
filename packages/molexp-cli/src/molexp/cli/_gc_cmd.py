"""``molexp gc``: remove what writers killed mid-write left in a workspace.

The work is :meth:`molexp.workspace.Workspace.collect_garbage`; this prints its report. The
workspace layer is imported only when the command runs.
"""

from __future__ import annotations

import re
from datetime import timedelta

import click

from molexp.cli._errors import EXIT_FAILURE, UsageError
from molexp.cli._options import json_option, workspace_option

_AGE = re.compile(r"\A(\d+)([smhd])\Z")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def parse_age(text: str) -> timedelta:
    """``30m``, ``1h``, ``2d``, ``90s`` as a timedelta; a clear usage error otherwise."""
    match = _AGE.match(text.strip())
    if match is None:
        raise UsageError(
            f"--older-than {text!r} is not an age: use a whole number and a unit, s, m, h or d "
            "(90s, 30m, 1h, 2d; 0s takes everything, however young)"
        )
    return timedelta(**{_UNITS[match[2]]: int(match[1])})


@click.command("gc")
@workspace_option
@click.option("--dry-run", is_flag=True, help="List what would be removed; remove nothing.")
@click.option(
    "--older-than",
    "older_than",
    default="1h",
    show_default=True,
    metavar="AGE",
    help="Only what was last written longer ago than AGE (90s, 30m, 1h, 2d): younger files "
    "may belong to a write still in progress.",
)
@json_option
def gc(workspace: str | None, dry_run: bool, older_than: str, as_json: bool) -> None:
    """Remove temporary files and orphaned payloads left by crashed writers.

    A process killed mid-write can leave temporary files of atomic writes, data-asset
    directories whose import never recorded them, and artifact or checkpoint payloads without a
    record. None of them is listed anywhere; this removes those older than --older-than and
    prints what went and the bytes freed. Exits with 1 if some item could not be removed.
    """
    from molexp.cli._discover import open_workspace
    from molexp.cli._format import echo, print_json, size

    age = parse_age(older_than)
    ws = open_workspace(workspace)
    report = ws.collect_garbage(dry_run=dry_run, older_than=age)
    if as_json:
        print_json(report.to_json())
    else:
        verb = "would remove" if dry_run else "removed"
        count = len(report.removed)
        echo(
            f"{verb} {count} item{'s' if count != 1 else ''}, "
            f"{size(report.total_bytes)}{' to free' if dry_run else ' freed'}, "
            f"in {report.url} (older than {older_than.strip()})"
        )
        for item in report.removed:  # keys in full (a table would clip them)
            echo(f"  {item.kind:<10}  {size(item.size):>10}  {item.key}")
        for item in report.failed:
            click.echo(f"error: could not remove {item.key}: {item.error}", err=True)
    if report.failed:
        raise SystemExit(EXIT_FAILURE)
