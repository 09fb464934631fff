"""When a worker should make way for a fresh one: after ``max_jobs_per_worker`` jobs, or when its
resident memory after a job exceeds ``max_worker_memory`` MiB (as Celery's max_tasks_per_child
and max_memory_per_child).  Both are off (0) by default.  The worker then stops as on SIGTERM,
between jobs, and the supervisor starts another in its slot (supervisor.EXIT_RECYCLE), so a job
that bloats memory or leaks state does not keep it for the daemon's lifetime.
"""
from __future__ import annotations

import os
import resource
import sys

from ..config import Settings


class Recycler:
    def __init__(self, settings: Settings) -> None:
        self.max_jobs = settings.max_jobs_per_worker
        self.max_bytes = settings.max_worker_memory * 1024 * 1024
        self.jobs = 0

    def after_job(self) -> str | None:
        """Count a job; the reason to recycle the worker now, or None."""
        self.jobs += 1
        if self.max_jobs and self.jobs >= self.max_jobs:
            return f"ran {self.jobs} jobs (max_jobs_per_worker)"
        if self.max_bytes:
            rss = resident_bytes()
            if rss > self.max_bytes:
                return (f"resident memory {rss / 2**20:.0f} MiB exceeds max_worker_memory "
                        f"{self.max_bytes / 2**20:.0f} MiB")
        return None


def resident_bytes() -> int:
    """This process's resident set size now (Linux), else its peak (getrusage)."""
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if sys.platform == "darwin" else peak * 1024
