"""The work-queue verbs on ``delayed_jobs``: enqueue, claim, finish, fail, release.

Every verb that ends a claim matches the row on (id, locked_by, locked_at), the lock token a claim
wrote, so a process that lost its lock (reaped, or the row edited by hand) cannot finish, fail or
release a row that is no longer its own (delayed_job_active_record#193).
"""
from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence, TypeVar

from sqlalchemy import ColumnElement, Connection, Engine, bindparam, delete, func, insert, select, update
from sqlalchemy.exc import DBAPIError

from .engine import supports_returning
from .schema import delayed_jobs as dj
from .schema import utcnow, utcnow_plus

T = TypeVar("T")
LAST_ERROR_MAX = 16 * 1024
_RETRYABLE_MYSQL = {1213, 1205}  # deadlock, lock wait timeout


@dataclass(frozen=True)
class NewJob:
    """One job to enqueue: ``handler`` is the JSON from ``jobs.encode_handler``."""
    handler: str
    queue: str = "default"
    priority: int = 0
    run_at: dt.datetime | None = None  # naive UTC; None: now, by the database clock


@dataclass(frozen=True)
class ClaimedJob:
    id: int
    handler: str
    attempts: int  # including the attempt this claim started
    queue: str
    priority: int
    run_at: dt.datetime
    locked_at: dt.datetime
    locked_by: str


def cap_error(text: str, limit: int = LAST_ERROR_MAX) -> str:
    """Keep the head and the tail of a long traceback: the cause is at the end."""
    if len(text) <= limit:
        return text
    head = limit // 4
    tail = limit - head - 80
    return f"{text[:head]}\n... [{len(text) - head - tail} characters cut] ...\n{text[-tail:]}"


def retry_on_deadlock(fn: Callable[[], T], attempts: int = 6) -> T:
    """Run a short transaction again when MariaDB reports a deadlock or a lock wait timeout."""
    for i in range(attempts):
        try:
            return fn()
        except DBAPIError as exc:
            code = getattr(exc.orig, "args", [None])[0]
            if code not in _RETRYABLE_MYSQL or i == attempts - 1:
                raise
            time.sleep(0.01 * (2 ** i))
    raise AssertionError("unreachable")


def _row(job: NewJob) -> dict[str, Any]:
    return {"handler": job.handler, "queue": job.queue, "priority": job.priority, "run_at": job.run_at}


_INSERT = insert(dj).values(
    handler=bindparam("handler"), queue=bindparam("queue"), priority=bindparam("priority"),
    attempts=0, run_at=func.coalesce(bindparam("run_at", type_=dj.c.run_at.type), utcnow()),
    created_at=utcnow(), updated_at=utcnow())


def enqueue(conn: Connection, job: NewJob) -> int:
    """Insert one job on the caller's connection (the caller owns the transaction)."""
    result = conn.execute(_INSERT, _row(job))
    return int(result.inserted_primary_key[0])  # type: ignore[index]


def enqueue_many(conn: Connection, jobs: Sequence[NewJob]) -> list[int]:
    """Insert many jobs in one round of statements; ids in the order given."""
    if not jobs:
        return []
    if supports_returning(conn.engine):
        stmt = _INSERT.returning(dj.c.id, sort_by_parameter_order=True)
        return [int(r[0]) for r in conn.execute(stmt, [_row(j) for j in jobs])]
    return [enqueue(conn, j) for j in jobs]  # MySQL 8 has no RETURNING


class Claimer:
    """Claims runnable jobs for one worker process.

    A claim is one short transaction per priority level: ``SELECT … FOR UPDATE SKIP LOCKED`` on
    the claim index for ``priority = p AND run_at <= now``, then an UPDATE by primary key.  One
    range per priority keeps the scan to runnable rows: a single ``ORDER BY priority, run_at``
    would walk every future-dated row of a more urgent priority before reaching a runnable one.
    The set of pending priorities comes from ``MIN(priority) … > p`` probes that the index
    answers directly.  It is read again every ``priority_refresh`` seconds, and, while the worker
    is idle, as soon as ``MAX(id)`` shows that jobs were added since the last read (one primary-key
    lookup per idle poll), so a new job is claimed at the next poll whatever its priority.
    """

    def __init__(self, engine: Engine, locked_by: str, queues: Sequence[str] = (),
                 min_priority: int | None = None, max_priority: int | None = None,
                 priority_refresh: float = 1.0) -> None:
        self.engine = engine
        self.locked_by = locked_by
        self.min_priority = min_priority
        self.max_priority = max_priority
        self.priority_refresh = priority_refresh
        self._priorities: list[int] = []
        self._refreshed_at = 0.0
        self._max_id_seen = 0
        self._idle = True  # the last claim came back short
        self._max_id = select(func.max(dj.c.id))
        pending: list[ColumnElement[bool]] = [dj.c.failed_at.is_(None), dj.c.locked_at.is_(None)]
        if min_priority is not None:
            pending.append(dj.c.priority >= min_priority)
        if max_priority is not None:
            pending.append(dj.c.priority <= max_priority)
        self._next_priority = select(func.min(dj.c.priority)).where(
            *pending, dj.c.priority > bindparam("after"))
        self._first_priority = select(func.min(dj.c.priority)).where(*pending)
        where = [dj.c.failed_at.is_(None), dj.c.locked_at.is_(None),
                 dj.c.priority == bindparam("p"), dj.c.run_at <= utcnow()]
        if queues:
            where.append(dj.c.queue.in_(list(queues)))
        self._select = (
            select(dj.c.id, dj.c.handler, dj.c.attempts, dj.c.queue, dj.c.priority, dj.c.run_at,
                   utcnow().label("now"))
            .where(*where).order_by(dj.c.run_at, dj.c.id).limit(bindparam("n"))
            .with_for_update(skip_locked=True))
        self._lock = (update(dj).where(dj.c.id.in_(bindparam("ids", expanding=True)))
                      .values(locked_at=bindparam("now"), locked_by=locked_by,
                              attempts=dj.c.attempts + 1, updated_at=bindparam("now")))

    def _refresh_priorities(self, conn: Connection) -> None:
        # MAX(id) first: a job committed after this read makes the next idle poll refresh again.
        self._max_id_seen = int(conn.execute(self._max_id).scalar() or 0)
        found: list[int] = []
        p = conn.execute(self._first_priority).scalar()
        while p is not None and len(found) < 1000:
            found.append(int(p))
            p = conn.execute(self._next_priority, {"after": p}).scalar()
        self._priorities = found
        self._refreshed_at = time.monotonic()

    def _stale(self, conn: Connection) -> bool:
        if time.monotonic() - self._refreshed_at > self.priority_refresh:
            return True
        if not self._idle:
            return False
        with conn.begin():
            return int(conn.execute(self._max_id).scalar() or 0) > self._max_id_seen

    def claim(self, limit: int) -> list[ClaimedJob]:
        """Lock up to ``limit`` runnable jobs, most urgent first; counts one attempt for each."""
        jobs = retry_on_deadlock(lambda: self._claim_once(limit))
        self._idle = len(jobs) < limit
        return jobs

    def _claim_once(self, limit: int) -> list[ClaimedJob]:
        claimed: list[ClaimedJob] = []
        with self.engine.connect() as conn:
            if self._stale(conn):
                with conn.begin():
                    self._refresh_priorities(conn)
            for p in self._priorities:
                with conn.begin():
                    rows = conn.execute(self._select, {"p": p, "n": limit - len(claimed)}).all()
                    if not rows:
                        continue
                    now = rows[0].now
                    conn.execute(self._lock, {"ids": [r.id for r in rows], "now": now})
                claimed += [ClaimedJob(r.id, r.handler, r.attempts + 1, r.queue, r.priority,
                                       r.run_at, now, self.locked_by) for r in rows]
                if len(claimed) >= limit:
                    break
        return claimed


def _mine(job: ClaimedJob) -> list[Any]:
    return [dj.c.id == job.id, dj.c.locked_by == job.locked_by, dj.c.locked_at == job.locked_at]


def finish(engine: Engine, job: ClaimedJob) -> bool:
    """Delete a job that succeeded; False when this process no longer holds its lock."""
    def run() -> int:
        with engine.begin() as conn:
            return conn.execute(delete(dj).where(*_mine(job))).rowcount
    return retry_on_deadlock(run) == 1


def fail(engine: Engine, job: ClaimedJob, error: str, retry_in: float | None) -> bool:
    """Record a failed attempt: reschedule in ``retry_in`` seconds, or fail for good if None."""
    values: dict[str, Any] = {"locked_at": None, "locked_by": None, "last_error": cap_error(error),
                              "updated_at": utcnow()}
    if retry_in is None:
        values["failed_at"] = utcnow()
    else:
        values["run_at"] = utcnow_plus(bindparam("delay", retry_in))

    def run() -> int:
        with engine.begin() as conn:
            return conn.execute(update(dj).where(*_mine(job)).values(**values)).rowcount
    return retry_on_deadlock(run) == 1


def release(engine: Engine, jobs: Sequence[ClaimedJob], delay: float = 0.0) -> int:
    """Hand claimed jobs back unrun or not yet due: the attempt they were charged is returned.

    Used on shutdown, for prefetched jobs a long job would hold up, and for ``Reschedule``.
    """
    values: dict[str, Any] = {"locked_at": None, "locked_by": None, "attempts": dj.c.attempts - 1,
                              "updated_at": utcnow()}
    if delay > 0:
        values["run_at"] = utcnow_plus(bindparam("delay", delay))

    def run() -> int:
        with engine.begin() as conn:
            return sum(conn.execute(update(dj).where(*_mine(job)).values(**values)).rowcount
                       for job in jobs)
    return retry_on_deadlock(run) if jobs else 0


def release_held(engine: Engine, locked_by: str) -> list[int]:
    """Release every row locked under ``locked_by``, for a worker that holds no job it knows of.

    A claim whose COMMIT reached the server but whose answer was lost with the connection leaves
    rows locked by a live worker that never learnt of them; the reaper would never free them, as
    the worker keeps heartbeating.  After such an error the worker calls this before it claims.
    """
    def run() -> list[int]:
        with engine.begin() as conn:
            ids = [r[0] for r in conn.execute(select(dj.c.id).where(dj.c.locked_by == locked_by)
                                              .with_for_update())]
            if ids:
                conn.execute(update(dj).where(dj.c.id.in_(ids), dj.c.locked_by == locked_by).values(
                    locked_at=None, locked_by=None, attempts=dj.c.attempts - 1, updated_at=utcnow()))
        return ids
    return retry_on_deadlock(run)

