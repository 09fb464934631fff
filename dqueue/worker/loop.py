"""One worker process: claim, run, record, repeat.

Signal handlers (TERM, INT, HUP) only set ``stop_requested_at``; the loop notices it between
jobs and polls, and the monitor thread enforces the grace period for a job that is still
running.  A lost supervisor (lifeline.py) and recycling (recycling.py) stop the loop the same
way.  Database outages are waited out; a permission or schema failure (store/failures.py) ends
the worker with EXIT_CONFIG.
"""
from __future__ import annotations

import logging
import os
import random
import select
import signal
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence, TypeVar

from setproctitle import setproctitle
from sqlalchemy.exc import DBAPIError

from .. import jobs
from ..config import Settings
from ..doorbell import Doorbell
from ..netbell import RING_GAP, NetBell, wanted
from ..store import make_engine, processes, queue
from ..store.claim import Claimer
from ..store.direct import Direct
from ..store.failures import DatabaseFailure, Kind, classify
from ..store.queue import ClaimedJob
from . import executor, lifeline
from .executor import Outcome
from .monitor import Monitor, db_error_line
from .recycling import Recycler
from .supervisor import EXIT_RECYCLE, STOP_SIGNALS

log = logging.getLogger("dqueue.worker")
ECHO_DELAY = 0.01  # a second look after a ring that found nothing (see run)
CHILDREN_WAIT = 5.0  # seconds between TERM and KILL for what a job left running, at most
# An orphaned worker (its supervisor died) gives a stuck job this long after interrupting it,
# at most, so that nothing of a dead supervisor runs past grace_period + 5 s (issue 7).
ORPHAN_KILL_AFTER = 3.0
T = TypeVar("T")


@dataclass
class Running:
    job: ClaimedJob
    name: str
    jobdef: jobs.JobDef | None
    max_attempts: int
    started: float
    deadline: float
    recorded: bool = field(default=False)


class Worker:
    def __init__(self, settings: Settings, queues: Sequence[str] = (), min_priority: int | None = None,
                 max_priority: int | None = None, burst: bool = False) -> None:
        self.settings = settings
        self.queues = tuple(queues)
        self.min_priority = min_priority
        self.max_priority = max_priority
        self.burst = burst
        self.engine = make_engine(settings.resolved_database_url(), pre_ping=False, timeouts=True,
                                  pool_size=2, max_overflow=2)
        self.interrupter = executor.Interrupter()
        self.stop_requested_at: float | None = None
        self.signalled: int | None = None
        self.lifeline = lifeline.inherited()
        self.failure: DatabaseFailure | None = None  # set once: the worker stops, exits EXIT_CONFIG
        self.recycler = Recycler(settings)
        self.recycle_reason: str | None = None
        self.current: Running | None = None
        self.pending: list[ClaimedJob] = []
        self._lock = threading.Lock()  # guards pending and Running.recorded
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_w.setblocking(False)  # written from a signal handler: must never block
        self._db_failures = 0
        self._claim_uncertain = False  # a claim failed: rows may be locked in our name unknowingly
        self.registration: processes.Registration
        self.name = ""
        self._shown = ""
        self.doorbell: Doorbell | None = None
        self.netbell: NetBell | None = None
        # The main thread's autocommit connection: idle polls and job outcomes, one round trip each.
        self.direct = Direct(self.engine)

    # -- lifecycle ---------------------------------------------------------------------------
    def run(self) -> int:
        """Work until stopped; 0, or EXIT_RECYCLE when the worker asks to be replaced.

        Raises DatabaseFailure (after cleaning up) on a permission or schema problem.
        """
        self._install_signals()
        lifeline.become_subreaper()  # our jobs' orphaned children come to us, to be ended at stop
        registration = self._until_db(self._register, "register")
        assert registration is not None  # _until_db only gives up when told to
        self.registration, self.name = registration, registration.name
        self.doorbell = Doorbell.open(self.settings.doorbell_folder())
        claimer = Claimer(self.engine, self.name, self.queues, self.min_priority,
                          self.max_priority, self.settings.priority_refresh, self.direct)
        monitor = Monitor(self)
        monitor.start()
        log.info("worker.start process=%r queues=%s burst=%s", self.name,
                 ",".join(self.queues) or "*", self.burst)
        try:
            self._loop(claimer)
        except DatabaseFailure as exc:
            self.failure = self.failure or exc
        finally:
            monitor.stop()
            claimer.close()
            if self.doorbell is not None:
                self.doorbell.close()
            if self.netbell is not None:
                self.netbell.close()
            self.release_pending("worker stopping")
            ended = lifeline.end_descendants(min(self.kill_after(), CHILDREN_WAIT))
            if ended:
                log.warning("worker.ended_children process=%r pids=%s: left running by jobs",
                            self.name, ended)
            self._deregister()
        if self.signalled is not None:
            log.info("worker.signal process=%r %s: stopped gracefully", self.name,
                     signal.Signals(self.signalled).name)
        if self.failure is not None:
            raise self.failure
        if self.recycle_reason is not None:
            log.info("worker.recycle process=%r: %s; the supervisor starts a fresh worker",
                     self.name, self.recycle_reason)
            return EXIT_RECYCLE
        log.info("worker.stop process=%r", self.name)
        return 0

    def _loop(self, claimer: Claimer) -> None:
        rung = False
        while self.stop_requested_at is None and not self.orphaned():
            self._title("idle")
            batch = self._claim(claimer)
            if batch is None:
                continue
            if not batch:
                if self.burst:
                    log.info("worker.burst_done process=%r: no runnable job left", self.name)
                    break
                if rung:
                    # Rung, but nothing found: an enqueue joined to a caller's transaction
                    # rings from SQLAlchemy's commit event, just *before* its COMMIT.
                    rung = False
                    self._sleep(ECHO_DELAY)
                    continue
                rung = self._sleep(self.settings.sleep_delay * random.uniform(0.8, 1.2))
                continue
            rung = False
            self._run_batch(batch)

    def request_stop(self) -> None:
        """Ask the loop to stop after the current job; safe from a signal handler (sets flags)."""
        if self.stop_requested_at is None:
            self.stop_requested_at = time.monotonic()
        try:
            self._wake_w.send(b"x")
        except OSError:
            pass  # full: the loop is being woken already

    def _install_signals(self) -> None:
        def on_signal(signum: int, frame: Any) -> None:
            self.signalled = signum
            self.request_stop()
        for sig in STOP_SIGNALS:  # HUP too: a hang-up must never kill a worker mid-job
            signal.signal(sig, on_signal)
        self.interrupter.install()

    def _register(self) -> processes.Registration:
        """Register, with a network doorbell where the database is reached over the network."""
        if self.netbell is None and wanted(self.settings.network_doorbell, self.engine.dialect.name):
            self.netbell = NetBell.open(processes.local_address(self.engine))
        return processes.register(self.engine, "worker", self.settings.hostname, os.getpid(),
                                  self.queues, self.netbell.address if self.netbell else None)

    def _deregister(self) -> None:
        try:
            processes.deregister(self.engine, self.registration)
        except DBAPIError as exc:
            log.warning("worker.deregister_failed process=%r error=%s", self.name, db_error_line(exc))

    # -- claiming ----------------------------------------------------------------------------
    def _claim(self, claimer: Claimer) -> list[ClaimedJob] | None:
        try:
            if self._claim_uncertain:
                released = queue.release_held(self.engine, self.name)
                self._claim_uncertain = False
                if released:
                    log.warning("worker.reconciled released=%s: a claim committed while its "
                                "connection was lost; those jobs go back to the queue", released)
            jobs_ = claimer.claim(self.settings.batch_size)
        except DBAPIError as exc:
            # The claim may have committed without us hearing of it (see queue.release_held).
            self._claim_uncertain = True
            self._fail_on_failure(exc, "claim")
            self._db_unavailable(exc, "claim")
            return None
        self._db_failures = 0
        return jobs_

    def _db_unavailable(self, exc: BaseException, what: str) -> None:
        self._db_failures += 1
        delay = min(0.25 * 2 ** (self._db_failures - 1), 30.0) * random.uniform(0.8, 1.2)
        log.warning("db.unavailable during=%s retry_in=%.2fs error=%s", what, delay, db_error_line(exc))
        self._sleep(delay)

    def _until_db(self, fn: Callable[[], T], what: str, give_up: Callable[[], bool] = lambda: False) -> T | None:
        """Call ``fn`` until the database answers (reconnecting with backoff), or ``give_up()``."""
        while True:
            try:
                result = fn()
                self._db_failures = 0
                return result
            except DBAPIError as exc:
                if not self._fail_on_failure(exc, what) or give_up():
                    log.error("db.gave_up during=%s error=%s", what, db_error_line(exc))
                    return None
                self._db_unavailable(exc, what)

    def _fail_on_failure(self, exc: DBAPIError, what: str) -> bool:
        """Raise DatabaseFailure for a permission or schema error (the worker stops and exits
        EXIT_CONFIG); True for an outage, to be retried.  After the first failure, and on the
        monitor thread, the failure is only noted (False): cleanup goes on as far as it can."""
        if classify(exc) is Kind.OUTAGE:
            return True
        failure = DatabaseFailure(what, exc)
        if self.failure is None and threading.current_thread() is threading.main_thread():
            raise failure from exc
        if self.failure is None:
            self.failure = failure
            self.request_stop()
        return False

    def _sleep(self, seconds: float) -> bool:
        """Wait ``seconds``, or less if a signal arrives or a doorbell rings (an enqueue); True
        when a doorbell ended the wait.

        A network ring counts only RING_GAP after the poll that preceded this sleep, and after
        noise (see NetBell.answer) that socket is left alone for a while, so a flood of datagrams
        cannot turn the worker into a busy loop.
        """
        started = time.monotonic()
        deadline, now = started + seconds, started
        while now < deadline:
            net = self.netbell
            listen = net is not None and now >= net.quiet_until
            orphan_watch = self.lifeline if self.lifeline.fd is not None and \
                self.stop_requested_at is None else None
            waiting: list[Any] = [b for b in (self._wake_r, self.doorbell, net if listen else None,
                                              orphan_watch) if b is not None]
            until = deadline if listen or net is None else min(deadline, net.quiet_until)
            readable, _, _ = select.select(waiting, [], [], until - now)
            if self._wake_r in readable:
                self._wake_r.recv(4096)
                return False
            if orphan_watch is not None and orphan_watch in readable and self.orphaned():
                return False
            if self.doorbell is not None and self.doorbell in readable:
                self.doorbell.drain()
                return True
            now = time.monotonic()
            if net is not None and net in readable:
                if now < started + RING_GAP:
                    net.quiet_until = started + RING_GAP  # answered once the gap is over
                elif net.answer():
                    return True
        return False

    # -- running -----------------------------------------------------------------------------
    def _run_batch(self, batch: list[ClaimedJob]) -> None:
        with self._lock:
            self.pending = list(batch)
        # Per job too: a claim under way as the supervisor died may return a later job (run() releases it).
        while self.stop_requested_at is None and not self.orphaned():
            with self._lock:
                if not self.pending:
                    return
                job = self.pending.pop(0)
            self._execute(job)
            lifeline.reap_zombies()
            reason = self.recycler.after_job()
            if reason is not None and self.recycle_reason is None:
                self.recycle_reason = reason
                self.request_stop()

    def release_pending(self, why: str) -> None:
        with self._lock:
            pending, self.pending = self.pending, []
        if pending:
            n = self._until_db(lambda: queue.release(self.engine, pending), "release",
                               give_up=self._past_grace)
            log.info("worker.released count=%s ids=%s why=%r", n, [j.id for j in pending], why)

    def _execute(self, job: ClaimedJob) -> None:
        s = self.settings
        try:
            jobdef, args = jobs.resolve(job.handler)
        except (jobs.HandlerError, RecursionError, MemoryError) as exc:
            # RecursionError: a handler of 100,000 nested '[' (issue 7); its own job fails, no one else.
            running = Running(job, "?", None, s.max_attempts, time.monotonic(), float("inf"))
            self.record(running, Outcome("failed", f"HandlerError: {exc}"))
            return
        max_attempts = jobdef.retry.max_attempts or s.max_attempts
        now = time.monotonic()
        running = Running(job, jobdef.name, jobdef, max_attempts, now,
                          now + (jobdef.max_run_time or s.max_run_time))
        if job.attempts > max_attempts:
            # Reachable only when earlier attempts died with their worker (killed, OOM): a job
            # that kills its worker must not be retried for ever (delayed_job#415).
            self.record(running, Outcome("failed", f"gave up: attempt {job.attempts} exceeds "
                        f"max_attempts {max_attempts}; the last attempt(s) lost their worker"))
            return
        self._title(f"running job {job.id} ({jobdef.name}) since {time.strftime('%H:%M:%S')}")
        log.debug("job.start id=%s job=%s queue=%s attempt=%s/%s", job.id, jobdef.name, job.queue,
                  job.attempts, max_attempts)
        self.current = running
        context = jobs.JobContext(job.id, job.attempts, max_attempts, s, self.engine)
        try:
            with jobs.running(context):
                outcome = executor.run(jobdef, args, self.interrupter)
        finally:
            self.current = None
        self.record(running, outcome)

    def record(self, running: Running, outcome: Outcome) -> None:
        """Write a job's outcome once, retrying through a database outage."""
        with self._lock:
            if running.recorded:
                return
            running.recorded = True
        job, elapsed = running.job, time.monotonic() - running.started
        kind, delay = outcome.kind, outcome.delay
        if kind == "retry" and job.attempts >= running.max_attempts:
            kind = "failed"
        if kind == "retry":
            policy = running.jobdef.retry if running.jobdef else jobs.RetryPolicy()
            delay = policy.delay(job.attempts, self.settings.backoff_base, self.settings.backoff_max)
        # The monitor thread records too (a job that would not stop): it must use the pool.
        bind = self.direct if threading.current_thread() is threading.main_thread() else self.engine
        action: Callable[[], bool | int] = {
            "done": lambda: queue.finish(bind, job),
            "retry": lambda: queue.fail(bind, job, outcome.error, delay),
            "failed": lambda: queue.fail(bind, job, outcome.error, None),
            "release": lambda: queue.release(bind, [job]),
            "reschedule": lambda: queue.release(bind, [job], delay),
        }[kind]
        ok = self._until_db(action, f"record {kind} of job {job.id}", give_up=self._past_grace)
        ids = f"id={job.id} job={running.name} queue={job.queue} attempt={job.attempts}/{running.max_attempts}"
        if not ok:
            # Either another process holds the row now (reaped, or edited by hand), or our own
            # write committed while the connection was lost and the retry found it already done.
            log.warning("job.lock_lost %s outcome=%s: the row is no longer locked by this worker; "
                        "the outcome was not written now (if the connection was lost while "
                        "committing, it may have been written before)", ids, kind)
        elif kind == "done":
            log.info("job.done %s seconds=%.4f", ids, elapsed)
        elif kind == "retry":
            log.warning("job.failed %s retry_in=%.1fs error=%s", ids, delay, _last_line(outcome.error))
        elif kind == "failed":
            log.error("job.failed_permanently %s error=%s", ids, _last_line(outcome.error))
        else:
            log.info("job.%s %s delay=%.1fs note=%s", kind, ids, delay, outcome.error)

    def orphaned(self) -> bool:
        """Whether our supervisor is gone (then stop, as on SIGTERM); checked before every claim and job."""
        if not self.lifeline.broken():
            return False
        if self.stop_requested_at is None:
            log.error("worker.orphaned process=%r: the supervisor is gone; stopping", self.name)
            self.request_stop()
        return True

    def kill_after(self) -> float:
        """How long an interrupted job may ignore its interruption before the process ends."""
        if self.lifeline.broken():
            return min(self.settings.kill_after, ORPHAN_KILL_AFTER)
        return self.settings.kill_after

    def _past_grace(self) -> bool:
        started = self.stop_requested_at
        return started is not None and time.monotonic() > started + self.settings.grace_period

    def _title(self, what: str) -> None:
        if what != self._shown:  # an idle worker polls many times a second: set it on change only
            self._shown = what
            setproctitle(f"dqueue worker {self.name}: {what}")


def _last_line(text: str) -> str:
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1][:500] if lines else ""
