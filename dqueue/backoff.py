"""The one retry/backoff policy: how many tries, and how long to wait before the next.

Used by the worker for a job's attempts (``jobs.RetryPolicy``), by the HTTP layer for one
request's tries (``http.HttpClient``) and by capabilities for their own restarts (a Zenodo copy's
automatic starts).  Written once so that jitter and caps mean the same thing everywhere.
"""
from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff: before try n+1 wait ``min(base * factor**(n-1), max)``, drawn
    uniformly from its upper ``1 - jitter`` part ("equal jitter" at 0.5), so that workers that
    failed together do not come back together.  ``jitter=0`` gives the exact value."""
    attempts: int = 5
    base: float = 2.0
    max: float = 60.0
    jitter: float = 0.5
    factor: float = 2.0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("attempts must be at least 1")
        if not 0 <= self.jitter <= 1:
            raise ValueError("jitter must be between 0 and 1")

    def ceiling(self, n: int) -> float:
        """The un-jittered wait after the ``n``-th failed try (n >= 1)."""
        return float(min(self.base * self.factor ** max(n - 1, 0), self.max))

    def delay(self, n: int, rng: random.Random | None = None) -> float:
        ceiling = self.ceiling(n)
        if self.jitter == 0:
            return ceiling
        return (rng or random).uniform(ceiling * (1 - self.jitter), ceiling)
