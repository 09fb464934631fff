"""How fast requests go out: ``Pacer`` spaces one service's requests across every worker and host
(through the database), ``RateGate`` caps the rate of one process's threads and holds them all
when the service says to wait.  ``HttpClient`` (http.py) calls either before each request.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlalchemy import Engine


@dataclass(frozen=True)
class Pacer:
    """Spaces requests to service ``name`` at least ``interval`` seconds apart across every worker
    and host, by the ``dqueue_pacing`` row of that name (see store/pacing.py)."""
    engine: Engine
    name: str
    interval: float
    sleep: Callable[[float], None] = time.sleep

    def __call__(self) -> None:
        from .store import pacing  # the HTTP layer needs the database only when pacing is used
        wait = pacing.reserve(self.engine, self.name, self.interval)
        if wait > 0:
            self.sleep(wait)


class RateGate:
    """At most ``rate`` requests per second from every thread of one process that shares it, and a
    pause for all of them when the service says so (``hold``).

    Each call reserves the next free slot, ``1/rate`` seconds after the previous one, and sleeps
    until it; slots are handed out from the schedule, not from when a sleeper woke, so the rate is
    kept however late the threads run.  ``hold(s)`` moves every slot to at least ``s`` seconds from
    now: a thread that reserved a slot before the hold checks again when it wakes.  ``rate`` 0 means
    unpaced (holds still apply).  ``clock`` and ``sleep`` are injectable so tests need no timing.
    """

    def __init__(self, rate: float, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if rate < 0:
            raise ValueError("rate must be >= 0")
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self.clock = clock
        self.sleep = sleep
        self._lock = threading.Lock()
        self._next = float("-inf")  # the earliest free slot
        self._held_until = float("-inf")

    def __call__(self) -> None:
        """Wait for this thread's turn."""
        while True:
            with self._lock:
                now = self.clock()
                slot = max(self._next, now, self._held_until)
                self._next = slot + self.interval
                wait = slot - now
            if wait > 0:
                self.sleep(wait)
            with self._lock:
                if self._held_until <= self.clock():
                    return
            # a hold came while this thread slept: its slot is void, queue again after the hold

    def hold(self, seconds: float) -> None:
        """No thread passes before ``seconds`` from now (a longer hold already set stays)."""
        with self._lock:
            self._held_until = max(self._held_until, self.clock() + seconds)

    @property
    def held_for(self) -> float:
        """Seconds the gate is still held (0 when it is not)."""
        with self._lock:
            return max(0.0, self._held_until - self.clock())
