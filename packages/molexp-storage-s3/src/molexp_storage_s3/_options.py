"""The storage options of ``s3://`` workspaces, validated once.

Options say *how to reach* a bucket (endpoint, credentials, timeouts); they are never written into
the store, so a workspace moved to another endpoint or opened with other credentials is the same
workspace. Anything not given here comes from botocore's usual sources: the ``AWS_*`` environment
variables and the shared config and credentials files.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from molexp.workspace import StorageError

MIB = 1 << 20
#: S3's smallest allowed multipart part (except the last one).
MIN_PART = 5 * MIB
_BUCKET_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{1,254}$")


def parse_s3_url(url: str) -> tuple[str, str]:
    """Split ``s3://bucket/some/prefix`` into ``("bucket", "some/prefix")`` (prefix may be "")."""
    if not url.lower().startswith("s3://"):
        raise StorageError(f"not an S3 URL: {url!r}; expected s3://bucket or s3://bucket/prefix")
    rest = url[5:].rstrip("/")
    if "?" in rest or "#" in rest:
        raise StorageError(f"S3 workspace URL {url!r} must not carry a query or fragment")
    bucket, _, prefix = rest.partition("/")
    if not _BUCKET_RE.match(bucket):
        raise StorageError(
            f"S3 workspace URL {url!r} names no valid bucket; expected s3://bucket or "
            "s3://bucket/prefix"
        )
    if prefix and any(part in ("", ".", "..") for part in prefix.split("/")):
        raise StorageError(
            f"S3 workspace URL {url!r} has an empty, '.' or '..' path segment in its prefix"
        )
    return bucket, prefix


def _check_type(name: str, value: Any, kinds: tuple[type, ...], what: str) -> Any:
    # bool is an int subclass: never accept True for a number, nor 1 for a flag.
    if isinstance(value, bool) and bool not in kinds:
        raise StorageError(f"storage option {name!r} must be {what}, got {value!r}")
    if not isinstance(value, kinds):
        raise StorageError(f"storage option {name!r} must be {what}, got {type(value).__name__}")
    return value


@dataclass(frozen=True)
class S3Options:
    """Every option an ``s3://`` workspace accepts (``storage_options={...}``).

    Connection: ``endpoint_url`` (any S3-compatible server), ``region``, ``profile`` (a named
    profile of the AWS config files), ``anon`` (unsigned requests, for public buckets), ``key`` /
    ``secret`` / ``token`` (explicit credentials), ``addressing_style`` (``"path"`` for servers
    without virtual-host buckets), ``verify`` (TLS verification: a bool or a CA bundle path).

    Robustness: ``connect_timeout`` and ``read_timeout`` (seconds, every request),
    ``max_attempts`` (per request, with exponential backoff on throttling, 5xx, timeouts and
    connection errors), ``check_bucket`` (verify the endpoint, credentials and bucket when the
    store is opened), ``conditional_writes`` (exclusive creation through ``If-None-Match: *``).

    Transfers: ``multipart_threshold`` (a write stream below it is one PUT, above it a multipart
    upload of ``part_size`` parts), ``log_flush_bytes`` / ``log_flush_seconds`` (when buffered
    log lines are uploaded).
    """

    endpoint_url: str | None = None
    region: str | None = None
    profile: str | None = None
    anon: bool = False
    key: str | None = field(default=None, repr=False)
    secret: str | None = field(default=None, repr=False)
    token: str | None = field(default=None, repr=False)
    addressing_style: str | None = None
    verify: bool | str | None = None
    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    max_attempts: int = 3
    check_bucket: bool = True
    conditional_writes: bool = True
    multipart_threshold: int = 64 * MIB
    part_size: int = 16 * MIB
    log_flush_bytes: int = 1 * MIB
    log_flush_seconds: float = 5.0

    @classmethod
    def accepted(cls) -> list[str]:
        """The option names, for error messages and docs."""
        return [f.name for f in fields(cls)]

    @classmethod
    def parse(cls, options: Mapping[str, Any]) -> S3Options:
        """Validate ``options``: unknown names and wrong types are a clear :class:`StorageError`."""
        unknown = sorted(set(options) - set(cls.accepted()))
        if unknown:
            raise StorageError(
                f"unknown storage option(s) {', '.join(unknown)} for s3:// workspaces; accepted: "
                f"{', '.join(cls.accepted())}"
            )
        values = dict(options)
        for name in ("endpoint_url", "region", "profile", "key", "secret", "token"):
            if values.get(name) is not None:
                _check_type(name, values[name], (str,), "a string")
        for name in ("anon", "check_bucket", "conditional_writes"):
            if name in values:
                _check_type(name, values[name], (bool,), "true or false")
        for name in ("connect_timeout", "read_timeout", "log_flush_seconds"):
            if name in values:
                number = _check_type(name, values[name], (int, float), "a number of seconds")
                if number <= 0:
                    raise StorageError(f"storage option {name!r} must be > 0, got {number!r}")
                values[name] = float(number)
        for name in ("max_attempts", "multipart_threshold", "part_size", "log_flush_bytes"):
            if name in values:
                number = _check_type(name, values[name], (int,), "an integer")
                if number < 1:
                    raise StorageError(f"storage option {name!r} must be >= 1, got {number!r}")
        if values.get("verify") is not None:
            _check_type("verify", values["verify"], (bool, str), "true, false or a CA bundle path")
        style = values.get("addressing_style")
        if style is not None and style not in ("auto", "path", "virtual"):
            raise StorageError(
                f"storage option 'addressing_style' must be 'auto', 'path' or 'virtual', got "
                f"{style!r}"
            )
        if values.get("part_size", MIN_PART) < MIN_PART:
            raise StorageError(
                f"storage option 'part_size' must be at least {MIN_PART} bytes (5 MiB, the "
                "smallest part S3 accepts)"
            )
        endpoint = values.get("endpoint_url")
        if endpoint is not None and not re.match(r"^https?://[^/\s]+", endpoint):
            raise StorageError(
                f"storage option 'endpoint_url' must be an http:// or https:// URL, got "
                f"{endpoint!r}"
            )
        return cls(**values)

    def config_kwargs(self) -> dict[str, Any]:
        """Arguments for ``botocore.config.Config``: timeouts and bounded, backed-off retries."""
        config: dict[str, Any] = {
            "connect_timeout": self.connect_timeout,
            "read_timeout": self.read_timeout,
            "retries": {"mode": "standard", "total_max_attempts": self.max_attempts},
        }
        if self.addressing_style is not None:
            config["s3"] = {"addressing_style": self.addressing_style}
        return config

    def client_kwargs(self) -> dict[str, Any]:
        """Arguments for ``session.create_client("s3", ...)`` that s3fs has no keyword for."""
        client: dict[str, Any] = {}
        if self.region is not None:
            client["region_name"] = self.region
        if self.verify is not None:
            client["verify"] = self.verify
        return client
