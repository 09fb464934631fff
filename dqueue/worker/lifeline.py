"""How a worker notices that its supervisor is gone, and how it cleans up after its jobs.

The supervisor keeps the write end of a pipe and each forked worker the read end, so the read
end turns readable (end of file) the moment the supervisor dies, by any signal, SIGKILL
included.  A changed parent pid is the backstop.  An orphaned worker stops claiming and exits
after its current job's grace period (issue 7: two workers with ppid 1 ran jobs enqueued after
``delayed_job stop``).

A worker is also a child subreaper (Linux): processes its jobs start and leave behind are
re-parented to it, not to init, so it can end them when it stops (``end_descendants``).
"""
from __future__ import annotations

import ctypes
import errno
import logging
import os
import select
import signal
import time
from pathlib import Path

log = logging.getLogger("dqueue.worker")
PR_SET_CHILD_SUBREAPER = 36

_inherited: "Lifeline | None" = None


class Lifeline:
    """The worker's end: ``broken()`` is True once the supervisor that forked us is gone."""

    def __init__(self, fd: int | None, parent: int) -> None:
        self.fd = fd
        self.parent = parent
        self._broken = False

    def fileno(self) -> int:
        assert self.fd is not None
        return self.fd

    def broken(self) -> bool:
        if self._broken:
            return True
        if os.getppid() != self.parent:
            self._broken = True
        elif self.fd is not None and select.select([self.fd], [], [], 0)[0]:
            try:
                self._broken = os.read(self.fd, 1) == b""  # the supervisor never writes
            except OSError:
                self._broken = True
        return self._broken


def adopt(fd: int) -> None:
    """In a freshly forked worker: watch ``fd``, the read end of the supervisor's pipe."""
    global _inherited
    _inherited = Lifeline(fd, os.getppid())


def inherited() -> Lifeline:
    """The lifeline given by the supervisor, or one that watches the parent pid only."""
    return _inherited or Lifeline(None, os.getppid())


def become_subreaper() -> bool:
    """Adopt our jobs' orphaned descendants (Linux ≥ 3.4); False where that is not possible."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


def descendants(pid: int) -> list[int]:
    """Every live descendant of ``pid`` (Linux: read from /proc; elsewhere none are found).

    Built from each process's parent pid in /proc/*/stat: /proc/<pid>/task/*/children needs a
    kernel option that not every kernel has.
    """
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # ended while we looked
        if fields[0] not in ("Z", "X"):
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found: list[int] = []
    todo = [pid]
    while todo:
        for kid in children.get(todo.pop(), []):
            if kid not in found:
                found.append(kid)
                todo.append(kid)
    return found


def end_descendants(wait: float) -> list[int]:
    """TERM what our jobs left running, KILL what is left after ``wait`` seconds, reap them all.

    Returns the pids that were running.  Called when the worker stops, after its last job.
    """
    pids = descendants(os.getpid())
    for pid in pids:
        _signal(pid, signal.SIGTERM)
    deadline = time.monotonic() + wait
    while pids and time.monotonic() < deadline:
        _reap_children()
        if not [p for p in pids if _running(p)]:
            break
        time.sleep(0.05)
    for pid in pids:
        if _running(pid):
            _signal(pid, signal.SIGKILL)
    _reap_children()
    for pid in descendants(os.getpid()):  # started while we were waiting
        _signal(pid, signal.SIGKILL)
    _reap_children()
    return pids


def reap_zombies() -> None:
    """Collect the exit status of every ended child: as a subreaper the worker adopts what its
    jobs leave behind, and ended processes must not pile up as zombies over a long life.
    Called between jobs; one system call when there is nothing to collect."""
    _reap_children()


def _reap_children() -> None:
    while True:
        try:
            if os.waitpid(-1, os.WNOHANG)[0] == 0:
                return
        except ChildProcessError:
            return


def _running(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except OSError as exc:
        if exc.errno != errno.ESRCH:
            log.warning("worker.signal_failed pid=%s signal=%s error=%s", pid, sig, exc)
