"""Starting a batch execution, and reading them: the public API of dqueue.batch (the CLI, the web
API and item sync call these).

``start`` creates (or finds) the job instance by name and the MD5 ``job_key`` of its identifying
parameters, as Spring Batch does, then inserts the STARTING execution, its parameters and its
``batch.run`` job in one transaction.  For a singleton kind the insert itself is the guard: the
UNIQUE index on ``running_guard`` refuses a second running execution, whichever host inserts it,
and the refusal (IntegrityError on both backends) becomes ``AlreadyRunning`` with the holder's
ids.  A holder whose worker died is first ended (reconcile.py) and the start tried again, so the
run after a crash needs nobody to touch the database.
"""
from __future__ import annotations

import datetime as dt
import functools
import hashlib
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError

from .. import jobs
from ..store.queue import NewJob, retry_on_deadlock, transaction
from . import kinds, reconcile, store
from .abandon import Abandoned, UnknownInstance, abandon
from .records import Execution, Step

if TYPE_CHECKING:
    from ..config import Settings

__all__ = ["AlreadyRunning", "UnknownKind", "UnknownInstance", "Abandoned", "Execution", "Step",
           "start", "abandon", "get", "listing", "RUN_JOB", "RUN_QUEUE"]

RUN_JOB = "batch.run"
RUN_QUEUE = "batch"
ATTEMPTS = 5  # a guard refusal by a holder that turns out dead, an instance deleted meanwhile: try again


class UnknownKind(ValueError):
    """No batch kind is registered under this name."""


class AlreadyRunning(Exception):
    """A singleton kind's execution is STARTING, STARTED or STOPPING: this start was refused."""

    def __init__(self, execution_id: int, instance_id: int, name: str, status: str) -> None:
        self.execution_id, self.instance_id, self.name, self.status = execution_id, instance_id, name, status
        super().__init__(
            f"A job execution for this job is already running: JobInstance: id={instance_id}, version=0, "
            f"Job=[{name}].  Job execution id: {execution_id} ({status}).  To abandon the running "
            f"execution of this job, run 'dqueue abandon {instance_id}' or make a PUT call to "
            f"/abandon/{instance_id}")

    def as_dict(self) -> dict[str, Any]:
        return {"error": "A job is already running", "message": str(self), "jobExecutionId": self.execution_id,
                "jobInstanceId": self.instance_id, "name": self.name, "status": self.status}


def to_params(params: dict[str, Any] | None) -> list[store.Param]:
    """Spring's typed parameters: str STRING, int LONG, float DOUBLE, datetime DATE (all identifying)."""
    out = []
    for key, value in sorted((params or {}).items()):
        if not isinstance(key, str) or not key or len(key) > 100:
            raise ValueError(f"parameter name {key!r} must be 1 to 100 characters")
        if isinstance(value, bool) or isinstance(value, str):
            text = str(value).lower() if isinstance(value, bool) else value
            if len(text) > 250:
                raise ValueError(f"parameter {key!r} is longer than 250 characters")
            out.append(store.Param(key, "STRING", text))
        elif isinstance(value, int):
            out.append(store.Param(key, "LONG", value))
        elif isinstance(value, float):
            out.append(store.Param(key, "DOUBLE", value))
        elif isinstance(value, dt.datetime):
            out.append(store.Param(key, "DATE", value))
        else:
            raise ValueError(f"parameter {key!r}: {type(value).__name__} is not a string, number or time")
    return out


def job_key(params: list[store.Param]) -> str:
    """MD5 of "key=value;" over the identifying parameters in key order (Spring's
    DefaultJobKeyGenerator; a DATE as epoch milliseconds).  No parameters: one instance for ever."""
    def text(p: store.Param) -> str:
        if p.type_cd == "DATE":
            return str(int(p.value.replace(tzinfo=dt.timezone.utc).timestamp() * 1000))
        return str(p.value)
    joined = "".join(f"{p.key}={text(p)};" for p in sorted(params, key=lambda p: p.key) if p.identifying)
    return hashlib.md5(joined.encode(), usedforsecurity=False).hexdigest()


def _instance(engine: Engine, name: str, key: str) -> int:
    with engine.connect() as conn:
        found = store.find_instance(conn, name, key)
    if found is not None:
        return found
    try:
        with transaction(engine) as conn:
            return store.insert_instance(conn, name, key)
    except IntegrityError:  # created by a concurrent start
        with engine.connect() as conn:
            found = store.find_instance(conn, name, key)
        if found is None:
            raise
        return found


def _job(execution_id: int) -> NewJob:
    return NewJob(jobs.encode_handler(RUN_JOB, {"execution_id": execution_id}), queue=RUN_QUEUE)


def start(engine: Engine, settings: Settings, name: str, params: dict[str, Any] | None = None) -> Execution:
    """Create a STARTING execution of kind ``name`` and enqueue its ``batch.run`` job.

    Raises UnknownKind, ValueError (bad parameters) or AlreadyRunning (a singleton kind runs).
    """
    kind = kinds.get(name)
    if kind is None:
        known = ", ".join(kinds.registered()) or "none"
        raise UnknownKind(f"no batch job {name!r} (known: {known})")
    plist = to_params(params)
    key, guard = job_key(plist), (name if kind.singleton else None)
    for _ in range(ATTEMPTS):
        instance_id = _instance(engine, name, key)
        try:
            execution_id = retry_on_deadlock(functools.partial(_insert, engine, instance_id, guard, plist))
        except IntegrityError:
            # The guard (or a foreign key: the instance was deleted by hand meanwhile).
            if guard is not None:
                _refuse_unless_dead(engine, guard)
            continue
        found = get(engine, execution_id)
        assert found is not None
        return found
    raise RuntimeError(f"could not start {name}: the guard kept refusing, and no holder was found")


def _insert(engine: Engine, instance_id: int, guard: str | None, plist: list[store.Param]) -> int:
    with transaction(engine) as conn:
        return store.insert_execution(conn, instance_id, guard, plist, _job)[0]


def _refuse_unless_dead(engine: Engine, guard: str) -> None:
    """Raise AlreadyRunning for the guard's holder, unless it had a dead worker (now ended) or
    ended meanwhile: then return, and the caller tries again."""
    with engine.connect() as conn:
        holder = store.guard_holder(conn, guard)
    if holder is None or reconcile.settle_if_dead(engine, holder.job_execution_id):
        return
    raise AlreadyRunning(holder.job_execution_id, holder.job_instance_id, guard, str(holder.status))


def get(engine: Engine, execution_id: int) -> Execution | None:
    """One execution with its parameters, steps and progress; None if there is none."""
    with engine.connect() as conn:
        return store.execution(conn, execution_id)


def listing(engine: Engine, limit: int = 50, name: str | None = None) -> list[Execution]:
    """The newest executions first (without steps and parameters)."""
    with engine.connect() as conn:
        return store.listing(conn, limit, name)

