"""``stash_engine_zenodo_copies``: the state of each copy, and the one place that decides whether
a copy may start.

A copy starts only inside ``begin``, which holds the dataset's identifier row locked (``FOR
UPDATE``; SQLite's ``BEGIN IMMEDIATE`` serialises everything) while it reads the state of every
copy of the same dataset and family, so two copies of one dataset and type can never both pass
the order check, whichever workers and hosts run them.  Every later write by the running job is
conditional on ``job_id``: a job that lost its copy (an operator re-sent it) cannot overwrite
the new owner's state.

A copy's ``note`` describes its current state only: each transition sets it or clears it (issue 7: a
finished copy kept "start 2 of 3 comes automatically in 600 s", a running one still named a finished
predecessor as what it waited for).  Notes and the log in ``error_info`` are masked before they are
written: an exception text may hold a source URL's password or a token.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Callable, Iterable

from sqlalchemy import Connection, Engine, case, func, insert, literal, select, update
from sqlalchemy.exc import IntegrityError

from ..masking import mask
from ..owned import Verdict
from ..stash import resources
from ..stash.schema import identifiers as ids
from ..stash.schema import resources as res
from ..store import owned, queue
from ..store.queue import NewJob, retry_on_deadlock, transaction
from ..store.schema import utcnow
from .schema import CopyState
from .schema import zenodo_copies as zc

LOG_LIMIT = 12 * 1024 * 1024  # error_info is a MEDIUMTEXT (16 MiB): cut the middle before that
LOG_HEAD, LOG_TAIL = 512 * 1024, 2560 * 1024  # characters kept around the cut
WAITING = "waiting for "  # the prefix of the notes that ``begin`` writes and clears
NOTE_MAX = 4000  # characters: a note is one line for an operator, its column a TEXT


def base_type(copy_type: str) -> str:
    return copy_type.split("_")[0]


def is_publish(copy_type: str) -> bool:
    return copy_type.endswith("_publish")


def family(copy_type: str) -> tuple[str, ...]:
    """Copy types that share one version chain: software with software_publish, supp with supp_publish."""
    base = base_type(copy_type)
    return (base,) if base == "data" else (base, f"{base}_publish")


@dataclass(frozen=True)
class Copy:
    id: int
    identifier_id: int
    resource_id: int
    version: int
    copy_type: str
    state: str
    deposition_id: int | None
    software_doi: str | None
    conceptrecid: str | None
    retries: int
    note: str | None
    job_id: int | None
    created_at: dt.datetime
    updated_at: dt.datetime

    @property
    def order(self) -> tuple[int, int]:
        """Copies of one dataset and family run in this order: by version, a publish after its send."""
        return (self.version, int(is_publish(self.copy_type)))


_COLUMNS = (zc.c.id, zc.c.identifier_id, zc.c.resource_id, res.c.version, zc.c.copy_type, zc.c.state,
            zc.c.deposition_id, zc.c.software_doi, zc.c.conceptrecid, zc.c.retries, zc.c.note,
            zc.c.job_id, zc.c.created_at, zc.c.updated_at)
_SELECT = select(*_COLUMNS).join(res, res.c.id == zc.c.resource_id)


def _copy(row: Any) -> Copy:
    return Copy(int(row.id), int(row.identifier_id), int(row.resource_id), int(row.version),
                row.copy_type, row.state, row.deposition_id, row.software_doi, row.conceptrecid,
                int(row.retries), row.note, row.job_id, row.created_at, row.updated_at)


def get(bind: queue.Bind, copy_id: int) -> Copy | None:
    with transaction(bind) as conn:
        row = conn.execute(_SELECT.where(zc.c.id == copy_id)).first()
    return None if row is None else _copy(row)


def error_info(bind: queue.Bind, copy_id: int) -> str | None:
    with transaction(bind) as conn:
        return conn.execute(select(zc.c.error_info).where(zc.c.id == copy_id)).scalar()


def find(bind: queue.Bind, *, resource_id: int | None = None, identifier_id: int | None = None,
         state: str | None = None, limit: int = 1000) -> list[Copy]:
    query = _SELECT
    if resource_id is not None:
        query = query.where(zc.c.resource_id == resource_id)
    if identifier_id is not None:
        query = query.where(zc.c.identifier_id == identifier_id)
    if state is not None:
        query = query.where(zc.c.state == state)
    with transaction(bind) as conn:
        rows = conn.execute(query.order_by(zc.c.identifier_id, res.c.version, zc.c.id).limit(limit)).all()
    return [_copy(r) for r in rows]


# -- creating a copy with its job -------------------------------------------------------------

@dataclass(frozen=True)
class Sent:
    copy: Copy
    created: bool  # False: the row existed already, and nothing was written


JobFor = Callable[[int, str], NewJob]  # (copy id, copy type) -> the job to enqueue


def send(engine: Engine, resource_id: int, copy_type: str, job_for: JobFor) -> Sent:
    """Create the (resource, copy type) row and its job in one transaction, unless the row exists."""
    def run() -> Sent:
        with transaction(engine) as conn:
            existing = conn.execute(_SELECT.where(zc.c.resource_id == resource_id,
                                                  zc.c.copy_type == copy_type)).first()
            if existing is not None:
                return Sent(_copy(existing), False)
            identifier_id = conn.execute(select(res.c.identifier_id).where(res.c.id == resource_id)).scalar()
            if identifier_id is None:
                raise LookupError(f"no resource {resource_id}")
            copy_id = int(conn.execute(insert(zc).values(
                identifier_id=identifier_id, resource_id=resource_id, copy_type=copy_type,
                state=CopyState.ENQUEUED, retries=0, created_at=utcnow(), updated_at=utcnow()),
            ).inserted_primary_key[0])  # type: ignore[index]
            owned.attach(conn, zc, copy_id, job_for(copy_id, copy_type))
            return Sent(_copy(conn.execute(_SELECT.where(zc.c.id == copy_id)).one()), True)
    try:
        return retry_on_deadlock(run)
    except IntegrityError:
        # Another send of the same resource and type committed first: that row is the copy.
        found = find(engine, resource_id=resource_id)
        return Sent(next(c for c in found if c.copy_type == copy_type), False)


def enqueue_deferred(engine: Engine, job_for: JobFor) -> list[Copy]:
    """Every ``deferred`` copy back to ``enqueued`` with a new job, in version order.

    The state test in the UPDATE makes a second run (or a concurrent one) enqueue nothing twice.
    """
    order = (zc.c.identifier_id, res.c.version, zc.c.copy_type.like("%_publish"), zc.c.id)
    with transaction(engine) as conn:
        waiting = [_copy(r) for r in conn.execute(_SELECT.where(zc.c.state == CopyState.DEFERRED).order_by(*order))]
    sent = []
    for copy in waiting:
        with transaction(engine) as conn:
            taken = conn.execute(update(zc).where(zc.c.id == copy.id, zc.c.state == CopyState.DEFERRED)
                                 .values(state=CopyState.ENQUEUED, note=None, updated_at=utcnow())).rowcount
            if taken != 1:
                continue
            owned.attach(conn, zc, copy.id, job_for(copy.id, copy.copy_type))
            sent.append(_copy(conn.execute(_SELECT.where(zc.c.id == copy.id)).one()))
    return sent


# -- starting a copy --------------------------------------------------------------------------

@dataclass(frozen=True)
class Decision:
    action: Verdict
    copy: Copy | None = None
    note: str = ""
    resumed: bool = False  # it was replicating under this job: a restart after a crash


def begin(engine: Engine, copy_id: int, job_id: int, *, defer: bool, max_retries: int) -> Decision:
    """Decide, under the dataset's lock, what job ``job_id`` does with copy ``copy_id``.

    ``run`` means the copy is now ``replicating`` under this job with ``retries`` counted.
    """
    return retry_on_deadlock(lambda: _begin(engine, copy_id, job_id, defer, max_retries))


def _begin(engine: Engine, copy_id: int, job_id: int, defer: bool, max_retries: int) -> Decision:
    with transaction(engine) as conn:
        identifier_id = conn.execute(select(zc.c.identifier_id).where(zc.c.id == copy_id)).scalar()
        if identifier_id is None:
            return Decision(Verdict.GONE)
        # The identifier row is the dataset's mutex: always taken before any copy row.
        conn.execute(select(ids.c.id).where(ids.c.id == identifier_id).with_for_update())
        me = _copy(conn.execute(_SELECT.where(zc.c.id == copy_id)).one())
        if me.state == CopyState.FINISHED:
            return Decision(Verdict.DONE, me)
        if owned.owner(conn, zc, me.id, job_id) is not None:
            return Decision(Verdict.DUPLICATE, me, f"copy {me.id} belongs to job {me.job_id}")
        if me.state == CopyState.DEFERRED:
            return Decision(Verdict.PARKED, me, "the copy is deferred: 'long_jobs restart' sends it")
        if me.state == CopyState.ERROR and me.retries >= max_retries:
            return Decision(Verdict.STOPPED, me, f"retries {me.retries} >= {max_retries}: out of automatic retry")
        if defer:
            _set(conn, me.id, state=CopyState.DEFERRED, job_id=None,
                 note="deferred: defer_jobs.txt was set when its turn came")
            return Decision(Verdict.DEFERRED, me)
        blocker = _blocker(conn, me)
        if blocker:
            waiting = f"{WAITING}{blocker}"
            if me.note != waiting:
                _set(conn, me.id, note=waiting, job_id=job_id)
            return Decision(Verdict.WAIT, me, waiting)
        # Whatever the note said (waiting, an earlier start's error, deferred) is over now.
        _set(conn, me.id, state=CopyState.REPLICATING, retries=zc.c.retries + 1, job_id=job_id, note=None)
        started = _copy(conn.execute(_SELECT.where(zc.c.id == copy_id)).one())
        return Decision(Verdict.RUN, started, resumed=me.state == CopyState.REPLICATING and me.job_id == job_id)


def _blocker(conn: Connection, me: Copy) -> str:
    """What copy ``me`` waits for, or "" when every earlier copy of its dataset and family is done."""
    chain = [_copy(r) for r in conn.execute(
        _SELECT.where(zc.c.identifier_id == me.identifier_id, zc.c.copy_type.in_(family(me.copy_type))))]
    for other in sorted(chain, key=lambda c: c.order):
        if other.id == me.id:
            continue
        if other.order < me.order and other.state != CopyState.FINISHED:
            return (f"copy {other.id} ({other.copy_type} of version {other.version}, "
                    f"resource {other.resource_id}) to finish; it is {other.state}")
        if other.state == CopyState.REPLICATING:
            return f"copy {other.id} ({other.copy_type} of version {other.version}) which is replicating"
    base = base_type(me.copy_type)
    finished = {c.resource_id for c in chain if c.copy_type == base and c.state == CopyState.FINISHED}
    for resource_id, version, kinds in resources.versions(conn, me.identifier_id):
        if version < me.version and base in kinds and resource_id not in finished:
            return (f"version {version} (resource {resource_id}): it has {base} files and no {base} "
                    f"copy yet (dqueue zenodo send {resource_id} --type {base})")
        if is_publish(me.copy_type) and resource_id == me.resource_id and resource_id not in finished:
            return f"the {base} copy of this version (resource {resource_id}) to finish"
    return ""


def _note(note: str | None) -> str | None:
    """A note as stored: masked, and cut to NOTE_MAX characters."""
    if note is None:
        return None
    note = mask(note)
    return note if len(note) <= NOTE_MAX else note[:NOTE_MAX - 1] + "…"


def _set(conn: Connection, copy_id: int, **values: Any) -> None:
    if "note" in values:
        values["note"] = _note(values["note"])
    conn.execute(update(zc).where(zc.c.id == copy_id).values(updated_at=utcnow(), **values))


# -- while a copy runs: every write is the owner's ----------------------------------------------

class CopyLost(owned.RowLost):
    """The copy no longer belongs to this job (re-sent or edited by hand): stop without writing."""


def save(engine: Engine, copy_id: int, job_id: int, **values: Any) -> None:
    """Update the running copy's own columns (deposition_id, software_doi, conceptrecid, note)."""
    if "note" in values:
        values["note"] = _note(values["note"])
    if not owned.update_owned(engine, zc, copy_id, job_id, **values):
        raise CopyLost(f"copy {copy_id} is no longer owned by job {job_id}")


def append_log(bind: queue.Bind, copy_id: int, text: str) -> None:
    """Append ``text``, masked, to ``error_info``, the copy's log; past LOG_LIMIT the middle is cut,
    head and tail stay."""
    text = mask(text)
    old = func.coalesce(zc.c.error_info, literal(""))
    entry = literal(text)
    new = case((func.length(old) + len(text.encode()) > LOG_LIMIT,
                func.substr(old, 1, LOG_HEAD) + literal("\n[... earlier log cut ...]\n")
                + func.substr(old, -LOG_TAIL) + entry), else_=old + entry)
    with transaction(bind) as conn:
        conn.execute(update(zc).where(zc.c.id == copy_id).values(error_info=new))


def finish(engine: Engine, copy_id: int, job_id: int, note: str | None = None) -> None:
    """Mark the copy finished with ``note`` (None clears an earlier one) and make the next copy of its
    chain due now, if one waits.

    A successor that decided to wait in the few milliseconds before this commit, and whose job
    is still locked while its worker reschedules it, misses the wake-up and looks again after
    ``zenodo_recheck`` seconds.
    """
    retry_on_deadlock(lambda: _finish(engine, copy_id, job_id, note))


def _finish(engine: Engine, copy_id: int, job_id: int, note: str | None) -> None:
    with transaction(engine) as conn:
        me = conn.execute(_SELECT.where(zc.c.id == copy_id, zc.c.job_id == job_id)).first()
        if me is None:
            raise CopyLost(f"copy {copy_id} is no longer owned by job {job_id}")
        _set(conn, copy_id, state=CopyState.FINISHED, note=note)
        _wake_next(conn, _copy(me))


def _wake_next(conn: Connection, me: Copy) -> None:
    chain = [_copy(r) for r in conn.execute(
        _SELECT.where(zc.c.identifier_id == me.identifier_id, zc.c.copy_type.in_(family(me.copy_type)),
                      zc.c.state.in_((CopyState.ENQUEUED, CopyState.ERROR)), zc.c.job_id.is_not(None)))]
    later = sorted((c for c in chain if c.order > me.order), key=lambda c: c.order)
    for other in later:
        if _waits_for(other.note, me):
            _set(conn, other.id, note=None)  # it names me as unfinished: no longer true
    if later and later[0].job_id is not None:
        queue.run_now(conn, later[0].job_id)


def _waits_for(note: str | None, me: Copy) -> bool:
    """Whether a ``begin`` note names copy ``me`` or its resource as what the copy waits for."""
    if not note or not note.startswith(WAITING):
        return False
    return note.startswith(f"{WAITING}copy {me.id} (") or f"(resource {me.resource_id})" in note


def fail(engine: Engine, copy_id: int, job_id: int, note: str | None = None) -> bool:
    """Mark the running copy ``error``; False if it is no longer this job's."""
    return owned.update_owned(engine, zc, copy_id, job_id, state=CopyState.ERROR, note=_note(note))


def requeue(engine: Engine, copy_id: int, job_id: int, note: str) -> bool:
    """Put a running copy back to ``enqueued`` (its job waits, e.g. for Zenodo's rate limit)."""
    return owned.update_owned(engine, zc, copy_id, job_id, state=CopyState.ENQUEUED, note=_note(note))


def repoint(engine: Engine, copy_ids: Iterable[int], deposition_id: int | None,
            software_doi: str | None, note: str) -> None:
    """Point copies back at an earlier deposition (Zenodo refused a version identical to it)."""
    with transaction(engine) as conn:
        conn.execute(update(zc).where(zc.c.id.in_(list(copy_ids)))
                     .values(deposition_id=deposition_id, software_doi=software_doi, note=_note(note),
                             updated_at=utcnow()))


# -- for long_jobs status ---------------------------------------------------------------------

def counts(bind: queue.Bind) -> dict[str, int]:
    with transaction(bind) as conn:
        rows = conn.execute(select(zc.c.state, func.count()).group_by(zc.c.state)).all()
    found = {state: int(n) for state, n in rows}
    return {state.value: found.get(state.value, 0) for state in CopyState}


def previous(bind: queue.Bind, me: Copy, not_on: int | None = None) -> Copy | None:
    """The latest finished copy of the same dataset and family before ``me`` (its deposition is
    reused), skipping copies on deposition ``not_on``."""
    with transaction(bind) as conn:
        chain = [_copy(r) for r in conn.execute(
            _SELECT.where(zc.c.identifier_id == me.identifier_id, zc.c.copy_type.in_(family(me.copy_type)),
                          zc.c.state == CopyState.FINISHED, zc.c.deposition_id.is_not(None)))]
    earlier = [c for c in chain if c.order < me.order and c.deposition_id != not_on]
    return max(earlier, key=lambda c: c.order) if earlier else None

