"""Request pacing shared through the database: slots are spaced by the interval, for all callers."""
from __future__ import annotations

import threading
import time

from sqlalchemy import Engine

from dqueue.store import pacing


def test_slots_are_spaced_across_concurrent_callers(engine: Engine) -> None:
    # A wait is counted from the moment of its own reservation, which a loaded machine spreads out:
    # each slot is known to lie between (call start + wait) and (call end + wait).
    slots: list[tuple[float, float]] = []
    waits: list[float] = []
    lock = threading.Lock()

    def take() -> None:
        before = time.monotonic()
        wait = pacing.reserve(engine, "svc", 0.5)
        after = time.monotonic()
        with lock:
            waits.append(wait)
            slots.append((before + wait, after + wait))

    threads = [threading.Thread(target=take) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert min(waits) == 0.0
    slots.sort()
    # One slot each, at least half a second apart: the latest a slot can be, minus the earliest
    # the one before it can be.
    gaps = [b[1] - a[0] for a, b in zip(slots, slots[1:], strict=False)]
    assert all(g >= 0.5 for g in gaps), (waits, slots)
    assert max(waits) > 0  # the callers did contend for slots
    assert pacing.reserve(engine, "other", 0.5) == 0.0  # services are paced separately
