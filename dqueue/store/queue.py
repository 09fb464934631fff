"""The work-queue verbs on ``delayed_jobs``: enqueue, claim, finish, fail, release.

Every verb that ends a claim matches the row on (id, locked_by, locked_at), the lock token a claim
wrote, so a process that lost its lock (reaped, or the row edited by hand) cannot finish, fail or
release a row that is no longer its own (delayed_job_active_record#193).
"""
from __future__ import annotations

import datetime as dt
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Sequence, TypeVar

from sqlalchemy import Connection, Engine, bindparam, delete, func, insert, select, update
from sqlalchemy.exc import DBAPIError

from ..backoff import Backoff
from ..masking import mask
from .direct import Direct
from .engine import SQLITE_FORMAT, supports_returning
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
    """Mask secrets (every job's error, not only Zenodo's: issue 7), then keep the head and the
    tail of a long traceback: the cause is at the end.  Masking first, so no cut leaves half a secret."""
    text = mask(text)
    if len(text) <= limit:
        return text
    head = limit // 4
    tail = limit - head - 80
    return f"{text[:head]}\n... [{len(text) - head - tail} characters cut] ...\n{text[-tail:]}"


DEADLOCK_BACKOFF = Backoff(attempts=6, base=0.01, max=1.0, jitter=0)  # 10 ms, doubling: 0.31 s in all


def retry_on_deadlock(fn: Callable[[], T], attempts: int = DEADLOCK_BACKOFF.attempts) -> T:
    """Run a short transaction again when MariaDB reports a deadlock or a lock wait timeout."""
    for i in range(attempts):
        try:
            return fn()
        except DBAPIError as exc:
            code = getattr(exc.orig, "args", [None])[0]
            if code not in _RETRYABLE_MYSQL or i == attempts - 1:
                raise
            time.sleep(DEADLOCK_BACKOFF.delay(i + 1))
    raise AssertionError("unreachable")


Bind = Engine | Connection  # or a Direct, for the verbs that end a claim (one statement each)


@contextmanager
def transaction(bind: Bind) -> Iterator[Connection]:
    """A transaction on a held Connection (the worker keeps one), or on one from the pool."""
    if isinstance(bind, Connection):
        with bind.begin():
            yield bind
    else:
        with bind.begin() as conn:
            yield conn


def _row(job: NewJob) -> dict[str, Any]:
    return {"handler": job.handler, "queue": job.queue, "priority": job.priority, "run_at": job.run_at}


_INSERT = insert(dj).values(
    handler=bindparam("handler"), queue=bindparam("queue"), priority=bindparam("priority"),
    attempts=0, run_at=func.coalesce(bindparam("run_at", type_=dj.c.run_at.type), utcnow()),
    created_at=utcnow(), updated_at=utcnow())


_COMPILED_INSERT: dict[Any, tuple[str, list[str] | None]] = {}


def _insert_args(dialect: Any, job: NewJob) -> tuple[str, Any]:
    """The INSERT for ``dialect`` as SQL text, compiled once, and its arguments for ``job``.

    Enqueue is what an application calls in its own request loop: SQLAlchemy's per-call
    statement handling cost about as much client CPU as the INSERT's round trip.
    """
    if dialect not in _COMPILED_INSERT:
        compiled = _INSERT.compile(dialect=dialect)
        _COMPILED_INSERT[dialect] = (compiled.string, compiled.positiontup)
    sql, order = _COMPILED_INSERT[dialect]
    params = {**_row(job), "attempts": 0}
    if job.run_at is not None and dialect.name == "sqlite":
        params["run_at"] = job.run_at.strftime(SQLITE_FORMAT)  # what SQLAlchemy's DateTime stores
    return sql, (tuple(params[k] for k in order) if order else params)


def enqueue(conn: Connection, job: NewJob) -> int:
    """Insert one job on the caller's connection (the caller owns the transaction)."""
    sql, args = _insert_args(conn.dialect, job)
    return int(conn.exec_driver_sql(sql, args).lastrowid)


def insert_uncommitted(dbapi_conn: Any, dialect: Any, job: NewJob) -> int:
    """Insert one job on a DBAPI connection, leaving the COMMIT to the caller (see Client)."""
    sql, args = _insert_args(dialect, job)
    cursor = dbapi_conn.cursor()
    try:
        cursor.execute(sql, args)
        return int(cursor.lastrowid)
    finally:
        cursor.close()


def enqueue_many(conn: Connection, jobs: Sequence[NewJob]) -> list[int]:
    """Insert many jobs in one round of statements; ids in the order given."""
    if not jobs:
        return []
    if supports_returning(conn.engine):
        stmt = _INSERT.returning(dj.c.id, sort_by_parameter_order=True)
        return [int(r[0]) for r in conn.execute(stmt, [_row(j) for j in jobs])]
    return [enqueue(conn, j) for j in jobs]  # MySQL 8 has no RETURNING


# The statements that end a claim are built once: building one per job (and SQLAlchemy's cache
# key for it) cost as much client CPU as the round trip itself.
# (Bind names differ from column names: UPDATE reserves those for its SET clause.)
_MINE = (dj.c.id == bindparam("job_id"), dj.c.locked_by == bindparam("holder"),
         dj.c.locked_at == bindparam("claimed_at", type_=dj.c.locked_at.type))
_FINISH = delete(dj).where(*_MINE)
_UNLOCK = {"locked_at": None, "locked_by": None, "updated_at": utcnow()}
_RETRY = update(dj).where(*_MINE).values(
    **_UNLOCK, last_error=bindparam("error"), run_at=utcnow_plus(bindparam("delay")))
_FAIL = update(dj).where(*_MINE).values(**_UNLOCK, last_error=bindparam("error"), failed_at=utcnow())
_RELEASE = update(dj).where(*_MINE).values(**_UNLOCK, attempts=dj.c.attempts - 1)
_RELEASE_LATER = update(dj).where(*_MINE).values(
    **_UNLOCK, attempts=dj.c.attempts - 1, run_at=utcnow_plus(bindparam("delay")))


def _lock_of(job: ClaimedJob, **extra: Any) -> dict[str, Any]:
    return {"job_id": job.id, "holder": job.locked_by, "claimed_at": job.locked_at, **extra}


def _one_statement(bind: Bind | Direct, stmt: Any, params: dict[str, Any]) -> int:
    if isinstance(bind, Direct):
        return retry_on_deadlock(lambda: bind.execute(stmt, params))
    def run() -> int:
        with transaction(bind) as conn:
            return int(conn.execute(stmt, params).rowcount)
    return retry_on_deadlock(run)


def finish(bind: Bind | Direct, job: ClaimedJob) -> bool:
    """Delete a job that succeeded; False when this process no longer holds its lock."""
    return _one_statement(bind, _FINISH, _lock_of(job)) == 1


def fail(bind: Bind | Direct, job: ClaimedJob, error: str, retry_in: float | None) -> bool:
    """Record a failed attempt: reschedule in ``retry_in`` seconds, or fail for good if None."""
    params = _lock_of(job, error=cap_error(error))
    if retry_in is not None:
        params["delay"] = retry_in
    return _one_statement(bind, _FAIL if retry_in is None else _RETRY, params) == 1


def release(bind: Bind | Direct, jobs: Sequence[ClaimedJob], delay: float = 0.0) -> int:
    """Hand claimed jobs back unrun or not yet due: the attempt they were charged is returned.

    Used on shutdown, for prefetched jobs a long job would hold up, and for ``Reschedule``.
    """
    stmt = _RELEASE_LATER if delay > 0 else _RELEASE
    if isinstance(bind, Direct):
        return sum(_one_statement(bind, stmt, _lock_of(job, delay=delay)) for job in jobs)

    def run() -> int:
        with transaction(bind) as conn:
            return sum(conn.execute(stmt, _lock_of(job, delay=delay)).rowcount for job in jobs)
    return retry_on_deadlock(run) if jobs else 0


def release_held(bind: Bind, locked_by: str) -> list[int]:
    """Release every row locked under ``locked_by``, for a worker that holds no job it knows of.

    A claim whose COMMIT reached the server but whose answer was lost with the connection leaves
    rows locked by a live worker that never learnt of them; the reaper would never free them, as
    the worker keeps heartbeating.  After such an error the worker calls this before it claims.
    """
    def run() -> list[int]:
        with transaction(bind) as conn:
            ids = [r[0] for r in conn.execute(select(dj.c.id).where(dj.c.locked_by == locked_by)
                                              .with_for_update())]
            if ids:
                conn.execute(update(dj).where(dj.c.id.in_(ids), dj.c.locked_by == locked_by).values(
                    locked_at=None, locked_by=None, attempts=dj.c.attempts - 1, updated_at=utcnow()))
        return ids
    return retry_on_deadlock(run)



def exists(conn: Connection, job_id: int) -> bool:
    """Whether a job row is still in the table (pending, running or failed)."""
    return conn.execute(select(dj.c.id).where(dj.c.id == job_id)).first() is not None


def pending(conn: Connection, job_id: int) -> bool:
    """Whether a job is still to run or running (in the table and not failed for good)."""
    return conn.execute(select(dj.c.id).where(dj.c.id == job_id, dj.c.failed_at.is_(None))).first() is not None


def run_now(conn: Connection, job_id: int) -> bool:
    """Make a waiting job due now (it was waiting for something that just happened)."""
    return conn.execute(update(dj).where(dj.c.id == job_id, dj.c.locked_at.is_(None),
                                         dj.c.failed_at.is_(None), dj.c.run_at > utcnow())
                        .values(run_at=utcnow(), updated_at=utcnow())).rowcount == 1
