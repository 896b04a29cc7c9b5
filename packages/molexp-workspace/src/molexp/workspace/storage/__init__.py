"""The storage seam of the workspace layer and its backend registry.

Every byte the workspace layer keeps goes through a :class:`Storage`. The local filesystem is built
in; other backends register a URL scheme in the ``molexp.storage`` entry-point group.
"""

from molexp.workspace.storage._base import Storage, check_key, join
from molexp.workspace.storage._local import LocalStorage
from molexp.workspace.storage._registry import (
    ENTRY_POINT_GROUP,
    BackendInfo,
    installed_backends,
    open_storage,
    split_scheme,
)

__all__ = [
    "ENTRY_POINT_GROUP",
    "BackendInfo",
    "LocalStorage",
    "Storage",
    "check_key",
    "installed_backends",
    "join",
    "open_storage",
    "split_scheme",
]
