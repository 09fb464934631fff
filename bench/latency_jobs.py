"""The job the latency benchmark enqueues: it writes down when it started (``--import bench.latency_jobs``)."""
from __future__ import annotations

import time

from dqueue.jobs import job


@job("bench.stamp")
def stamp(path: str, seq: int) -> None:
    """Append ``seq,start time`` to ``path``; the benchmark pairs it with the enqueue time.

    The time is taken first, before any I/O, so the figure is enqueue-to-start, not to-finish.
    """
    started = time.time()
    with open(path, "a") as fh:
        fh.write(f"{seq},{started:.6f}\n")
