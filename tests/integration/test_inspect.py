"""The operators' queries (list, show, retry, delete, stats, workers) on SQLite and MariaDB."""
from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import Engine, update

from dqueue import jobs
from dqueue.store import NewJob, inspect, processes, queue
from dqueue.store.claim import Claimer
from dqueue.store.queue import ClaimedJob
from dqueue.store.schema import delayed_jobs, utcnow_plus
from tests.helpers import execute, job_rows

FUTURE = dt.datetime(2099, 1, 1)
PAST = dt.datetime(2020, 1, 1)
ERROR = "boom: it broke\nTraceback (most recent call last):\n  File x"


def _add(engine: Engine, name: str = "t.x", handler: str | None = None, **kw: Any) -> int:
    with engine.begin() as conn:
        return queue.enqueue(conn, NewJob(handler or jobs.encode_handler(name, {"n": 1}), **kw))


def _failed(engine: Engine, n: int = 1, **kw: Any) -> list[int]:
    ids = [_add(engine, "t.fail", **kw) for _ in range(n)]
    for job in Claimer(engine, "w0").claim(n):
        assert queue.fail(engine, job, ERROR, None)
    return ids


def _seed(engine: Engine) -> tuple[dict[str, int], ClaimedJob]:
    """One job in each state; the running one is held by process 'w1'."""
    running = _add(engine, "t.run", queue="a")
    (held,) = Claimer(engine, "w1").claim(1)
    failed = _failed(engine, queue="b")[0]
    ready = _add(engine, "t.ready", queue="a")
    scheduled = _add(engine, "t.later", queue="b", run_at=FUTURE)
    return {"running": running, "failed": failed, "ready": ready, "scheduled": scheduled}, held


def test_states_follow_the_definitions(engine: Engine) -> None:
    ids, _ = _seed(engine)
    assert {j.id: j.state for j in inspect.list_jobs(engine)} == {v: k for k, v in ids.items()}
    for state in inspect.STATES:
        assert [j.id for j in inspect.list_jobs(engine, state=state)] == [ids[state]]


def test_list_shows_name_lock_and_first_error_line(engine: Engine) -> None:
    ids, _ = _seed(engine)
    got = {j.id: j for j in inspect.list_jobs(engine)}
    failed, running = got[ids["failed"]], got[ids["running"]]
    assert (failed.job, failed.queue, failed.attempts, failed.error) == ("t.fail", "b", 1, "boom: it broke")
    assert (running.job, running.locked_by, running.error) == ("t.run", "w1", None)


def test_list_filters_by_queue_job_and_limit(engine: Engine) -> None:
    ids, _ = _seed(engine)
    assert {j.id for j in inspect.list_jobs(engine, queue="a")} == {ids["ready"], ids["running"]}
    assert [j.id for j in inspect.list_jobs(engine, job="t.later")] == [ids["scheduled"]]
    assert [j.id for j in inspect.list_jobs(engine, queue="a", state="failed")] == []
    assert len(inspect.list_jobs(engine, limit=3)) == 3


def test_job_filter_is_exact_and_case_sensitive(engine: Engine) -> None:
    wanted = _add(engine, "t.x")
    for other in ("T.X", "t.xy", "t"):
        _add(engine, other)
    _add(engine, handler='{"args": {"job": "t.x"}, "job": "nested"}')
    assert [j.id for j in inspect.list_jobs(engine, job="t.x")] == [wanted]


@pytest.mark.parametrize("handler", ["not json", '{"job": 5}', "[1]", '{"args": {}}', "", '"t.x"'])
def test_malformed_handlers_still_list_and_show(engine: Engine, handler: str) -> None:
    good = _add(engine, "t.x")
    bad = _add(engine, handler=handler or " ")
    assert {j.id: j.job for j in inspect.list_jobs(engine)} == {good: "t.x", bad: None}
    assert [j.id for j in inspect.list_jobs(engine, job="t.x")] == [good]
    detail = inspect.get_job(engine, bad)
    assert detail is not None and detail.job is None and detail.args is None
    assert detail.handler_error


def test_orders_newest_first_or_by_what_matters_in_the_state(engine: Engine) -> None:
    low = _add(engine, priority=5)
    old = _add(engine, priority=1, run_at=PAST)
    new = _add(engine, priority=1)
    later, sooner = _add(engine, run_at=FUTURE), _add(engine, run_at=FUTURE - dt.timedelta(days=1))
    first_failed, last_failed = _failed(engine, 1, priority=-9)[0], _failed(engine, 1, priority=-9)[0]
    assert [j.id for j in inspect.list_jobs(engine, state="ready")] == [old, new, low]
    assert [j.id for j in inspect.list_jobs(engine, state="scheduled")] == [sooner, later]
    assert [j.id for j in inspect.list_jobs(engine, state="failed")] == [last_failed, first_failed]
    everything = [j.id for j in inspect.list_jobs(engine)]
    assert everything == sorted(everything, reverse=True) and len(everything) == 7


def test_get_job_has_every_column_and_the_decoded_args(engine: Engine) -> None:
    ids, _ = _seed(engine)
    detail = inspect.get_job(engine, ids["failed"])
    assert detail is not None
    assert set(detail.columns) == {c.name for c in delayed_jobs.columns}
    assert detail.columns["last_error"] == ERROR and detail.columns["failed_at"] is not None
    assert (detail.state, detail.job, detail.args, detail.handler_error) == ("failed", "t.fail", {"n": 1}, None)
    assert inspect.get_job(engine, 987654) is None


def test_retry_makes_failed_and_scheduled_jobs_claimable(engine: Engine) -> None:
    ids, _ = _seed(engine)
    out = inspect.retry_jobs(engine, [ids["failed"], ids["scheduled"], ids["running"], ids["ready"],
                                      987654, ids["failed"]])
    assert (out.done, out.running, out.ready, out.missing) == (
        [ids["failed"], ids["scheduled"]], [ids["running"]], [ids["ready"]], [987654])
    row = job_rows(engine)[ids["failed"]]
    assert (row["attempts"], row["failed_at"], row["last_error"]) == (0, None, ERROR)
    claimed = {j.id: j.attempts for j in Claimer(engine, "w2").claim(10)}
    assert claimed == {ids["failed"]: 1, ids["scheduled"]: 1, ids["ready"]: 1}


def test_retry_refuses_a_failed_row_that_is_still_locked(engine: Engine) -> None:
    (job_id,) = _failed(engine)
    execute(engine, "UPDATE delayed_jobs SET locked_at = created_at, locked_by = 'x' WHERE id = :i", i=job_id)
    assert inspect.retry_jobs(engine, [job_id]).running == [job_id]
    assert job_rows(engine)[job_id]["failed_at"] is not None


def test_retry_failed_walks_every_failed_job_of_a_queue(engine: Engine,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(inspect, "BATCH", 2)  # several short transactions
    in_a = _failed(engine, 5, queue="a")
    in_b = _failed(engine, 1, queue="b")
    _add(engine, run_at=FUTURE, queue="a")  # scheduled: --all-failed leaves it alone
    assert inspect.retry_failed(engine, "a") == in_a
    assert inspect.list_jobs(engine, state="failed") and inspect.retry_failed(engine) == in_b
    assert inspect.retry_failed(engine) == []
    assert len(Claimer(engine, "w").claim(10)) == 6


def test_delete_refuses_running_jobs_unless_forced(engine: Engine) -> None:
    ids, held = _seed(engine)
    out = inspect.delete_jobs(engine, [ids["ready"], ids["running"], 987654])
    assert (out.done, out.running, out.missing) == ([ids["ready"]], [ids["running"]], [987654])
    assert set(job_rows(engine)) == {ids["running"], ids["failed"], ids["scheduled"]}
    assert inspect.delete_jobs(engine, [ids["running"]], force=True).done == [ids["running"]]
    assert not queue.finish(engine, held)  # the worker finds its lock gone


def test_stats_count_by_queue_and_state_with_oldest_ready_age(engine: Engine) -> None:
    ids, _ = _seed(engine)
    _add(engine, queue="a")
    with engine.begin() as conn:  # ready for 100 s by the database clock
        conn.execute(update(delayed_jobs).where(delayed_jobs.c.id == ids["ready"])
                     .values(run_at=utcnow_plus(-100.0)))
    stats = inspect.queue_stats(engine)
    a, b = stats.queues["a"], stats.queues["b"]
    assert list(stats.queues) == ["a", "b"]
    assert (a.ready, a.scheduled, a.running, a.failed, a.total) == (2, 0, 1, 0, 3)
    assert (b.ready, b.scheduled, b.running, b.failed, b.total) == (0, 1, 0, 1, 2)
    assert (stats.total.ready, stats.total.total) == (2, 5)
    assert a.oldest_ready_age is not None and 100 <= a.oldest_ready_age < 160
    assert b.oldest_ready_age is None and stats.total.oldest_ready_age == a.oldest_ready_age


def test_stats_of_an_empty_queue(engine: Engine) -> None:
    stats = inspect.queue_stats(engine)
    assert stats.queues == {} and stats.total == inspect.Counts()


def test_workers_show_heartbeat_age_and_held_jobs(engine: Engine) -> None:
    busy = processes.register(engine, "worker", "host-a", 4242, ["a", "b"])
    processes.register(engine, "worker", "host-b", 77)
    _add(engine)
    assert len(Claimer(engine, busy.name).claim(5)) == 1
    found = {p["name"]: p for p in inspect.list_workers(engine)}
    assert found[busy.name]["running_jobs"] == 1 and found[busy.name]["queues"] == "a,b"
    assert [p["running_jobs"] for p in found.values()] == [1, 0]
    assert all(0 <= p["heartbeat_age"] < 30 for p in found.values())
