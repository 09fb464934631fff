"""The repository capability's SQL: the append-only state log, the submission logs and the
deposited version's ``download_uri``.

A resource's current state is its latest row by id, found the way Dryad's operators query it
(``latest_per_resource``: a join on ``max(id)`` per resource, dryad.md 3.1), so their SQL and ours
agree.  Rows are only ever inserted; nothing here updates or deletes a state row (an operator's
SQL edit of ``hostname`` is honoured by whatever reads the latest row next).  Times come from the
database clock.  Callers own the transaction: every function takes a Connection, so a state row
and its job (``submit``) commit together.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote

from sqlalchemy import Connection, Select, func, insert, select, update

from ..stash.schema import resources as res
from ..store import queue
from ..store.schema import utcnow
from .schema import repo_queue_states as rqs
from .schema import submission_logs as sl
from .states import SENT, RepoState

LOG_TEXT_MAX = 1024 * 1024  # characters of one request or response kept (the column: 16 MiB)


@dataclass(frozen=True)
class StateRow:
    id: int
    resource_id: int
    state: RepoState | None  # None only in a row written by hand: Dryad's column allows it
    hostname: str | None
    job_id: int | None
    created_at: dt.datetime
    updated_at: dt.datetime


@dataclass(frozen=True)
class LogRow:
    id: int
    resource_id: int
    archive_submission_request: str | None
    archive_response: str | None
    created_at: dt.datetime
    updated_at: dt.datetime


_STATE_COLUMNS = (rqs.c.id, rqs.c.resource_id, rqs.c.state, rqs.c.hostname, rqs.c.job_id, rqs.c.created_at,
                  rqs.c.updated_at)


def _state(row: Any) -> StateRow:
    m = row._mapping
    return StateRow(int(m["id"]), int(m["resource_id"]), RepoState(m["state"]) if m["state"] else None,
                    m["hostname"], m["job_id"], m["created_at"], m["updated_at"])


def _latest_ids() -> Any:
    """Dryad's ``latest_per_resource``: ``SELECT resource_id, max(id) AS id … GROUP BY resource_id``."""
    return select(rqs.c.resource_id, func.max(rqs.c.id).label("id")).group_by(rqs.c.resource_id).subquery("latest")


def _latest_rows() -> Select[Any]:
    latest = _latest_ids()
    return select(*_STATE_COLUMNS).join(latest, latest.c.id == rqs.c.id)


# -- the state log -----------------------------------------------------------------------------

def append_state(conn: Connection, resource_id: int, state: RepoState, hostname: str | None,
                 job_id: int | None = None) -> int:
    """Insert one state row (the only way a state changes); returns its id."""
    return int(conn.execute(insert(rqs).values(
        resource_id=resource_id, state=RepoState(state).value, hostname=hostname, job_id=job_id,
        created_at=utcnow(), updated_at=utcnow())).inserted_primary_key[0])  # type: ignore[index]


def set_job(conn: Connection, state_id: int, job_id: int) -> None:
    """Name the job enqueued with an ``enqueued`` row (written in the same transaction as the row:
    the row's id is needed first, and the job's arguments do not name it)."""
    conn.execute(update(rqs).where(rqs.c.id == state_id).values(job_id=job_id))


def latest(conn: Connection, resource_id: int) -> StateRow | None:
    """The resource's current state: its latest row by id."""
    row = conn.execute(select(*_STATE_COLUMNS).where(rqs.c.resource_id == resource_id)
                       .order_by(rqs.c.id.desc()).limit(1)).first()
    return _state(row) if row is not None else None


def history(conn: Connection, resource_id: int) -> list[StateRow]:
    """Every state row of the resource, oldest first."""
    return [_state(r) for r in conn.execute(select(*_STATE_COLUMNS).where(rqs.c.resource_id == resource_id)
                                            .order_by(rqs.c.id))]


def ever_reached(conn: Connection, resource_id: int, state: RepoState) -> bool:
    return conn.execute(select(rqs.c.id).where(rqs.c.resource_id == resource_id,
                                               rqs.c.state == RepoState(state).value).limit(1)).first() is not None


def ever_sent(conn: Connection, resource_id: int) -> bool:
    """Whether the version was ever sent to the repository (processing or later), which is what
    forbids sending it again without ``--force`` (dryad.md 8.5)."""
    return conn.execute(select(rqs.c.id).where(rqs.c.resource_id == resource_id,
                                               rqs.c.state.in_([s.value for s in SENT])).limit(1)).first() is not None


def job_pending(conn: Connection, row: StateRow) -> bool:
    """Whether the row names a job that is still to run or running."""
    return row.job_id is not None and queue.pending(conn, row.job_id)


def lock_resource(conn: Connection, resource_id: int) -> bool:
    """Lock the version's ``stash_engine_resources`` row for the rest of the transaction (SELECT …
    FOR UPDATE; SQLite's write transactions are serialised anyway).  Every decision to move a
    version to ``enqueued`` or ``processing`` is taken under it, so two hosts cannot both do it.
    False when there is no such resource."""
    return conn.execute(select(res.c.id).where(res.c.id == resource_id).with_for_update()).first() is not None


def held(conn: Connection, hostname: str | None) -> list[int]:
    """Resources whose latest row is ``rejected_shutting_down``, on ``hostname`` (any host, and rows
    without one, when None), oldest hold first."""
    stmt = _latest_rows().where(rqs.c.state == RepoState.REJECTED_SHUTTING_DOWN.value)
    if hostname is not None:
        stmt = stmt.where(rqs.c.hostname == hostname)
    return [int(r.resource_id) for r in conn.execute(stmt.order_by(rqs.c.id))]


def listing(conn: Connection, state: RepoState | None = None, host: str | None = None,
            limit: int | None = None) -> list[StateRow]:
    """The latest row of every resource (optionally in one state, on one host), oldest first."""
    stmt = _latest_rows()
    if state is not None:
        stmt = stmt.where(rqs.c.state == RepoState(state).value)
    if host is not None:
        stmt = stmt.where(rqs.c.hostname == host)
    stmt = stmt.order_by(rqs.c.id)
    if limit is not None:
        stmt = stmt.limit(limit)
    return [_state(r) for r in conn.execute(stmt)]


@dataclass(frozen=True)
class Count:
    state: RepoState | None
    hostname: str | None
    count: int


def counts(conn: Connection) -> list[Count]:
    """How many resources are in each current state, per host."""
    latest = _latest_ids()
    stmt = (select(rqs.c.state, rqs.c.hostname, func.count().label("n")).join(latest, latest.c.id == rqs.c.id)
            .group_by(rqs.c.state, rqs.c.hostname).order_by(rqs.c.state, rqs.c.hostname))
    return [Count(RepoState(r.state) if r.state else None, r.hostname, int(r.n)) for r in conn.execute(stmt)]


# -- submission logs -----------------------------------------------------------------------------

def add_log(conn: Connection, resource_id: int, request: str, response: str) -> int:
    """One row per deposit attempt (or operator action): masked, and cut in the middle when huge."""
    return int(conn.execute(insert(sl).values(
        resource_id=resource_id, archive_submission_request=queue.cap_error(request, LOG_TEXT_MAX),
        archive_response=queue.cap_error(response, LOG_TEXT_MAX), created_at=utcnow(), updated_at=utcnow()),
    ).inserted_primary_key[0])  # type: ignore[index]


def logs(conn: Connection, resource_id: int) -> list[LogRow]:
    rows = conn.execute(select(sl.c.id, sl.c.resource_id, sl.c.archive_submission_request, sl.c.archive_response,
                               sl.c.created_at, sl.c.updated_at).where(sl.c.resource_id == resource_id)
                        .order_by(sl.c.id))
    return [LogRow(int(r.id), int(r.resource_id), r.archive_submission_request, r.archive_response,
                   r.created_at, r.updated_at) for r in rows]


# -- where a deposited version lives ---------------------------------------------------------------

def download_uri_for(base_url: str, ark: str) -> str:
    """``{base}/d/<url-encoded ark>``, as Dryad stores it."""
    return f"{base_url.rstrip('/')}/d/{quote(ark, safe='')}"


def ark_of(download_uri: str | None) -> str | None:
    """The ARK in a ``…/d/<url-encoded ark>`` download URI (None when it has none)."""
    if not download_uri or "/d/" not in download_uri:
        return None
    # Dryad stores it encoded (ark%3A%2F13030%2Fm5…); an unencoded one reads the same.
    return unquote(download_uri.split("/d/", 1)[1].split("?", 1)[0]).strip("/") or None


def set_download_uri(conn: Connection, resource_id: int, uri: str) -> None:
    conn.execute(update(res).where(res.c.id == resource_id).values(download_uri=uri, updated_at=utcnow()))


def download_uri(conn: Connection, resource_id: int) -> str | None:
    return conn.execute(select(res.c.download_uri).where(res.c.id == resource_id)).scalar()


def previous_ark(conn: Connection, resource_id: int) -> str | None:
    """The ARK of the dataset's Merritt object: from the newest version up to this one (an earlier
    version, or this one when it is re-sent) that has a ``download_uri``; None for a first deposit."""
    this = conn.execute(select(res.c.identifier_id, res.c.version).where(res.c.id == resource_id)).first()
    if this is None:
        return None
    uri = conn.execute(select(res.c.download_uri).where(
        res.c.identifier_id == this.identifier_id, res.c.version <= this.version, res.c.download_uri.is_not(None))
        .order_by(res.c.version.desc()).limit(1)).scalar()
    return ark_of(uri)


# -- the deposit job's clock (appended by the deposit job's author) ---------------------------------

def clock(conn: Connection, plus: float = 0.0) -> dt.datetime:
    """The database clock (naive UTC), ``plus`` seconds on: a check's ``run_at``, a limit's end."""
    from ..store.schema import utcnow_plus
    return conn.execute(select(utcnow_plus(float(plus)))).scalar_one()  # type: ignore[no-any-return]


def age(conn: Connection, state_id: int) -> float:
    """Seconds since a state row was written, by the database clock."""
    created = conn.execute(select(rqs.c.created_at).where(rqs.c.id == state_id)).scalar_one()
    return (clock(conn) - created).total_seconds()
