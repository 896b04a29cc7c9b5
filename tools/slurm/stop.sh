#!/usr/bin/env bash
# Stop the Slurm daemons that tools/slurm/start.sh started: by pid, from its state file.
#
# Daemons it did not start (a Slurm that was already running) are never touched. Each daemon
# gets SIGTERM, then SIGKILL if it is still there after 10 s. Exit code 0 when every listed
# daemon is gone.
set -euo pipefail

STATE_DIR="${MOLEXP_SLURM_STATE:-/run/molexp-slurm}"
PIDS="$STATE_DIR/pids"

if [ ! -s "$PIDS" ]; then
  echo "slurm/stop: nothing to stop (no $PIDS)"
  exit 0
fi

# Stop slurmd and slurmctld before munged, which they use to authenticate.
order=(slurmd slurmctld munged)
for name in "${order[@]}"; do
  pid=$(awk -v n="$name" '$1 == n { print $2 }' "$PIDS")
  [ -n "$pid" ] || continue
  # Only a process that is still that daemon (a pid can be reused).
  if kill -0 "$pid" 2>/dev/null && grep -q "$name" "/proc/$pid/comm" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 100); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  echo "slurm/stop: stopped $name (pid $pid)"
done
rm -f "$PIDS"
