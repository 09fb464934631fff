"""Job-owned application rows, the job's side (the SQL is in store/owned.py).

When a job reaches the row it owns, its capability's storage decides under a lock what the job
does, as a ``Verdict``; ``follow`` turns every verdict but RUN into the same behaviour for every
capability: a duplicate (another live job owns the row) ends quietly with a warning, a job whose
predecessor is unfinished is rescheduled without spending an attempt (``errors.Reschedule``),
and the other verdicts end the job with a line in the log.
"""
from __future__ import annotations

import logging
from enum import StrEnum

from .errors import Reschedule
from .store.owned import RowLost, attach, owner, require_owned, update_owned

__all__ = ["Verdict", "follow", "RowLost", "attach", "owner", "require_owned", "update_owned"]


class Verdict(StrEnum):
    RUN = "run"  # the row is this job's now: do the work
    DONE = "done"  # the work was finished already
    DUPLICATE = "duplicate"  # another live job owns the row
    WAIT = "wait"  # a predecessor is unfinished: come back later, no attempt spent
    PARKED = "parked"  # parked by a drain marker earlier: a restart sends it
    DEFERRED = "deferred"  # parked now: the drain marker was set when its turn came
    STOPPED = "stopped"  # out of automatic retries
    GONE = "gone"  # the row no longer exists


LOUD = (Verdict.DUPLICATE, Verdict.STOPPED)  # worth a warning: someone may want to know


def follow(verdict: Verdict, note: str, *, recheck: float, log: logging.Logger, event: str, ids: str) -> bool:
    """True when the job should run; otherwise log ``<event>.<verdict> <ids> <note>`` and end the
    job quietly, or raise ``Reschedule(recheck)`` for WAIT."""
    if verdict is Verdict.RUN:
        return True
    if verdict is Verdict.WAIT:
        log.info("%s.wait %s %s", event, ids, note)
        raise Reschedule(recheck, note)
    log.log(logging.WARNING if verdict in LOUD else logging.INFO, "%s.%s %s %s", event, verdict.value, ids, note)
    return False
