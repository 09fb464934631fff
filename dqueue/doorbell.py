"""A same-host nudge for idle workers, rung after an enqueue commits.

Polling finds every job, from any host, within ``sleep_delay``.  On the host where a job is
enqueued, the enqueuer also sends a one-byte datagram to each worker's UNIX socket in the
doorbell directory, so a local job starts within milliseconds and the poll interval can stay
long enough for an idle worker to cost little.  Ringing is best effort: a lost or refused ring
costs latency only, never a job.  The directory is per database (a hash of its URL; for SQLite of
the file's absolute path), so workers of another database on the same host are not woken for
nothing.  Workers on other hosts than the enqueuer's are rung over UDP instead (netbell.py).

The default directory does not depend on the working directory (issue 7: an application
enqueuing from its own directory was never heard by a daemon started elsewhere): /run/dqueue
where this user may write it (root; the systemd unit's RuntimeDirectory), else a private
``<tmp>/dqueue-<uid>`` (0700; one owned by someone else is refused).  Not $XDG_RUNTIME_DIR:
it differs between a login session and a service of the same user, and logind removes it at
the session's last logout, under a daemon started from that session.  Enqueuers running as
another user, or with another /tmp (systemd's PrivateTmp), set ``doorbell_dir`` to the
workers' directory.
"""
from __future__ import annotations

import errno
import hashlib
import logging
import os
import socket
import stat
import tempfile
from pathlib import Path

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

log = logging.getLogger("dqueue.doorbell")
MAX_SOCKET_PATH = 100  # AF_UNIX paths are limited to 108 bytes
SYSTEM_BASE = Path("/run/dqueue")
SOCKET_MODE = 0o660  # the service's group may ring (an enqueuing application in that group)


def directory(doorbell_dir: str, database_url: str) -> Path | None:
    """The doorbell directory for this database, or None when doorbells are off.

    ``doorbell_dir`` "" means the default (see the module's docstring); a relative one is taken
    from the working directory.
    """
    if doorbell_dir == "off":
        return None
    base = Path(doorbell_dir).resolve() if doorbell_dir else default_base()
    return None if base is None else base / database_key(database_url)


def default_base() -> Path | None:
    """/run/dqueue/doorbell if this user may write there, else <tmp>/dqueue-<uid>/doorbell."""
    if os.access(SYSTEM_BASE, os.W_OK) or (not SYSTEM_BASE.exists() and os.access(SYSTEM_BASE.parent, os.W_OK)):
        return SYSTEM_BASE / "doorbell"
    private = Path(tempfile.gettempdir()) / f"dqueue-{os.geteuid()}"
    try:
        os.mkdir(private, 0o700)
    except FileExistsError:
        pass
    except OSError as exc:
        log.warning("doorbell.off dir=%s error=%s: workers will rely on polling", private, exc)
        return None
    info = os.lstat(private)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid():
        # Another user made it first: its sockets and their removal would be in their hands.
        log.warning("doorbell.off dir=%s: not a directory of uid %s; set doorbell_dir",
                    private, os.geteuid())
        return None
    return private / "doorbell"


def database_key(database_url: str) -> str:
    """The per-database directory name: two working directories that reach the same SQLite
    file share it, two files of the same relative name do not."""
    identity = database_url
    try:
        url = make_url(database_url)
    except ArgumentError:
        url = None
    if (url is not None and url.get_backend_name() == "sqlite" and url.database
            and url.database != ":memory:" and not url.query.get("uri")):
        identity = "sqlite:" + str(Path(url.database).resolve())
    return hashlib.sha256(identity.encode()).hexdigest()[:16]


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
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            folder.mkdir(parents=True, exist_ok=True, mode=0o770)
            path.unlink(missing_ok=True)  # a recycled pid's leftover
            sock.bind(str(path))
            os.chmod(path, SOCKET_MODE)  # sending needs write permission; the umask took it
            sock.setblocking(False)
        except OSError as exc:
            sock.close()
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
                try:
                    path.unlink(missing_ok=True)
                except OSError:
                    pass  # another user's directory: its workers clean up after themselves
    return rung
