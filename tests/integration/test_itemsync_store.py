"""The item sync's storage on SQLite and MariaDB: stored heads, the per-item lock (one winner under
concurrency, release and renewal only by the owner, a dead holder's lock taken at expiry) and the
webhook's waiting update."""
from __future__ import annotations

import threading

import pytest
from sqlalchemy import Engine

from dqueue.itemsync import store
from dqueue.store.queue import transaction
from tests.helpers import execute, rows, scalar


def test_heads_save_and_remove(engine: Engine) -> None:
    assert store.acquire(engine, 7, "me", 60)
    store.save(engine, 7, "me", 60, "items/seven", "main", "a" * 40)
    store.save(engine, 7, "me", 60, "items/seven", "main", "b" * 40)  # an update, not a second row
    assert store.acquire(engine, 9, "me", 60)
    store.save(engine, 9, "me", 60, "items/nine", None, None)  # an empty repository
    with transaction(engine) as conn:
        assert store.heads(conn) == {7: "b" * 40, 9: None}
        item = store.get(conn, 7)
        assert item is not None and (item.path, item.default_branch) == ("items/seven", "main")
        assert store.count(conn) == 2
    assert store.remove(engine, 9, "me", 60) is True
    assert store.remove(engine, 9, "me", 60) is False
    with transaction(engine) as conn:
        assert [i.project_id for i in store.listing(conn)] == [7]


def test_a_writer_that_lost_its_lock_writes_nothing(engine: Engine) -> None:
    assert store.acquire(engine, 5, "old", 60)
    execute(engine, "UPDATE project_lock SET expires_at = '2000-01-01 00:00:00' WHERE project_id = 5")
    assert store.acquire(engine, 5, "new", 60)  # the old holder died: taken at expiry
    with pytest.raises(store.LockLost):
        store.save(engine, 5, "old", 60, "items/five", "main", "c" * 40)
    with pytest.raises(store.LockLost):
        store.remove(engine, 5, "old", 60)
    assert scalar(engine, "SELECT COUNT(*) FROM items") == 0


def test_lock_is_held_until_released_by_its_owner(engine: Engine) -> None:
    assert store.acquire(engine, 1, "a", 60)
    assert not store.acquire(engine, 1, "b", 60)
    assert not store.release(engine, 1, "b")  # only the owner releases
    assert not store.renew(engine, 1, "b", 60)
    assert store.renew(engine, 1, "a", 60)
    with transaction(engine) as conn:
        lock = store.holder(conn, 1)
    assert lock is not None and lock.owner == "a" and lock.expires_at > lock.locked_at
    assert store.release(engine, 1, "a")
    assert store.acquire(engine, 1, "b", 60)
    assert rows(engine, "SELECT owner FROM project_lock") == [("b",)]


def test_a_dead_holders_lock_is_taken_once_its_lease_expires(engine: Engine) -> None:
    assert store.acquire(engine, 3, "dead", 0.2)
    assert not store.acquire(engine, 3, "next", 60)
    execute(engine, "UPDATE project_lock SET expires_at = '2000-01-01 00:00:00' WHERE project_id = 3")
    assert store.acquire(engine, 3, "next", 60)
    assert not store.acquire(engine, 3, "third", 60)  # the new lease is not expired
    assert not store.release(engine, 3, "dead")  # the dead holder cannot drop the new lock
    assert rows(engine, "SELECT owner FROM project_lock WHERE project_id = 3") == [("next",)]


@pytest.mark.parametrize("expired", [False, True])
def test_concurrent_acquires_have_exactly_one_winner(engine: Engine, expired: bool) -> None:
    if expired:
        assert store.acquire(engine, 11, "dead", 60)
        execute(engine, "UPDATE project_lock SET expires_at = '2000-01-01 00:00:00' WHERE project_id = 11")
    barrier = threading.Barrier(12)
    won: list[str] = []

    def race(name: str) -> None:
        barrier.wait()
        if store.acquire(engine, 11, name, 60):
            won.append(name)
    threads = [threading.Thread(target=race, args=(f"t{i}",)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(won) == 1
    assert rows(engine, "SELECT owner FROM project_lock WHERE project_id = 11") == [(won[0],)]


def test_pending_update_marker(engine: Engine) -> None:
    with transaction(engine) as conn:
        assert store.pending_job(conn, 4) is None
        store.set_pending(conn, 4, 100)
    with transaction(engine) as conn:
        assert store.pending_job(conn, 4) == 100
        store.set_pending(conn, 4, 101)
    store.clear_pending(engine, 4, 100)  # not the recorded job: left alone
    with transaction(engine) as conn:
        assert store.pending_job(conn, 4) == 101
    store.clear_pending(engine, 4, 101)
    with transaction(engine) as conn:
        assert store.pending_job(conn, 4) is None
