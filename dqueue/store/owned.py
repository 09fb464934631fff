"""Job-owned application rows: the SQL of the mechanism, for any table with a ``job_id`` column
(or any key and owner column: ``Owned``).

A capability keeps the state of a long piece of work (a Zenodo copy, a repository submission) in
a row of its own table, and runs it with a job.  ``job_id`` names the job that owns the row:

- the row and its job are committed together (``attach`` on the caller's transaction), so a
  crash never leaves a row without its job or a job without its row;
- only the owner writes the row while it runs (``update_owned``: the UPDATE is conditional on
  ``job_id``, so a job that lost its row — re-sent, edited by hand — changes nothing);
- a second job for the same row is a duplicate while the owner still exists (``owner``), and
  ends quietly; a row whose owner is gone (finished, deleted) may be taken over.

Waiting for a predecessor is the job's business: it raises ``errors.Reschedule``, which the
worker counts as no attempt (see dqueue/owned.py).

``job_state`` tells a capability what became of an owning job (running, waiting, failed, gone)
without the capability reading ``delayed_jobs`` itself: a row whose work had started while its
job is no longer locked lost its worker (the engine's crash detection released or dropped it).
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Sequence

from sqlalchemy import Column, ColumnElement, Connection, Table, select, update

from . import queue
from .queue import Bind, NewJob, transaction
from .schema import delayed_jobs as dj
from .schema import utcnow


@dataclass(frozen=True)
class Owned:
    """A job-owned table whose key, owner or time-stamp columns are not ``id``, ``job_id`` and
    ``updated_at`` (Spring Batch's ``batch_job_execution``: ``job_execution_id``,
    ``delayed_job_id``, ``last_updated``).  A plain Table means the defaults."""
    table: Table
    key: str = "id"
    owner: str = "job_id"
    stamp: str = "updated_at"

    @property
    def key_col(self) -> Column[Any]:
        return self.table.c[self.key]

    @property
    def owner_col(self) -> Column[Any]:
        return self.table.c[self.owner]


Target = Table | Owned


def _spec(target: Target) -> Owned:
    return target if isinstance(target, Owned) else Owned(target)


class JobState(StrEnum):
    """What became of a job, as its owned row needs to know."""
    RUNNING = "running"  # locked by a worker
    WAITING = "waiting"  # in the queue, not locked: not started yet, or released after a crash
    FAILED = "failed"  # failed for good
    GONE = "gone"  # no longer in the table (finished, or deleted)


def job_state(conn: Connection, job_id: int | None) -> JobState:
    """The state of job ``job_id`` (GONE for None)."""
    if job_id is None:
        return JobState.GONE
    row = conn.execute(select(dj.c.locked_at, dj.c.failed_at).where(dj.c.id == job_id)).first()
    if row is None:
        return JobState.GONE
    if row.failed_at is not None:
        return JobState.FAILED
    return JobState.RUNNING if row.locked_at is not None else JobState.WAITING


class RowLost(RuntimeError):
    """The row no longer belongs to this job: stop without writing."""


def attach(conn: Connection, table: Target, row_id: int, job: NewJob) -> int:
    """Enqueue ``job`` on the caller's transaction and make it the owner of row ``row_id``."""
    t = _spec(table)
    job_id = queue.enqueue(conn, job)
    conn.execute(update(t.table).where(t.key_col == row_id).values({t.owner: job_id}))
    return job_id


def owner(conn: Connection, table: Target, row_id: int, job_id: int) -> int | None:
    """The id of another live job that owns the row, or None when ``job_id`` may work on it
    (it owns the row, nobody does, or the recorded owner no longer exists)."""
    t = _spec(table)
    current = conn.execute(select(t.owner_col).where(t.key_col == row_id)).scalar()
    if current is None or current == job_id or not queue.exists(conn, current):
        return None
    return int(current)


def owned_update(conn: Connection, table: Target, row_id: int, job_id: int,
                 where: Sequence[ColumnElement[bool]] = (), **values: Any) -> bool:
    """On the caller's transaction: update the row only if ``job_id`` owns it (and ``where``
    holds); False when nothing was written."""
    t = _spec(table)
    values.setdefault(t.stamp, utcnow())
    return conn.execute(update(t.table).where(t.key_col == row_id, t.owner_col == job_id, *where)
                        .values(**values)).rowcount == 1


def update_owned(bind: Bind, table: Target, row_id: int, job_id: int, **values: Any) -> bool:
    """Update the row only if ``job_id`` owns it; False when it does not (nothing written)."""
    with transaction(bind) as conn:
        return owned_update(conn, table, row_id, job_id, **values)


def require_owned(bind: Bind, table: Target, row_id: int, job_id: int, **values: Any) -> None:
    """``update_owned`` that raises ``RowLost`` when the job no longer owns the row."""
    if not update_owned(bind, table, row_id, job_id, **values):
        raise RowLost(f"{_spec(table).table.name} row {row_id} is no longer owned by job {job_id}")
