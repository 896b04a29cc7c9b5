"""``molexp serve [WORKSPACE]``: the web view and JSON API of a workspace.

The server is the separate distribution molexp-server (``pip install "molexp-cli[server]"``),
imported only when this command runs, so the rest of the CLI never pays for it.
"""

from __future__ import annotations

import importlib.util
import os

import click

from molexp.cli._discover import ENV_WORKSPACE, find_workspace_root
from molexp.cli._errors import CliError

ENV_TOKEN = "MOLEXP_SERVE_TOKEN"


@click.command(name="serve")
@click.argument("workspace", required=False, metavar="[WORKSPACE]")
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on. Anything but a loopback address needs --token.",
)
@click.option(
    "--port", type=int, default=8765, show_default=True, help="Port to listen on (0: any free one)."
)
@click.option(
    "--token",
    envvar=ENV_TOKEN,
    metavar="TOKEN",
    help=f"A secret every request must carry (at least 16 characters; default: ${ENV_TOKEN}). "
    "The printed URL carries it once; the browser then keeps it in a cookie.",
)
def serve(workspace: str | None, host: str, port: int, token: str | None) -> None:
    """Browse WORKSPACE in a web browser: projects, experiments, runs, logs and assets.

    WORKSPACE is a path or URL (default: $MOLEXP_WORKSPACE, else the current directory or a
    parent of it). Read-only, except an explicitly confirmed cancel of a run. Stop with Ctrl-C.
    """
    if importlib.util.find_spec("molexp.server") is None:
        raise CliError(
            "`molexp serve` needs molexp-server, which is not installed: "
            "pip install 'molexp-cli[server]'"
        )
    from molexp.server import serve as run_server

    root = find_workspace_root(workspace or os.environ.get(ENV_WORKSPACE))
    run_server(root, host=host, port=port, token=token)
