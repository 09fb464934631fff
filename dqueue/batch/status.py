"""Spring Batch's ``BatchStatus``, the values of ``batch_job_execution.status`` and
``batch_step_execution.status``, as an enum so that a typo fails at import, not mid-job.

The order is Spring's (imrt_lblod.md A.11): later is "more serious".  Running means STARTING,
STARTED or STOPPING (Spring 5's ``isRunning``): while an execution is in one of these, the
singleton guard (schema.py, ``running_guard``) holds its kind.
"""
from __future__ import annotations

from enum import StrEnum


class BatchStatus(StrEnum):
    COMPLETED = "COMPLETED"
    STARTING = "STARTING"  # created, its batch.run job not yet started
    STARTED = "STARTED"  # a worker runs it
    STOPPING = "STOPPING"  # asked to stop or abandon: the worker ends it at its next item
    STOPPED = "STOPPED"
    FAILED = "FAILED"
    ABANDONED = "ABANDONED"
    UNKNOWN = "UNKNOWN"


RUNNING: tuple[BatchStatus, ...] = (BatchStatus.STARTING, BatchStatus.STARTED, BatchStatus.STOPPING)
RUNNING_SQL = "('STARTING','STARTED','STOPPING')"  # the same, for the generated guard column


class StopRequest(StrEnum):
    """What a STOPPING execution was asked for: ``batch_job_execution.stop_request``."""
    STOP = "STOP"  # ends STOPPED
    ABANDON = "ABANDON"  # ends ABANDONED

    @property
    def status(self) -> BatchStatus:
        return BatchStatus.STOPPED if self is StopRequest.STOP else BatchStatus.ABANDONED
