"""The worker's background thread: heartbeat, reaper, and the watchdog over the running job.

It runs on its own database connection, so a job that runs for hours keeps its process alive
in the registry, and it is the only place that decides to interrupt a job (timeout or the end of
the shutdown grace period) or, as a last resort, to end the process.  It also watches the
lifeline to the supervisor: a worker whose supervisor died stops as if sent SIGTERM.
"""
from __future__ import annotations

import logging
import os
import random
import threading
import time
import traceback
from typing import TYPE_CHECKING

from sqlalchemy.exc import DBAPIError

from ..store import processes
from ..store.failures import DatabaseFailure, Kind, classify
from . import lifeline
from .executor import Outcome

if TYPE_CHECKING:
    from ..config import Settings
    from .loop import Running, Worker

log = logging.getLogger("dqueue.worker")
TICK = 0.25  # seconds; the resolution of timeouts and the grace period (each wake-up costs CPU)
RETRY_HEARTBEAT = 1.0  # seconds after a failed heartbeat: be back in the registry soon after an outage


class Monitor(threading.Thread):
    def __init__(self, worker: "Worker") -> None:
        super().__init__(name="dqueue-monitor", daemon=True)
        self.worker = worker
        self._done = threading.Event()
        s = worker.settings
        now = time.monotonic()
        self._next_heartbeat = now + s.heartbeat_interval
        # The first reap comes soon after start, so jobs of a worker that died just before a
        # restart come back quickly; later ones are spread out with jitter.
        self._next_reap = now + random.uniform(0.5, 1.5)
        self._interrupted_at: float | None = None

    def stop(self) -> None:
        self._done.set()

    def run(self) -> None:
        while not self._done.wait(TICK):
            try:
                self._tick(time.monotonic())
            except Exception:  # noqa: BLE001 - the watchdog must outlive any one bad tick
                log.error("monitor.error process=%r\n%s", self.worker.name, traceback.format_exc())

    def _tick(self, now: float) -> None:
        w = self.worker
        w.orphaned()  # while a job runs, the main thread does not look
        if now >= self._next_heartbeat:
            ok = self._heartbeat()
            self._next_heartbeat = now + (w.settings.heartbeat_interval if ok else RETRY_HEARTBEAT)
        if now >= self._next_reap:
            self._next_reap = now + w.settings.heartbeat_interval * random.uniform(0.8, 1.2)
            self._reap()
        self._watch(now)

    def _heartbeat(self) -> bool:
        w = self.worker
        try:
            if not processes.heartbeat(w.engine, w.registration, heartbeat_gap(w.settings)):
                log.error("worker.reaped process=%r: our registry row is gone (we were taken for "
                          "dead); stopping so the supervisor starts a fresh worker", w.name)
                w.request_stop()
            return True
        except DBAPIError as exc:
            self._failed(exc, "heartbeat")
            log.warning("worker.heartbeat_failed process=%r error=%s", w.name, db_error_line(exc))
            return False

    def _reap(self) -> None:
        w, s = self.worker, self.worker.settings
        try:
            processes.reap(w.engine, s.stale_after, s.hostname, w.registration, heartbeat_gap(s))
        except DBAPIError as exc:
            self._failed(exc, "reap")
            log.warning("reaper.failed error=%s", db_error_line(exc))

    def _failed(self, exc: DBAPIError, what: str) -> None:
        """A permission or schema failure stops the worker (the loop raises it); outages pass."""
        w = self.worker
        if classify(exc) is Kind.FAILURE and w.failure is None:
            w.failure = DatabaseFailure(what, exc)
            w.request_stop()

    def _watch(self, now: float) -> None:
        w = self.worker
        current = w.current
        if current is None:
            self._interrupted_at = None
            return
        if w.pending and now - current.started > w.settings.prefetch_hold:
            w.release_pending("held behind a long job")
        if self._interrupted_at is None:
            reason = None
            if now >= current.deadline:
                reason = "timeout"
            elif w.stop_requested_at is not None and now >= w.stop_requested_at + w.settings.grace_period:
                reason = "shutdown"
            if reason:
                log.warning("job.interrupt id=%s job=%s reason=%s", current.job.id, current.name, reason)
                self._interrupted_at = now
                w.interrupter.interrupt(reason)
        elif now >= self._interrupted_at + w.kill_after():
            self._hard_exit(current)

    def _hard_exit(self, current: "Running") -> None:
        """The job ignored its interruption: record the outcome ourselves and end the process."""
        w = self.worker
        reason = w.interrupter.reason or "timeout"
        log.error("job.stuck id=%s job=%s reason=%s: the job did not stop %.0fs after being "
                  "interrupted; ending the worker process", current.job.id, current.name, reason,
                  w.kill_after())
        if reason == "shutdown":
            w.record(current, Outcome("release", "stuck at shutdown"))
        else:
            w.record(current, Outcome("retry", "JobTimeout: ran longer than max_run_time and did "
                                               "not stop when interrupted; its worker was ended"))
        lifeline.end_descendants(1.0)  # what the stuck job started must not outlive it
        os._exit(0 if reason == "shutdown" else 70)


def heartbeat_gap(settings: "Settings") -> float:
    """A longer pause between our own heartbeats means we were cut off (see processes.reap)."""
    return min(2 * settings.heartbeat_interval + RETRY_HEARTBEAT, settings.stale_after / 2)


def db_error_line(exc: BaseException) -> str:
    """The driver's own first line of a database error, short enough for one log line."""
    return str(getattr(exc, "orig", exc)).splitlines()[0][:300]
