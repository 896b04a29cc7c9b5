"""The storage seam of the workspace layer and its backend registry.

Every byte the workspace layer keeps goes through a :class:`Storage`. The local filesystem is built
in; other backends register a URL scheme in the ``molexp.storage`` entry-point group.
"""

from molexp.workspace.storage._base import Storage, check_key, join
from molexp.workspace.storage._local import LocalStorage
from molexp.workspace.storage._registry import (
    ENTRY_POINT_GROUP,
    STORAGE_OPTIONS_ENV,
    BackendInfo,
    installed_backends,
    open_storage,
    set_default_storage_options,
    split_scheme,
    storage_options_for,
)

__all__ = [
    "ENTRY_POINT_GROUP",
    "STORAGE_OPTIONS_ENV",
    "BackendInfo",
    "LocalStorage",
    "Storage",
    "check_key",
    "installed_backends",
    "join",
    "open_storage",
    "set_default_storage_options",
    "split_scheme",
    "storage_options_for",
]
