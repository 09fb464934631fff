"""Run the supervisor as a daemon (python-daemon detaches it), with a pidfile of our own.

What delayed_job's ``daemons`` gem got wrong (docs: delayed_job.md §1.9, §2.6), done instead:
one pidfile for the supervisor whatever ``-n`` is (per-worker names broke stop/status, DJ#798,
DJ#1172); ``stop`` waits for the graceful exit instead of force-killing after 20 s (DJ#593);
a second start is refused, so a restart cannot pile up workers (DJ#1123); and an explicit
signal map, since python-daemon's default turns SIGTERM into an immediate ``SystemExit``.
Whether a daemon runs is the pidfile's lock (pidfile.py), which its workers hold too: ``stop``
is done only once no process of the daemon is left, even if its supervisor was SIGKILLed.
"""
from __future__ import annotations

import logging
import os
import select
import signal
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import daemon as python_daemon  # type: ignore[import-untyped]

from . import logs
from . import pidfile as pidfiles
from .pidfile import AlreadyRunning, acquire

log = logging.getLogger("dqueue.daemon")

PIDFILE_NAME = "delayed_job.pid"
LOGFILE_NAME = "delayed_job.log"
UMASK = 0o027  # logs and pidfile readable by the service's group, nobody else
# Terminal job-control signals are ignored (no terminal).  SIGHUP is ignored until the
# supervisor installs its own handlers, which stop gracefully on HUP as on TERM (logged): a
# HUP never kills the daemon with an unlogged exit 129 and orphans its workers.  SIGTERM keeps
# the default action: until run_pool's supervisor installs its handler nothing has been forked,
# so dying at once loses no work; from then on the supervisor's graceful handler is in charge.
SIGNAL_MAP: dict[int, object] = {
    signal.SIGTSTP: None, signal.SIGTTIN: None, signal.SIGTTOU: None, signal.SIGHUP: None,
    signal.SIGTERM: signal.SIG_DFL,
}


class StartFailed(Exception):
    """The daemon did not come up; the message says why (often the tail of its log)."""


def start_daemon(main: Callable[[], int], pidfile: Path, logfile: Path, log_level: str,
                 timeout: float = 30.0) -> int:
    """Fork a daemon that runs ``main()``; return its pid once it has written the pidfile.

    The daemon reports "ready PID" or "error WHY" through a pipe, so a daemon that dies early
    is noticed at once (end of file, no "ready") instead of after a polling timeout.
    """
    read_fd, write_fd = os.pipe()
    first = os.fork()
    if first == 0:  # python-daemon forks twice more; only the last process carries on
        os.close(read_fd)
        pipe = _Pipe(write_fd)
        code = 1
        try:
            code = _daemon_process(main, pidfile, logfile, log_level, pipe)
        except OSError as exc:  # an unusable log or pid directory: the message says it all
            pipe.send(f"error {exc}")
        except BaseException as exc:  # noqa: BLE001 - whatever it is, the starter must hear of it
            pipe.send(f"error {exc!r}\n{traceback.format_exc()}")
        finally:
            os._exit(code)
    os.close(write_fd)
    try:
        message = _read_until_eof(read_fd, timeout)
    finally:
        os.close(read_fd)
        _reap(first)
    if message.startswith("ready "):
        return int(message.split()[1])
    if message.startswith("error "):
        raise StartFailed(message[len("error "):].strip())
    raise StartFailed(f"the daemon exited during startup; last lines of {logfile}:\n{log_tail(logfile)}")


def _daemon_process(main: Callable[[], int], pidfile: Path, logfile: Path, log_level: str,
                    pipe: _Pipe) -> int:
    # Open for the daemon's whole life: stray prints and tracebacks land in the log too.  Created
    # 0640 first: this runs before python-daemon's umask applies (issue 7: it was 0644).
    logs.open_private(str(logfile))
    log_stream = open(logfile, "a", buffering=1)  # noqa: SIM115
    context = python_daemon.DaemonContext(
        working_directory=os.getcwd(),  # relative paths (var/, the SQLite file) keep working
        umask=UMASK, detach_process=True, files_preserve=[pipe.fd],
        stdout=log_stream, stderr=log_stream, signal_map=SIGNAL_MAP)
    context.open()
    logs.setup(log_level, filename=str(logfile))
    # Locked after python-daemon has closed the inherited files, so files_preserve need not
    # name it; the supervisor's forked workers inherit the locked fd, exec'd programs do not.
    try:
        lock = acquire(pidfile, os.getpid())
    except AlreadyRunning as exc:
        pipe.send(f"error {exc}")
        return 1
    try:
        log.info("daemon.start pid=%s pidfile=%s", os.getpid(), pidfile)
        pipe.send(f"ready {os.getpid()}")
        pipe.close()  # before forking workers: they must not hold the starter's pipe open
        return main()
    except Exception:  # noqa: BLE001 - nobody else would see it: log it, then exit 1
        log.error("daemon.crashed\n%s", traceback.format_exc())
        return 1
    finally:
        # Logged before the lock goes: whoever waits for the lock ('delayed_job stop') then
        # finds the log complete.
        log.info("daemon.exit pid=%s", os.getpid())
        lock.release()
        logging.shutdown()


class _Pipe:
    """The daemon's end of the startup pipe; once closed, its fd number may be reused, so forget it."""
    def __init__(self, fd: int) -> None:
        self.fd = fd

    def send(self, message: str) -> None:
        try:
            if self.fd >= 0:
                os.write(self.fd, message.encode())
        except OSError:
            pass  # the starter gave up waiting; the log has the story

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def _read_until_eof(fd: int, timeout: float) -> str:
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        if select.select([fd], [], [], left)[0]:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            chunks.append(chunk)
    return b"".join(chunks).decode(errors="replace")


def _reap(pid: int) -> None:
    for _ in range(250):  # the first child exits as soon as python-daemon forks; never hang on it
        try:
            if os.waitpid(pid, os.WNOHANG)[0]:
                return
        except ChildProcessError:
            return
        time.sleep(0.02)


@dataclass(frozen=True)
class Stopped:
    done: bool  # no process of the daemon holds the pidfile's lock any more
    seconds: float
    killed: tuple[int, ...] = ()  # the processes SIGKILLed after the graceful timeout
    left: tuple[int, ...] = ()  # still holding the lock after SIGKILL too (when known)


def stop_daemon(path: Path, timeout: float, kill_wait: float = 10.0) -> Stopped:
    """Stop every process of the daemon that holds ``path``'s lock, gracefully first.

    SIGTERM goes to the supervisor, which stops its workers within their grace period; if the
    supervisor is gone (SIGKILL, a crash), to each surviving worker instead, as they handle TERM
    alike.  Whatever still holds the lock after ``timeout`` is SIGKILLed: "stopped" must mean
    that nothing of this daemon runs a job any more (issue 7: orphans ran jobs after 'stop').
    """
    started = time.monotonic()
    state = pidfiles.read_state(path)
    if state.supervisor_alive and state.pid is not None:
        _signal(state.pid, signal.SIGTERM)
    else:
        for pid in state.holders:
            _signal(pid, signal.SIGTERM)
    if _wait_unlocked(path, started + timeout):
        return Stopped(True, time.monotonic() - started)
    victims = _holding(pidfiles.read_state(path))
    for pid in victims:
        _signal(pid, signal.SIGKILL)
    if _wait_unlocked(path, time.monotonic() + kill_wait):
        return Stopped(True, time.monotonic() - started, victims)
    return Stopped(False, time.monotonic() - started, victims, _holding(pidfiles.read_state(path)))


def _holding(state: pidfiles.PidState) -> tuple[int, ...]:
    """The lock's holders; without /proc to tell, the supervisor named in the file."""
    if state.holders:
        return state.holders
    return (state.pid,) if state.pid is not None and pidfiles.is_alive(state.pid) else ()


def _wait_unlocked(path: Path, deadline: float) -> bool:
    while pidfiles.is_locked(path):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)
    return True


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def log_tail(logfile: Path, lines: int = 15) -> str:
    try:
        return "\n".join(logfile.read_text(errors="replace").splitlines()[-lines:])
    except OSError as exc:
        return f"(cannot read {logfile}: {exc.strerror})"
