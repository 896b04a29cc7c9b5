"""Start a ``distributed.LocalCluster`` of worker processes on 127.0.0.1 for the tests.

``python _cluster.py N`` prints one JSON line, ``{"address": "tcp://...", "workers": {addr: pid}}``,
then keeps the cluster up until its standard input is closed.
"""

from __future__ import annotations

import json
import logging
import os
import sys

if __name__ == "__main__":
    from distributed import Client, LocalCluster

    workers = int(sys.argv[1]) if len(sys.argv) > 1 else 2
    cluster = LocalCluster(
        n_workers=workers,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        scheduler_port=0,
        dashboard_address=None,
        silence_logs=logging.ERROR,
    )
    client = Client(cluster)
    if workers:
        client.wait_for_workers(workers, timeout=60)
    pids = client.run(os.getpid)
    sys.stdout.write(json.dumps({"address": cluster.scheduler_address, "workers": pids}) + "\n")
    sys.stdout.flush()
    sys.stdin.read()
    client.close()
    cluster.close()
