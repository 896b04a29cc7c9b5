"""The workspace catalog: one index over every asset of a workspace, derived from their records."""

from molexp.workspace.catalog._catalog import AssetView, Catalog

__all__ = ["AssetView", "Catalog"]
