"""The ASGI application: FastAPI with the JSON API, the web pages, static files and the guard."""

from __future__ import annotations

import os
import re
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from molexp.server import _api, _web
from molexp.server._errors import AccessDenied, BadRequest, ServeError
from molexp.server._query import QueryError
from molexp.server._render import STATIC, render
from molexp.server._security import MIN_TOKEN_LENGTH, GuardMiddleware
from molexp.server._state import ServerState
from molexp.workspace import (
    CorruptRecordError,
    InvalidNameError,
    NotFoundError,
    RunStateError,
    StorageError,
    Workspace,
)

_TOKEN_RE = re.compile(r"[A-Za-z0-9._~-]+\Z")
_STATUS: list[tuple[type[Exception], int, str]] = [
    (NotFoundError, 404, "Not found"),
    (InvalidNameError, 400, "Not a valid id"),
    (BadRequest, 400, "Bad request"),
    (QueryError, 400, "Bad request"),
    (AccessDenied, 403, "Refused"),
    (RunStateError, 409, "Not possible now"),
    (CorruptRecordError, 500, "Unreadable record"),
    (StorageError, 503, "Storage unavailable"),
    (FileNotFoundError, 404, "Missing file"),
]


def check_token(token: str | None) -> str | None:
    """``token`` if it is usable: at least 16 URL-safe characters; :class:`ServeError` otherwise."""
    if token is None:
        return None
    if len(token) < MIN_TOKEN_LENGTH or not _TOKEN_RE.match(token):
        raise ServeError(
            f"the token must be at least {MIN_TOKEN_LENGTH} characters of A-Z, a-z, 0-9, '.', '_', "
            "'~' or '-'; make one with: python -c 'import secrets; print(secrets.token_urlsafe())'"
        )
    return token


def _error_response(request: Request, status: int, title: str, message: str) -> Response:
    if request.url.path.startswith("/api/") or request.url.path == "/api":
        return JSONResponse({"detail": message}, status_code=status)
    state: ServerState = request.app.state.molexp
    context = {
        "workspace": state.workspace,
        "crumbs": [],
        "status": status,
        "title": title,
        "message": message,
    }
    return HTMLResponse(render("error.html", context), status_code=status)


def _install_handlers(app: FastAPI) -> None:
    for exc_type, status, title in _STATUS:

        def handler(
            request: Request, exc: Exception, status: int = status, title: str = title
        ) -> Response:
            message = str(exc)
            if isinstance(exc, FileNotFoundError):
                message = "a file the request needs is missing from the workspace"
            return _error_response(request, status, title, message)

        app.add_exception_handler(exc_type, handler)

    def validation(request: Request, exc: Exception) -> Response:
        errors = exc.errors() if isinstance(exc, RequestValidationError) else []
        parts = [
            f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', '')}" for e in errors
        ]
        return _error_response(request, 422, "Bad request", "; ".join(parts) or str(exc))

    app.add_exception_handler(RequestValidationError, validation)

    def http_error(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, StarletteHTTPException) else 500
        detail = exc.detail if isinstance(exc, StarletteHTTPException) else str(exc)
        response = _error_response(request, status, str(detail), str(detail))
        if isinstance(exc, StarletteHTTPException) and exc.headers:
            response.headers.update(exc.headers)
        return response

    app.add_exception_handler(StarletteHTTPException, http_error)


def create_app(
    workspace: Workspace | str | os.PathLike[str],
    token: str | None = None,
    *,
    warm: bool = True,
    storage_options: dict[str, Any] | None = None,
) -> FastAPI:
    """The ASGI app serving ``workspace`` (a :class:`~molexp.Workspace`, a path or a URL).

    With ``token`` every request must carry it (see :mod:`molexp.server._security`); without, the
    app answers only requests addressed to a loopback host name. ``warm`` builds the run index of
    every experiment in a background thread at start-up, so the first page is fast.
    """
    ws = (
        workspace
        if isinstance(workspace, Workspace)
        else Workspace.load(workspace, storage_options=storage_options)
    )
    state = ServerState(ws, token=check_token(token))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if warm:
            threading.Thread(target=_warm, args=(state,), name="molexp-warm", daemon=True).start()
        yield

    from molexp.server import __version__

    app = FastAPI(
        title=f"molexp server: {ws.name}",
        version=__version__,
        description="A read-only JSON API over a molexp workspace (and one confirmed action: "
        "cancelling a run).",
        openapi_url="/api/openapi.json",
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.molexp = state
    app.include_router(_api.router)
    app.include_router(_web.router)
    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")
    _install_handlers(app)
    app.add_middleware(GuardMiddleware, token=state.token)
    return app


def _warm(state: ServerState) -> None:
    try:
        state.warm()
    except Exception:  # the pages report whatever is wrong when asked; warming is best effort
        return
