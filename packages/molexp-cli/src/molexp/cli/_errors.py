"""The errors the CLI reports to its user: one line on stderr, a chosen exit code, no traceback.

A :class:`CliError` is a user error (a bad argument, a missing workspace, a script that does not
register one): the command prints ``error: <message>`` and exits with ``exit_code``. Errors the
workspace and workflow layers raise on purpose (:class:`molexp.workspace.MolexpError`) are shown
the same way. Anything else is a bug in molexp and keeps its traceback.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILURE = 1
"""A run did not succeed, or the request could not be carried out (a missing run, a bad file)."""
EXIT_USAGE = 2
"""The command line itself is wrong: an unknown option or profile, a malformed ``--override``."""
EXIT_INTERRUPTED = 130


class CliError(Exception):
    """A user error, reported as ``error: <message>`` with exit code ``exit_code``."""

    exit_code: int = EXIT_FAILURE

    def __init__(self, message: str, *, exit_code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if exit_code is not None:
            self.exit_code = exit_code


class UsageError(CliError):
    """The command line is wrong (exit code 2)."""

    exit_code = EXIT_USAGE


class ScriptImportError(CliError):
    """The user's script raised while being imported; ``details`` is its own traceback."""

    def __init__(self, message: str, details: str) -> None:
        super().__init__(message)
        self.details = details
