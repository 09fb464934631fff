"""The runbooks' SQL (seeds 000 and 001), verbatim, on SQLite and MariaDB: the history and
exit-message queries, "Marked complete by SQL", "Marked anbandon by SQL" and the six DELETEs.
After each, dqueue carries on: the next start works, and a live job whose execution was ended or
deleted by hand stops quietly and writes nothing."""
from __future__ import annotations

import pytest
from sqlalchemy import Engine

from dqueue.batch import launch
from dqueue.config import Settings
from tests.batch_support import WALK, run_next, running_thread, status
from tests.helpers import execute, rows, scalar

HISTORY = """select
  job_execution_id,
  job_instance_id,
  start_time,
  end_time,
  status,
  exit_message
from batch_job_execution
order by start_time desc;"""

EXIT_MESSAGE = """SELECT
    job_execution_id,
    exit_code,
    exit_message
FROM
    batch_job_execution
WHERE
    job_execution_id = {id};"""

INCOMPLETE_STEPS = """SELECT
    step_execution_id,
    job_execution_id,
    status,
    exit_code,
    start_time,
    end_time,
    last_updated
FROM
    batch_step_execution
WHERE
    status <> 'COMPLETED'
    OR exit_code <> 'COMPLETED';"""

COMPLETE_STEP = """UPDATE
    batch_step_execution
SET
    status = 'COMPLETED',
    exit_code = 'COMPLETED',
    end_time = CURRENT_TIMESTAMP
WHERE
    step_execution_id = {id}"""

COMPLETE_JOB = """UPDATE
    batch_job_execution
SET
    status = 'COMPLETED',
    exit_code = 'COMPLETED',
    end_time = CURRENT_TIMESTAMP,
    exit_message = 'Marked complete by SQL'
WHERE
    job_execution_id = {id}"""

ABANDON_STEP = """UPDATE
    batch_step_execution
SET
    status = 'ABANDONED',
    exit_code = 'ABANDONED',
    end_time = CURRENT_TIMESTAMP
WHERE
    job_execution_id = {id}"""

ABANDON_JOB = """UPDATE
    batch_job_execution
SET
    status = 'ABANDONED',
    exit_code = 'ABANDONED',
    end_time = CURRENT_TIMESTAMP,
    exit_message = 'Marked anbandon by SQL'
WHERE
    job_execution_id = {id}"""

DELETES = ["DELETE FROM batch_step_execution_context;", "DELETE FROM batch_step_execution;",
           "DELETE FROM batch_job_execution_context;", "DELETE FROM batch_job_execution_params;",
           "DELETE FROM batch_job_execution;", "DELETE FROM batch_job_instance;"]


def sql(engine: Engine, statement: str) -> int:
    with engine.begin() as conn:
        return conn.exec_driver_sql(statement.rstrip(";").rstrip()).rowcount


def query(engine: Engine, statement: str) -> list[tuple[object, ...]]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.exec_driver_sql(statement.rstrip(";").rstrip())]


def test_the_history_and_exit_message_queries(engine: Engine, settings: Settings) -> None:
    ok = launch.start(engine, settings, WALK, {"items": 1})
    run_next(engine, settings)
    bad = launch.start(engine, settings, WALK, {"items": 1, "raise": "1"})
    run_next(engine, settings)
    history = query(engine, HISTORY)
    assert [(r[0], r[1], r[4]) for r in history] == [(bad.job_execution_id, bad.job_instance_id, "FAILED"),
                                                     (ok.job_execution_id, ok.job_instance_id, "COMPLETED")]
    assert all(r[2] is not None and r[3] is not None for r in history)
    assert history[1][5] == "Total items: 1, walked: 1"
    ((n, code, message),) = query(engine, EXIT_MESSAGE.format(id=bad.job_execution_id))
    assert n == bad.job_execution_id and code == "FAILED"
    assert "Traceback (most recent call last)" in str(message) and "\n" in str(message)


def test_marked_complete_by_sql_frees_the_guard_and_the_live_job_writes_nothing(
        engine: Engine, settings: Settings) -> None:
    with running_thread(engine, settings) as (e, _, _):
        incomplete = query(engine, INCOMPLETE_STEPS)
        assert [(r[1], r[2]) for r in incomplete] == [(e.job_execution_id, "STARTED")]
        assert sql(engine, COMPLETE_STEP.format(id=incomplete[0][0])) == 1
        assert sql(engine, COMPLETE_JOB.format(id=e.job_execution_id)) == 1
        nxt = launch.start(engine, settings, WALK, {"items": 1})  # not running any more: the guard is free
    after = launch.get(engine, e.job_execution_id)
    assert after is not None and after.status == "COMPLETED" and after.exit_message == "Marked complete by SQL"
    assert [s.status for s in after.steps] == ["COMPLETED"]
    assert query(engine, INCOMPLETE_STEPS) == []
    run_next(engine, settings)  # the next execution (its job was queued behind) completes normally
    assert status(engine, nxt.job_execution_id) == "COMPLETED"


def test_marked_abandoned_by_sql_and_the_next_run_still_runs_its_step(engine: Engine, settings: Settings) -> None:
    with running_thread(engine, settings) as (e, _, _):
        sql(engine, ABANDON_STEP.format(id=e.job_execution_id))
        sql(engine, ABANDON_JOB.format(id=e.job_execution_id))
    after = launch.get(engine, e.job_execution_id)
    assert after is not None and after.status == "ABANDONED" and after.exit_message == "Marked anbandon by SQL"
    assert [s.status for s in after.steps] == ["ABANDONED"]
    # Spring skipped an ABANDONED step on the next run of the instance for ever (imrt_lblod A.7).
    nxt = launch.start(engine, settings, WALK, {"items": 400, "sleep": 0.02})
    assert nxt.job_instance_id == e.job_instance_id
    execute(engine, "UPDATE batch_job_execution_params SET long_val = 2 WHERE job_execution_id = :n",
            n=nxt.job_execution_id)
    run_next(engine, settings)
    done = launch.get(engine, nxt.job_execution_id)
    assert done is not None and done.status == "COMPLETED" and [s.status for s in done.steps] == ["COMPLETED"]


@pytest.mark.parametrize("upto", range(1, len(DELETES) + 1))
def test_the_runbooks_deletes_in_order(engine: Engine, settings: Settings, upto: int) -> None:
    finished = launch.start(engine, settings, WALK, {"items": 1})
    run_next(engine, settings)
    with running_thread(engine, settings) as (e, _, _):
        for statement in DELETES[:upto]:
            sql(engine, statement)
        gone = upto >= 5  # batch_job_execution is the fifth
        assert (launch.get(engine, e.job_execution_id) is None) is gone
        if not gone:  # history kept: hand-end it as the runbook's reset would, to free the guard
            sql(engine, COMPLETE_JOB.format(id=e.job_execution_id))
    if gone:
        assert rows(engine, "SELECT * FROM batch_job_execution") == []  # the live job wrote nothing back
        assert rows(engine, "SELECT * FROM batch_step_execution") == []
        assert rows(engine, "SELECT * FROM batch_job_execution_context") == []
    assert scalar(engine, "SELECT COUNT(*) FROM delayed_jobs") == 0
    fresh = launch.start(engine, settings, WALK, {"items": 1})
    run_next(engine, settings)
    assert status(engine, fresh.job_execution_id) == "COMPLETED"
    assert (launch.get(engine, finished.job_execution_id) is None) is (upto >= 5)


def test_all_six_deletes_with_nothing_running_then_a_fresh_instance(engine: Engine, settings: Settings) -> None:
    first = launch.start(engine, settings, WALK)
    run_next(engine, settings)
    for statement in DELETES:
        sql(engine, statement)
    fresh = launch.start(engine, settings, WALK)
    assert fresh.job_instance_id != first.job_instance_id  # ids are never reused
    run_next(engine, settings)
    assert [e.status for e in launch.listing(engine)] == ["COMPLETED"]


def test_a_live_jobs_writes_never_recreate_contexts_deleted_by_hand(engine: Engine, settings: Settings) -> None:
    """The runbook deletes the context tables before batch_job_execution: a progress or end write
    landing in between must not re-create a context row, or that DELETE fails on its foreign key."""
    from dqueue.batch import store
    from dqueue.batch.status import BatchStatus
    from dqueue.store.queue import transaction
    started = launch.start(engine, settings, WALK, {"items": 1})
    job_id = int(started.delayed_job_id or 0)
    with transaction(engine) as conn:
        step_id = store.begin(conn, started.job_execution_id, job_id, "walkStep")
    assert step_id is not None
    assert scalar(engine, "SELECT COUNT(*) FROM batch_job_execution_context") == 1
    assert scalar(engine, "SELECT COUNT(*) FROM batch_step_execution_context") == 1
    for statement in DELETES[:1] + DELETES[2:3]:  # both context tables, the step row kept
        sql(engine, statement)
    with transaction(engine) as conn:
        assert store.progress(conn, started.job_execution_id, job_id, step_id, {"read_count": 1}, {"done": 1})
        assert store.end(conn, started.job_execution_id, BatchStatus.COMPLETED, "done", job_id=job_id,
                         context={"done": 1})
    assert scalar(engine, "SELECT COUNT(*) FROM batch_job_execution_context") == 0
    assert scalar(engine, "SELECT COUNT(*) FROM batch_step_execution_context") == 0
    for statement in DELETES[1:2] + DELETES[3:]:
        sql(engine, statement)  # the foreign keys let every DELETE through
    assert scalar(engine, "SELECT COUNT(*) FROM batch_job_execution") == 0
