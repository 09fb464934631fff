"""The supervisor: forks N worker processes, replaces the ones that die, stops them all on TERM.

It holds no database connection while forking (children must not share sockets); it opens one
briefly after a child dies, to hand that child's jobs back at once.  It exits non-zero when it
cannot keep its workers running (dramatiq#376: a supervisor that exits 0 when a child dies is
never restarted by systemd).
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
from .monitor import db_error_line

log = logging.getLogger("dqueue.supervisor")

EXIT_CONFIG = 78  # a worker that cannot start for a reason a restart will not fix (EX_CONFIG)
MAX_RESTARTS = 5  # per worker slot ...
RESTART_WINDOW = 60.0  # ... within this many seconds, or the supervisor gives up


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
        self._wake_r, self._wake_w = socket.socketpair()

    def run(self) -> int:
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        signal.set_wakeup_fd(self._wake_w.fileno())
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._on_stop)
        signal.signal(signal.SIGCHLD, lambda *_: None)  # only to wake the loop via the wakeup fd
        setproctitle(f"dqueue supervisor: {self.count} worker(s)")
        log.info("supervisor.start pid=%s workers=%s burst=%s", os.getpid(), self.count, self.burst)
        for slot in range(self.count):
            self._spawn(slot)
        while self.children:
            self._wait(0.5)
            self._collect()
            if self.stopping:
                return self._shutdown()
        log.info("supervisor.done workers finished")
        return 1 if self.failed else 0

    def _on_stop(self, signum: int, frame: Any) -> None:
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
                for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGCHLD):
                    signal.signal(sig, signal.SIG_DFL)
                code = self.run_worker(slot)
            except SchemaError as exc:
                log.error("worker.cannot_start %s", exc)
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
        clean = os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
        if not clean:
            self._release_jobs_of(pid, describe_status(status))
        if self.stopping:
            log.info("supervisor.worker_stopped slot=%s pid=%s %s", slot, pid, describe_status(status))
            return
        if clean and self.burst:
            log.info("supervisor.worker_finished slot=%s pid=%s", slot, pid)
            return
        log.warning("supervisor.worker_died slot=%s pid=%s %s", slot, pid, describe_status(status))
        if os.WIFEXITED(status) and os.WEXITSTATUS(status) == EXIT_CONFIG:
            self._give_up(f"worker {slot} cannot start (configuration or schema problem, see above)")
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

    def _release_jobs_of(self, pid: int, how: str) -> None:
        engine = make_engine(self.settings.resolved_database_url(), poolclass=NullPool)
        try:
            processes.release_exited(engine, self.settings.hostname, pid, how)
        except DBAPIError as exc:
            # Not fatal: the heartbeat reaper hands the jobs back once the heartbeat is stale.
            log.warning("supervisor.release_failed pid=%s error=%s", pid, db_error_line(exc))
        finally:
            engine.dispose()

    def _shutdown(self) -> int:
        s = self.settings
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
