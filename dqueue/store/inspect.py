"""What operators ask of the work queue: list, show, retry, delete, stats, and the worker registry.

A job's state is derived from delayed_job's columns and the database clock, never stored:

    failed     failed_at IS NOT NULL
    running    not failed, locked_at IS NOT NULL
    ready      not failed, not locked, run_at <= now
    scheduled  not failed, not locked, run_at > now

Each statement reads the clock once and binds it, so every row of one answer is judged against
the same instant (on SQLite, ``dq_utcnow()`` in a WHERE clause would also be a Python call per row).
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from sqlalchemy import Connection, Engine, case, delete, func, literal, select, update
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import ColumnElement, FunctionElement
from sqlalchemy.types import String

from .. import jobs
from .processes import list_processes
from .queue import retry_on_deadlock
from .schema import Timestamp, utcnow
from .schema import delayed_jobs as dj

STATES = ("ready", "scheduled", "running", "failed")
ERROR_HEAD = 500  # characters of last_error fetched per listed job: only its first line is shown
BATCH = 1000  # rows per transaction when retrying every failed job: short locks, by primary key


class handler_job(FunctionElement[str]):
    """The handler's ``"job"`` string, or NULL when the handler is not JSON or lacks one.

    Done in SQL so that a listing never fetches handlers (up to 16 MB each) and ``--job`` filters
    in the database; guarded by JSON_VALID because a malformed handler must list, not break the query.
    """
    type = String()
    inherit_cache = True


@compiles(handler_job, "sqlite")
def _handler_job_sqlite(element: Any, compiler: Any, **kw: Any) -> str:
    h = compiler.process(next(iter(element.clauses)), **kw)
    # SQLite's CASE is lazy, so json_type never sees invalid JSON (it would raise there).
    return (f"CASE WHEN json_valid({h}) THEN CASE json_type({h}, '$.job') "
            f"WHEN 'text' THEN json_extract({h}, '$.job') END END")


@compiles(handler_job, "mysql")
@compiles(handler_job, "mariadb")
def _handler_job_mysql(element: Any, compiler: Any, **kw: Any) -> str:
    h = compiler.process(next(iter(element.clauses)), **kw)
    # MySQL's JSON_EXTRACT raises on invalid JSON (MariaDB warns); IF evaluates one branch only.
    # JSON_UNQUOTE's result is utf8mb4_bin, so names compare case-sensitively, like the registry.
    return (f"IF(JSON_VALID({h}), IF(JSON_TYPE(JSON_EXTRACT({h}, '$.job')) = 'STRING', "
            f"JSON_UNQUOTE(JSON_EXTRACT({h}, '$.job')), NULL), NULL)")


def _now(conn: Connection) -> dt.datetime:
    return conn.execute(select(utcnow())).scalar_one()  # type: ignore[no-any-return]


def state_of(now: dt.datetime) -> ColumnElement[str]:
    """The state of a row as a SQL expression (the order of the tests is the definition)."""
    at = literal(now, Timestamp)
    return case((dj.c.failed_at.is_not(None), "failed"), (dj.c.locked_at.is_not(None), "running"),
                (dj.c.run_at <= at, "ready"), else_="scheduled")


def in_state(state: str, now: dt.datetime) -> list[ColumnElement[bool]]:
    """A state as plain column tests, which the claim index (failed_at, locked_at, …) can serve."""
    if state not in STATES:
        raise ValueError(f"unknown state {state!r}; one of {', '.join(STATES)}")
    if state == "failed":
        return [dj.c.failed_at.is_not(None)]
    if state == "running":
        return [dj.c.failed_at.is_(None), dj.c.locked_at.is_not(None)]
    at = literal(now, Timestamp)
    due = dj.c.run_at <= at if state == "ready" else dj.c.run_at > at
    return [dj.c.failed_at.is_(None), dj.c.locked_at.is_(None), due]


# Listing order: newest first across states; within one state, what an operator looks at first.
_ORDER: dict[str | None, tuple[Any, ...]] = {
    None: (dj.c.id.desc(),),
    "ready": (dj.c.priority, dj.c.run_at, dj.c.id),  # the order workers claim them
    "scheduled": (dj.c.run_at, dj.c.id),  # next due first
    "running": (dj.c.locked_at, dj.c.id),  # longest running first
    "failed": (dj.c.failed_at.desc(), dj.c.id.desc()),  # latest failure first
}


@dataclass(frozen=True)
class JobSummary:
    id: int
    queue: str
    priority: int
    state: str
    attempts: int
    job: str | None  # None: the handler is malformed
    run_at: dt.datetime
    locked_by: str | None
    error: str | None  # the first line of last_error


def list_jobs(engine: Engine, queue: str | None = None, state: str | None = None,
              job: str | None = None, limit: int = 50) -> list[JobSummary]:
    """Up to ``limit`` jobs, filtered, in the ``_ORDER`` of the state asked for."""
    with engine.connect() as conn:
        now = _now(conn)
        stmt = select(dj.c.id, dj.c.queue, dj.c.priority, state_of(now).label("state"),
                      dj.c.attempts, handler_job(dj.c.handler).label("job"), dj.c.run_at,
                      dj.c.locked_by, func.substr(dj.c.last_error, 1, ERROR_HEAD).label("error"))
        if state is not None:
            stmt = stmt.where(*in_state(state, now))
        if queue is not None:
            stmt = stmt.where(dj.c.queue == queue)
        if job is not None:
            stmt = stmt.where(handler_job(dj.c.handler) == job)
        rows = conn.execute(stmt.order_by(*_ORDER[state]).limit(limit)).all()
    return [JobSummary(r.id, r.queue, r.priority, r.state, r.attempts, r.job, r.run_at,
                       r.locked_by, _first_line(r.error)) for r in rows]


def _first_line(text: str | None) -> str | None:
    return (text or "").strip().split("\n", 1)[0] or None


@dataclass(frozen=True)
class JobDetail:
    columns: dict[str, Any]  # every delayed_jobs column as stored
    state: str
    now: dt.datetime  # the database clock the state was judged by
    job: str | None  # from the decoded handler; None when it is malformed
    args: dict[str, Any] | None
    handler_error: str | None  # why the handler cannot be decoded


def get_job(engine: Engine, job_id: int) -> JobDetail | None:
    with engine.connect() as conn:
        now = _now(conn)
        row = conn.execute(select(dj, state_of(now).label("state")).where(dj.c.id == job_id)).first()
    if row is None:
        return None
    columns = {c.name: row._mapping[c] for c in dj.columns}
    try:
        name, args = jobs.decode_handler(columns["handler"])
    except jobs.HandlerError as exc:
        return JobDetail(columns, row.state, now, None, None, str(exc))
    return JobDetail(columns, row.state, now, name, args, None)


@dataclass
class Outcome:
    """What a retry or delete did, id by id."""
    done: list[int] = field(default_factory=list)
    running: list[int] = field(default_factory=list)  # refused: a worker holds the lock
    missing: list[int] = field(default_factory=list)  # no such job
    ready: list[int] = field(default_factory=list)  # retry only: already runnable, left alone


_RETRY = {"attempts": 0, "failed_at": None, "run_at": utcnow(), "updated_at": utcnow()}


def retry_jobs(engine: Engine, ids: Sequence[int]) -> Outcome:
    """Make failed or scheduled jobs runnable now with a fresh set of attempts.

    last_error is kept for history.  Locked jobs are refused even if marked failed: clearing
    failed_at would leave them locked, where no worker claims them.
    """
    return retry_on_deadlock(partial(_change, engine, ids, retry=True, force=False))


def delete_jobs(engine: Engine, ids: Sequence[int], force: bool = False) -> Outcome:
    """Delete jobs; running ones only with ``force`` (their worker then fails to record a result)."""
    return retry_on_deadlock(partial(_change, engine, ids, retry=False, force=force))


def _change(engine: Engine, ids: Sequence[int], retry: bool, force: bool) -> Outcome:
    out = Outcome()
    with engine.begin() as conn:
        now = _now(conn)
        # FOR UPDATE: a claim in flight commits first, and then we see its lock and refuse.
        found = {r.id: r for r in conn.execute(
            select(dj.c.id, state_of(now).label("state"), dj.c.locked_at)
            .where(dj.c.id.in_(sorted(set(ids)))).with_for_update())}
        for job_id in dict.fromkeys(ids):
            row = found.get(job_id)
            bucket = (out.missing if row is None
                      else out.running if row.locked_at is not None and not force
                      else out.ready if retry and row.state == "ready" else out.done)
            bucket.append(job_id)
        if out.done:
            stmt = update(dj).values(**_RETRY) if retry else delete(dj)
            conn.execute(stmt.where(dj.c.id.in_(out.done)))
    return out


def retry_failed(engine: Engine, queue: str | None = None) -> list[int]:
    """Retry every failed, unlocked job (of one queue), in short transactions; the ids retried."""
    done: list[int] = []
    while True:
        after = done[-1] if done else 0
        batch = retry_on_deadlock(partial(_retry_failed_batch, engine, queue, after))
        if not batch:
            return done
        done += batch


def _retry_failed_batch(engine: Engine, queue: str | None, after: int) -> list[int]:
    # Walking up the ids means a job that fails again while we work is not retried twice.
    where = [dj.c.failed_at.is_not(None), dj.c.locked_at.is_(None), dj.c.id > after]
    if queue is not None:
        where.append(dj.c.queue == queue)
    with engine.begin() as conn:
        ids = list(conn.scalars(select(dj.c.id).where(*where).order_by(dj.c.id).limit(BATCH)
                                .with_for_update()))
        if ids:
            conn.execute(update(dj).where(dj.c.id.in_(ids)).values(**_RETRY))
    return ids


@dataclass
class Counts:
    ready: int = 0
    scheduled: int = 0
    running: int = 0
    failed: int = 0
    oldest_ready_age: float | None = None  # seconds since the oldest ready job's run_at

    @property
    def total(self) -> int:
        return self.ready + self.scheduled + self.running + self.failed


@dataclass(frozen=True)
class Stats:
    now: dt.datetime
    queues: dict[str, Counts]
    total: Counts


def queue_stats(engine: Engine) -> Stats:
    """Counts by queue and state from one GROUP BY: a row per (queue, state) reaches Python."""
    with engine.connect() as conn:
        now = _now(conn)
        state = state_of(now).label("state")
        rows = conn.execute(select(dj.c.queue, state, func.count().label("n"),
                                   func.min(dj.c.run_at).label("oldest"))
                            .group_by(dj.c.queue, state)).all()
    queues: dict[str, Counts] = {}
    total = Counts()
    for r in rows:
        age = (now - r.oldest).total_seconds() if r.state == "ready" else None
        for counts in (queues.setdefault(r.queue, Counts()), total):
            setattr(counts, r.state, getattr(counts, r.state) + r.n)
            if age is not None:
                counts.oldest_ready_age = max(age, counts.oldest_ready_age or age)
    return Stats(now, dict(sorted(queues.items())), total)


def list_workers(engine: Engine) -> list[dict[str, Any]]:
    """The process registry, with the number of jobs each process holds locked."""
    processes = list_processes(engine)
    with engine.connect() as conn:
        held: dict[str, int] = dict(conn.execute(select(dj.c.locked_by, func.count()).where(
            dj.c.locked_by.is_not(None)).group_by(dj.c.locked_by)).all())
    for p in processes:
        p["running_jobs"] = int(held.get(p["name"], 0))
    return processes
