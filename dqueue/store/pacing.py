"""Spacing requests to an external service across every worker and host, by the database clock.

Zenodo allows 100 requests a minute and 5,000 an hour per token.  Each process counting its own
requests would let N workers send N times that, so the schedule is one row per service in
``dqueue_pacing``: a request takes the next free slot (``next_at``) under a row lock and moves it
on by the interval, then sleeps until its slot.  Evenly spaced slots keep every sliding window
within the limit, which a burst allowance would not.
"""
from __future__ import annotations

import datetime as dt

from sqlalchemy import Engine, insert, select, update
from sqlalchemy.exc import IntegrityError

from .queue import retry_on_deadlock, transaction
from .schema import pacing, utcnow, utcnow_plus


def reserve(engine: Engine, name: str, interval: float) -> float:
    """Take the next slot for ``name``; returns the seconds to wait before using it (>= 0)."""
    def run() -> float:
        with transaction(engine) as conn:
            row = conn.execute(select(pacing.c.next_at, utcnow().label("now"))
                               .where(pacing.c.name == name).with_for_update()).first()
            if row is None:
                conn.execute(insert(pacing).values(name=name, next_at=utcnow_plus(interval)))
                return 0.0
            now, next_at = _as_time(row.now), _as_time(row.next_at)
            if next_at <= now:
                conn.execute(update(pacing).where(pacing.c.name == name)
                             .values(next_at=utcnow_plus(interval)))
                return 0.0
            wait = (next_at - now).total_seconds()
            conn.execute(update(pacing).where(pacing.c.name == name)
                         .values(next_at=utcnow_plus(wait + interval)))
            return wait
    try:
        return retry_on_deadlock(run)
    except IntegrityError:  # two first requests raced to create the row: the loser tries again
        return retry_on_deadlock(run)


def _as_time(value: object) -> dt.datetime:
    if isinstance(value, str):  # SQLite returns the text form of a computed column
        return dt.datetime.fromisoformat(value)
    assert isinstance(value, dt.datetime)
    return value
