"""POST /sync, GET /executions/N and PUT /abandon/I on SQLite and MariaDB (no worker runs here:
an execution stays STARTING until abandoned; the acceptance tests run it)."""
from __future__ import annotations

import pytest
from sqlalchemy import Engine

from dqueue import config
from dqueue.batch import launch
from dqueue.batch.abandon import Abandoned
from dqueue.itemsync.sync import JOB_NAME
from tests.helpers import scalar
from tests.web_support import assert_json_error, body, served


def test_sync_starts_the_item_sync_and_a_second_call_gets_409_with_the_running_one(
        engine: Engine, settings: config.Settings) -> None:
    with served(engine, settings) as api:
        first = api.call("POST", "/sync")
        assert first.status_code == 200, first.text
        started = body(first)
        assert started["name"] == JOB_NAME == "itemSynchronizationJob"
        assert started["status"] == "STARTING"
        assert started["message"] == "Started itemSynchronizationJob successfully"
        execution_id, instance_id = started["jobExecutionId"], started["jobInstanceId"]

        second = api.call("POST", "/sync")
        assert second.status_code == 409
        refused = body(second)
        assert refused["error"] == "A job is already running"
        assert (refused["jobExecutionId"], refused["jobInstanceId"]) == (execution_id, instance_id)
        assert refused["status"] == "STARTING"
        assert f"/abandon/{instance_id}" in refused["message"]
    assert scalar(engine, "SELECT COUNT(*) FROM batch_job_execution") == 1


def test_executions_shows_one_execution_and_404s_an_unknown_one(
        engine: Engine, settings: config.Settings) -> None:
    with served(engine, settings) as api:
        execution_id = body(api.call("POST", "/sync"))["jobExecutionId"]
        shown = body(api.call("GET", f"/executions/{execution_id}"))
        assert shown["jobExecutionId"] == execution_id
        assert shown["name"] == JOB_NAME and shown["status"] == "STARTING"
        assert shown["createTime"].endswith("Z") and shown["endTime"] is None
        missing = assert_json_error(api.call("GET", f"/executions/{execution_id + 1}"), 404)
        assert missing["jobExecutionId"] == execution_id + 1


def test_abandon_ends_the_running_execution_then_says_none_runs_and_a_new_sync_may_start(
        engine: Engine, settings: config.Settings) -> None:
    with served(engine, settings, abandon_wait=0) as api:
        started = body(api.call("POST", "/sync"))
        instance_id = started["jobInstanceId"]

        abandoned = api.call("PUT", f"/abandon/{instance_id}")
        assert abandoned.status_code == 200, abandoned.text
        data = body(abandoned)
        assert data["status"] == "ABANDONED"
        assert data["jobExecutionId"] == started["jobExecutionId"]
        assert data["message"] == (f"Job Execution {started['jobExecutionId']} for Job {JOB_NAME} "
                                   "abandoned successfully")
        shown = body(api.call("GET", f"/executions/{started['jobExecutionId']}"))
        assert shown["status"] == "ABANDONED" and shown["endTime"]

        again = api.call("PUT", f"/abandon/{instance_id}")
        assert again.status_code == 200
        assert body(again)["status"] == "NO JOB EXECUTIONS" and body(again)["jobExecutionId"] == 0

        restarted = api.call("POST", "/sync")
        assert restarted.status_code == 200
        assert body(restarted)["jobExecutionId"] != started["jobExecutionId"]
        assert body(restarted)["jobInstanceId"] == instance_id  # empty params: one instance for ever


def test_abandon_of_an_unknown_instance_is_404(engine: Engine, settings: config.Settings) -> None:
    with served(engine, settings) as api:
        data = assert_json_error(api.call("PUT", "/abandon/4242"), 404)
        assert data["jobInstanceId"] == 4242


def test_abandon_still_waiting_for_the_worker_is_202_and_waits_the_configured_time(
        engine: Engine, settings: config.Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[float] = []

    def stopping(engine: Engine, settings: config.Settings, instance_id: int, wait: float = 10.0) -> Abandoned:
        asked.append(wait)
        return Abandoned(7, instance_id, JOB_NAME, "STOPPING", "still finishing its item")
    monkeypatch.setattr(launch, "abandon", stopping)
    with served(engine, settings, abandon_wait=2.5) as api:
        answer = api.call("PUT", "/abandon/3")
    assert answer.status_code == 202
    assert body(answer) == {"jobExecutionId": 7, "jobInstanceId": 3, "name": JOB_NAME,
                            "status": "STOPPING", "message": "still finishing its item"}
    assert asked == [2.5]
