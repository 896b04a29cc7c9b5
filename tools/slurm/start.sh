#!/usr/bin/env bash
# Start a real single-node Slurm on 127.0.0.1 for molexp's tests, examples and benchmarks.
#
#   tools/slurm/start.sh      # install (if missing), configure, start; wait until the node is idle
#   tools/slurm/stop.sh       # stop the daemons this script started (by pid)
#
# What it does, as root, without systemd:
#   1. installs Debian's `slurm-wlm` and `munge` when `slurmctld` is missing (apt-get update first
#      when the package lists do not know them), non-interactively;
#   2. writes a munge key (/etc/munge/munge.key, owner munge, mode 0400) if there is none, and a
#      minimal /etc/slurm/slurm.conf for one node, `localhost` at 127.0.0.1, with every core and
#      most of the memory of this machine, in one default partition `debug`;
#   3. starts munged (as the munge user), slurmctld and slurmd, and waits until `sinfo` reports
#      the node idle.
#
# If a Slurm controller already answers (`sinfo` works), nothing is installed, written or
# started: the script says so and exits 0. The pids of the daemons it starts are written to
# $MOLEXP_SLURM_STATE (default /run/molexp-slurm/pids), which is what stop.sh reads; daemons it
# did not start are never stopped. Exit codes: 0 ready, 1 failed (the reason on stderr, with the
# tail of the daemon logs), 3 not root (nothing can be installed or started).
set -euo pipefail

STATE_DIR="${MOLEXP_SLURM_STATE:-/run/molexp-slurm}"
PIDS="$STATE_DIR/pids"
CONF=/etc/slurm/slurm.conf
LOG_DIR=/var/log/slurm
TIMEOUT="${MOLEXP_SLURM_START_TIMEOUT:-60}"

say() { echo "slurm/start: $*"; }
die() {
  echo "slurm/start: error: $*" >&2
  for log in "$LOG_DIR/slurmctld.log" "$LOG_DIR/slurmd.log" /var/log/munge/munged.log; do
    if [ -s "$log" ]; then
      echo "--- last lines of $log ---" >&2
      tail -n 15 "$log" >&2
    fi
  done
  exit 1
}

node_state() { timeout 5 sinfo -h -o %T 2>/dev/null | head -n 1 || true; }
# `scontrol ping` answers at once whether a controller is up (sinfo retries for seconds).
controller_up() { command -v scontrol >/dev/null 2>&1 && timeout 5 scontrol ping >/dev/null 2>&1; }

if controller_up && [ -n "$(node_state)" ]; then
  if [ -s "$PIDS" ]; then
    say "already running (started by this script; node $(node_state)); pids in $PIDS"
  else
    say "a Slurm controller already answers (node $(node_state)); leaving it alone"
  fi
  exit 0
fi
if [ "$(id -u)" != "0" ]; then
  echo "slurm/start: not root: cannot install or start Slurm (run as root, or start it yourself)" >&2
  exit 3
fi

since() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }
started=$(date +%s.%N)

# -- 1. packages ---------------------------------------------------------------------------------
if ! command -v slurmctld >/dev/null 2>&1 || ! command -v munged >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt_install() {
    apt-get install -y -qq --no-install-recommends \
      -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
      slurm-wlm munge >/dev/null
  }
  if ! apt-cache show slurm-wlm >/dev/null 2>&1 || ! apt_install; then
    say "apt-get update"
    apt-get update -qq || die "apt-get update failed"
    apt_install || die "apt-get install slurm-wlm munge failed"
  fi
  say "installed slurm-wlm and munge in $(since "$started") s"
fi

# -- 2. configuration ----------------------------------------------------------------------------
mkdir -p /etc/munge /var/log/munge /run/munge /var/lib/munge "$LOG_DIR" "$STATE_DIR" \
  /var/spool/slurmctld /var/spool/slurmd /etc/slurm
if [ ! -s /etc/munge/munge.key ]; then
  if command -v mungekey >/dev/null 2>&1; then
    mungekey -c -f -k /etc/munge/munge.key
  else
    dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key status=none
  fi
fi
chown -R munge:munge /etc/munge /var/log/munge /run/munge /var/lib/munge
chmod 0700 /etc/munge
chmod 0400 /etc/munge/munge.key
chmod 0755 /run/munge

cpus=$(nproc)
mem_mib=$(awk '/^MemTotal:/ { printf "%d", $2 / 1024 * 0.9 }' /proc/meminfo)
new_conf=$(mktemp)
cat >"$new_conf" <<EOF
# Written by molexp's tools/slurm/start.sh: one node on 127.0.0.1, for tests and examples.
ClusterName=molexp
SlurmctldHost=localhost(127.0.0.1)
SlurmUser=root
AuthType=auth/munge
CryptoType=crypto/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SchedulerType=sched/backfill
ReturnToService=2
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=$LOG_DIR/slurmctld.log
SlurmdLogFile=$LOG_DIR/slurmd.log
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
# Finished jobs stay visible to squeue/scontrol for 5 minutes (there is no accounting database).
MinJobAge=300
KillWait=10
MaxArraySize=10001
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem_mib State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
EOF
install -m 0644 "$new_conf" "$CONF"
rm -f "$new_conf"

# -- 3. daemons ----------------------------------------------------------------------------------
touch "$PIDS"
pid_of() { [ -s "$1" ] && cat "$1" || true; }
alive() { [ -n "$1" ] && kill -0 "$1" 2>/dev/null; }

munge_pid=$(pid_of /run/munge/munged.pid)
if ! alive "$munge_pid"; then
  runuser -u munge -- munged --force || die "munged did not start"
  for _ in $(seq 50); do
    munge_pid=$(pid_of /run/munge/munged.pid)
    alive "$munge_pid" && break
    sleep 0.1
  done
  alive "$munge_pid" || die "munged did not start"
  sed -i '/^munged /d' "$PIDS"
  echo "munged $munge_pid" >>"$PIDS"
fi

ctld_pid=$(pid_of /run/slurmctld.pid)
if ! alive "$ctld_pid"; then
  slurmctld -i || die "slurmctld did not start"
fi
d_pid=$(pid_of /run/slurmd.pid)
if ! alive "$d_pid"; then
  slurmd -N localhost || die "slurmd did not start"
fi
for _ in $(seq 50); do
  ctld_pid=$(pid_of /run/slurmctld.pid)
  d_pid=$(pid_of /run/slurmd.pid)
  alive "$ctld_pid" && alive "$d_pid" && break
  sleep 0.1
done
alive "$ctld_pid" || die "slurmctld exited at start"
alive "$d_pid" || die "slurmd exited at start"
sed -i '/^slurmctld /d; /^slurmd /d' "$PIDS"
echo "slurmctld $ctld_pid" >>"$PIDS"
echo "slurmd $d_pid" >>"$PIDS"

deadline=$(($(date +%s) + TIMEOUT))
state=""
while [ "$(date +%s)" -lt "$deadline" ]; do
  state=$(node_state)
  case "$state" in
    idle | mixed | allocated) break ;;
    down* | drain* | fail*)
      # A node left down by an earlier run: bring it back.
      scontrol update NodeName=localhost State=RESUME >/dev/null 2>&1 || true ;;
  esac
  sleep 0.2
done
case "$state" in
  idle | mixed | allocated) ;;
  *) die "the node is not idle after ${TIMEOUT} s (sinfo says: ${state:-nothing})" ;;
esac
say "ready in $(since "$started") s: node localhost $state ($cpus CPUs, $mem_mib MiB); pids in $PIDS"
