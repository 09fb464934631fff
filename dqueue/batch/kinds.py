"""Batch kinds: ``@batch_job`` registers a tasklet under a Spring-style job name, and the
``StepContext`` it is called with (progress, the cooperative stop check).

A tasklet is ``func(ctx: StepContext) -> Result``.  It should call ``ctx.stop_requested()``
between items and return early when it says True: the execution was abandoned or stopped, or
an operator ended or deleted it by hand.  ``Result.errors`` non-empty ends the execution FAILED;
an exception raised by the tasklet does too (the runner records its message and traceback).
"""
from __future__ import annotations

import logging
import threading
import time
import traceback
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from ..store.queue import transaction
from . import store
from .schema import COUNTS

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from ..config import Settings


@dataclass(frozen=True)
class Result:
    """What a tasklet returns: the exit message's summary, error texts ("message: traceback",
    see ``error_text``) and what to keep in the job execution context."""
    summary: str
    errors: list[str] = field(default_factory=list)
    context: dict[str, Any] = field(default_factory=dict)


def error_text(exc: BaseException) -> str:
    """Spring's "message: stacktrace" for one exception (masked when stored, by the runner)."""
    return f"{exc}: {''.join(traceback.format_exception(exc)).rstrip()}"


Tasklet = Callable[["StepContext"], Result]


@dataclass(frozen=True)
class Kind:
    name: str  # Spring's job name: batch_job_instance.job_name
    step: str  # the one step's name: batch_step_execution.step_name
    label: str  # the log lines' "<label> starting.  Job execution id: N"
    singleton: bool
    func: Tasklet


_KINDS: dict[str, Kind] = {}


def batch_job(name: str, *, step: str, label: str, singleton: bool = False) -> Callable[[Tasklet], Tasklet]:
    """Register ``func(ctx: StepContext) -> Result`` as the batch kind ``name``.  A singleton kind
    never has two executions STARTING, STARTED or STOPPING at once (the database refuses)."""
    if not name or len(name) > 100 or not step or len(step) > 100:
        raise ValueError("a batch kind needs a name and a step name of 1 to 100 characters")

    def register(func: Tasklet) -> Tasklet:
        existing = _KINDS.get(name)
        if existing is not None and (existing.func.__module__, existing.func.__qualname__) != (
                func.__module__, func.__qualname__):
            raise ValueError(f"batch kind {name!r} is already registered by {existing.func.__module__}")
        _KINDS[name] = Kind(name, step, label, singleton, func)
        return func
    return register


def get(name: str) -> Kind | None:
    return _KINDS.get(name)


def registered() -> list[str]:
    return sorted(_KINDS)


class StepContext:
    """What a running tasklet knows and may do; its writes go through the runner's ownership
    checks, so they stop mattering the moment the execution is no longer its own."""
    progress_interval = 1.0  # seconds between progress writes (the last one is always written)
    stop_interval = 0.5  # seconds between stop checks

    def __init__(self, *, execution_id: int, instance_id: int, job_name: str, params: dict[str, Any],
                 settings: Settings, engine: Engine, log: logging.Logger, job_id: int, step_id: int) -> None:
        self.execution_id, self.instance_id, self.job_name = execution_id, instance_id, job_name
        self.params, self.settings, self.engine, self.log = params, settings, engine, log
        self._job_id, self._step_id = job_id, step_id
        self._lock = threading.Lock()  # a tasklet may report from its worker threads
        self._started = time.monotonic()
        self._written_at = self._checked_at = float("-inf")
        self._stopped = False
        self.last_progress: dict[str, Any] | None = None

    def progress(self, done: int, total: int | None = None, **counts: int) -> None:
        """Report ``done`` of ``total`` items (and named counts); written at most once per
        ``progress_interval``: step counters (``read_count`` = done unless given, any other
        Spring counter by name) and {"done", "total", "rate", "eta", ...counts} as the context."""
        now = time.monotonic()
        with self._lock:
            self.last_progress = self._snapshot(done, total, counts, now)
            if now - self._written_at < self.progress_interval or self._stopped:
                return
            self._written_at = now
        self._write(done, counts)

    def flush(self) -> None:
        """Write the latest progress now (the runner calls it when the tasklet returns)."""
        with self._lock:
            snapshot = self.last_progress
        if snapshot is not None and not self._stopped:
            self._write(int(snapshot["done"]), {k: v for k, v in snapshot.items() if k in COUNTS})

    def stop_requested(self) -> bool:
        """True once the execution is no longer STARTED and this job's: STOPPING (abandon or
        stop), or ended or deleted by hand.  Reads the database at most every ``stop_interval``."""
        now = time.monotonic()
        with self._lock:
            if self._stopped or now - self._checked_at < self.stop_interval:
                return self._stopped
            self._checked_at = now
        with self.engine.connect() as conn:
            mine = store.still_mine(conn, self.execution_id, self._job_id)
        if not mine:
            self._stopped = True
        return self._stopped

    def _snapshot(self, done: int, total: int | None, counts: dict[str, int], now: float) -> dict[str, Any]:
        elapsed = max(now - self._started, 1e-6)
        rate = done / elapsed
        eta = (total - done) / rate if total is not None and rate > 0 else None
        return {**counts, "done": done, "total": total, "rate": round(rate, 3),
                "eta": None if eta is None else round(max(eta, 0.0), 1)}

    def _write(self, done: int, counts: dict[str, int]) -> None:
        with self._lock:
            context = {"progress": self.last_progress}
        columns = {"read_count": done, **{k: int(v) for k, v in counts.items() if k in COUNTS}}
        with transaction(self.engine) as conn:
            ok = store.progress(conn, self.execution_id, self._job_id, self._step_id, columns, context)
        if not ok:
            self._stopped = True  # ended or deleted by hand, or abandoned: stop_requested says so
