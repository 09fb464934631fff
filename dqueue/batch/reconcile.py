"""Executions whose worker died: judged by what became of their ``batch.run`` job (the engine's
crash detection releases a dead worker's job, or it was deleted or failed), never by time.

STARTING with its job waiting is alive (not claimed yet).  STARTED or STOPPING is written only by
the worker that holds the job's lock, and every way the runner ends clears it first: so a
STARTED or STOPPING execution whose job is no longer locked lost its worker.  Such an execution
ends FAILED with the reason, its steps too, or ABANDONED when an abandon had been asked for.
"""
from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import Connection, Engine, Row

from ..store.owned import JobState, job_state
from ..store.queue import retry_on_deadlock, transaction
from . import kinds, store
from .status import RUNNING, BatchStatus, StopRequest

log = logging.getLogger("dqueue.batch")


def why_dead(conn: Connection, r: Row[Any]) -> str | None:
    """Why execution row ``r`` (running) has no live worker, or None while it may still run."""
    state = job_state(conn, r.delayed_job_id)
    job = f"its job {r.delayed_job_id}"
    if state is JobState.RUNNING or (state is JobState.WAITING and r.status == BatchStatus.STARTING):
        return None
    if state is JobState.WAITING:
        return f"the worker running it died ({job} was released by crash detection)"
    if state is JobState.FAILED:
        return f"{job} failed for good"
    return f"{job} is gone (deleted, or ended without recording an outcome)"


def final_status(r: Row[Any]) -> BatchStatus:
    return BatchStatus.ABANDONED if r.stop_request == StopRequest.ABANDON else BatchStatus.FAILED


def settle_if_dead(engine: Engine, execution_id: int) -> bool:
    """End execution ``execution_id`` if it is running without a live worker; True when it is
    not running (any more), False while it may still run."""
    def run() -> tuple[bool, str | None, BatchStatus | None]:
        with transaction(engine) as conn:
            r = store.row(conn, execution_id, lock=True)
            if r is None or r.status not in RUNNING:
                return True, None, None
            reason = why_dead(conn, r)
            if reason is None:
                return False, None, None
            status = final_status(r)
            message = f"Marked {status} by dqueue: {reason}"
            return store.end(conn, execution_id, status, message, expect=[BatchStatus(r.status)]), message, status
    ended, message, status = retry_on_deadlock(run)
    if message is not None and status is not None:
        log.warning("batch.reconciled execution=%s status=%s reason=%r", execution_id, status, message)
        complete_line(engine, execution_id, status, message)
    return ended


def label_of(name: str) -> str:
    kind = kinds.get(name)
    return kind.label if kind is not None else name


def complete_line(engine: Engine, execution_id: int, status: BatchStatus, message: str) -> None:
    """The runbook's last line of an execution, also for one ended on a dead worker's behalf."""
    with engine.connect() as conn:
        found = store.execution(conn, execution_id, details=False)
    label = label_of(found.name) if found is not None else "Batch job"
    log.info("%s complete.  Job execution id: %s, exit status code: %s, exit message: %s",
             label, execution_id, status, message)
