"""Request pacing shared through the database: slots are spaced by the interval, for all callers."""
from __future__ import annotations

import threading

from sqlalchemy import Engine

from dqueue.store import pacing


def test_slots_are_spaced_across_concurrent_callers(engine: Engine) -> None:
    waits: list[float] = []
    lock = threading.Lock()

    def take() -> None:
        wait = pacing.reserve(engine, "svc", 0.5)
        with lock:
            waits.append(wait)

    threads = [threading.Thread(target=take) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    waits.sort()
    assert waits[0] == 0.0
    gaps = [b - a for a, b in zip(waits, waits[1:], strict=False)]
    assert all(abs(g - 0.5) < 0.15 for g in gaps), waits  # one slot each, half a second apart
    assert pacing.reserve(engine, "other", 0.5) == 0.0  # services are paced separately
