"""Batch pieces without a database: statuses, job keys and parameters, the answers' JSON, the
kinds registry, progress arithmetic and the CLI's --param parsing."""
from __future__ import annotations

import datetime as dt
import hashlib

import click
import pytest

from dqueue.batch import kinds, launch
from dqueue.batch.abandon import Abandoned
from dqueue.batch.cli import _params
from dqueue.batch.kinds import Result, StepContext, error_text
from dqueue.batch.records import Execution, Step, _status
from dqueue.batch.status import RUNNING, BatchStatus, StopRequest


def test_statuses_are_springs_in_springs_order() -> None:
    assert [s.value for s in BatchStatus] == ["COMPLETED", "STARTING", "STARTED", "STOPPING", "STOPPED",
                                              "FAILED", "ABANDONED", "UNKNOWN"]
    assert RUNNING == (BatchStatus.STARTING, BatchStatus.STARTED, BatchStatus.STOPPING)
    assert StopRequest.ABANDON.status is BatchStatus.ABANDONED and StopRequest.STOP.status is BatchStatus.STOPPED
    assert _status("done by hand") is BatchStatus.UNKNOWN and _status(None) is None


def test_job_key_is_springs_md5_of_the_identifying_parameters() -> None:
    assert launch.job_key([]) == hashlib.md5(b"").hexdigest() == "d41d8cd98f00b204e9800998ecf8427e"
    params = launch.to_params({"b": "x", "a": 1, "when": dt.datetime(2020, 1, 1)})
    assert launch.job_key(params) == hashlib.md5(b"a=1;b=x;when=1577836800000;").hexdigest()
    assert [(p.key, p.type_cd) for p in params] == [("a", "LONG"), ("b", "STRING"), ("when", "DATE")]
    assert launch.to_params({"f": 1.5, "t": True})[1].value == "true"
    with pytest.raises(ValueError, match="1 to 100 characters"):
        launch.to_params({"": 1})
    with pytest.raises(ValueError, match="longer than 250"):
        launch.to_params({"s": "x" * 251})


def test_already_running_says_what_spring_said_and_how_to_abandon() -> None:
    err = launch.AlreadyRunning(6, 3, "itemSynchronizationJob", "STARTED")
    assert str(err) == (
        "A job execution for this job is already running: JobInstance: id=3, version=0, "
        "Job=[itemSynchronizationJob].  Job execution id: 6 (STARTED).  To abandon the running execution "
        "of this job, run 'dqueue abandon 3' or make a PUT call to /abandon/3")
    assert err.as_dict() == {"error": "A job is already running", "message": str(err), "jobExecutionId": 6,
                             "jobInstanceId": 3, "name": "itemSynchronizationJob", "status": "STARTED"}


def test_answers_as_json() -> None:
    assert Abandoned(0, 3, "j", "NO JOB EXECUTIONS", "m").settled
    assert not Abandoned(5, 3, "j", "STOPPING", "m").settled
    t = dt.datetime(2024, 5, 9, 8, 31, 3, 265000)
    step = Step(7, "s", BatchStatus.COMPLETED, t, t, "COMPLETED", None, t, {"read_count": 3, "write_skip_count": 0})
    e = Execution(15, 1, "itemSynchronizationJob", BatchStatus.COMPLETED, t, t, t, "COMPLETED", "ok", t,
                  params={"a": 1}, progress={"done": 3}, steps=(step,))
    d = e.as_dict()
    assert (d["jobExecutionId"], d["jobInstanceId"], d["status"], d["startTime"]) == (
        15, 1, "COMPLETED", "2024-05-09T08:31:03.265000Z")
    assert d["steps"][0]["readCount"] == 3 and d["steps"][0]["writeSkipCount"] == 0 and not e.running


def test_kinds_register_once_per_name() -> None:
    def tasklet(ctx: StepContext) -> Result:
        return Result("ok")
    kinds.batch_job("unit.kind", step="unitStep", label="Unit")(tasklet)
    kinds.batch_job("unit.kind", step="unitStep", label="Unit")(tasklet)  # the same function again: fine
    kind = kinds.get("unit.kind")
    assert kind is not None and (kind.step, kind.label, kind.singleton) == ("unitStep", "Unit", False)

    def other(ctx: StepContext) -> Result:
        return Result("other")
    with pytest.raises(ValueError, match="already registered"):
        kinds.batch_job("unit.kind", step="s", label="l")(other)
    with pytest.raises(ValueError, match="1 to 100"):
        kinds.batch_job("", step="s", label="l")


def test_error_text_is_message_then_traceback() -> None:
    try:
        raise KeyError("project 12")
    except KeyError as exc:
        text = error_text(exc)
    assert text.startswith("'project 12': Traceback (most recent call last):") and "KeyError" in text


def test_progress_rate_and_eta() -> None:
    ctx = StepContext.__new__(StepContext)
    ctx._started = 100.0
    snap = ctx._snapshot(50, 200, {"write_count": 5}, 110.0)
    assert snap == {"write_count": 5, "done": 50, "total": 200, "rate": 5.0, "eta": 30.0}
    assert ctx._snapshot(0, None, {}, 110.0)["eta"] is None


def test_cli_params() -> None:
    assert _params(("a=1", "n(long)=5", "x(double)=1.5", "d(date)=2020-01-01T00:00:00Z", "e=")) == {
        "a": "1", "n": 5, "x": 1.5, "d": dt.datetime(2020, 1, 1), "e": ""}
    for bad in ("a", "=1", "n(int)=1", "n(long)=x"):
        with pytest.raises(click.BadParameter):
            _params((bad,))
