"""A same-host nudge for idle workers, rung after an enqueue commits.

Polling finds every job, from any host, within ``sleep_delay``.  On the host where a job is
enqueued, the enqueuer also sends a one-byte datagram to each worker's UNIX socket in the
doorbell directory, so a local job starts within milliseconds and the poll interval can stay
long enough for an idle worker to cost little.  Ringing is best effort: a lost or refused ring
costs latency only, never a job.  The directory is per database (a hash of its URL), so workers
of another database on the same host are not woken for nothing.  Workers on other hosts than
the enqueuer's are rung over UDP instead (netbell.py).
"""
from __future__ import annotations

import errno
import hashlib
import logging
import os
import socket
from pathlib import Path

log = logging.getLogger("dqueue.doorbell")
MAX_SOCKET_PATH = 100  # AF_UNIX paths are limited to 108 bytes


def directory(doorbell_dir: str, pid_dir: str, database_url: str) -> Path | None:
    """The doorbell directory for this database, or None when doorbells are off."""
    if doorbell_dir == "off":
        return None
    base = Path(doorbell_dir or os.path.join(pid_dir, "doorbell")).resolve()
    return base / hashlib.sha256(database_url.encode()).hexdigest()[:16]


class Doorbell:
    """A worker's end: a non-blocking datagram socket that a ring makes readable."""

    def __init__(self, sock: socket.socket, path: Path) -> None:
        self.sock = sock
        self.path = path

    @classmethod
    def open(cls, folder: Path | None) -> "Doorbell | None":
        if folder is None:
            return None
        path = folder / f"{os.getpid()}.sock"
        if len(str(path)) > MAX_SOCKET_PATH:
            log.warning("doorbell.off path=%s: longer than a UNIX socket path may be", path)
            return None
        try:
            folder.mkdir(parents=True, exist_ok=True, mode=0o770)
            path.unlink(missing_ok=True)  # a recycled pid's leftover
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            sock.bind(str(path))
            sock.setblocking(False)
        except OSError as exc:
            log.warning("doorbell.off dir=%s error=%s: workers will rely on polling", folder, exc)
            return None
        return cls(sock, path)

    def fileno(self) -> int:
        return self.sock.fileno()

    def drain(self) -> None:
        try:
            while self.sock.recv(64):
                pass
        except BlockingIOError:
            pass

    def close(self) -> None:
        self.sock.close()
        self.path.unlink(missing_ok=True)


_sender: socket.socket | None = None  # one unbound datagram socket per process, reused


def ring(folder: Path | None) -> int:
    """Wake the workers listening in ``folder``; returns how many were rung.  Never raises.

    It runs after every enqueue, so it costs a directory listing when nobody listens, and one
    datagram per listener otherwise.
    """
    global _sender
    if folder is None:
        return 0
    try:
        names = [name for name in os.listdir(folder) if name.endswith(".sock")]
    except OSError:
        return 0  # no worker has ever listened here
    if not names:
        return 0
    if _sender is None:
        _sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        _sender.setblocking(False)
    rung = 0
    for name in names:
        path = folder / name
        try:
            _sender.sendto(b"!", str(path))
            rung += 1
        except BlockingIOError:
            rung += 1  # its queue is full of rings already: it is awake anyway
        except OSError as exc:
            if exc.errno == errno.ECONNREFUSED:  # nobody bound: a worker that died
                path.unlink(missing_ok=True)
    return rung
