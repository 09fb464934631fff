"""The supervisor: forks N worker processes, replaces the ones that die, stops them all on TERM.

It holds no database connection while forking (children must not share sockets); it opens one
briefly after a child exits, to hand back at once every row still locked by that child's host
and pid, whatever its exit code and whether or not it deregistered (issue 7: a job calling
``os._exit(0)`` kept its batch-mates locked for a minute).

When to give up: a worker that dies while running a job was killed by that job (segfault, OOM
kill, ``os._exit``); the job's attempt is charged and it fails for good after ``max_attempts``,
so such deaths never count against the workers and a poison job cannot stop the daemon.  Only
deaths no job explains (a worker dying while it holds nothing, e.g. at start) count: more than
MAX_RESTARTS within RESTART_WINDOW and the supervisor stops its workers and exits 1, as it does
at once when a worker exits EXIT_CONFIG (a permission or schema problem).  It exits non-zero
then, never 0 (dramatiq#376: a supervisor that exits 0 when a child dies is never restarted by
systemd).

SIGTERM, SIGINT and SIGHUP stop it gracefully (logged).  If it dies anyway (SIGKILL, a crash),
its workers notice through their lifeline (lifeline.py) and stop on their own.
"""
from __future__ import annotations

import logging
import os
import select
import signal
import socket
import time
import traceback
from collections import deque
from typing import Any, Callable

from setproctitle import setproctitle
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

from ..config import Settings
from ..store import SchemaError, make_engine, processes
from ..store.failures import DatabaseFailure
from . import lifeline
from .monitor import db_error_line

log = logging.getLogger("dqueue.supervisor")

EXIT_CONFIG = 78  # a worker that cannot work for a reason a restart will not fix (EX_CONFIG)
EXIT_RECYCLE = 75  # a worker that ended itself to be replaced (max_jobs_per_worker, memory)
MAX_RESTARTS = 5  # deaths that no job explains, per worker slot ...
RESTART_WINDOW = 60.0  # ... within this many seconds, or the supervisor gives up
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


def describe_status(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"killed by {signal.Signals(os.WTERMSIG(status)).name}"
    return f"exited with status {os.WEXITSTATUS(status)}"


class Supervisor:
    def __init__(self, settings: Settings, count: int, run_worker: Callable[[int], int],
                 burst: bool = False) -> None:
        self.settings = settings
        self.count = count
        self.run_worker = run_worker
        self.burst = burst
        self.children: dict[int, int] = {}  # pid -> slot
        self.restarts: dict[int, deque[float]] = {slot: deque() for slot in range(count)}
        self.stopping = False
        self.failed = False
        self.signalled: int | None = None
        self._wake_r, self._wake_w = socket.socketpair()
        self._lifeline_r = self._lifeline_w = -1

    def run(self) -> int:
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        signal.set_wakeup_fd(self._wake_w.fileno())
        for sig in STOP_SIGNALS:
            signal.signal(sig, self._on_stop)
        signal.signal(signal.SIGCHLD, lambda *_: None)  # only to wake the loop via the wakeup fd
        # Never written to: the workers see end of file on their end when we die (lifeline.py).
        self._lifeline_r, self._lifeline_w = os.pipe()
        setproctitle(f"dqueue supervisor: {self.count} worker(s)")
        log.info("supervisor.start pid=%s workers=%s burst=%s", os.getpid(), self.count, self.burst)
        self._release_dead_on_this_host()
        try:
            for slot in range(self.count):
                self._spawn(slot)
            while self.children:
                self._wait(0.5)
                self._collect()
                if self.stopping:
                    return self._shutdown()
        finally:
            os.close(self._lifeline_r)  # run_pool may be called again in this process (the demo)
            os.close(self._lifeline_w)
        log.info("supervisor.done workers finished")
        return 1 if self.failed else 0

    def _on_stop(self, signum: int, frame: Any) -> None:
        self.signalled = signum
        self.stopping = True  # the loop, woken through the wakeup fd, does the rest

    def _wait(self, timeout: float) -> None:
        readable, _, _ = select.select([self._wake_r], [], [], timeout)
        if readable:
            try:
                self._wake_r.recv(4096)
            except BlockingIOError:
                pass

    def _spawn(self, slot: int) -> None:
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                signal.set_wakeup_fd(-1)
                for sig in (*STOP_SIGNALS, signal.SIGCHLD):
                    signal.signal(sig, signal.SIG_DFL)
                # Only our copy of the write end: the pipe must reach end of file when the
                # supervisor dies.  Every other inherited fd stays open (the daemon's pidfile
                # lock is held through one, see pidfile.py).
                os.close(self._lifeline_w)
                lifeline.adopt(self._lifeline_r)
                code = self.run_worker(slot)
            except SchemaError as exc:
                log.error("worker.cannot_start %s", exc)
                code = EXIT_CONFIG
            except DatabaseFailure as exc:
                log.error("worker.database_failure pid=%s %s; exiting %s (a retry would not help)",
                          os.getpid(), exc, EXIT_CONFIG)
                code = EXIT_CONFIG
            except BaseException:
                log.error("worker.crashed\n%s", traceback.format_exc())
            finally:
                logging.shutdown()
                os._exit(code)
        self.children[pid] = slot
        log.info("supervisor.spawned slot=%s pid=%s", slot, pid)

    def _collect(self) -> None:
        while self.children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                self.children.clear()
                return
            if pid == 0:
                return
            slot = self.children.pop(pid, None)
            if slot is None:
                continue
            self._handle_exit(slot, pid, status)

    def _handle_exit(self, slot: int, pid: int, status: int) -> None:
        how = describe_status(status)
        released = self._release_jobs_of(pid, how)
        code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else None
        # A worker that ends on purpose deregisters first; one still registered was ended from
        # under the loop (by its job, a signal, the kernel), whatever its exit code.
        on_purpose = released is not None and not released.processes and code in (0, EXIT_RECYCLE)
        if self.stopping:
            log.info("supervisor.worker_stopped slot=%s pid=%s %s", slot, pid, how)
            return
        if on_purpose and code == 0 and self.burst:
            log.info("supervisor.worker_finished slot=%s pid=%s", slot, pid)
            return
        if on_purpose and code == EXIT_RECYCLE:
            log.info("supervisor.worker_recycled slot=%s pid=%s", slot, pid)
            self._spawn(slot)
            return
        log.warning("supervisor.worker_died slot=%s pid=%s %s", slot, pid, how)
        if code == EXIT_CONFIG:
            self._give_up(f"worker {slot} cannot work (configuration, permission or schema "
                          "problem, see above)")
            return
        if released is not None and released.released:
            # It died running a job: that job was charged the attempt and fails for good after
            # max_attempts, so its deaths do not count against the workers.
            log.warning("supervisor.job_ended_worker slot=%s pid=%s released=%s: the running "
                        "job's attempt counts; its batch-mates are back in the queue", slot, pid,
                        released.released)
            self._spawn(slot)
            return
        history = self.restarts[slot]
        now = time.monotonic()
        history.append(now)
        while history and history[0] < now - RESTART_WINDOW:
            history.popleft()
        if len(history) > MAX_RESTARTS:
            self._give_up(f"worker {slot} died {len(history)} times within {RESTART_WINDOW:.0f}s")
            return
        self._spawn(slot)

    def _give_up(self, why: str) -> None:
        log.error("supervisor.giving_up %s; stopping the other workers and exiting 1", why)
        self.failed = True
        self.stopping = True

    def _release_jobs_of(self, pid: int, how: str) -> processes.ReapResult | None:
        """Every row still locked by ``pid`` on this host, back to the queue; None if we could not."""
        engine = make_engine(self.settings.resolved_database_url(), poolclass=NullPool)
        try:
            return processes.release_exited(engine, self.settings.hostname, pid, how)
        except DBAPIError as exc:
            # Not fatal: the reapers hand the jobs back (a worker on this host at once, by pid).
            log.warning("supervisor.release_failed pid=%s error=%s", pid, db_error_line(exc))
            return None
        finally:
            engine.dispose()

    def _release_dead_on_this_host(self) -> None:
        """After a crash or reboot of this host, hand back the dead processes' rows now, not
        ``stale_after`` later: on our own host a process is dead if its pid no longer runs
        under the registered start time (processes.reap_host)."""
        engine = make_engine(self.settings.resolved_database_url(), poolclass=NullPool)
        try:
            processes.reap_host(engine, self.settings.hostname)
        except DBAPIError as exc:
            log.warning("supervisor.reap_failed error=%s", db_error_line(exc))
        finally:
            engine.dispose()

    def _shutdown(self) -> int:
        s = self.settings
        if self.signalled is not None:
            log.info("supervisor.signal %s: stopping gracefully", signal.Signals(self.signalled).name)
        log.info("supervisor.stopping workers=%s grace=%.0fs", len(self.children), s.grace_period)
        for pid in list(self.children):
            _signal(pid, signal.SIGTERM)
        # The workers enforce the grace period themselves; this is the backstop if one cannot.
        deadline = time.monotonic() + s.grace_period + s.kill_after + 5
        while self.children and time.monotonic() < deadline:
            self._wait(0.2)
            self._collect()
        for pid in list(self.children):
            log.error("supervisor.kill pid=%s: still running after the grace period", pid)
            _signal(pid, signal.SIGKILL)
        while self.children:
            self._wait(0.2)
            self._collect()
        log.info("supervisor.stopped")
        return 1 if self.failed else 0


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass
