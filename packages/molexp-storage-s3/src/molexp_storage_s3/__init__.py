"""molexp-storage-s3: an S3 storage backend for molexp workspaces (``s3://bucket/prefix``).

The backend itself and its ``molexp.storage`` entry point arrive in a later release; this
package depends only on ``molexp.workspace`` (checked by import-linter and by an isolated install).
"""

__all__: list[str] = []
