"""The storage verbs on a real database: enqueue, claim, finish, fail, release, order, locks."""
from __future__ import annotations

import datetime as dt
import json

import pytest
from sqlalchemy import Engine

from dqueue import client, jobs
from dqueue.store import NewJob, queue
from dqueue.store.claim import Claimer
from tests.helpers import execute, job_rows, rows, scalar


def _enqueue(engine: Engine, n: int = 1, **kw: object) -> list[int]:
    with engine.begin() as conn:
        return queue.enqueue_many(conn, [NewJob(jobs.encode_handler("t.x", {"i": i}), **kw)  # type: ignore[arg-type]
                                         for i in range(n)])


def test_enqueue_writes_delayed_job_columns(engine: Engine) -> None:
    (job_id,) = _enqueue(engine, queue="mail", priority=3)
    row = job_rows(engine)[job_id]
    assert json.loads(row["handler"]) == {"job": "t.x", "args": {"i": 0}}
    assert (row["priority"], row["attempts"], row["queue"]) == (3, 0, "mail")
    assert row["locked_at"] is None and row["locked_by"] is None and row["failed_at"] is None
    assert row["run_at"] is not None and row["created_at"] is not None


def test_bulk_enqueue_returns_ids_in_order(engine: Engine) -> None:
    ids = _enqueue(engine, 50)
    assert ids == sorted(ids) and len(set(ids)) == 50
    got = {r.id: json.loads(r.handler)["args"]["i"] for r in rows(engine, "SELECT id, handler FROM delayed_jobs")}
    assert [got[i] for i in ids] == list(range(50))


def test_claim_orders_by_priority_then_run_at_and_counts_attempts(engine: Engine) -> None:
    past = dt.datetime.utcnow() - dt.timedelta(minutes=5)
    late = _enqueue(engine, priority=5)[0]
    early = _enqueue(engine, priority=5, run_at=past)[0]
    urgent = _enqueue(engine, priority=-2)[0]
    claimed = Claimer(engine, "w1").claim(10)
    assert [j.id for j in claimed] == [urgent, early, late]
    assert all(j.attempts == 1 for j in claimed)
    assert scalar(engine, "SELECT COUNT(*) FROM delayed_jobs WHERE locked_by = 'w1' AND attempts = 1") == 3
    assert Claimer(engine, "w2").claim(10) == []


def test_future_and_failed_rows_are_not_claimed(engine: Engine) -> None:
    _enqueue(engine, 3, run_at=dt.datetime.utcnow() + dt.timedelta(hours=1))
    failed = _enqueue(engine)[0]
    execute(engine, "UPDATE delayed_jobs SET failed_at = created_at WHERE id = :i", i=failed)
    assert Claimer(engine, "w").claim(10) == []


def test_queue_and_priority_filters(engine: Engine) -> None:
    a = _enqueue(engine, queue="a", priority=1)[0]
    b = _enqueue(engine, queue="b", priority=9)[0]
    assert [j.id for j in Claimer(engine, "w", queues=["b"]).claim(5)] == [b]
    assert [j.id for j in Claimer(engine, "w", max_priority=1).claim(5)] == [a]


def test_finish_deletes_only_with_the_lock(engine: Engine) -> None:
    _enqueue(engine, 2)
    first, second = Claimer(engine, "w1").claim(2)
    assert queue.finish(engine, first)
    # Someone else took the second job meanwhile (e.g. the reaper released it and w2 claimed it).
    execute(engine, "UPDATE delayed_jobs SET locked_by = 'w2' WHERE id = :i", i=second.id)
    assert not queue.finish(engine, second)
    assert [r.id for r in rows(engine, "SELECT id FROM delayed_jobs")] == [second.id]


def test_fail_reschedules_or_fails_permanently(engine: Engine) -> None:
    _enqueue(engine, 2)
    retry, dead = Claimer(engine, "w").claim(2)
    assert queue.fail(engine, retry, "boom\nTraceback", 3600)
    assert queue.fail(engine, dead, "x" * 100_000, None)
    r = job_rows(engine)[retry.id]
    assert r["failed_at"] is None and r["locked_at"] is None and r["last_error"] == "boom\nTraceback"
    assert r["run_at"] > dt.datetime.utcnow() + dt.timedelta(minutes=50)
    d = job_rows(engine)[dead.id]
    assert d["failed_at"] is not None and len(d["last_error"]) <= queue.LAST_ERROR_MAX
    assert "characters cut" in d["last_error"]
    assert Claimer(engine, "w").claim(5) == []


def test_release_returns_the_attempt(engine: Engine) -> None:
    _enqueue(engine, 3)
    claimed = Claimer(engine, "w").claim(3)
    assert queue.release(engine, claimed) == 3
    assert scalar(engine, "SELECT SUM(attempts) FROM delayed_jobs") == 0
    assert len(Claimer(engine, "w").claim(3)) == 3


def test_enqueue_joins_the_callers_transaction(engine: Engine) -> None:
    jobs.job("t.joined")(lambda: None)
    c = client.Client(engine=engine)
    with pytest.raises(RuntimeError):
        with engine.begin() as conn:
            c.enqueue("t.joined", connection=conn)
            raise RuntimeError("the application's transaction fails")
    assert scalar(engine, "SELECT COUNT(*) FROM delayed_jobs") == 0
    with engine.begin() as conn:
        job_id = c.enqueue("t.joined", connection=conn)
    assert scalar(engine, "SELECT COUNT(*) FROM delayed_jobs WHERE id = :i", i=job_id) == 1


def test_times_are_utc_with_microseconds_from_the_database_clock(engine: Engine) -> None:
    _enqueue(engine, 20)
    stamps = [r["created_at"] for r in job_rows(engine).values()]
    assert any(s.microsecond for s in stamps)
    assert all(abs((s - dt.datetime.utcnow()).total_seconds()) < 60 for s in stamps)


def test_a_new_job_of_a_new_priority_is_claimed_at_the_next_poll(engine: Engine) -> None:
    claimer = Claimer(engine, "w", priority_refresh=3600)  # only MAX(id) can reveal the new job
    _enqueue(engine, priority=1)
    assert len(claimer.claim(10)) == 1
    assert claimer.claim(10) == []
    (new,) = _enqueue(engine, priority=-7)
    assert [j.id for j in claimer.claim(10)] == [new]


def test_future_and_failed_rows_leave_the_claim_on_a_short_index_range(engine: Engine) -> None:
    """The claim reads a short index range: check the plan, not the clock."""
    if engine.dialect.name == "sqlite":
        return
    execute(engine, "INSERT INTO delayed_jobs (priority, handler, run_at, created_at, updated_at) "
                    "SELECT seq % 3, '{}', UTC_TIMESTAMP(6) + INTERVAL 1 DAY, UTC_TIMESTAMP(6), UTC_TIMESTAMP(6) "
                    "FROM seq_1_to_20000")
    execute(engine, "UPDATE delayed_jobs SET failed_at = created_at WHERE id % 2 = 0")
    execute(engine, "ANALYZE TABLE delayed_jobs")
    plan = rows(engine, "EXPLAIN SELECT id FROM delayed_jobs WHERE failed_at IS NULL AND locked_at IS NULL "
                        "AND priority = 0 AND run_at <= UTC_TIMESTAMP(6) ORDER BY run_at, id LIMIT 10 "
                        "FOR UPDATE SKIP LOCKED")[0]._mapping
    assert plan["key"] == "delayed_jobs_claim" and plan["type"] == "range"
    assert int(plan["rows"]) < 100 and "filesort" not in (plan["Extra"] or "")


def test_release_held_frees_rows_a_worker_does_not_know_it_holds(engine: Engine) -> None:
    _enqueue(engine, 3)
    Claimer(engine, "w1").claim(2)   # committed, but (say) the answer was lost
    Claimer(engine, "w2").claim(1)
    assert sorted(queue.release_held(engine, "w1")) == sorted(
        r.id for r in rows(engine, "SELECT id FROM delayed_jobs WHERE locked_by IS NULL"))
    assert scalar(engine, "SELECT COUNT(*) FROM delayed_jobs WHERE locked_by = 'w2'") == 1
    assert scalar(engine, "SELECT SUM(attempts) FROM delayed_jobs") == 1


def test_direct_edits_are_seen_at_the_next_poll_without_a_refresh(engine: Engine) -> None:
    claimer = Claimer(engine, "w", priority_refresh=3600)  # only the idle probe can see edits
    later = _enqueue(engine, run_at=dt.datetime.utcnow() + dt.timedelta(hours=1))[0]
    failed = _enqueue(engine, run_at=dt.datetime.utcnow() - dt.timedelta(hours=1))[0]
    execute(engine, "UPDATE delayed_jobs SET failed_at = created_at WHERE id = :i", i=failed)
    assert claimer.claim(10) == [] and claimer.claim(10) == []
    execute(engine, "UPDATE delayed_jobs SET run_at = created_at WHERE id = :i", i=later)
    assert [j.id for j in claimer.claim(10)] == [later]
    execute(engine, "UPDATE delayed_jobs SET failed_at = NULL, attempts = 0 WHERE id = :i", i=failed)
    assert [j.id for j in claimer.claim(10)] == [failed]
    claimer.close()


def test_enqueue_survives_a_connection_the_server_closed(mariadb_url: str) -> None:
    from dqueue.store import make_engine, migrate
    engine = make_engine(mariadb_url)
    migrate.upgrade(engine)
    jobs.job("t.after_restart")(lambda: None)
    c = client.Client(engine=make_engine(mariadb_url, pre_ping=False))
    c.enqueue("t.after_restart")  # leaves one connection in the pool
    with c.engine.connect() as conn:
        pooled_id = conn.exec_driver_sql("SELECT CONNECTION_ID()").scalar()
    execute(engine, f"KILL CONNECTION {int(pooled_id)}")  # as wait_timeout or a restart would
    c.enqueue("t.after_restart")
    assert scalar(engine, "SELECT COUNT(*) FROM delayed_jobs") == 2
    engine.dispose()


def test_a_dead_workers_unstarted_jobs_get_their_attempt_back(engine: Engine) -> None:
    from dqueue.store import processes
    ids = _enqueue(engine, 3)
    reg = processes.register(engine, "worker", "h1", 4242)
    Claimer(engine, reg.name).claim(10)  # the worker was running the first, the others waited
    result = processes.release_exited(engine, "h1", 4242, "was killed by SIGKILL")
    assert sorted(result.released) == sorted(ids)
    rows = job_rows(engine)
    assert [rows[i]["attempts"] for i in ids] == [1, 0, 0]
    assert "was killed by SIGKILL during attempt 1" in rows[ids[0]]["last_error"]
    assert rows[ids[1]]["last_error"] is None and rows[ids[1]]["locked_by"] is None


def test_idle_probe_with_a_queue_filter(engine: Engine) -> None:
    claimer = Claimer(engine, "w", queues=["a", "b"], priority_refresh=3600)
    assert claimer.claim(10) == []  # reads the priorities
    assert claimer.claim(10) == []  # the idle probe, with the queue filter in it
    (other,) = _enqueue(engine, queue="c")
    (mine,) = _enqueue(engine, queue="b")
    assert [j.id for j in claimer.claim(10)] == [mine]
    assert claimer.claim(10) == [] and claimer.claim(10) == []
    execute(engine, "UPDATE delayed_jobs SET queue = 'a' WHERE id = :i", i=other)
    assert [j.id for j in claimer.claim(10)] == [other]
    claimer.close()
