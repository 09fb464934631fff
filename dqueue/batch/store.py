"""The batch tables' SQL: instances, executions and their guard, steps, parameters, contexts.

Every write by a running job is conditional (the execution still running, still owned by its
``batch.run`` job), so an operator's UPDATE or DELETE by hand wins: the job finds nothing to
write and stops quietly.  Reading what became of an owning job goes through the core's
``store.owned.job_state``; nothing here reads ``delayed_jobs``.
"""
from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from sqlalchemy import Connection, Row, insert, select, update

from ..store.owned import Owned, attach, owned_update
from ..store.queue import NewJob
from ..store.schema import utcnow
from .records import Execution, Step, _status
from .schema import COUNTS, SHORT_CONTEXT
from .schema import job_execution as je
from .schema import job_execution_context as jctx
from .schema import job_execution_params as jp
from .schema import job_instance as ji
from .schema import step_execution as se
from .schema import step_execution_context as sctx
from .status import RUNNING, BatchStatus, StopRequest

OWNED = Owned(je, key="job_execution_id", owner="delayed_job_id", stamp="last_updated")


@dataclass(frozen=True)
class Param:
    """One row of ``batch_job_execution_params`` (Spring 4.x columns)."""
    key: str
    type_cd: str  # STRING, DATE, LONG, DOUBLE
    value: Any
    identifying: bool = True

    def row(self, execution_id: int) -> dict[str, Any]:
        column = {"STRING": "string_val", "DATE": "date_val", "LONG": "long_val", "DOUBLE": "double_val"}
        return {"job_execution_id": execution_id, "type_cd": self.type_cd, "key_name": self.key,
                "string_val": None, "date_val": None, "long_val": None, "double_val": None,
                column[self.type_cd]: self.value, "identifying": "Y" if self.identifying else "N"}


# -- instances ------------------------------------------------------------------------------------

def find_instance(conn: Connection, name: str, job_key: str) -> int | None:
    return conn.execute(select(ji.c.job_instance_id).where(ji.c.job_name == name, ji.c.job_key == job_key)).scalar()


def insert_instance(conn: Connection, name: str, job_key: str) -> int:
    result = conn.execute(insert(ji).values(job_name=name, job_key=job_key, version=0))
    return int(result.inserted_primary_key[0])  # type: ignore[index]


def instance_name(conn: Connection, instance_id: int) -> str | None:
    return conn.execute(select(ji.c.job_name).where(ji.c.job_instance_id == instance_id)).scalar()


# -- creating an execution ------------------------------------------------------------------------

def insert_execution(conn: Connection, instance_id: int, guard_key: str | None, params: Sequence[Param],
                     job_for: Callable[[int], NewJob]) -> tuple[int, int]:
    """A STARTING execution, its parameters and its job, on the caller's transaction; raises
    IntegrityError when the guard refuses it.  Returns (execution id, job id)."""
    result = conn.execute(insert(je).values(
        job_instance_id=instance_id, version=0, create_time=utcnow(), last_updated=utcnow(),
        status=BatchStatus.STARTING.value, guard_key=guard_key))
    execution_id = int(result.inserted_primary_key[0])  # type: ignore[index]
    if params:
        conn.execute(insert(jp), [p.row(execution_id) for p in params])
    write_context(conn, jctx, execution_id, {})  # created with the execution, as Spring does
    return execution_id, attach(conn, OWNED, execution_id, job_for(execution_id))


def guard_holder(conn: Connection, guard_key: str) -> Row[Any] | None:
    """The running execution that holds ``guard_key``'s guard, if any."""
    return conn.execute(select(je).where(je.c.running_guard == guard_key)).first()


def running_of_instance(conn: Connection, instance_id: int) -> list[Row[Any]]:
    return list(conn.execute(select(je).where(je.c.job_instance_id == instance_id,
                                              je.c.status.in_(RUNNING)).order_by(je.c.job_execution_id)))


def row(conn: Connection, execution_id: int, lock: bool = False) -> Row[Any] | None:
    """The execution's row; ``lock``: FOR UPDATE (MariaDB), so a decision and its write agree."""
    query = select(je).where(je.c.job_execution_id == execution_id)
    return conn.execute(query.with_for_update() if lock else query).first()


# -- a running job's writes -----------------------------------------------------------------------

def begin(conn: Connection, execution_id: int, job_id: int, step_name: str) -> int | None:
    """STARTING → STARTED and the step row STARTED; None (nothing written) unless the execution
    is STARTING and owned by ``job_id``."""
    if not owned_update(conn, OWNED, execution_id, job_id, where=[je.c.status == BatchStatus.STARTING.value],
                        status=BatchStatus.STARTED.value, start_time=utcnow(), version=je.c.version + 1):
        return None
    result = conn.execute(insert(se).values(
        version=0, step_name=step_name, job_execution_id=execution_id, start_time=utcnow(),
        last_updated=utcnow(), status=BatchStatus.STARTED.value, **{c: 0 for c in COUNTS}))
    step_id = int(result.inserted_primary_key[0])  # type: ignore[index]
    write_context(conn, sctx, step_id, {})
    return step_id


def still_mine(conn: Connection, execution_id: int, job_id: int) -> bool:
    """Whether the execution is STARTED and owned by ``job_id`` (not stopping, ended or deleted)."""
    return conn.execute(select(je.c.job_execution_id).where(
        je.c.job_execution_id == execution_id, je.c.delayed_job_id == job_id,
        je.c.status == BatchStatus.STARTED.value)).first() is not None


def progress(conn: Connection, execution_id: int, job_id: int, step_id: int, counts: dict[str, int],
             context: dict[str, Any]) -> bool:
    """Step counters and the progress context, only while the execution runs and is ``job_id``'s."""
    if not owned_update(conn, OWNED, execution_id, job_id, where=[je.c.status.in_(RUNNING)]):
        return False
    if conn.execute(update(se).where(se.c.step_execution_id == step_id).values(
            **counts, last_updated=utcnow(), version=se.c.version + 1)).rowcount == 1:
        write_context(conn, sctx, step_id, context, create=False)  # (unless its step row was deleted by hand)
    write_context(conn, jctx, execution_id, context, create=False)
    return True


def end(conn: Connection, execution_id: int, status: BatchStatus, exit_message: str, *,
        job_id: int | None = None, expect: Sequence[BatchStatus] = RUNNING,
        context: dict[str, Any] | None = None) -> bool:
    """End the execution and its running steps with ``status`` (the exit code too); only if its
    status is one of ``expect`` (and it is ``job_id``'s, when given).  False: nothing written."""
    values = {"status": status.value, "exit_code": status.value, "exit_message": exit_message,
              "end_time": utcnow(), "version": je.c.version + 1}
    where = [je.c.status.in_([s.value for s in expect])]
    if job_id is not None:
        done = owned_update(conn, OWNED, execution_id, job_id, where=where, **values)
    else:
        done = conn.execute(update(je).where(je.c.job_execution_id == execution_id, *where)
                            .values(**values, last_updated=utcnow())).rowcount == 1
    if not done:
        return False
    conn.execute(update(se).where(se.c.job_execution_id == execution_id, se.c.status.in_(RUNNING)).values(
        status=status.value, exit_code=status.value, end_time=utcnow(), last_updated=utcnow(),
        exit_message=exit_message if status is BatchStatus.FAILED else None, version=se.c.version + 1))
    if context is not None:  # added to what is there (the tasklet's last progress stays)
        write_context(conn, jctx, execution_id, {**(read_context(conn, jctx, execution_id) or {}), **context},
                      create=False)
    return True


def request_stop(conn: Connection, execution_id: int, request: StopRequest) -> bool:
    """STOPPING with ``request``; also for an execution STOPPING already (a second abandon is no
    error, unlike Spring's JobExecutionNotRunningException)."""
    return conn.execute(update(je).where(je.c.job_execution_id == execution_id, je.c.status.in_(RUNNING))
                        .values(status=BatchStatus.STOPPING.value, stop_request=request.value,
                                last_updated=utcnow(), version=je.c.version + 1)).rowcount == 1


# -- contexts -------------------------------------------------------------------------------------

def write_context(conn: Connection, table: Any, key: int, data: dict[str, Any], create: bool = True) -> None:
    """Write a context row; a running job's writes pass ``create=False``: a context deleted by hand
    (the runbook's DELETEs, context tables first) stays deleted, or the next DELETE, of the
    execution, would fail on the foreign key the job just re-created."""
    text = json.dumps(data, sort_keys=True, default=str)
    short = text if len(text) <= SHORT_CONTEXT else text[:SHORT_CONTEXT - 4] + " ..."  # as Spring cuts it
    key_col = table.c[table.primary_key.columns.keys()[0]]
    values = {"short_context": short, "serialized_context": text}
    if conn.execute(update(table).where(key_col == key).values(**values)).rowcount == 0 and create:
        conn.execute(insert(table).values({key_col.name: key, **values}))


def read_context(conn: Connection, table: Any, key: int) -> dict[str, Any] | None:
    key_col = table.c[table.primary_key.columns.keys()[0]]
    found = conn.execute(select(table.c.serialized_context, table.c.short_context).where(key_col == key)).first()
    if found is None:
        return None
    try:
        data = json.loads(found.serialized_context or found.short_context)
    except ValueError:
        return None  # written by hand or by Spring: not ours to interpret
    return data if isinstance(data, dict) else None


# -- reading --------------------------------------------------------------------------------------

_LISTED = select(je, ji.c.job_name).join(ji, ji.c.job_instance_id == je.c.job_instance_id)


def execution(conn: Connection, execution_id: int, details: bool = True) -> Execution | None:
    found = conn.execute(_LISTED.where(je.c.job_execution_id == execution_id)).first()
    return None if found is None else _execution(conn, found, details)


def listing(conn: Connection, limit: int, name: str | None = None) -> list[Execution]:
    query = _LISTED.order_by(je.c.job_execution_id.desc()).limit(limit)
    if name is not None:
        query = query.where(ji.c.job_name == name)
    return [_execution(conn, r, details=False) for r in conn.execute(query)]


def _execution(conn: Connection, r: Row[Any], details: bool) -> Execution:
    context = read_context(conn, jctx, r.job_execution_id) or {}
    progress = context.get("progress")
    return Execution(
        r.job_execution_id, r.job_instance_id, r.job_name, _status(r.status), r.create_time, r.start_time,
        r.end_time, r.exit_code, r.exit_message, r.last_updated, r.stop_request, r.delayed_job_id,
        params=_params(conn, r.job_execution_id) if details else {},
        progress=progress if isinstance(progress, dict) else None,
        steps=_steps(conn, r.job_execution_id) if details else ())


def _params(conn: Connection, execution_id: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for p in conn.execute(select(jp).where(jp.c.job_execution_id == execution_id)):
        value = {"STRING": p.string_val, "DATE": p.date_val, "LONG": p.long_val, "DOUBLE": p.double_val}
        found = value.get(p.type_cd)
        out[p.key_name] = found.isoformat() + "Z" if isinstance(found, dt.datetime) else found
    return out


def _steps(conn: Connection, execution_id: int) -> tuple[Step, ...]:
    found = conn.execute(select(se).where(se.c.job_execution_id == execution_id).order_by(se.c.step_execution_id))
    return tuple(Step(s.step_execution_id, s.step_name, _status(s.status), s.start_time, s.end_time, s.exit_code,
                      s.exit_message, s.last_updated, {c: getattr(s, c) for c in COUNTS}) for s in found)

