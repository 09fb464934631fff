"""The supervisor's pidfile, and what /proc says about the process it names.

One pidfile whatever ``-n`` is: the ``daemons`` gem's per-worker names broke stop and status
(delayed_job#798, #1172).  A pidfile whose process is gone, is a zombie, or is a recycled pid of
another program is stale.
"""
from __future__ import annotations

import fcntl
import os
from dataclasses import dataclass
from pathlib import Path

# Words one of our processes has in /proc/PID/cmdline: the launcher's name before the
# supervisor sets its title, "dqueue supervisor: ..." after.  A pid recycled by another
# program has neither, so its pidfile is stale.
OUR_CMDLINE_WORDS = (b"delayed_job", b"dqueue")


class AlreadyRunning(Exception):
    def __init__(self, pid: int, path: Path) -> None:
        super().__init__(f"delayed_job is already running (pid {pid}, pidfile {path})")
        self.pid = pid


@dataclass(frozen=True)
class PidState:
    path: Path
    exists: bool
    pid: int | None  # None if there is no pidfile or it does not hold a pid
    running: bool

    @property
    def stale(self) -> bool:
        return self.exists and not self.running


def is_alive(pid: int) -> bool:
    """True if ``pid`` is one of our processes and has not exited (a zombie counts as exited)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # alive, owned by someone else; the cmdline check below decides
    if not Path("/proc/self").exists():
        return True  # no /proc to ask: trust kill(0)
    fields = _stat_fields(pid)
    if not fields or fields[0] == "Z":  # gone, or exited and not yet reaped (init in a container may never)
        return False
    try:
        cmdline = (Path("/proc") / str(pid) / "cmdline").read_bytes()
    except OSError:
        return False
    return any(word in cmdline for word in OUR_CMDLINE_WORDS)


def read_state(path: Path) -> PidState:
    try:
        text = path.read_text().strip()
    except (FileNotFoundError, NotADirectoryError):
        return PidState(path, False, None, False)
    pid = int(text) if text.isdigit() and int(text) > 0 else None
    return PidState(path, True, pid, pid is not None and is_alive(pid))


def create_pidfile(path: Path, pid: int) -> None:
    """Write ``pid`` to ``path`` atomically; raise AlreadyRunning if a live process holds it.

    The lock file serialises two starts racing for the same pidfile (each would otherwise see
    the same stale file, remove it and write its own); os.replace means a reader never sees a
    half-written pid.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        state = read_state(path)
        if state.running and state.pid != pid:
            raise AlreadyRunning(state.pid or 0, path)
        tmp = path.with_name(f".{path.name}.{pid}.tmp")
        try:
            with open(tmp, "w") as fh:
                fh.write(f"{pid}\n")
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)


def remove_pidfile(path: Path, pid: int | None) -> bool:
    """Remove the pidfile if it still names ``pid`` (a newer daemon's pidfile is left alone)."""
    state = read_state(path)
    if not state.exists or state.pid != pid:
        return False
    path.unlink(missing_ok=True)
    return True


def children_of(pid: int) -> list[int]:
    """The live child processes of ``pid`` (the supervisor's workers), from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat_fields(int(entry.name))
            if len(fields) > 1 and fields[1] == str(pid) and fields[0] != "Z":
                found.append(int(entry.name))
    return sorted(found)


def _stat_fields(pid: int) -> list[str]:
    """/proc/PID/stat after the command name: [state, ppid, ...]; [] if the process is gone."""
    try:
        raw = (Path("/proc") / str(pid) / "stat").read_text()
    except OSError:
        return []
    return raw.rpartition(")")[2].split()  # the name may contain spaces and parentheses
