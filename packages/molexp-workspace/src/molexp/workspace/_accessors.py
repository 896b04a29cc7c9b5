"""The run-time asset accessors of a RunContext: artifacts, logs and checkpoints."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from molexp.workspace._assets import (
    ArtifactAsset,
    AssetKind,
    AssetRecord,
    AssetScope,
    CheckpointAsset,
    LogAsset,
    ScopeLevel,
)
from molexp.workspace._errors import NotFoundError
from molexp.workspace._names import check_filename
from molexp.workspace._payload import copy_in, hash_bytes
from molexp.workspace._records import check_params, check_tags, read_record, write_record

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from molexp.workspace._context import RunContext


def new_asset_id() -> str:
    """A fresh, unique asset id."""
    return uuid.uuid4().hex[:16]


def encode(data: Any, what: str) -> tuple[bytes, str]:
    """Bytes and encoding for in-memory data: bytes as-is, str as UTF-8 text, else JSON."""
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data), "bytes"
    if isinstance(data, str):
        return data.encode(), "text"
    try:
        return json.dumps(data, indent=2, ensure_ascii=False).encode() + b"\n", "json"
    except (TypeError, ValueError, RecursionError) as exc:
        raise TypeError(
            f"{what}: cannot save a {type(data).__name__} ({exc}); pass JSON values (dict, list, "
            "numbers, str), bytes, or a pathlib.Path to a file or directory"
        ) from None


def run_scope(ctx: RunContext) -> AssetScope:
    """The run scope of the context's run."""
    run = ctx.run
    return AssetScope(
        level=ScopeLevel.RUN,
        project_id=run.experiment.project.id,
        experiment_id=run.experiment.id,
        run_id=run.id,
    )


def register_run_asset(
    ctx: RunContext,
    *,
    kind: AssetKind,
    name: str,
    payload: str,
    record: str,
    size: int | None,
    content_hash: str | None,
    encoding: str | None = None,
    tags: Sequence[str] | None = None,
    meta: dict[str, Any] | None = None,
    previous: str | None = None,
) -> AssetRecord:
    """Write the record of an asset of the context's run and index it in the catalog."""
    asset = AssetRecord(
        id=new_asset_id(),
        kind=kind,
        name=name,
        scope=run_scope(ctx),
        payload=payload,
        record=record,
        producer=ctx.producer(),
        tags=list(tags or []),
        meta=dict(meta or {}),
        size=size,
        content_hash=content_hash,
        encoding=encoding,
        previous=previous,
    )
    storage = ctx.run.storage
    ctx.workspace.catalog.register(asset, lambda: write_record(storage, record, asset))
    return asset


def _prepare(ctx: RunContext, data: Any, key: str, what: str) -> Callable[[], tuple[int, str, str]]:
    """Check and encode ``data`` (a bad value is refused here, before anything is written), and
    return the function that writes it to ``key``: it returns size, content hash and encoding."""
    storage = ctx.run.storage
    if isinstance(data, os.PathLike):
        src = Path(data)
        if not src.exists():
            raise NotFoundError(f"{what}: the file {src} does not exist")

        def put_path() -> tuple[int, str, str]:
            if src.is_dir():
                storage.remove(key, recursive=True)
                size, content_hash = copy_in(storage, src, key)
                return size, content_hash, "directory"
            if storage.is_dir(key):  # replacing a directory saved under this name earlier
                storage.remove(key, recursive=True)
            size, content_hash = copy_in(storage, src, key)
            return size, content_hash, "file"

        return put_path
    payload, encoding = encode(data, what)

    def put_bytes() -> tuple[int, str, str]:
        if storage.is_dir(key):  # replacing a directory saved under this name earlier
            storage.remove(key, recursive=True)
        storage.write_bytes(key, payload)
        return len(payload), hash_bytes(payload), encoding

    return put_bytes


def _put(ctx: RunContext, data: Any, key: str, what: str) -> tuple[int, str, str]:
    return _prepare(ctx, data, key, what)()


def _restore(ctx: RunContext, record: AssetRecord) -> None:
    """Register a withdrawn asset again (its payload was not touched)."""
    storage = ctx.run.storage
    ctx.workspace.catalog.register(record, lambda: write_record(storage, record.record, record))


class ArtifactStore:
    """``ctx.artifact``: files saved under ``<run_dir>/artifacts/`` and registered as assets."""

    def __init__(self, ctx: RunContext) -> None:
        self._ctx = ctx

    def save(
        self,
        name: str,
        data: Any,
        *,
        tags: Sequence[str] | None = None,
        meta: dict[str, Any] | None = None,
    ) -> ArtifactAsset:
        """Save ``data`` as artifact ``name``: JSON values as JSON, bytes as-is, str as text, a
        ``pathlib.Path`` as a copy of that file or directory. Saving a name again replaces it."""
        ctx = self._ctx
        ctx.require_active("artifact.save")
        check_filename(name, what="artifact name")
        tags = check_tags(tags, what=f"tags of artifact {name!r}")
        meta = check_params(meta, what=f"meta of artifact {name!r}")
        key = f"{ctx.run.key}/artifacts/{name}"
        record_key = f"{ctx.run.key}/.assets/artifact/{name}.json"
        put = _prepare(ctx, data, key, f"artifact {name!r}")
        # Saving a name again: the old asset is withdrawn before its payload changes, so that a
        # record never describes another payload (a process killed meanwhile leaves the old
        # artifact, the new one, or none).
        catalog = ctx.workspace.catalog
        withdrawn = catalog.withdraw(record_key=record_key)
        try:
            size, content_hash, encoding = put()
        except BaseException:
            in_place = not (isinstance(data, os.PathLike) and Path(data).is_dir())
            for old in withdrawn:
                if old.encoding != "directory" and in_place:
                    # A file is replaced atomically: the old payload is intact, so is its asset.
                    _restore(ctx, old)
            raise
        record = register_run_asset(
            ctx,
            kind=AssetKind.ARTIFACT,
            name=name,
            payload=key,
            record=record_key,
            size=size,
            content_hash=content_hash,
            encoding=encoding,
            tags=tags,
            meta=meta,
        )
        return ArtifactAsset(ctx.workspace, record)

    def path(self, name: str) -> Path | None:
        """Where artifact ``name`` is (or would be) stored, when the workspace is local."""
        check_filename(name, what="artifact name")
        return self._ctx.run.storage.local_path(f"{self._ctx.run.key}/artifacts/{name}")

    def list(self) -> list[ArtifactAsset]:
        """The artifacts of this run."""
        found = self._ctx.workspace.catalog.query_assets(kind=AssetKind.ARTIFACT, run=self._ctx.run)
        return [a for a in found if isinstance(a, ArtifactAsset)]

    def load(self, name: str) -> Any:
        """The value of artifact ``name`` as it was saved."""
        for asset in reversed(self.list()):
            if asset.name == name:
                return asset.load()
        raise NotFoundError(f"run {self._ctx.run.id!r} has no artifact {name!r}")


class LogHandle:
    """``ctx.log(name)``: appends lines to ``<run_dir>/logs/<name>.log``.

    The :class:`LogAsset` is registered on the first line and its size updated when the run's
    attempt ends, so appending never rewrites a record.
    """

    def __init__(self, ctx: RunContext, name: str) -> None:
        self._ctx = ctx
        self.name = check_filename(name, what="log name")
        self.key = f"{ctx.run.key}/logs/{name}.log"
        self._record_key = f"{ctx.run.key}/.assets/log/{name}.json"
        self._stream: IO[bytes] | None = None
        self._record: AssetRecord | None = None

    def append(self, line: str) -> None:
        """Append one line (a newline is added)."""
        stream = self._stream
        if stream is None:
            stream = self._open()
        stream.write(f"{line}\n".encode())
        stream.flush()

    def _open(self) -> IO[bytes]:
        ctx = self._ctx
        ctx.require_active(f"log({self.name!r}).append")
        storage = ctx.run.storage
        try:
            self._record = read_record(storage, self._record_key, AssetRecord)
        except FileNotFoundError:
            self._record = register_run_asset(
                ctx,
                kind=AssetKind.LOG,
                name=self.name,
                payload=self.key,
                record=self._record_key,
                size=0,
                content_hash=None,
                encoding="text",
            )
        self._stream = storage.open(self.key, "ab")
        return self._stream

    def close(self) -> None:
        """Close the stream and record the log's final size."""
        if self._stream is None:
            return
        self._stream.close()
        self._stream = None
        record = self._record
        if record is not None:
            storage = self._ctx.run.storage
            record.size = storage.size(self.key)
            self._ctx.workspace.catalog.register(
                record, lambda: write_record(storage, self._record_key, record)
            )

    @property
    def asset(self) -> LogAsset | None:
        """The log's asset once a line has been written."""
        return LogAsset(self._ctx.workspace, self._record) if self._record is not None else None


def save_checkpoint(
    ctx: RunContext,
    name: str,
    data: Any,
    *,
    tags: Sequence[str] | None = None,
    meta: dict[str, Any] | None = None,
) -> CheckpointAsset:
    """Write the next checkpoint of ``name`` under ``<run_dir>/.ckpt/``, chained to the previous
    one of the same name in this run (across attempts)."""
    ctx.require_active("checkpoint")
    check_filename(name, what="checkpoint name")
    tags = check_tags(tags, what=f"tags of checkpoint {name!r}")
    meta = check_params(meta, what=f"meta of checkpoint {name!r}")
    storage = ctx.run.storage
    record_dir = f"{ctx.run.key}/.assets/checkpoint/{name}"
    steps = sorted(
        int(child.removesuffix(".json"))
        for child in storage.list(record_dir)
        if child.endswith(".json") and child.removesuffix(".json").isdigit()
    )
    previous = (
        read_record(storage, f"{record_dir}/{steps[-1]:06d}.json", AssetRecord).id
        if steps
        else None
    )
    step = steps[-1] + 1 if steps else 1
    suffix = Path(data).suffix if isinstance(data, os.PathLike) else ""
    key = f"{ctx.run.key}/.ckpt/{name}/{step:06d}{suffix}"
    size, content_hash, encoding = _put(ctx, data, key, f"checkpoint {name!r}")
    record = register_run_asset(
        ctx,
        kind=AssetKind.CHECKPOINT,
        name=name,
        payload=key,
        record=f"{record_dir}/{step:06d}.json",
        size=size,
        content_hash=content_hash,
        encoding=encoding,
        tags=tags,
        meta={**(meta or {}), "step": step},
        previous=previous,
    )
    return CheckpointAsset(ctx.workspace, record)
