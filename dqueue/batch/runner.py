"""The job ``batch.run`` with args ``{"execution_id": N}``: runs one batch execution.

STARTING → STARTED (start time, a step row), the runbook's "<label> starting.  Job execution id: N",
the tasklet, then COMPLETED / FAILED / STOPPED / ABANDONED with end time, exit code and exit
message (masked), steps too, and "<label> complete.  Job execution id: N, exit status code: X,
exit message: M".  Every write is conditional on the execution still running and owned by this
job, so an operator's UPDATE or DELETE by hand wins and the job stops without writing.

A job that finds its execution STARTED or STOPPING already ran before and lost its worker (killed;
the engine's crash detection released the job): it ends the execution FAILED with that reason
(ABANDONED if an abandon was asked for) and does not run the tasklet again.
"""
from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import Engine

from .. import jobs
from ..config import secret_values
from ..masking import mask
from ..store.queue import cap_error, transaction
from ..worker.executor import JobInterrupted
from . import kinds, reconcile, store
from .kinds import Result, StepContext, error_text
from .launch import RUN_JOB, RUN_QUEUE
from .records import Execution
from .status import BatchStatus, StopRequest

log = logging.getLogger("dqueue.batch")
EXIT_MESSAGE_MAX = 4 * 1024 * 1024  # MEDIUMTEXT holds 16 MB; past this, the head and the tail


@jobs.job(RUN_JOB, queue=RUN_QUEUE, max_attempts=5, max_run_time=24 * 3600)
def run(execution_id: int) -> None:
    """Run batch execution ``execution_id`` (see the module docstring)."""
    ctx = jobs.current()
    Run(ctx.engine, ctx.settings, int(execution_id), ctx.job_id, ctx.attempts).go()


class Run:
    def __init__(self, engine: Engine, settings: Any, execution_id: int, job_id: int, attempt: int) -> None:
        self.engine, self.settings, self.execution_id = engine, settings, execution_id
        self.job_id, self.attempt = job_id, attempt
        self.ids = f"execution={execution_id} job={job_id}"

    def go(self) -> None:
        with self.engine.connect() as conn:
            found = store.execution(conn, self.execution_id)
        if found is None:
            log.info("batch.gone %s: the execution was deleted; nothing to do", self.ids)
            return
        if found.delayed_job_id != self.job_id:
            log.warning("batch.not_owner %s: execution belongs to job %s", self.ids, found.delayed_job_id)
            return
        if found.status in (BatchStatus.STARTED, BatchStatus.STOPPING):
            self._after_crash(found)
        elif found.status is BatchStatus.STARTING:
            self._start(found)
        else:
            log.info("batch.already_ended %s status=%s", self.ids, found.status)

    def _after_crash(self, found: Execution) -> None:
        status = BatchStatus.ABANDONED if found.stop_request == StopRequest.ABANDON else BatchStatus.FAILED
        message = (f"Marked {status} by dqueue: the worker running it died (its job {self.job_id} was "
                   f"released by crash detection and came back, attempt {self.attempt})")
        self._end(status, message, expect=[found.status] if found.status else [])

    def _start(self, found: Execution) -> None:
        kind = kinds.get(found.name)
        if kind is None:
            self._end(BatchStatus.FAILED, f"No batch job {found.name!r} is registered in this worker; load "
                      "its module with --import or the 'imports' setting", expect=[BatchStatus.STARTING])
            return
        with transaction(self.engine) as conn:
            step_id = store.begin(conn, self.execution_id, self.job_id, kind.step)
        if step_id is None:  # abandoned or stopped before it started, or ended by hand
            request = self._stop_request()
            if request is not None:
                self._end(request.status, f"{request.status.title()} before it started",
                          expect=[BatchStatus.STOPPING])
            return
        log.info("%s starting.  Job execution id: %s", kind.label, self.execution_id)
        ctx = StepContext(execution_id=self.execution_id, instance_id=found.job_instance_id, job_name=found.name,
                          params=found.params, settings=self.settings, engine=self.engine, log=log,
                          job_id=self.job_id, step_id=step_id)
        try:
            result = kind.func(ctx)
        except JobInterrupted as exc:
            ctx.flush()
            why = ("Stopped: the worker shut down during the step" if exc.reason == "shutdown"
                   else "JobTimeout: ran longer than max_run_time")
            self._end(BatchStatus.STOPPED if exc.reason == "shutdown" else BatchStatus.FAILED, why)
            raise
        except Exception as exc:  # noqa: BLE001 - the tasklet's failure is the execution's, recorded
            result = Result("", errors=[error_text(exc)])
        ctx.flush()
        self._finish(result if isinstance(result, Result) else Result(str(result or "")))

    def _finish(self, result: Result) -> None:
        text = "\n".join([result.summary] * bool(result.summary) + list(result.errors))
        status = BatchStatus.FAILED if result.errors else BatchStatus.COMPLETED
        context = dict(result.context)
        if self._end(status, text, expect=[BatchStatus.STARTED], context=context, quiet=True):
            return
        request = self._stop_request()
        if request is not None:  # abandoned or stopped while it ran: say so, keep what it did
            self._end(request.status, f"{request.status.title()} on request: {text}".rstrip(": "),
                      expect=[BatchStatus.STOPPING], context=context)
        else:
            log.info("batch.lost %s: the execution was ended or deleted by hand; nothing written", self.ids)

    def _stop_request(self) -> StopRequest | None:
        with self.engine.connect() as conn:
            r = store.row(conn, self.execution_id)
        if r is None or r.status != BatchStatus.STOPPING or r.delayed_job_id != self.job_id:
            return None
        return StopRequest.ABANDON if r.stop_request == StopRequest.ABANDON else StopRequest.STOP

    def _end(self, status: BatchStatus, text: str, expect: list[BatchStatus] | None = None,
             context: dict[str, Any] | None = None, quiet: bool = False) -> bool:
        message = cap_error(mask(text, *secret_values(self.settings)), EXIT_MESSAGE_MAX)
        with transaction(self.engine) as conn:
            done = store.end(conn, self.execution_id, status, message, job_id=self.job_id,
                             expect=expect or [BatchStatus.STARTING, BatchStatus.STARTED, BatchStatus.STOPPING],
                             context=context)
        if done:
            reconcile.complete_line(self.engine, self.execution_id, status, message)
        elif not quiet:
            log.info("batch.lost %s: the execution was ended or deleted by hand; nothing written", self.ids)
        return done
