"""molexp-storage-s3: the ``s3://`` storage backend of molexp workspaces.

With this distribution installed, ``molexp.Workspace("s3://bucket/lab")`` keeps a whole workspace
(metadata and payloads) in an S3 bucket, on AWS or any S3-compatible server. The workspace layer
finds :class:`S3Storage` through the ``s3`` entry point of the ``molexp.storage`` group and
imports this package (and s3fs, botocore) only when an ``s3://`` URL is opened.

Options (``storage_options={...}`` in code, ``MOLEXP_STORAGE_OPTIONS`` for the CLI) are listed
on :class:`S3Options`; docs/storage.md explains them and how this plugin is built.
"""

from importlib.metadata import PackageNotFoundError, version

from molexp_storage_s3._client import Request, RequestStats
from molexp_storage_s3._options import S3Options
from molexp_storage_s3._storage import S3Storage

try:
    __version__ = version("molexp-storage-s3")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without metadata
    __version__ = "0+unknown"

__all__ = ["Request", "RequestStats", "S3Options", "S3Storage", "__version__"]
