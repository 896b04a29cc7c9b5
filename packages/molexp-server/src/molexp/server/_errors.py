"""Errors of the server; each says what is wrong and what would be accepted."""

from __future__ import annotations

from molexp.workspace import MolexpError


class ServeError(MolexpError, ValueError):
    """The server cannot start as asked (a public address without a token, a short token, ...)."""


class AccessDenied(MolexpError):
    """A request for bytes the server must not serve (a link out of the workspace)."""


class BadRequest(MolexpError, ValueError):
    """A request whose parameters cannot be used; the message names the parameter."""
