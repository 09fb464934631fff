"""The item sync's SQL: stored items, the per-item lock and the webhook's waiting updates.

The lock (``project_lock``) is a lease.  ``acquire`` is one conditional write: an INSERT that, when
the item's row exists, takes it over only if its lease has expired (SQLite ``ON CONFLICT … DO
UPDATE … WHERE``, MariaDB ``ON DUPLICATE KEY UPDATE`` with ``IF``), so two processes racing for one
item cannot both win, on either backend, and a holder that died loses the lock at ``expires_at``
with nobody cleaning up.  Who holds it is read back in the same transaction: MariaDB's affected-rows
count cannot tell "inserted" from "found and left alone" with the FOUND_ROWS flag the driver sets.
Every owner token is unique per acquisition, so a holder whose lease was taken over cannot release
or renew the new holder's lock, and ``save`` writes an item only while its writer still holds the
lock (checked and extended in the write's own transaction).  Times come from the database clock.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import Connection, Engine, delete, func, insert, select, update
from sqlalchemy.dialects import mysql, sqlite

from ..store.queue import retry_on_deadlock, transaction
from ..store.schema import utcnow, utcnow_plus
from .schema import item_update_pending as pend
from .schema import items
from .schema import project_lock as pl


class LockLost(RuntimeError):
    """The per-item lock's lease expired and someone else took it: nothing was written."""


@dataclass(frozen=True)
class Item:
    project_id: int
    path: str
    default_branch: str | None
    head_commit: str | None
    synced_at: dt.datetime


@dataclass(frozen=True)
class Lock:
    project_id: int
    owner: str
    locked_at: dt.datetime
    expires_at: dt.datetime


# -- items ---------------------------------------------------------------------------------------

def heads(conn: Connection) -> dict[int, str | None]:
    """Every stored item's head commit, by project id, in one query (what a full sync compares)."""
    return {int(r.project_id): r.head_commit for r in conn.execute(select(items.c.project_id, items.c.head_commit))}


def get(conn: Connection, project_id: int) -> Item | None:
    row = conn.execute(select(items).where(items.c.project_id == project_id)).first()
    if row is None:
        return None
    return Item(int(row.project_id), row.path, row.default_branch, row.head_commit, row.synced_at)


def listing(conn: Connection, limit: int | None = None) -> list[Item]:
    stmt = select(items).order_by(items.c.project_id)
    if limit is not None:
        stmt = stmt.limit(limit)
    return [Item(int(r.project_id), r.path, r.default_branch, r.head_commit, r.synced_at) for r in conn.execute(stmt)]


def count(conn: Connection) -> int:
    return int(conn.execute(select(func.count()).select_from(items)).scalar_one())


def _upsert(conn: Connection, project_id: int, path: str, default_branch: str | None,
            head_commit: str | None) -> None:
    values = {"path": path, "default_branch": default_branch, "head_commit": head_commit, "synced_at": utcnow()}
    if conn.execute(update(items).where(items.c.project_id == project_id).values(**values)).rowcount:
        return
    conn.execute(insert(items).values(project_id=project_id, **values))


def save(engine: Engine, project_id: int, owner: str, lease: float, path: str, default_branch: str | None,
         head_commit: str | None) -> None:
    """Store the item's new head, in one transaction with a renewal of the writer's lock (which
    also proves it still holds it); ``LockLost`` when it does not, and nothing is written."""
    def run() -> None:
        with transaction(engine) as conn:
            if not _renew(conn, project_id, owner, lease):
                raise LockLost(f"the lock on project {project_id} expired and was taken over; nothing written")
            _upsert(conn, project_id, path, default_branch, head_commit)
    retry_on_deadlock(run)


def remove(engine: Engine, project_id: int, owner: str, lease: float) -> bool:
    """Delete the stored item while holding its lock; False when there was no row."""
    def run() -> bool:
        with transaction(engine) as conn:
            if not _renew(conn, project_id, owner, lease):
                raise LockLost(f"the lock on project {project_id} expired and was taken over; nothing deleted")
            return bool(conn.execute(delete(items).where(items.c.project_id == project_id)).rowcount)
    return retry_on_deadlock(run)


# -- the per-item lock -----------------------------------------------------------------------------

def _take(conn: Connection, project_id: int, owner: str, lease: float) -> None:
    """The one conditional write: insert the lock, or take over an expired one, else leave it."""
    row = {"project_id": project_id, "owner": owner, "locked_at": utcnow(), "expires_at": utcnow_plus(lease)}
    if conn.dialect.name == "sqlite":
        lite = sqlite.insert(pl).values(**row)
        conn.execute(lite.on_conflict_do_update(
            index_elements=[pl.c.project_id],
            set_={"owner": lite.excluded.owner, "locked_at": lite.excluded.locked_at,
                  "expires_at": lite.excluded.expires_at},
            where=pl.c.expires_at < utcnow()))
        return
    stmt = mysql.insert(pl).values(**row)
    expired = pl.c.expires_at < utcnow()
    # MariaDB applies the assignments left to right, each seeing the ones before: expires_at, which
    # the condition reads, must come last.
    conn.execute(stmt.on_duplicate_key_update([
        ("owner", func.if_(expired, stmt.inserted.owner, pl.c.owner)),
        ("locked_at", func.if_(expired, stmt.inserted.locked_at, pl.c.locked_at)),
        ("expires_at", func.if_(expired, stmt.inserted.expires_at, pl.c.expires_at)),
    ]))


def acquire(engine: Engine, project_id: int, owner: str, lease: float) -> bool:
    """Take the item's lock for ``lease`` seconds; False when someone else holds an unexpired one."""
    def run() -> bool:
        with transaction(engine) as conn:
            _take(conn, project_id, owner, lease)
            return conn.execute(select(pl.c.owner).where(pl.c.project_id == project_id)).scalar() == owner
    return retry_on_deadlock(run)


def _renew(conn: Connection, project_id: int, owner: str, lease: float) -> bool:
    return bool(conn.execute(update(pl).where(pl.c.project_id == project_id, pl.c.owner == owner)
                             .values(expires_at=utcnow_plus(lease))).rowcount)


def renew(engine: Engine, project_id: int, owner: str, lease: float) -> bool:
    """Extend the lease from now; False when ``owner`` no longer holds the lock."""
    def run() -> bool:
        with transaction(engine) as conn:
            return _renew(conn, project_id, owner, lease)
    return retry_on_deadlock(run)


def release(engine: Engine, project_id: int, owner: str) -> bool:
    """Drop the lock if ``owner`` still holds it; False when it had lost it (left alone)."""
    def run() -> bool:
        with transaction(engine) as conn:
            return bool(conn.execute(delete(pl).where(pl.c.project_id == project_id, pl.c.owner == owner)).rowcount)
    return retry_on_deadlock(run)


def holder(conn: Connection, project_id: int) -> Lock | None:
    """The item's lock row (expired or not), for messages."""
    row = conn.execute(select(pl).where(pl.c.project_id == project_id)).first()
    return Lock(int(row.project_id), row.owner, row.locked_at, row.expires_at) if row is not None else None


# -- the webhook's waiting update per item -----------------------------------------------------------

def pending_job(conn: Connection, project_id: int) -> int | None:
    """The update job recorded as waiting for the item (locked for the transaction on MariaDB)."""
    value = conn.execute(select(pend.c.job_id).where(pend.c.project_id == project_id).with_for_update()).scalar()
    return int(value) if value is not None else None


def set_pending(conn: Connection, project_id: int, job_id: int) -> None:
    """Record ``job_id`` as the item's waiting update (IntegrityError if another insert won a race)."""
    if conn.execute(update(pend).where(pend.c.project_id == project_id)
                    .values(job_id=job_id, created_at=utcnow())).rowcount:
        return
    conn.execute(insert(pend).values(project_id=project_id, job_id=job_id, created_at=utcnow()))


def clear_pending(engine: Engine, project_id: int, job_id: int) -> None:
    """The update job is about to read GitLab: from now on a push needs a new job."""
    def run() -> None:
        with transaction(engine) as conn:
            conn.execute(delete(pend).where(pend.c.project_id == project_id, pend.c.job_id == job_id))
    retry_on_deadlock(run)

