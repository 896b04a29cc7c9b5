"""A run that executes while the tests watch: ``python live_writer.py WORKSPACE STOP_FILE``.

Creates a run in experiment ``live/stream`` (parameters ``{"n": <n>}``), prints its id, then, while
executing it, appends ``line <i>`` to its ``stream`` log every 0.2 s and records ``lines`` as a
result, until STOP_FILE exists (or 60 s pass). It checks for a cancel request on every line, so a
cancel from the server ends it as cancelled. Exits 0.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import molexp as me


def main() -> int:
    root, stop = sys.argv[1], Path(sys.argv[2])
    n = int(sys.argv[3]) if len(sys.argv) > 3 else 1
    ws = me.Workspace(root)
    exp = ws.Project("live").Experiment("stream", params={"n": 0})
    run = exp.Run(parameters={"n": n})
    with run.start(heartbeat_interval=1.0) as ctx:
        print(run.id, flush=True)
        log = ctx.log("stream")
        deadline = time.monotonic() + 60
        i = 0
        while not stop.exists() and time.monotonic() < deadline:
            ctx.check_cancelled()
            log.append(f"line {i}")
            ctx.set_result("lines", i + 1)
            i += 1
            time.sleep(0.2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
