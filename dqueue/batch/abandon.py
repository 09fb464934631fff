"""Abandon: ``dqueue abandon JOB_INSTANCE_ID`` and ``PUT /abandon/{jobInstanceId}``.

Every running execution of the instance is ended ABANDONED: at once when nothing runs it (STARTING
and not claimed yet, or its worker died); otherwise it is set STOPPING with a stop request, and
the worker ends it ABANDONED at its next item (the tasklet's ``stop_requested``), which this waits
for up to ``wait`` seconds.  Nothing running answers "NO JOB EXECUTIONS" (safe to repeat), and a
second abandon of a STOPPING execution is no error (Spring's stop() threw there: imrt_lblod A.7).
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine

from ..store.owned import JobState, job_state
from ..store.queue import retry_on_deadlock, transaction
from . import reconcile, store
from .records import _status as _status_of
from .status import RUNNING, BatchStatus, StopRequest

if TYPE_CHECKING:
    from ..config import Settings

log = logging.getLogger("dqueue.batch")
POLL = 0.1
NONE_RUNNING = "NO JOB EXECUTIONS"


class UnknownInstance(LookupError):
    """No job instance has this id."""


@dataclass(frozen=True)
class Abandoned:
    execution_id: int  # 0 when nothing was running
    instance_id: int
    name: str
    status: str  # ABANDONED, NO JOB EXECUTIONS, STOPPING (still finishing its item), or how it ended
    message: str

    @property
    def settled(self) -> bool:
        """Nothing of this instance runs any more (abandoned, or ended otherwise, or none ran)."""
        return self.status not in RUNNING

    def as_dict(self) -> dict[str, Any]:
        return {"jobExecutionId": self.execution_id, "jobInstanceId": self.instance_id, "name": self.name,
                "status": self.status, "message": self.message}


def abandon(engine: Engine, settings: Settings, instance_id: int, wait: float = 10.0) -> Abandoned:
    """Abandon the running execution(s) of job instance ``instance_id``; see the module docstring."""
    with engine.connect() as conn:
        name = store.instance_name(conn, instance_id)
        running = [r.job_execution_id for r in store.running_of_instance(conn, instance_id)] if name else []
    if name is None:
        raise UnknownInstance(f"no job instance {instance_id}")
    if not running:
        return Abandoned(0, instance_id, name, NONE_RUNNING,
                         f"No job executions are currently running for the {name} (job instance id {instance_id})")
    deadline = time.monotonic() + max(wait, 0.0)
    results = [_one(engine, execution_id, deadline) for execution_id in running]
    status = next((s for s in results if s in RUNNING), results[-1])
    execution_id = running[results.index(status)]
    return Abandoned(execution_id, instance_id, name, str(status) if status else NONE_RUNNING,
                     _message(execution_id, name, instance_id, status))


def _message(execution_id: int, name: str, instance_id: int, status: BatchStatus | None) -> str:
    if status is None:
        return f"Job Execution {execution_id} for Job {name} was deleted meanwhile: nothing is running"
    if status is BatchStatus.ABANDONED:
        return f"Job Execution {execution_id} for Job {name} abandoned successfully"
    if status in RUNNING:
        return (f"Job Execution {execution_id} for Job {name} was asked to abandon and is {status}: its worker "
                f"has not reached its next item yet; it ends ABANDONED when it does (run 'dqueue abandon "
                f"{instance_id}' again to wait longer)")
    return f"Job Execution {execution_id} for Job {name} had already ended {status}"


def _one(engine: Engine, execution_id: int, deadline: float) -> BatchStatus | None:
    """Abandon one execution: at once if nothing runs it, else ask and wait until ``deadline``."""
    retry_on_deadlock(lambda: _ask(engine, execution_id))
    while True:
        status = _status(engine, execution_id)
        if status not in RUNNING or time.monotonic() >= deadline:
            return status
        if reconcile.settle_if_dead(engine, execution_id):  # the worker died while we waited
            continue
        time.sleep(POLL)


def _ask(engine: Engine, execution_id: int) -> None:
    with transaction(engine) as conn:
        r = store.row(conn, execution_id, lock=True)
        if r is None or r.status not in RUNNING:
            return
        unclaimed = r.status == BatchStatus.STARTING and job_state(conn, r.delayed_job_id) is JobState.WAITING
        if unclaimed or reconcile.why_dead(conn, r) is not None:
            reason = "before it started" if unclaimed else f"after {reconcile.why_dead(conn, r)}"
            if store.end(conn, execution_id, BatchStatus.ABANDONED, f"Abandoned {reason}",
                         expect=[BatchStatus(r.status)]):
                log.warning("batch.abandoned execution=%s instance=%s %s", execution_id, r.job_instance_id, reason)
            return
        store.request_stop(conn, execution_id, StopRequest.ABANDON)
        log.warning("batch.abandon_requested execution=%s instance=%s job=%s", execution_id,
                    r.job_instance_id, r.delayed_job_id)


def _status(engine: Engine, execution_id: int) -> BatchStatus | None:
    """The execution's status; None once it was deleted (by hand)."""
    with engine.connect() as conn:
        r = store.row(conn, execution_id)
    return None if r is None else _status_of(r.status)
