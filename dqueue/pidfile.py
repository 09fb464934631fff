"""The daemon's pidfile: an ``flock`` held for as long as any process of the daemon lives.

Whether a daemon runs is decided by the lock, never by the pid the file names: a pid recycled
by another program (a ``tail -f delayed_job.log``, issue 7) cannot hold our lock.  The
supervisor takes the lock and its forked workers inherit the open file, so the lock outlives
a supervisor killed by SIGKILL for as long as one of its workers still runs.  The fd is
close-on-exec, so a job's exec'd subprocess does not inherit it.  The file holds just the
supervisor's pid, as systemd's PIDFile= and init scripts expect.

One pidfile whatever ``-n`` is: the ``daemons`` gem's per-worker names broke stop and status
(delayed_job#798, #1172).
"""
from __future__ import annotations

import errno
import fcntl
import os
import time
from dataclasses import dataclass
from pathlib import Path

PIDFILE_MODE = 0o640  # the service's group may run 'status'; the umask may narrow it further
# A 'status' or 'stop' elsewhere probes the lock for an instant; a start that meets the probe
# tries again for this long before it reports "already running".
ACQUIRE_PATIENCE = 1.0


class AlreadyRunning(Exception):
    def __init__(self, pid: int | None, path: Path, holders: tuple[int, ...] = ()) -> None:
        if not holders or pid in holders:
            why = f"delayed_job is already running (pid {pid}, pidfile {path})"
        else:
            why = (f"workers of an earlier delayed_job (pids {_pids(holders)}) still run after their "
                   f"supervisor (pid {pid}) died; 'delayed_job stop' ends them (pidfile {path})")
        super().__init__(why)
        self.pid = pid
        self.holders = holders


@dataclass(frozen=True)
class PidState:
    path: Path
    exists: bool
    pid: int | None  # the supervisor's pid as written; None if no pidfile or it holds no pid
    locked: bool  # some process of the daemon (supervisor or a surviving worker) holds the lock
    holders: tuple[int, ...] = ()  # the processes holding the lock; () if /proc cannot tell

    @property
    def running(self) -> bool:
        return self.locked

    @property
    def stale(self) -> bool:
        """A pidfile without a live daemon: whatever its pid is now, it is not ours."""
        return self.exists and not self.locked

    @property
    def supervisor_alive(self) -> bool:
        if not self.locked or self.pid is None:
            return False
        return self.pid in self.holders if self.holders else is_alive(self.pid)

    @property
    def orphans(self) -> tuple[int, ...]:
        """Processes that hold the lock after their supervisor died (its surviving workers)."""
        return () if self.supervisor_alive else self.holders


class Pidfile:
    """The daemon's locked pidfile; kept open (and locked) until ``release``."""

    def __init__(self, path: Path, fd: int, pid: int) -> None:
        self.path = path
        self.fd = fd
        self.pid = pid

    def release(self) -> None:
        """Remove the pidfile, unless a worker still holds its lock (then 'status' must see it)."""
        if self.fd < 0:
            return
        try:
            if _same_file(self.fd, self.path) and not (set(holders(self.path)) - {os.getpid()}):
                self.path.unlink(missing_ok=True)
        finally:
            os.close(self.fd)
            self.fd = -1


def is_alive(pid: int) -> bool:
    """True if process ``pid`` exists and has not exited (a zombie counts as exited)."""
    if not _exists(pid):
        return False
    fields = _stat_fields(pid)  # none: no /proc, or it hides other users' processes (ProtectProc)
    return not fields or fields[0] != "Z"  # init in a container may never reap a zombie


def _exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


def acquire(path: Path, pid: int) -> Pidfile:
    """Lock ``path`` and write ``pid`` into it; AlreadyRunning if a live daemon holds it.

    The fd is opened close-on-exec but is inherited by fork: the workers keep the lock.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + ACQUIRE_PATIENCE
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, PIDFILE_MODE)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            if time.monotonic() < deadline:
                time.sleep(0.05)
                continue
            state = read_state(path)
            raise AlreadyRunning(state.pid, path, state.holders) from None
        except BaseException:
            os.close(fd)
            raise
        # A daemon that was exiting may have removed the file between our open and our lock:
        # then we hold the lock of a file nobody else can find.  Start over on the new one.
        if not _same_file(fd, path):
            os.close(fd)
            continue
        data = f"{pid}\n".encode()
        os.pwrite(fd, data, 0)  # then truncate: a reader never sees an empty file, only our line first
        os.ftruncate(fd, len(data))
        os.fsync(fd)
        return Pidfile(path, fd, pid)


def read_state(path: Path) -> PidState:
    """What the pidfile says: whether its lock is held, by whom, and the pid it names."""
    pid = _read_pid(path)
    try:
        locked = _probe(path)
    except FileNotFoundError:
        return PidState(path, False, None, False)
    except PermissionError:  # cannot open it to probe the lock: fall back to the pid it names
        return PidState(path, True, pid, pid is not None and is_alive(pid))
    return PidState(path, True, pid, locked, tuple(holders(path)) if locked else ())


def is_locked(path: Path) -> bool:
    """True while a process of the daemon holds the pidfile's lock."""
    try:
        return _probe(path)
    except FileNotFoundError:
        return False


def _probe(path: Path) -> bool:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except NotADirectoryError:
        raise FileNotFoundError(path) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing the only fd of our probe also drops its shared lock
    return False


def remove_stale(path: Path) -> bool:
    """Remove the pidfile if no daemon holds its lock; False if one does (it is not stale)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return True
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        # Under the lock, so a daemon starting right now cannot have written its pid yet.
        if _same_file(fd, path):
            path.unlink(missing_ok=True)
        return True
    finally:
        os.close(fd)


def holders(path: Path) -> list[int]:
    """The processes holding the flock of ``path``, from /proc (as ``fuser`` would, but only
    lock holders: a ``tail -f`` of the pidfile has it open without the lock)."""
    try:
        target = os.stat(path)
    except OSError:
        return []
    found = []
    for proc in _proc_entries():
        fd_dir = proc / "fd"
        try:
            fds = os.listdir(fd_dir)
        except OSError:
            continue  # gone, or another user's process
        for fd in fds:
            try:
                st = os.stat(fd_dir / fd)
                if (st.st_dev, st.st_ino) != (target.st_dev, target.st_ino):
                    continue
                info = (proc / "fdinfo" / fd).read_text()
            except OSError:
                continue
            if any(line.startswith("lock:") and " FLOCK " in line for line in info.splitlines()):
                found.append(int(proc.name))
                break
    return sorted(found)


def children_of(pid: int) -> list[int]:
    """The live child processes of ``pid`` (the supervisor's workers), from /proc."""
    found = []
    for entry in _proc_entries():
        fields = _stat_fields(int(entry.name))
        if len(fields) > 1 and fields[1] == str(pid) and fields[0] != "Z":
            found.append(int(entry.name))
    return sorted(found)


def _proc_entries() -> list[Path]:
    try:
        return [entry for entry in Path("/proc").iterdir() if entry.name.isdigit()]
    except OSError:
        return []


def _read_pid(path: Path) -> int | None:
    try:
        first = path.read_text().split("\n", 1)[0].strip()
    except OSError:
        return None
    return int(first) if first.isdigit() and 0 < int(first) < 2**31 else None


def _same_file(fd: int, path: Path) -> bool:
    try:
        st = os.stat(path)
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.ENOTDIR):
            return False
        raise
    mine = os.fstat(fd)
    return (mine.st_dev, mine.st_ino) == (st.st_dev, st.st_ino)


def _stat_fields(pid: int) -> list[str]:
    """/proc/PID/stat after the command name: [state, ppid, ...]; [] if the process is gone."""
    try:
        raw = (Path("/proc") / str(pid) / "stat").read_text()
    except OSError:
        return []
    return raw.rpartition(")")[2].split()  # the name may contain spaces and parentheses


def _pids(pids: tuple[int, ...] | list[int]) -> str:
    return ", ".join(str(p) for p in pids) or "unknown"
