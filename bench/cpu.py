"""CPU accounting from /proc: our processes, the MariaDB server, and its per-connection threads."""
from __future__ import annotations

import os
import resource
from typing import Callable

from . import common

CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """CPU time of a process, all its live threads, in seconds; 0 if it is gone.

    From the scheduler's nanosecond clock (/proc/PID/task/*/schedstat), not the utime/stime
    ticks of /proc/PID/stat: those are charged at 100 Hz to whoever runs at the tick, and a
    worker that wakes from a timer, polls for 0.3 ms and sleeps again is systematically never
    running at a tick, so ticks read an idle worker as costing nothing.
    """
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    return sum(thread_cpu_seconds(pid, int(tid)) for tid in tids)


def cpu_seconds_at(path: str) -> float:
    """utime + stime from a /proc stat file (ticks): for long busy periods, where it is exact."""
    try:
        with open(path) as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    # After "pid (comm)", field 3 is state; utime and stime are fields 14 and 15.
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def cpu_meter() -> Callable[[], dict[str, float]]:
    """Start counting CPU; the returned function gives CPU seconds since, of our waited-for
    children (worker pools, once reaped) and of the whole mysqld (noisy on a shared server)."""
    def children() -> float:
        r = resource.getrusage(resource.RUSAGE_CHILDREN)
        return r.ru_utime + r.ru_stime
    server = mysqld_pid()
    kids0, server0 = children(), cpu_seconds(server) if server else 0.0

    def read() -> dict[str, float]:
        return {"client_cpu_s": children() - kids0,
                "mysqld_cpu_s": (cpu_seconds(server) - server0) if server else float("nan")}
    return read


def children_of(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
        except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
            continue
        if ppid == pid:
            found.append(int(entry))
    return found


def server_threads(database: str) -> list[int]:
    """OS thread ids of the server threads serving connections to ``database``.

    MariaDB runs one thread per connection and names it in PROCESSLIST.TID, so the server CPU a
    pool costs can be read per thread, undisturbed by other clients of a shared server.
    """
    conn = common.connect()
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT TID FROM information_schema.PROCESSLIST WHERE DB = %s "
                        "AND ID <> CONNECTION_ID()", (database,))
            return [int(row[0]) for row in cur.fetchall()]
    finally:
        conn.close()


def thread_cpu_seconds(pid: int, tid: int) -> float:
    """One thread's CPU time from the scheduler's nanosecond clock (see cpu_seconds)."""
    try:
        with open(f"/proc/{pid}/task/{tid}/schedstat") as fh:
            return int(fh.read().split()[0]) / 1e9
    except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
        return 0.0


def mysqld_pid() -> int | None:
    """The MariaDB server's pid, found by name, so its CPU time can be read from /proc."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/comm") as fh:
                if fh.read().strip() in ("mariadbd", "mysqld"):
                    return int(entry)
        except (FileNotFoundError, ProcessLookupError):
            continue
    return None


def per_job_ms(cpu: dict[str, float], jobs: int) -> dict[str, float]:
    """CPU milliseconds per job: where a drain's time goes when the machine is CPU-bound."""
    return {"client_cpu_ms_per_job": 1000 * cpu["client_cpu_s"] / jobs,
            "mysqld_cpu_ms_per_job": 1000 * cpu["mysqld_cpu_s"] / jobs}
