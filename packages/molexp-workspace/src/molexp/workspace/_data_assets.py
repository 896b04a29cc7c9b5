"""Data-asset libraries: importing external data into a scope's ``data_assets/``."""

from __future__ import annotations

import errno
import os
import shutil
import uuid
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from molexp.workspace._assets import AssetKind, AssetRecord, AssetScope, DataAsset
from molexp.workspace._errors import InvalidNameError, NotFoundError, StorageError
from molexp.workspace._names import check_filename, slugify
from molexp.workspace._payload import copy_in, hash_local, local_files
from molexp.workspace._records import check_params, check_tags, write_record

if TYPE_CHECKING:
    from collections.abc import Sequence

    from molexp.workspace._workspace import Workspace

ImportAction = Literal["copy", "move", "symlink", "hardlink"]
ACTIONS = ("copy", "move", "symlink", "hardlink")


class HardlinkFallbackWarning(UserWarning):
    """A hardlink import crossed devices and was copied instead."""


def _asset_dir_id(name: str) -> str:
    suffix = uuid.uuid4().hex[:8]
    try:
        return f"{slugify(name)[:48]}-{suffix}"
    except InvalidNameError:
        return suffix


def _hardlink_tree(src: Path, dest: Path) -> None:
    if src.is_dir():
        for path, rel in local_files(src):
            target = dest / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            os.link(path, target)
    else:
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.link(src, dest)


#: Why a hard link can fail where a copy would work: another device, a filesystem without hard
#: links, too many links, or a kernel that protects hard links to files of other users.
_NO_LINK = frozenset({errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP, errno.EOPNOTSUPP})


def _raise(error: OSError) -> None:
    raise error


def _link_for_move(src: Path, dest: Path) -> None:
    """Hard-link ``src`` at ``dest``: a file, or a directory tree rebuilt with every entry (files,
    symlinks as themselves, empty directories) linked, so the result is what a rename gives."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    if src.is_symlink() or not src.is_dir():
        os.link(src, dest, follow_symlinks=False)
        return
    for dirpath, dirnames, filenames in os.walk(src, onerror=_raise):
        base = Path(dirpath)
        target = dest / base.relative_to(src)
        target.mkdir(exist_ok=True)
        for name in [*filenames, *(d for d in dirnames if (base / d).is_symlink())]:
            os.link(base / name, target / name, follow_symlinks=False)


def _remove_source(source: Path) -> None:
    if source.is_dir() and not source.is_symlink():
        shutil.rmtree(source)
    else:
        source.unlink()


class DataAssetLibrary:
    """The imported data of one scope: ``ws.data_assets``, ``project.data_assets``, ...."""

    def __init__(self, workspace: Workspace, scope: AssetScope, key: str) -> None:
        self._workspace = workspace
        self.scope = scope
        self.key = f"{key}/data_assets" if key else "data_assets"

    def import_asset(
        self,
        name: str,
        src: str | os.PathLike[str],
        action: ImportAction = "copy",
        meta: dict[str, Any] | None = None,
        *,
        tags: Sequence[str] | None = None,
    ) -> DataAsset:
        """Import the file or directory ``src`` as data asset ``name``.

        The payload lands in ``<scope>/data_assets/<asset_id>/payload/<file name of src>``.
        ``move`` removes the source only once the asset is recorded (locally the payload is
        hard-linked first, not renamed), so a failure, or a process killed at any instant,
        leaves the data at its source or recorded as the asset, never only in an unrecorded
        payload directory;
        ``symlink`` and ``hardlink`` need a local workspace (a cross-device hardlink is copied,
        with a :class:`HardlinkFallbackWarning`).
        """
        from molexp.workspace._context import active_context

        check_filename(name, what="data asset name")
        tags = check_tags(tags, what=f"tags of data asset {name!r}")
        meta = check_params(meta, what=f"meta of data asset {name!r}")
        if action not in ACTIONS:
            raise ValueError(f"action must be one of {', '.join(ACTIONS)}; got {action!r}")
        source = Path(src).expanduser()
        if not source.exists():
            raise NotFoundError(f"cannot import data asset {name!r}: {source} does not exist")
        source = source.absolute()
        storage = self._workspace.storage
        local_root = storage.local_path("")
        if action in ("symlink", "hardlink") and local_root is None:
            raise StorageError(
                f"action {action!r} needs a local workspace; {storage.url} is "
                f"{storage.scheme}://: use action='copy' or 'move'"
            )
        self._workspace.materialize()
        asset_id = _asset_dir_id(name)
        asset_key = f"{self.key}/{asset_id}"
        payload = f"{asset_key}/payload/{source.name}"
        dest = storage.local_path(payload)
        details = dict(meta or {})
        details.setdefault("source", str(source))
        details.setdefault("action", action)
        try:
            if action == "symlink" and dest is not None:
                dest.parent.mkdir(parents=True, exist_ok=True)
                os.symlink(source, dest, target_is_directory=source.is_dir())
                size, content_hash = hash_local(source)
            elif action == "hardlink" and dest is not None:
                try:
                    _hardlink_tree(source, dest)
                    size, content_hash = hash_local(dest)
                except OSError as exc:
                    if exc.errno != errno.EXDEV:
                        raise
                    storage.remove(f"{asset_key}/payload", recursive=True)
                    warnings.warn(
                        f"{source} is on another device than the workspace: data asset {name!r} "
                        "was copied instead of hard-linked",
                        HardlinkFallbackWarning,
                        stacklevel=2,
                    )
                    details["hardlink_fallback"] = "copy"
                    size, content_hash = copy_in(storage, source, payload)
            elif action == "move" and dest is not None:
                try:
                    _link_for_move(source, dest)
                    size, content_hash = hash_local(dest)
                except OSError as exc:
                    if exc.errno not in _NO_LINK:
                        raise
                    storage.remove(f"{asset_key}/payload", recursive=True)
                    size, content_hash = copy_in(storage, source, payload)
            else:
                size, content_hash = copy_in(storage, source, payload)
            record = AssetRecord(
                id=asset_id,
                kind=AssetKind.DATA,
                name=name,
                scope=self.scope,
                payload=payload,
                record=f"{asset_key}/asset.json",
                producer=self._producer(active_context()),
                tags=list(tags or []),
                meta=details,
                size=size,
                content_hash=content_hash,
            )
            self._workspace.catalog.register(
                record, lambda: write_record(storage, record.record, record, exclusive=True)
            )
        except BaseException:
            storage.remove(asset_key, recursive=True)
            raise
        if action == "move":
            _remove_source(source)
        return DataAsset(self._workspace, record)

    def _producer(self, ctx: Any) -> Any:
        if ctx is None or ctx.workspace.storage.url != self._workspace.storage.url:
            return None
        return ctx.producer()

    def list(self) -> list[DataAsset]:
        """The data assets of this scope (not of scopes below), oldest first."""
        scope = self.scope
        found = self._workspace.catalog.query_assets(
            kind=AssetKind.DATA,
            scope=scope.level.value,
            project=scope.project_id,
            experiment=scope.experiment_id,
        )
        return [a for a in found if isinstance(a, DataAsset)]

    def get(self, name: str) -> DataAsset:
        """The newest data asset called ``name`` in this scope; :class:`NotFoundError` if none."""
        for asset in reversed(self.list()):
            if asset.name == name:
                return asset
        raise NotFoundError(f"no data asset named {name!r} in {self.key}")

    def __iter__(self) -> Any:
        return iter(self.list())

    def __len__(self) -> int:
        return len(self.list())
