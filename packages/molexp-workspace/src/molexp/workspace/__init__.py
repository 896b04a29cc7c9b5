"""The persistence layer of molexp: workspace → project → experiment → run, on any storage.

Everything here is also importable from the top-level ``molexp`` package.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from molexp.workspace._accessors import ArtifactStore, LogHandle
    from molexp.workspace._assets import (
        ArtifactAsset,
        Asset,
        AssetKind,
        AssetRecord,
        AssetScope,
        CheckpointAsset,
        DataAsset,
        ErrorTraceAsset,
        ExecutionStateAsset,
        LogAsset,
        Producer,
        ScopeLevel,
    )
    from molexp.workspace._context import ExecutionState, RunContext, active_context, config_hash
    from molexp.workspace._data_assets import DataAssetLibrary, HardlinkFallbackWarning
    from molexp.workspace._display import format_duration, format_size
    from molexp.workspace._entry import clear_entries, entry, registered_workspaces
    from molexp.workspace._errors import (
        CatalogJournalWarning,
        ConflictError,
        CorruptRecordError,
        CorruptRecordWarning,
        InvalidNameError,
        MolexpError,
        NotFoundError,
        RunCancelled,
        RunStateError,
        SchemaVersionError,
        StorageError,
    )
    from molexp.workspace._experiment import Experiment, default_seeds
    from molexp.workspace._gc import GarbageItem, GarbageReport
    from molexp.workspace._metadata import (
        ErrorInfo,
        ExecutionRecord,
        ExperimentMetadata,
        OwnerInfo,
        ProjectMetadata,
        RunMetadata,
        RunStatus,
        WorkspaceMetadata,
    )
    from molexp.workspace._names import check_filename, check_id, slugify
    from molexp.workspace._ownership import Liveness
    from molexp.workspace._params import GridSpace, ParamSpace, UniformSpace
    from molexp.workspace._project import Project
    from molexp.workspace._provenance import (
        GitState,
        Provenance,
        ProvenanceFile,
        latest_provenance,
        load_environment,
        read_provenance_file,
    )
    from molexp.workspace._records import (
        SCHEMA_VERSION,
        canonical_json,
        flatten_keys,
        parse_record,
    )
    from molexp.workspace._redact import redact_argv, strip_userinfo
    from molexp.workspace._run import Run
    from molexp.workspace._workspace import Workspace
    from molexp.workspace.catalog import AssetView, Catalog

# Names are imported on first use (PEP 562), so `import molexp` stays cheap for code (and CLI
# commands) that never touch the models.
_EXPORTS: dict[str, str] = {
    "SCHEMA_VERSION": "molexp.workspace._records",
    "ArtifactAsset": "molexp.workspace._assets",
    "ArtifactStore": "molexp.workspace._accessors",
    "Asset": "molexp.workspace._assets",
    "AssetKind": "molexp.workspace._assets",
    "AssetRecord": "molexp.workspace._assets",
    "AssetScope": "molexp.workspace._assets",
    "AssetView": "molexp.workspace.catalog",
    "Catalog": "molexp.workspace.catalog",
    "CatalogJournalWarning": "molexp.workspace._errors",
    "CheckpointAsset": "molexp.workspace._assets",
    "ConflictError": "molexp.workspace._errors",
    "CorruptRecordError": "molexp.workspace._errors",
    "CorruptRecordWarning": "molexp.workspace._errors",
    "DataAsset": "molexp.workspace._assets",
    "DataAssetLibrary": "molexp.workspace._data_assets",
    "ErrorInfo": "molexp.workspace._metadata",
    "ErrorTraceAsset": "molexp.workspace._assets",
    "ExecutionRecord": "molexp.workspace._metadata",
    "ExecutionState": "molexp.workspace._context",
    "ExecutionStateAsset": "molexp.workspace._assets",
    "Experiment": "molexp.workspace._experiment",
    "ExperimentMetadata": "molexp.workspace._metadata",
    "GarbageItem": "molexp.workspace._gc",
    "GarbageReport": "molexp.workspace._gc",
    "GitState": "molexp.workspace._provenance",
    "GridSpace": "molexp.workspace._params",
    "HardlinkFallbackWarning": "molexp.workspace._data_assets",
    "InvalidNameError": "molexp.workspace._errors",
    "Liveness": "molexp.workspace._ownership",
    "LogAsset": "molexp.workspace._assets",
    "LogHandle": "molexp.workspace._accessors",
    "MolexpError": "molexp.workspace._errors",
    "NotFoundError": "molexp.workspace._errors",
    "OwnerInfo": "molexp.workspace._metadata",
    "ParamSpace": "molexp.workspace._params",
    "Producer": "molexp.workspace._assets",
    "Project": "molexp.workspace._project",
    "ProjectMetadata": "molexp.workspace._metadata",
    "Provenance": "molexp.workspace._provenance",
    "ProvenanceFile": "molexp.workspace._provenance",
    "Run": "molexp.workspace._run",
    "RunCancelled": "molexp.workspace._errors",
    "RunContext": "molexp.workspace._context",
    "RunMetadata": "molexp.workspace._metadata",
    "RunStateError": "molexp.workspace._errors",
    "RunStatus": "molexp.workspace._metadata",
    "SchemaVersionError": "molexp.workspace._errors",
    "ScopeLevel": "molexp.workspace._assets",
    "StorageError": "molexp.workspace._errors",
    "UniformSpace": "molexp.workspace._params",
    "Workspace": "molexp.workspace._workspace",
    "WorkspaceMetadata": "molexp.workspace._metadata",
    "active_context": "molexp.workspace._context",
    "canonical_json": "molexp.workspace._records",
    "check_filename": "molexp.workspace._names",
    "check_id": "molexp.workspace._names",
    "clear_entries": "molexp.workspace._entry",
    "config_hash": "molexp.workspace._context",
    "default_seeds": "molexp.workspace._experiment",
    "entry": "molexp.workspace._entry",
    "flatten_keys": "molexp.workspace._records",
    "format_duration": "molexp.workspace._display",
    "format_size": "molexp.workspace._display",
    "latest_provenance": "molexp.workspace._provenance",
    "load_environment": "molexp.workspace._provenance",
    "parse_record": "molexp.workspace._records",
    "read_provenance_file": "molexp.workspace._provenance",
    "redact_argv": "molexp.workspace._redact",
    "registered_workspaces": "molexp.workspace._entry",
    "slugify": "molexp.workspace._names",
    "strip_userinfo": "molexp.workspace._redact",
}

__all__ = [
    "SCHEMA_VERSION",
    "ArtifactAsset",
    "ArtifactStore",
    "Asset",
    "AssetKind",
    "AssetRecord",
    "AssetScope",
    "AssetView",
    "Catalog",
    "CatalogJournalWarning",
    "CheckpointAsset",
    "ConflictError",
    "CorruptRecordError",
    "CorruptRecordWarning",
    "DataAsset",
    "DataAssetLibrary",
    "ErrorInfo",
    "ErrorTraceAsset",
    "ExecutionRecord",
    "ExecutionState",
    "ExecutionStateAsset",
    "Experiment",
    "ExperimentMetadata",
    "GarbageItem",
    "GarbageReport",
    "GitState",
    "GridSpace",
    "HardlinkFallbackWarning",
    "InvalidNameError",
    "Liveness",
    "LogAsset",
    "LogHandle",
    "MolexpError",
    "NotFoundError",
    "OwnerInfo",
    "ParamSpace",
    "Producer",
    "Project",
    "ProjectMetadata",
    "Provenance",
    "ProvenanceFile",
    "Run",
    "RunCancelled",
    "RunContext",
    "RunMetadata",
    "RunStateError",
    "RunStatus",
    "SchemaVersionError",
    "ScopeLevel",
    "StorageError",
    "UniformSpace",
    "Workspace",
    "WorkspaceMetadata",
    "active_context",
    "canonical_json",
    "check_filename",
    "check_id",
    "clear_entries",
    "config_hash",
    "default_seeds",
    "entry",
    "flatten_keys",
    "format_duration",
    "format_size",
    "latest_provenance",
    "load_environment",
    "parse_record",
    "read_provenance_file",
    "redact_argv",
    "registered_workspaces",
    "slugify",
    "strip_userinfo",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'molexp.workspace' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
