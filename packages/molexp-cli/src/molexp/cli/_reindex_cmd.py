"""``molexp reindex``: rebuild a workspace's asset catalog from its asset records.

The catalog index is derived from the records written beside the payloads, so rebuilding it loses
nothing. It is what to run after a ``CatalogJournalWarning`` (a remote workspace whose journal
entry could not be written: other machines see that change only after a rebuild).
"""

from __future__ import annotations

import click

from molexp.cli._options import json_option, workspace_option


@click.command("reindex")
@workspace_option
@json_option
def reindex(workspace: str | None, as_json: bool) -> None:
    """Rebuild the asset catalog's index from the asset records.

    Safe at any time: the index is derived from the records beside the payloads, and other
    processes keep working while it is rebuilt. Run it on a machine that missed a change
    (after a 'catalog journal' warning on a remote workspace) or to check the catalog.
    """
    from molexp.cli._discover import open_workspace
    from molexp.cli._format import echo, print_json

    ws = open_workspace(workspace)
    count = ws.catalog.rebuild()
    if as_json:
        print_json({"workspace": ws.url, "assets": count})
        return
    echo(f"rebuilt the asset catalog of {ws.url}: {count} asset(s)")
