"""Batch executions on a real database, run in-process as a worker would: COMPLETED and FAILED
with their exit messages (masked), the runbook's log lines, progress, instances by parameters,
and the singleton guard (non-singleton kinds are never refused)."""
from __future__ import annotations

import hashlib
import logging

import pytest
from sqlalchemy import Engine

from dqueue.batch import launch
from dqueue.config import Settings
from tests.batch_support import FREE, LABEL, SECRET, WALK, run_next, running_thread, status
from tests.helpers import rows, scalar


def test_a_completed_execution_is_recorded_as_spring_batch_does(
        engine: Engine, settings: Settings, caplog: pytest.LogCaptureFixture) -> None:
    started = launch.start(engine, settings, WALK, {"items": 3})
    assert started.status == "STARTING" and started.start_time is None and started.delayed_job_id
    with caplog.at_level(logging.INFO, logger="dqueue.batch"):
        run_next(engine, settings)
    e = launch.get(engine, started.job_execution_id)
    assert e is not None and e.status == "COMPLETED" and e.exit_code == "COMPLETED"
    assert e.exit_message == "Total items: 3, walked: 3"
    assert e.start_time and e.end_time and e.end_time >= e.start_time
    assert e.params == {"items": 3}
    assert e.progress is not None and e.progress["done"] == 3 and e.progress["total"] == 3
    (step,) = e.steps
    assert (step.step_name, step.status, step.exit_code) == ("testWalkStep", "COMPLETED", "COMPLETED")
    assert step.counts["read_count"] == 3 and step.counts["write_count"] == 3 and step.end_time
    messages = [r.getMessage() for r in caplog.records]
    n = e.job_execution_id
    assert f"{LABEL} starting.  Job execution id: {n}" in messages
    assert (f"{LABEL} complete.  Job execution id: {n}, exit status code: COMPLETED, "
            f"exit message: Total items: 3, walked: 3") in messages
    ctx = scalar(engine, "SELECT serialized_context FROM batch_job_execution_context WHERE job_execution_id = :n", n=n)
    assert '"walked": 3' in ctx and '"progress"' in ctx
    assert scalar(engine, "SELECT COUNT(*) FROM delayed_jobs") == 0


def test_a_raised_exception_fails_it_with_message_and_traceback_masked(engine: Engine, settings: Settings) -> None:
    settings = settings.replace(zenodo_token=SECRET)  # a setting marked SECRET
    started = launch.start(engine, settings, WALK, {"items": 2, "raise": "1"})
    run_next(engine, settings)
    e = launch.get(engine, started.job_execution_id)
    assert e is not None and e.status == "FAILED" and e.exit_code == "FAILED"
    assert e.exit_message is not None
    assert "walk broke at item 2: the server refused hidden" in e.exit_message
    assert "Traceback (most recent call last)" in e.exit_message and "RuntimeError" in e.exit_message
    assert SECRET not in e.exit_message
    assert [(s.status, SECRET in (s.exit_message or "")) for s in e.steps] == [("FAILED", False)]
    assert "Traceback" in (e.steps[0].exit_message or "")
    assert not rows(engine, "SELECT * FROM batch_job_execution WHERE exit_message LIKE :s", s=f"%{SECRET}%")


def test_returned_errors_fail_it_with_the_summary_and_each_error(engine: Engine, settings: Settings) -> None:
    started = launch.start(engine, settings, WALK, {"items": 2, "fail": "1"})
    run_next(engine, settings)
    e = launch.get(engine, started.job_execution_id)
    assert e is not None and e.status == "FAILED"
    assert e.exit_message == "Total items: 2, walked: 2\nitem 2 refused: bad item"


def test_a_long_exit_message_is_kept_whole(engine: Engine, settings: Settings) -> None:
    started = launch.start(engine, settings, WALK, {"items": 1, "raise": "1", "pad": 20000})
    run_next(engine, settings)
    text = scalar(engine, "SELECT exit_message FROM batch_job_execution WHERE job_execution_id = :n",
                  n=started.job_execution_id)
    assert text.count("x" * 20000) == 2  # the message, and the traceback's last line (Spring kept 2,500)
    assert text.rstrip().endswith("x" * 20000) and "Traceback (most recent call last)" in text


def test_instances_follow_the_identifying_parameters(engine: Engine, settings: Settings) -> None:
    first = launch.start(engine, settings, FREE)
    again = launch.start(engine, settings, FREE)
    other = launch.start(engine, settings, FREE, {"items": 2})
    assert first.job_instance_id == again.job_instance_id != other.job_instance_id
    keys = dict(rows(engine, "SELECT job_instance_id, job_key FROM batch_job_instance"))
    assert keys[first.job_instance_id] == hashlib.md5(b"").hexdigest()
    assert keys[other.job_instance_id] == hashlib.md5(b"items=2;").hexdigest()
    assert rows(engine, "SELECT type_cd, key_name, long_val, identifying FROM batch_job_execution_params "
                "WHERE job_execution_id = :n", n=other.job_execution_id) == [("LONG", "items", 2, "Y")]
    with pytest.raises(launch.UnknownKind, match="no batch job 'nope'"):
        launch.start(engine, settings, "nope")
    with pytest.raises(ValueError, match="not a string, number or time"):
        launch.start(engine, settings, FREE, {"x": [1]})


def test_a_singleton_is_refused_while_it_runs_and_other_kinds_never_are(engine: Engine, settings: Settings) -> None:
    with running_thread(engine, settings) as (e, _, _):
        with pytest.raises(launch.AlreadyRunning) as refused:
            launch.start(engine, settings, WALK, {"items": 1})
        err = refused.value
        assert (err.execution_id, err.instance_id, err.name, err.status) == (
            e.job_execution_id, e.job_instance_id, WALK, "STARTED")
        assert str(err).startswith(f"A job execution for this job is already running: JobInstance: "
                                   f"id={e.job_instance_id}, version=0, Job=[{WALK}].")
        assert f"dqueue abandon {e.job_instance_id}" in str(err) and f"/abandon/{e.job_instance_id}" in str(err)
        assert err.as_dict()["error"] == "A job is already running"
        assert err.as_dict()["jobExecutionId"] == e.job_execution_id
        free = [launch.start(engine, settings, FREE, {"items": 1}) for _ in range(3)]
        assert all(f.status == "STARTING" for f in free)
        launch.abandon(engine, settings, e.job_instance_id, wait=20)
    assert status(engine, e.job_execution_id) == "ABANDONED"
    assert launch.start(engine, settings, WALK, {"items": 1}).status == "STARTING"


def test_listing_is_newest_first(engine: Engine, settings: Settings) -> None:
    ids = [launch.start(engine, settings, FREE, {"n": i}).job_execution_id for i in range(3)]
    assert [e.job_execution_id for e in launch.listing(engine)] == ids[::-1]
    assert [e.job_execution_id for e in launch.listing(engine, limit=2)] == ids[:0:-1]
    assert launch.listing(engine, name=WALK) == [] and launch.get(engine, 999) is None
