"""Exceptions a job may raise to tell the worker what to do with it."""
from __future__ import annotations


class PermanentError(Exception):
    """Fail this job now, with no further attempts (bad input that a retry will not fix)."""


class Reschedule(Exception):
    """Run this job again in ``delay`` seconds, without counting the attempt.

    For a job that found it is not its turn yet (for example a later dataset version waiting
    for its predecessor): not a failure, so it must not use up the job's attempts.
    """

    def __init__(self, delay: float, note: str = "") -> None:
        super().__init__(note or f"rescheduled in {delay:g}s")
        self.delay = delay
