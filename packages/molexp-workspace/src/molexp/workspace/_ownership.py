"""Who owns a running run, whether that owner is still alive, and the heartbeat that says so."""

from __future__ import annotations

import os
import socket
import threading
import weakref
from collections.abc import Callable
from datetime import datetime
from enum import StrEnum
from functools import cache

from molexp.workspace._metadata import OwnerInfo
from molexp.workspace._records import utcnow

DEFAULT_HEARTBEAT_INTERVAL = 30.0
STALE_AFTER_INTERVALS = 3.0


class Liveness(StrEnum):
    """What can be said about a run's owner from where we stand."""

    NOT_RUNNING = "not-running"
    ALIVE = "alive"
    DEAD = "dead"
    STALE = "stale"


@cache
def hostname() -> str:
    """This machine's host name."""
    return socket.gethostname()


@cache
def boot_id() -> str | None:
    """An id that changes at every boot (Linux), so a pid from before a reboot is not trusted."""
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            return f.read().strip() or None
    except OSError:
        return None


def process_start(pid: int) -> str | None:
    """The start time of process ``pid`` in clock ticks since boot (Linux), or None if unknown."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return None
    fields = stat[stat.rfind(b")") + 2 :].split()
    return fields[19].decode() if len(fields) > 19 else None


@cache
def _own_start(pid: int) -> str | None:
    return process_start(pid)


def current_owner(execution_id: str, interval: float) -> OwnerInfo:
    """The ownership stamp for an attempt run by this process."""
    pid = os.getpid()
    return OwnerInfo(
        host=hostname(),
        pid=pid,
        process_start=_own_start(pid),
        boot_id=boot_id(),
        execution_id=execution_id,
        heartbeat_interval=interval,
    )


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return True
    end = stat.rfind(b")")
    return stat[end + 2 : end + 3] not in (b"Z", b"X")


def owner_liveness(owner: OwnerInfo, now: datetime | None = None) -> Liveness:
    """ALIVE or DEAD for an owner on this host; ALIVE or STALE (never DEAD) for a remote one."""
    same_host = owner.host == hostname() and (
        owner.boot_id is None or boot_id() is None or owner.boot_id == boot_id()
    )
    if owner.host == hostname() and not same_host:
        return Liveness.DEAD
    if same_host:
        if not _pid_alive(owner.pid):
            return Liveness.DEAD
        if owner.process_start is not None:
            started = process_start(owner.pid)
            if started is not None and started != owner.process_start:
                return Liveness.DEAD
        return Liveness.ALIVE
    age = ((now or utcnow()) - owner.heartbeat_at).total_seconds()
    return (
        Liveness.ALIVE
        if age <= owner.heartbeat_interval * STALE_AFTER_INTERVALS
        else Liveness.STALE
    )


class Heartbeat:
    """One daemon thread per process that calls every registered beat function periodically."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._beats: weakref.WeakValueDictionary[int, _Beat] = weakref.WeakValueDictionary()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def register(self, fn: Callable[[], None]) -> _Beat:
        """Call ``fn`` every interval until the returned handle is closed or dropped."""
        beat = _Beat(fn, self)
        with self._lock:
            self._beats[id(beat)] = beat
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._loop, name="molexp-heartbeat", daemon=True
                )
                self._thread.start()
        return beat

    def unregister(self, beat: _Beat) -> None:
        with self._lock:
            self._beats.pop(id(beat), None)

    def _loop(self) -> None:
        while not self._wake.wait(self.interval):
            with self._lock:
                beats = list(self._beats.values())
            for beat in beats:
                try:
                    beat.fn()
                except Exception as exc:  # a failed beat must not stop the others
                    beat.last_error = exc


class _Beat:
    def __init__(self, fn: Callable[[], None], owner: Heartbeat) -> None:
        self.fn = fn
        self._owner = owner
        self.last_error: Exception | None = None

    def close(self) -> None:
        self._owner.unregister(self)


_heartbeats: dict[float, Heartbeat] = {}
_heartbeats_lock = threading.Lock()


def heartbeat(interval: float) -> Heartbeat:
    """The process-wide heartbeat thread for ``interval``."""
    with _heartbeats_lock:
        hb = _heartbeats.get(interval)
        if hb is None:
            hb = _heartbeats[interval] = Heartbeat(interval)
        return hb
