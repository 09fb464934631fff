"""Claiming runnable jobs for one worker process: the hot path of the whole queue.

A claim is one short transaction per priority level: ``SELECT … FOR UPDATE SKIP LOCKED`` on the
claim index for ``priority = p AND run_at <= now``, then an UPDATE by primary key.  One range per
priority keeps the scan to runnable rows: a single ``ORDER BY priority, run_at`` walks every
future-dated row of a more urgent priority before reaching a runnable one, and under
``FOR UPDATE`` it locks each row it passes (with 500,000 future rows that exhausted InnoDB's lock
memory and crashed MariaDB in our benchmark).

The pending priorities come from ``MIN(priority) … > p`` probes that the index answers without
scanning.  An idle worker does not run the locking claim at all: each poll is one plain SELECT
(over the worker's held autocommit connection, store/direct.py: one round trip) of ``MAX(id)``, the database
clock and, per known priority, ``MIN(run_at)`` of its pending rows.  It claims only at the
priorities whose earliest pending job is due.  Whatever changes the runnable set changes one of
those values, so the next poll sees it: a new job raises MAX(id); an operator's ``UPDATE`` of
run_at, failed_at or locked_at moves a MIN(run_at).  The exception is a job moved by hand to a
priority no pending job had; the priority list is read again every ``priority_refresh`` seconds.
"""
from __future__ import annotations

import time
from typing import Any, Sequence

from sqlalchemy import ColumnElement, Engine, Select, bindparam, func, or_, select, update

from .direct import Direct
from .queue import ClaimedJob, retry_on_deadlock
from .schema import delayed_jobs as dj
from .schema import utcnow

MAX_PROBED_PRIORITIES = 32  # beyond this, an idle poll simply tries every priority


class Claimer:
    def __init__(self, engine: Engine, locked_by: str, queues: Sequence[str] = (),
                 min_priority: int | None = None, max_priority: int | None = None,
                 priority_refresh: float = 1.0, direct: Direct | None = None) -> None:
        self.engine = engine
        self.locked_by = locked_by
        self.priority_refresh = priority_refresh
        self._priorities: list[int] = []
        self._refreshed_at = float("-inf")
        self._max_id_seen = 0
        self._idle = True  # the last claim came back short
        self.direct = direct or Direct(engine)  # the idle probe runs on it
        self._probes: dict[int, Select[Any]] = {}
        window: list[ColumnElement[bool]] = [dj.c.failed_at.is_(None), dj.c.locked_at.is_(None)]
        if min_priority is not None:
            window.append(dj.c.priority >= min_priority)
        if max_priority is not None:
            window.append(dj.c.priority <= max_priority)
        self._max_id = select(func.max(dj.c.id))
        self._first_priority = select(func.min(dj.c.priority)).where(*window)
        self._next_priority = select(func.min(dj.c.priority)).where(*window, dj.c.priority > bindparam("after"))
        # OR of equalities, not IN (…): an IN list is a "post-compile" parameter in SQLAlchemy,
        # which the once-compiled SQL that Direct sends cannot carry.
        self._queue_filter = [or_(*(dj.c.queue == q for q in queues))] if queues else []
        self._select = (
            select(dj.c.id, dj.c.handler, dj.c.attempts, dj.c.queue, dj.c.priority, dj.c.run_at,
                   utcnow().label("now"))
            .where(dj.c.failed_at.is_(None), dj.c.locked_at.is_(None), dj.c.priority == bindparam("p"),
                   dj.c.run_at <= utcnow(), *self._queue_filter)
            .order_by(dj.c.run_at, dj.c.id).limit(bindparam("n")).with_for_update(skip_locked=True))
        self._lock = (update(dj).where(dj.c.id.in_(bindparam("ids", expanding=True)))
                      .values(locked_at=bindparam("now"), locked_by=locked_by,
                              attempts=dj.c.attempts + 1, updated_at=bindparam("now")))

    def claim(self, limit: int) -> list[ClaimedJob]:
        """Lock up to ``limit`` runnable jobs, most urgent first; counts one attempt for each."""
        due = self._due_priorities()
        jobs = retry_on_deadlock(lambda: self._claim_levels(due, limit)) if due else []
        self._idle = len(jobs) < limit
        return jobs

    def close(self) -> None:
        self.direct.close()

    # -- which priorities have due jobs ----------------------------------------------------------
    def _due_priorities(self) -> list[int]:
        if time.monotonic() - self._refreshed_at > self.priority_refresh:
            self._refresh_priorities()
            return list(self._priorities)
        if not self._idle or len(self._priorities) > MAX_PROBED_PRIORITIES:
            return list(self._priorities)  # busy: claim straight away, no probe round trip
        row = self._fetch(self._probe(len(self._priorities)),
                          {f"p{i}": p for i, p in enumerate(self._priorities)})
        max_id, now, earliest = row[0], row[1], row[2:]
        if int(max_id or 0) > self._max_id_seen:
            self._refresh_priorities()
            return list(self._priorities)
        # Times compare as the database returns them: datetimes from MariaDB, and on SQLite
        # fixed-width 'YYYY-MM-DD HH:MM:SS.ffffff' strings, which sort like the times they are.
        return [p for p, due in zip(self._priorities, earliest, strict=True)
                if due is not None and due <= now]

    def _refresh_priorities(self) -> None:
        # MAX(id) first: a job committed after this read makes the next idle poll refresh again.
        self._max_id_seen = int(self._fetch(self._max_id, {})[0] or 0)
        found: list[int] = []
        p = self._fetch(self._first_priority, {})[0]
        while p is not None and len(found) < 1000:
            found.append(int(p))
            p = self._fetch(self._next_priority, {"after": p})[0]
        self._priorities = found
        self._refreshed_at = time.monotonic()

    def _probe(self, count: int) -> Select[Any]:
        if count not in self._probes:
            due = [select(func.min(dj.c.run_at))
                   .where(dj.c.failed_at.is_(None), dj.c.locked_at.is_(None),
                          dj.c.priority == bindparam(f"p{i}"), *self._queue_filter)
                   .scalar_subquery().label(f"due{i}") for i in range(count)]
            self._probes[count] = select(self._max_id.scalar_subquery().label("max_id"),
                                         utcnow().label("now"), *due)
        return self._probes[count]

    def _fetch(self, stmt: Select[Any], params: dict[str, Any]) -> tuple[Any, ...]:
        return self.direct.fetch_one(stmt, params)

    # -- claiming --------------------------------------------------------------------------------
    def _claim_levels(self, priorities: list[int], limit: int) -> list[ClaimedJob]:
        claimed: list[ClaimedJob] = []
        with self.engine.connect() as conn:
            for p in priorities:
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
