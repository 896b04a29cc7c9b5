"""``python -m molexp.server WORKSPACE [--host HOST] [--port PORT] [--token TOKEN]``.

The same as ``molexp serve`` for an environment without molexp-cli. The token may also come from
the ``MOLEXP_SERVE_TOKEN`` environment variable (it then stays out of the process list).
"""

from __future__ import annotations

import argparse
import os
import sys

from molexp.server._serve import DEFAULT_HOST, DEFAULT_PORT, serve
from molexp.workspace import MolexpError


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and serve until interrupted; returns the exit code."""
    parser = argparse.ArgumentParser(
        prog="python -m molexp.server", description="Serve a molexp workspace on the web."
    )
    parser.add_argument("workspace", nargs="?", default=".", help="workspace path or URL")
    parser.add_argument("--host", default=DEFAULT_HOST, help="address to bind (127.0.0.1)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="port (0: any free one)")
    parser.add_argument(
        "--token",
        default=os.environ.get("MOLEXP_SERVE_TOKEN") or None,
        help="token every request must carry (required off loopback; env MOLEXP_SERVE_TOKEN)",
    )
    parser.add_argument("--no-warm", action="store_true", help="do not pre-build run indexes")
    args = parser.parse_args(argv)
    try:
        serve(
            args.workspace, host=args.host, port=args.port, token=args.token, warm=not args.no_warm
        )
    except MolexpError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
