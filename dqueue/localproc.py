"""Is a process on this host still the one that registered?  A pid plus its start time says.

A registration records ``<boot id>/<pid namespace>/<start time>`` (``start_token``); the start
time is field 22 of /proc/<pid>/stat, in clock ticks since boot.  A recycled pid has another
start time, a reboot another boot id, so on its own host a reaper can tell a dead process from
a live one at once, without waiting for a heartbeat to go stale, and never takes a live process
for dead because the database was unreachable for a while (issue 7).  Off Linux there is no
token and reapers judge by heartbeat age only.
"""
from __future__ import annotations

import enum
import functools
import os
from pathlib import Path


class Verdict(enum.Enum):
    ALIVE = "alive"
    DEAD = "dead"
    UNKNOWN = "unknown"  # another pid namespace (a container), or no token: judge by heartbeat


@functools.lru_cache(maxsize=1)
def _host() -> tuple[str, str] | None:
    """(boot id, pid namespace) of this process, or None off Linux."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        namespace = os.readlink("/proc/self/ns/pid").strip("pid:[]")
    except OSError:
        return None
    return (boot, namespace) if boot and namespace else None


def _start_ticks(pid: int) -> str | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()  # the command name may hold spaces and parentheses
    if fields[0] in ("Z", "X"):  # a zombie has ended: it only waits for its parent to reap it
        return None
    return fields[19]  # field 22 of stat; fields[0] is field 3


def start_token(pid: int) -> str | None:
    """``<boot id>/<pid namespace>/<start time>`` of a running process on this host, or None."""
    host, ticks = _host(), _start_ticks(pid)
    if host is None or ticks is None:
        return None
    return f"{host[0]}/{host[1]}/{ticks}"


def uptime() -> float | None:
    """Seconds since this host booted, or None off Linux."""
    try:
        return float(Path("/proc/uptime").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def judge(pid: int, token: str | None, before_boot: bool) -> Verdict:
    """Whether the process registered on this host as ``pid`` with ``token`` still runs.

    ``before_boot``: its last heartbeat is older than this host's boot.  Another boot id alone
    does not prove a reboot: a second machine misconfigured with the same hostname has another
    boot id too, and its live processes heartbeat after our boot; those are judged by heartbeat.
    """
    host = _host()
    parts = (token or "").split("/")
    if host is None or len(parts) != 3:
        return Verdict.UNKNOWN
    boot, namespace, _ = parts
    if boot != host[0]:
        return Verdict.DEAD if before_boot else Verdict.UNKNOWN
    if namespace != host[1]:
        return Verdict.UNKNOWN  # another container on this machine: its pids are not ours
    return Verdict.ALIVE if start_token(pid) == token else Verdict.DEAD
