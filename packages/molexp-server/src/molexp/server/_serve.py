"""Starting the server: the bind rules, the socket, and uvicorn."""

from __future__ import annotations

import os
import secrets
import socket
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from molexp.server._app import check_token, create_app
from molexp.server._errors import ServeError
from molexp.server._security import is_loopback

if TYPE_CHECKING:
    from molexp.workspace import Workspace

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765


def generate_token() -> str:
    """A fresh random token (URL-safe, 43 characters)."""
    return secrets.token_urlsafe(32)


def check_bind(host: str, token: str | None) -> None:
    """Refuse to bind a non-loopback address without a token (:class:`ServeError`)."""
    check_token(token)
    if not is_loopback(host) and token is None:
        raise ServeError(
            f"binding to {host!r} makes the workspace reachable from other machines, so it needs "
            "a token that every request must carry: pass --token TOKEN (make one with: python -c "
            "'import secrets; print(secrets.token_urlsafe())'), or bind to 127.0.0.1"
        )


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY only on sockets whose proto says TCP, and
    # without it a keep-alive response waits ~40 ms on the client's delayed ACK (Nagle).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
    except OSError as exc:
        sock.close()
        raise ServeError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def server_url(host: str, port: int, token: str | None = None) -> str:
    """The URL to open in a browser (with ``?token=`` when there is one)."""
    name = host.strip("[]")
    if name in ("0.0.0.0", "::"):
        name = socket.gethostname()
    elif ":" in name:
        name = f"[{name}]"
    url = f"http://{name}:{port}/"
    return f"{url}?token={token}" if token else url


def serve(
    workspace: Workspace | str | os.PathLike[str],
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    token: str | None = None,
    *,
    log_level: str = "warning",
    warm: bool = True,
    storage_options: dict[str, Any] | None = None,
    on_ready: Callable[[str], None] | None = None,
) -> None:
    """Serve ``workspace`` until interrupted (Ctrl-C or SIGTERM; then it returns normally).

    Binds ``host:port`` (127.0.0.1:8765 by default; ``port=0`` picks a free port). Any address
    other than a loopback one needs ``token``. Once listening, ``on_ready`` is called with the URL
    to open (by default it is printed to stderr as ``molexp serve: <url>``).
    """
    import uvicorn

    check_bind(host, token)
    app = create_app(workspace, token=token, warm=warm, storage_options=storage_options)
    sock = _bind(host, port)
    url = server_url(host, sock.getsockname()[1], token)
    if on_ready is None:
        print(f"molexp serve: {url}", file=sys.stderr, flush=True)
    else:
        on_ready(url)
    config = uvicorn.Config(
        app,
        log_level=log_level,
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=3,
        server_header=False,
    )
    try:
        uvicorn.Server(config).run(sockets=[sock])
    except KeyboardInterrupt:
        pass  # Ctrl-C (uvicorn re-raises it after a graceful shutdown) is the normal way to stop
    finally:
        sock.close()
