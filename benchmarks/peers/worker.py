"""A measuring process: hosts one system's adapter and answers commands, one JSON line each.

The controller (``run.py``) starts one worker per system and sends them the same commands in
turn, so that every system is measured in its own process (no peer's imports, threads, logging
handlers or memory in another's way) while the measurements stay interleaved in time.

Protocol: the worker is started as ``python worker.py MODULE:FACTORY JSON_KWARGS``; it builds the
adapter with ``FACTORY(**kwargs)``, prints ``{"ok": "ready"}``, then for every line
``{"op": NAME, "args": {...}}`` on stdin calls ``adapter.NAME(**args)`` and prints
``{"ok": RESULT}`` or ``{"error": TRACEBACK}``. Anything the libraries print goes to stderr: the
worker keeps the real stdout for its answers only.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]  # benchmarks/peers and benchmarks (bench_*.py)


def main() -> int:
    target, kwargs = sys.argv[1], json.loads(sys.argv[2])
    answers = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # whatever a library prints lands on stderr
    sys.stdout = sys.stderr
    module_name, factory_name = target.split(":")
    try:
        adapter = getattr(importlib.import_module(module_name), factory_name)(**kwargs)
    except Exception:
        answers.write(json.dumps({"error": traceback.format_exc()}) + "\n")
        return 1
    answers.write(json.dumps({"ok": "ready"}) + "\n")
    for line in sys.stdin:
        command = json.loads(line)
        if command["op"] == "exit":
            break
        try:
            result = getattr(adapter, command["op"])(**command.get("args", {}))
            answers.write(json.dumps({"ok": result}) + "\n")
        except Exception:
            answers.write(json.dumps({"error": traceback.format_exc()}) + "\n")
    close = getattr(adapter, "close", None)
    if close is not None:
        close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
