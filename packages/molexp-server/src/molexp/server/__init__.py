"""molexp.server: a web view and JSON API over a molexp workspace.

``molexp serve [WORKSPACE]`` (from molexp-cli) starts it; so does ``python -m molexp.server``::

    from molexp.server import create_app, serve

    serve("./lab")  # http://127.0.0.1:8765/ until Ctrl-C
    app = create_app("./lab")  # the ASGI app, for any ASGI server

It is read-only (except an explicitly confirmed cancel of a run), binds 127.0.0.1 unless given a
token, and works for local and remote (``s3://``) workspaces alike, through the storage seam.
It depends on molexp-workspace only: it never imports the workflow runtime or the CLI.
"""

from __future__ import annotations

from molexp.server._app import create_app
from molexp.server._errors import AccessDenied, BadRequest, ServeError
from molexp.server._serve import (
    DEFAULT_HOST,
    DEFAULT_PORT,
    check_bind,
    generate_token,
    serve,
    server_url,
)

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_HOST",
    "DEFAULT_PORT",
    "AccessDenied",
    "BadRequest",
    "ServeError",
    "__version__",
    "check_bind",
    "create_app",
    "generate_token",
    "serve",
    "server_url",
]
