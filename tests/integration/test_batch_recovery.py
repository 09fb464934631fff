"""Abandon and crash reconciliation on a real database, with claims and releases made through the
queue core as a worker and the engine's crash detection make them."""
from __future__ import annotations

import pytest
from sqlalchemy import Engine

from dqueue.batch import launch
from dqueue.config import Settings
from dqueue.store import queue
from tests.batch_support import FREE, WALK, claim, run_claimed, run_next, running_thread, status
from tests.helpers import execute, rows


def _started_then_lost(engine: Engine, settings: Settings) -> tuple[launch.Execution, queue.ClaimedJob]:
    """An execution STARTED by a worker that died: its job is no longer locked (released)."""
    from dqueue.batch import store
    from dqueue.store.queue import transaction
    e = launch.start(engine, settings, WALK, {"items": 5})
    job = claim(engine)
    with transaction(engine) as conn:
        assert store.begin(conn, e.job_execution_id, job.id, "testWalkStep") is not None
    assert queue.release(engine, [job]) == 1  # what crash detection does to a dead worker's job
    return e, job


def test_the_next_start_ends_a_dead_holder_failed_with_its_reason(engine: Engine, settings: Settings) -> None:
    dead, _ = _started_then_lost(engine, settings)
    nxt = launch.start(engine, settings, WALK, {"items": 1})
    old = launch.get(engine, dead.job_execution_id)
    assert old is not None and old.status == "FAILED" and old.end_time is not None
    assert old.exit_message == (f"Marked FAILED by dqueue: the worker running it died (its job "
                                f"{dead.delayed_job_id} was released by crash detection)")
    assert [(s.status, s.end_time is not None) for s in old.steps] == [("FAILED", True)]
    assert nxt.status == "STARTING"


def test_the_released_job_itself_ends_it_failed_without_running_again(engine: Engine, settings: Settings) -> None:
    dead, _ = _started_then_lost(engine, settings)
    run_next(engine, settings)  # attempt 2 of its batch.run job
    old = launch.get(engine, dead.job_execution_id)
    assert old is not None and old.status == "FAILED"
    died = f"the worker running it died (its job {dead.delayed_job_id} was released"
    assert old.exit_message is not None and died in old.exit_message
    assert old.steps[0].counts["read_count"] == 0  # the tasklet did not run again
    assert rows(engine, "SELECT id FROM delayed_jobs") == []


@pytest.mark.parametrize("how", ["deleted", "failed"])
def test_a_holder_whose_job_is_gone_or_failed_is_dead(engine: Engine, settings: Settings, how: str) -> None:
    e = launch.start(engine, settings, WALK)
    if how == "deleted":
        execute(engine, "DELETE FROM delayed_jobs")
    else:
        queue.fail(engine, claim(engine), "boom", None)
    assert launch.start(engine, settings, WALK).status == "STARTING"
    old = launch.get(engine, e.job_execution_id)
    assert old is not None and old.status == "FAILED"
    assert f"its job {e.delayed_job_id} " + ("is gone" if how == "deleted" else "failed for good") in (
        old.exit_message or "")


def test_an_unclaimed_starting_holder_is_alive(engine: Engine, settings: Settings) -> None:
    e = launch.start(engine, settings, WALK)
    with pytest.raises(launch.AlreadyRunning) as refused:
        launch.start(engine, settings, WALK)
    assert refused.value.status == "STARTING" and status(engine, e.job_execution_id) == "STARTING"


def test_abandon_an_unknown_instance_or_with_nothing_running(engine: Engine, settings: Settings) -> None:
    with pytest.raises(launch.UnknownInstance, match="no job instance 77"):
        launch.abandon(engine, settings, 77)
    e = launch.start(engine, settings, WALK, {"items": 1})
    run_next(engine, settings)
    for _ in range(2):  # idempotent
        answer = launch.abandon(engine, settings, e.job_instance_id).as_dict()
        assert answer == {"jobExecutionId": 0, "jobInstanceId": e.job_instance_id, "name": WALK,
                          "status": "NO JOB EXECUTIONS", "message": "No job executions are currently running "
                          f"for the {WALK} (job instance id {e.job_instance_id})"}
    assert status(engine, e.job_execution_id) == "COMPLETED"


def test_abandon_before_a_worker_claims_it(engine: Engine, settings: Settings) -> None:
    e = launch.start(engine, settings, WALK)
    result = launch.abandon(engine, settings, e.job_instance_id, wait=0)
    assert result.status == "ABANDONED" and result.execution_id == e.job_execution_id
    assert result.message == f"Job Execution {e.job_execution_id} for Job {WALK} abandoned successfully"
    run_next(engine, settings)  # its job, when it runs, finds it ended and does nothing
    after = launch.get(engine, e.job_execution_id)
    assert after is not None and after.status == "ABANDONED" and after.steps == ()


def test_abandon_a_running_execution_cooperatively(engine: Engine, settings: Settings) -> None:
    with running_thread(engine, settings) as (e, _, _):
        result = launch.abandon(engine, settings, e.job_instance_id, wait=20)
        assert result.status == "ABANDONED"
    after = launch.get(engine, e.job_execution_id)
    assert after is not None and after.status == "ABANDONED" and after.exit_code == "ABANDONED"
    assert after.end_time is not None and after.exit_message is not None
    assert after.exit_message.startswith("Abandoned on request: Total items: 400, walked: ")
    assert [s.status for s in after.steps] == ["ABANDONED"]
    assert 0 < (after.steps[0].counts["read_count"] or 0) < 400  # it stopped between items


def test_a_second_abandon_of_a_stopping_execution_is_no_error(engine: Engine, settings: Settings) -> None:
    e = launch.start(engine, settings, WALK)
    job = claim(engine)  # claimed, not yet STARTED: a live worker holds it
    first = launch.abandon(engine, settings, e.job_instance_id, wait=0)
    second = launch.abandon(engine, settings, e.job_instance_id, wait=0)
    assert (first.status, second.status) == ("STOPPING", "STOPPING") and not second.settled
    assert "has not reached its next item" in second.message
    run_claimed(engine, settings, job)  # the worker gets to it: abandoned before it started
    after = launch.get(engine, e.job_execution_id)
    assert after is not None and after.status == "ABANDONED" and after.steps == ()
    assert launch.abandon(engine, settings, e.job_instance_id).status == "NO JOB EXECUTIONS"


def test_stopping_after_a_crash_ends_abandoned(engine: Engine, settings: Settings) -> None:
    from dqueue.batch import store
    from dqueue.store.queue import transaction
    e = launch.start(engine, settings, WALK)
    job = claim(engine)
    with transaction(engine) as conn:
        store.begin(conn, e.job_execution_id, job.id, "testWalkStep")
    assert launch.abandon(engine, settings, e.job_instance_id, wait=0).status == "STOPPING"
    queue.release(engine, [job])  # then its worker dies
    # Spring answered 500 here, and only SQL helped (imrt_lblod A.7).
    assert launch.abandon(engine, settings, e.job_instance_id, wait=0).status == "ABANDONED"
    after = launch.get(engine, e.job_execution_id)
    assert after is not None and [s.status for s in after.steps] == ["ABANDONED"]
    assert launch.start(engine, settings, WALK).status == "STARTING"


def test_a_stopping_holder_whose_worker_died_is_abandoned_by_the_next_start(
        engine: Engine, settings: Settings) -> None:
    from dqueue.batch import store
    from dqueue.store.queue import transaction
    e = launch.start(engine, settings, WALK)
    job = claim(engine)
    with transaction(engine) as conn:
        store.begin(conn, e.job_execution_id, job.id, "testWalkStep")
    launch.abandon(engine, settings, e.job_instance_id, wait=0)
    queue.release(engine, [job])
    launch.start(engine, settings, WALK)
    assert status(engine, e.job_execution_id) == "ABANDONED"


def test_abandon_reaches_every_running_execution_of_a_free_kind(engine: Engine, settings: Settings) -> None:
    a = launch.start(engine, settings, FREE)
    b = launch.start(engine, settings, FREE)
    assert a.job_instance_id == b.job_instance_id
    assert launch.abandon(engine, settings, a.job_instance_id, wait=0).status == "ABANDONED"
    assert status(engine, a.job_execution_id) == status(engine, b.job_execution_id) == "ABANDONED"


@pytest.mark.parametrize(("reason", "ended"), [("shutdown", "STOPPED"), ("timeout", "FAILED")])
def test_an_interrupted_step_ends_the_execution_and_the_job_goes_on(
        engine: Engine, settings: Settings, reason: str, ended: str) -> None:
    from dqueue.worker.executor import JobInterrupted
    e = launch.start(engine, settings, WALK, {"items": 2, "interrupt": reason})
    job = claim(engine)
    with pytest.raises(JobInterrupted):
        run_claimed(engine, settings, job)
    after = launch.get(engine, e.job_execution_id)
    assert after is not None and after.status == ended and [s.status for s in after.steps] == [ended]
    queue.release(engine, [job])  # the worker hands the job back (shutdown) or retries it (timeout)
    run_next(engine, settings)  # it finds the execution ended and does nothing more
    assert status(engine, e.job_execution_id) == ended
    assert launch.start(engine, settings, WALK).status == "STARTING"
