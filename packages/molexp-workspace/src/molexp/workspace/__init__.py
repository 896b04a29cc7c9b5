"""The persistence layer of molexp: workspace → project → experiment → run, on any storage.

Everything here is also importable from the top-level ``molexp`` package.
"""

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
from molexp.workspace._entry import clear_entries, entry, registered_workspaces
from molexp.workspace._errors import (
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
from molexp.workspace._names import slugify
from molexp.workspace._ownership import Liveness
from molexp.workspace._params import GridSpace, ParamSpace, UniformSpace
from molexp.workspace._project import Project
from molexp.workspace._records import SCHEMA_VERSION, canonical_json
from molexp.workspace._run import Run
from molexp.workspace._workspace import Workspace
from molexp.workspace.catalog import AssetView, Catalog

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
    "clear_entries",
    "config_hash",
    "default_seeds",
    "entry",
    "registered_workspaces",
    "slugify",
]
