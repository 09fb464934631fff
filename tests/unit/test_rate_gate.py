"""http.RateGate: a shared rate cap and a hold for every thread, on an injected clock (no real waits)."""
from __future__ import annotations

import threading

import pytest

from dqueue.http import RateGate


class VirtualTime:
    """A clock that only moves when someone sleeps on it."""

    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []
        self.lock = threading.Lock()

    def clock(self) -> float:
        with self.lock:
            return self.now

    def sleep(self, seconds: float) -> None:
        with self.lock:
            self.slept.append(seconds)
            self.now += seconds


def passes(gate: RateGate, t: VirtualTime, n: int) -> list[float]:
    """The virtual times at which ``n`` successive calls get through."""
    times = []
    for _ in range(n):
        gate()
        times.append(round(t.clock() - 100.0, 6))
    return times


def test_calls_are_spaced_by_the_rate_from_the_schedule() -> None:
    t = VirtualTime()
    gate = RateGate(10, clock=t.clock, sleep=t.sleep)
    assert passes(gate, t, 5) == [0.0, 0.1, 0.2, 0.3, 0.4]


def test_idle_time_is_not_banked_as_a_burst() -> None:
    t = VirtualTime()
    gate = RateGate(10, clock=t.clock, sleep=t.sleep)
    gate()
    t.now += 5.0  # idle for 50 intervals
    assert passes(gate, t, 3) == [5.0, 5.1, 5.2]


def test_rate_zero_is_unpaced_but_a_hold_still_applies() -> None:
    t = VirtualTime()
    gate = RateGate(0, clock=t.clock, sleep=t.sleep)
    assert passes(gate, t, 3) == [0.0, 0.0, 0.0] and t.slept == []
    gate.hold(2.5)
    assert gate.held_for == pytest.approx(2.5)
    assert passes(gate, t, 2) == [2.5, 2.5]
    assert gate.held_for == 0.0


def test_a_hold_delays_every_later_slot_and_a_shorter_one_does_not_shorten_it() -> None:
    t = VirtualTime()
    gate = RateGate(10, clock=t.clock, sleep=t.sleep)
    gate()
    gate.hold(3.0)
    gate.hold(1.0)
    assert passes(gate, t, 3) == [3.0, 3.1, 3.2]


def test_a_thread_asleep_on_its_slot_when_a_hold_comes_waits_for_the_hold() -> None:
    t = VirtualTime()
    holds: list[bool] = []

    def sleep(seconds: float) -> None:
        t.sleep(seconds)
        if not holds:  # another thread's 429 arrives while this one sleeps
            holds.append(True)
            gate.hold(4.0)

    gate = RateGate(10, clock=t.clock, sleep=sleep)
    gate()
    gate()  # slot at 0.1, then the hold moves it past 0.1 + 4.0
    assert t.clock() - 100.0 == pytest.approx(4.1)


def test_threads_share_the_slots_none_twice() -> None:
    # The clock stands still, so each thread's sleep is exactly how far ahead its slot was.
    t = VirtualTime()
    waits: list[float] = []
    gate = RateGate(100, clock=lambda: 100.0, sleep=waits.append)
    threads = [threading.Thread(target=gate) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(round(w, 6) for w in waits) == [round(k / 100, 6) for k in range(1, 20)]
    assert t.slept == []


def test_a_hold_set_by_one_thread_stops_another() -> None:
    t = VirtualTime()
    gate = RateGate(0, clock=t.clock, sleep=t.sleep)
    other = threading.Thread(target=gate.hold, args=(7.0,))
    other.start()
    other.join()
    gate()
    assert t.slept == [pytest.approx(7.0)]


def test_a_negative_rate_is_refused() -> None:
    with pytest.raises(ValueError):
        RateGate(-1)
