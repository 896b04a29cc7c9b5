"""Workspace-layer exceptions: each names the thing at fault and what would be accepted."""

from __future__ import annotations


class MolexpError(Exception):
    """Base class of every error molexp raises on purpose."""


class InvalidNameError(MolexpError, ValueError):
    """A name or id that cannot be used (empty slug, unsafe path segment, slug collision)."""


class NotFoundError(MolexpError, LookupError):
    """A workspace, project, experiment or run that does not exist."""


class ConflictError(MolexpError):
    """A request that contradicts what is recorded (e.g. other params for an existing id)."""


class CorruptRecordError(MolexpError):
    """A metadata file that cannot be read: not JSON, truncated, or not of the expected shape."""

    prefix = "corrupt record"

    def __init__(self, location: str, reason: str) -> None:
        self.location = location
        self.reason = reason
        super().__init__(f"{self.prefix} {location}: {reason}")


class SchemaVersionError(CorruptRecordError):
    """A metadata file written by a newer molexp than this one can read."""

    prefix = "unsupported record"


class RunStateError(MolexpError):
    """An operation that the run's current state does not allow."""


class RunCancelled(MolexpError):
    """Raised inside a run when a cancel request for it has been received."""


class StorageError(MolexpError):
    """A storage backend that is unknown, cannot be loaded, or refuses an operation."""


class CorruptRecordWarning(UserWarning):
    """A listing skipped a record it could not read; the message names the file."""


class CatalogJournalWarning(CorruptRecordWarning):
    """An asset was saved (its record is the truth) but the catalog journal entry that tells
    other machines about it could not be written; they see it after their next rebuild."""
