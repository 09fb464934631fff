"""The process registry: workers register, heartbeat, deregister, and reap the dead.

A worker's ``locked_by`` is its registry name, ``host:H pid:P proc:N``: delayed_job's
``host:… pid:…`` that operators grep for, plus the registry id so that a recycled pid on the
same host never inherits a dead process's locks.

How a reaper tells the dead from the living (issue 7: an outage longer than ``stale_after``
made live jobs run twice; a rebooted host's jobs waited a minute):

- on its own host, by pid and process start time (localproc.py), never by heartbeat age: a
  live process is never reaped, a dead one at once;
- on other hosts, by heartbeat age, but only while the reaper's own heartbeats have been
  continuous for ``stale_after`` (``up_since``): after an outage nobody could heartbeat, and
  every live process must get its chance to come back before anyone judges it.
"""
from __future__ import annotations

import datetime as dt
import logging
import socket
from dataclasses import dataclass
from typing import Any, Sequence

from sqlalchemy import Connection, Engine, and_, bindparam, case, delete, func, insert, or_, select, update

from .. import localproc
from ..localproc import Verdict
from .queue import cap_error, retry_on_deadlock
from .schema import delayed_jobs as dj
from .schema import dqueue_processes as procs
from .schema import utcnow, utcnow_plus

log = logging.getLogger("dqueue.reaper")
BOOT_SKEW = 5.0  # seconds of clock difference between this host and the database tolerated


@dataclass(frozen=True)
class Registration:
    id: int
    name: str


@dataclass(frozen=True)
class ReapResult:
    processes: list[str]
    released: list[int]


def register(engine: Engine, kind: str, hostname: str, pid: int,
             queues: Sequence[str] = (), doorbell: str | None = None) -> Registration:
    with engine.begin() as conn:
        # The name needs the row id, which exists only after the insert: insert a unique
        # placeholder, then set the real name in the same transaction.
        placeholder = f"registering host:{hostname} pid:{pid} {id(conn)}"
        result = conn.execute(insert(procs).values(
            name=placeholder, kind=kind, hostname=hostname, pid=pid,
            queues=",".join(queues) or None, doorbell=doorbell, started_at=utcnow(),
            last_heartbeat_at=utcnow(), up_since=utcnow(), process_start=localproc.start_token(pid)))
        proc_id = int(result.inserted_primary_key[0])  # type: ignore[index]
        name = f"host:{hostname} pid:{pid} proc:{proc_id}"
        conn.execute(update(procs).where(procs.c.id == proc_id).values(name=name))
    return Registration(proc_id, name)


def local_address(engine: Engine) -> str | None:
    """The IP address this process's connections to the database leave from, or None.

    That is the address the database's network can reach us at (a worker's network doorbell
    listens there); None when the connection is not TCP (a UNIX socket) or the driver does not
    expose its socket (PyMySQL does).
    """
    pooled = engine.raw_connection()
    try:
        sock = getattr(pooled.driver_connection, "_sock", None)
        if not isinstance(sock, socket.socket) or sock.family not in (socket.AF_INET, socket.AF_INET6):
            return None
        return str(sock.getsockname()[0])
    finally:
        pooled.close()


def bells(bind: Engine | Connection, stale_after: float) -> list[tuple[str, str]]:
    """(hostname, doorbell) of every process that heartbeat within ``stale_after`` and listens.

    Clients read this every few seconds, not per enqueue (see netbell.Ringer).
    """
    stmt = select(procs.c.hostname, procs.c.doorbell).where(
        procs.c.doorbell.is_not(None),
        procs.c.last_heartbeat_at >= utcnow_plus(bindparam("neg", -stale_after)))
    if isinstance(bind, Engine):
        with bind.connect() as conn:
            return [(r[0], r[1]) for r in conn.execute(stmt)]
    return [(r[0], r[1]) for r in bind.execute(stmt)]


def heartbeat(engine: Engine, reg: Registration, gap: float) -> bool:
    """Refresh our heartbeat; False if our row is gone (we were reaped as dead).

    A heartbeat more than ``gap`` seconds after the previous one starts a new continuous run
    (``up_since``).  up_since is assigned first: MySQL evaluates SET left to right.
    """
    restarted = procs.c.last_heartbeat_at < utcnow_plus(bindparam("gap", -gap))
    stmt = update(procs).where(procs.c.id == reg.id).ordered_values(
        (procs.c.up_since, case((restarted, utcnow()),
                                else_=func.coalesce(procs.c.up_since, procs.c.started_at))),
        (procs.c.last_heartbeat_at, utcnow()))

    def run() -> int:
        with engine.begin() as conn:
            return conn.execute(stmt).rowcount
    return retry_on_deadlock(run) == 1


def deregister(engine: Engine, reg: Registration) -> None:
    with engine.begin() as conn:
        conn.execute(delete(procs).where(procs.c.id == reg.id))


def reap(engine: Engine, stale_after: float, hostname: str, reaper: Registration,
         heartbeat_gap: float) -> ReapResult:
    """Release jobs whose lock holder is dead, and forget dead processes.

    Processes on ``hostname`` are judged by pid and start time.  Others, and rows held by
    names no longer registered, are judged by heartbeat age only if ``reaper``'s own
    heartbeats have been continuous (no gap over ``heartbeat_gap``) for ``stale_after``; the
    check runs inside the reaping transaction, so a reap that reaches the database only after
    an outage finds the reaper's own heartbeat stale too and judges no one by heartbeat.

    A released job goes back to the queue at once with its attempt still counted, so a job that
    keeps killing its worker runs out of attempts instead of looping (delayed_job#415).  Rows are
    released by heartbeat age only if locked more than ``stale_after`` ago: a process that
    registered after we read the registry cannot lose a claim it has just made.
    """
    return _reap(engine, stale_after, hostname, reaper, heartbeat_gap)


def reap_host(engine: Engine, hostname: str) -> ReapResult:
    """Release the rows of the processes on ``hostname`` that no longer run (pid and start
    time); for a supervisor starting after a crash or reboot of its host."""
    return _reap(engine, 0.0, hostname, None, 0.0)


def _reap(engine: Engine, stale_after: float, hostname: str, reaper: Registration | None,
          heartbeat_gap: float) -> ReapResult:
    cutoff = utcnow_plus(bindparam("neg", -stale_after))
    steady = and_(func.coalesce(procs.c.up_since, procs.c.started_at) <= cutoff,
                  procs.c.last_heartbeat_at >= utcnow_plus(bindparam("gap", -heartbeat_gap)))
    # Heartbeats older than this host's boot (less a margin for clock skew) were sent before it.
    booted = utcnow_plus(bindparam("boot", -((localproc.uptime() or 0.0) + BOOT_SKEW)))
    registry = select(procs.c.id, procs.c.name, procs.c.hostname, procs.c.pid, procs.c.process_start,
                      (procs.c.last_heartbeat_at >= cutoff).label("fresh"), steady.label("steady"),
                      (procs.c.last_heartbeat_at < booted).label("before_boot"))

    def run() -> ReapResult:
        with engine.begin() as conn:
            regs = conn.execute(registry).all()
            by_heartbeat = reaper is not None and any(r.id == reaper.id and r.steady for r in regs)
            dead_here, stale = [], []
            for r in regs:
                verdict = localproc.judge(r.pid, r.process_start, bool(r.before_boot)) \
                    if r.hostname == hostname \
                    else Verdict.UNKNOWN
                if verdict is Verdict.DEAD:
                    dead_here.append(r.name)
                elif verdict is Verdict.UNKNOWN and by_heartbeat and not r.fresh:
                    stale.append(r.name)
            dead = set(dead_here) | set(stale)
            live = {r.name for r in regs} - dead
            if not dead and not by_heartbeat:
                return ReapResult([], [])
            candidates = ([dj.c.locked_at < cutoff] if by_heartbeat else []) + \
                ([dj.c.locked_by.in_(dead_here)] if dead_here else [])
            locked = conn.execute(
                select(dj.c.id, dj.c.locked_by, dj.c.locked_at, dj.c.attempts, dj.c.priority, dj.c.run_at)
                .where(dj.c.failed_at.is_(None), dj.c.locked_at.is_not(None), or_(*candidates))).all()
            mine = [r for r in locked if r.locked_by in dead or (by_heartbeat and r.locked_by not in live)]
            released = _release(conn, mine, "is no longer running")
            if dead_here:
                conn.execute(delete(procs).where(procs.c.name.in_(dead_here)))
            if stale:  # unless it heartbeat since we looked
                conn.execute(delete(procs).where(procs.c.name.in_(stale), procs.c.last_heartbeat_at < cutoff))
        return ReapResult(sorted(dead), released)
    return _logged(retry_on_deadlock(run))


def release_exited(engine: Engine, hostname: str, pid: int, how: str) -> ReapResult:
    """A supervisor saw its child exit: hand back every row locked by that host and pid now.

    Matched on the ``host:H pid:P proc:`` prefix of locked_by, so rows come back also when the
    child deregistered before it died (issue 7).  ``processes`` lists the registrations that
    were left: empty when the child deregistered, as a worker does when it ends on purpose.
    """
    prefix = f"host:{hostname} pid:{pid} proc:"

    def run() -> ReapResult:
        with engine.begin() as conn:
            names = [r[0] for r in conn.execute(
                select(procs.c.name).where(procs.c.hostname == hostname, procs.c.pid == pid))]
            locked = conn.execute(
                select(dj.c.id, dj.c.locked_by, dj.c.locked_at, dj.c.attempts, dj.c.priority, dj.c.run_at)
                .where(dj.c.locked_at.is_not(None), dj.c.locked_by.startswith(prefix, autoescape=True))).all()
            released = _release(conn, locked, how)
            if names:
                conn.execute(delete(procs).where(procs.c.name.in_(names)))
        return ReapResult(names, released)
    return _logged(retry_on_deadlock(run))


def _release(conn: Connection, rows: Sequence[Any], how: str) -> list[int]:
    """Unlock a dead holder's rows.  Only the job it was running keeps the attempt it was charged.

    A worker claims a batch only when it holds nothing and runs it in claim order, so of a dead
    holder's locked rows the first in claim order (priority, run_at, id) is the one it was
    running; the others were prefetched and never started, and must not lose an attempt to a
    job that killed its worker.
    """
    released = []
    first_of: dict[Any, Any] = {}
    for row in sorted(rows, key=lambda r: (r.priority, r.run_at, r.id)):
        first_of.setdefault(row.locked_by, row)
    for row in rows:
        values: dict[str, Any] = {"locked_at": None, "locked_by": None, "run_at": utcnow(),
                                  "updated_at": utcnow()}
        if first_of[row.locked_by] is row:
            values["last_error"] = cap_error(
                f"released: lock holder {row.locked_by!r} {how} during attempt {row.attempts}")
        else:
            values["attempts"] = dj.c.attempts - 1  # prefetched, never started
        n = conn.execute(
            update(dj).where(dj.c.id == row.id, dj.c.locked_at == row.locked_at,
                             _same_holder(row.locked_by)).values(**values)).rowcount
        if n:
            released.append(int(row.id))
    return released


def _logged(result: ReapResult) -> ReapResult:
    for name in result.processes:
        log.warning("reaper.process_dead process=%r", name)
    for job_id in result.released:
        log.warning("reaper.job_released id=%s", job_id)
    return result


def _same_holder(locked_by: str | None) -> Any:
    return dj.c.locked_by.is_(None) if locked_by is None else dj.c.locked_by == locked_by


def list_processes(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(select(procs, utcnow().label("now")).order_by(procs.c.id)).all()
    out = []
    for r in rows:
        d = dict(r._mapping)
        now: dt.datetime = d.pop("now")
        d["heartbeat_age"] = (now - d["last_heartbeat_at"]).total_seconds()
        if d.get("doorbell"):  # "udp <ip> <port> <secret>": show where, never the secret
            d["doorbell"] = " ".join(d["doorbell"].split()[:3])
        out.append(d)
    return out
