"""``molexp assets lineage ASSET``: what an asset was made from, and what was made from it.

Lineage comes from the ``Producer.inputs`` of each asset: the assets its task had read through
the run context (``find_asset``, ``get_data_dir``) before saving it. Upward, the tree follows
those inputs; downward, it follows every asset whose inputs name the one above it. An asset that
appears twice in a tree (a diamond) is shown in full once, then as ``(shown above)``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import click

from molexp.cli._errors import CliError
from molexp.cli._format import echo, print_json, size

if TYPE_CHECKING:
    from molexp.workspace import Asset, Catalog

from molexp.cli._options import json_option, workspace_option

DIRECTIONS = ("up", "down", "both")
MAX_CANDIDATES = 10


def find_asset(catalog: Catalog, ref: str, run: str | None) -> Asset:
    """The asset ``ref`` names: an asset id, else a name (unique in the workspace, or in the
    run ``run``)."""
    found = catalog.get(ref)
    if found is not None:
        return found
    candidates = catalog.query_assets(name=ref, run=run, newest_first=True)
    if not candidates:
        where = f" in run {run}" if run else ""
        raise CliError(
            f"no asset with the id or name {ref!r}{where}; list them with `molexp assets query`"
        )
    if len(candidates) > 1:
        listed = "; ".join(describe(a) for a in candidates[:MAX_CANDIDATES])
        more = f" and {len(candidates) - MAX_CANDIDATES} more" if len(candidates) > 10 else ""
        raise CliError(
            f"{len(candidates)} assets are named {ref!r}: {listed}{more}. Give the asset id, or "
            "--run RUN"
        )
    return candidates[0]


def scope_text(asset: Asset) -> str:
    """``run:p/e/r``, ``experiment:p/e``, ``project:p`` or ``workspace``."""
    scope = asset.scope
    ids = [i for i in (scope.project_id, scope.experiment_id, scope.run_id) if i]
    return f"{scope.level.value}:{'/'.join(ids)}" if ids else scope.level.value


def describe(asset: Asset) -> str:
    """One line about an asset: kind, name, scope, producer, size, id."""
    producer = asset.producer
    made = ""
    if producer is not None:
        made = (
            f"  by {producer.run_id}/{producer.task}"
            if producer.task
            else f"  by {producer.run_id}"
        )
    return (
        f"{asset.kind.value} {asset.name}  {scope_text(asset)}{made}  {size(asset.size)}  "
        f"id {asset.id}"
    )


def asset_json(asset: Asset) -> dict[str, Any]:
    """An asset as lineage ``--json`` shows it."""
    producer = asset.producer
    return {
        "id": asset.id,
        "kind": asset.kind.value,
        "name": asset.name,
        "scope": scope_text(asset),
        "producer": producer.model_dump(mode="json") if producer is not None else None,
        "size": asset.size,
        "content_hash": asset.content_hash,
        "created_at": asset.created_at.isoformat(),
    }


class Graph:
    """The lineage of one asset in one direction, as parent → children links."""

    def __init__(self, catalog: Catalog, root: Asset, direction: str) -> None:
        self.root = root
        self.direction = direction
        related = catalog.lineage(root, direction=direction)
        self.assets: dict[str, Asset] = {root.id: root, **{a.id: a for a in related}}
        self._missing: set[str] = set()

    def children(self, asset_id: str) -> list[str]:
        """The next assets from ``asset_id``: its inputs (up) or its users (down)."""
        if self.direction == "up":
            asset = self.assets.get(asset_id)
            producer = asset.producer if asset is not None else None
            inputs = list(producer.inputs) if producer is not None else []
            self._missing.update(i for i in inputs if i not in self.assets)
            return inputs
        return [
            other.id
            for other in self.assets.values()
            if other.producer is not None and asset_id in other.producer.inputs
        ]

    def tree(self, asset_id: str, seen: set[str]) -> dict[str, Any]:
        """``asset_id`` and its subtree as JSON (``"repeat": true`` where already shown)."""
        asset = self.assets.get(asset_id)
        node: dict[str, Any] = (
            asset_json(asset) if asset is not None else {"id": asset_id, "missing": True}
        )
        if asset_id in seen:
            node["repeat"] = True
            node["children"] = []
            return node
        seen.add(asset_id)
        node["children"] = [self.tree(child, seen) for child in self.children(asset_id)]
        return node


def _print_tree(nodes: Sequence[dict[str, Any]], pad: str) -> None:
    for i, node in enumerate(nodes):
        last = i == len(nodes) - 1
        branch = "└── " if last else "├── "
        echo(f"{pad}{branch}{_node_text(node)}")
        _print_tree(node["children"], pad + ("    " if last else "│   "))


def _node_text(node: dict[str, Any]) -> str:
    if node.get("missing"):
        return f"{node['id']}  (not in the catalog)"
    producer = node.get("producer") or {}
    made = ""
    if producer:
        task = producer.get("task")
        made = f"  by {producer['run_id']}/{task}" if task else f"  by {producer['run_id']}"
    text = f"{node['kind']} {node['name']}  {node['scope']}{made}  {size(node['size'])}"
    text += f"  id {node['id']}"
    return text + ("  (shown above)" if node.get("repeat") else "")


def lineage_json(catalog: Catalog, asset: Asset, directions: Iterable[str]) -> dict[str, Any]:
    """The lineage of ``asset`` as JSON: ``{"asset": ..., "up": [...], "down": [...]}``."""
    result: dict[str, Any] = {"asset": asset_json(asset)}
    for direction in directions:
        graph = Graph(catalog, asset, direction)
        result[direction] = graph.tree(asset.id, set())["children"]
    return result


@click.command("lineage")
@click.argument("ref", metavar="ASSET")
@click.option(
    "--direction",
    type=click.Choice(DIRECTIONS),
    default="both",
    show_default=True,
    help="up: what ASSET was made from; down: what was made from it.",
)
@click.option("--run", "run_id", metavar="ID", help="Look ASSET up by name in this run only.")
@workspace_option
@json_option
def assets_lineage(
    ref: str, direction: str, run_id: str | None, workspace: str | None, as_json: bool
) -> None:
    """Show what ASSET was made from and what was made from it, as trees.

    ASSET is an asset id, or a name that is unique in the workspace (or in --run). Lineage is
    recorded when a task reads an asset through its run context (find_asset, get_data_dir) and
    then saves one.
    """
    from molexp.cli._discover import open_workspace

    ws = open_workspace(workspace)
    asset = find_asset(ws.catalog, ref, run_id)
    directions = ("up", "down") if direction == "both" else (direction,)
    result = lineage_json(ws.catalog, asset, directions)
    if as_json:
        print_json(result)
        return
    echo(describe(asset))
    titles = {"up": "made from (up)", "down": "used by (down)"}
    for name in directions:
        echo()
        echo(f"{titles[name]}:")
        if not result[name]:
            echo("  (nothing recorded)")
        _print_tree(result[name], "  ")
