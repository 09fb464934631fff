"""Job-owned application rows: the SQL of the mechanism, for any table with a ``job_id`` column.

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
"""
from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Table, select, update

from . import queue
from .queue import Bind, NewJob, transaction
from .schema import utcnow


class RowLost(RuntimeError):
    """The row no longer belongs to this job: stop without writing."""


def attach(conn: Connection, table: Table, row_id: int, job: NewJob) -> int:
    """Enqueue ``job`` on the caller's transaction and make it the owner of row ``row_id``."""
    job_id = queue.enqueue(conn, job)
    conn.execute(update(table).where(table.c.id == row_id).values(job_id=job_id))
    return job_id


def owner(conn: Connection, table: Table, row_id: int, job_id: int) -> int | None:
    """The id of another live job that owns the row, or None when ``job_id`` may work on it
    (it owns the row, nobody does, or the recorded owner no longer exists)."""
    current = conn.execute(select(table.c.job_id).where(table.c.id == row_id)).scalar()
    if current is None or current == job_id or not queue.exists(conn, current):
        return None
    return int(current)


def update_owned(bind: Bind, table: Table, row_id: int, job_id: int, **values: Any) -> bool:
    """Update the row only if ``job_id`` owns it; False when it does not (nothing written)."""
    values.setdefault("updated_at", utcnow())
    with transaction(bind) as conn:
        return conn.execute(update(table).where(table.c.id == row_id, table.c.job_id == job_id)
                            .values(**values)).rowcount == 1


def require_owned(bind: Bind, table: Table, row_id: int, job_id: int, **values: Any) -> None:
    """``update_owned`` that raises ``RowLost`` when the job no longer owns the row."""
    if not update_owned(bind, table, row_id, job_id, **values):
        raise RowLost(f"{table.name} row {row_id} is no longer owned by job {job_id}")
