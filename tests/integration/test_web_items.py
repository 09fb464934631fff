"""POST /sync/{projectId} and POST /webHook against the fake GitLab, on SQLite and MariaDB."""
from __future__ import annotations

from typing import Any

from sqlalchemy import Engine

from dqueue import config
from dqueue.itemsync import store
from dqueue.testing.gitlab import FakeGitLab
from tests.helpers import scalar
from tests.itemsync_support import SECRET, gsettings
from tests.web_support import TOKEN, Api, assert_json_error, body, served

PUSH = {"X-Gitlab-Event": "Push Hook", "Content-Type": "application/json"}


def jobs(engine: Engine) -> int:
    return int(scalar(engine, "SELECT COUNT(*) FROM delayed_jobs"))


def push(api: Api, gitlab: FakeGitLab, project_id: int, token: str | None, **headers: str) -> Any:
    sent = {**PUSH, **headers}
    if token is not None:
        sent["X-Gitlab-Token"] = token
    return api.call("POST", "/webHook", token=None, json=gitlab.push_body(project_id), headers=sent)


def test_sync_of_one_item_stores_its_head_and_answers_synced_project(
        engine: Engine, db_url: str, gitlab: FakeGitLab) -> None:
    project_id = gitlab.project_ids()[0]
    with served(engine, gsettings(db_url, gitlab)) as api:
        answer = api.call("POST", f"/sync/{project_id}")
        assert answer.status_code == 200, answer.text
        data = body(answer)
    assert data["message"].startswith(f"Synced project {project_id}")
    assert data["projectId"] == project_id and data["updated"] is True and data["hookAdded"] is True
    stored = scalar(engine, "SELECT head_commit FROM items WHERE project_id = :p", p=project_id)
    assert stored == gitlab.head(project_id)
    assert jobs(engine) == 0  # synchronous: nothing enqueued, no batch execution
    assert scalar(engine, "SELECT COUNT(*) FROM batch_job_execution") == 0


def test_sync_of_one_item_is_503_without_gitlab_settings(engine: Engine, settings: config.Settings) -> None:
    with served(engine, settings) as api:
        data = assert_json_error(api.call("POST", "/sync/5"), 503)
    assert "gitlab_base_url" in data["message"] and data["projectId"] == 5


def test_sync_of_one_item_is_502_when_gitlab_fails(engine: Engine, db_url: str, gitlab: FakeGitLab) -> None:
    gitlab.inject("500", times=None)
    settings = gsettings(db_url, gitlab, DQUEUE_GITLAB_ATTEMPTS="1")
    with served(engine, settings) as api:
        data = assert_json_error(api.call("POST", f"/sync/{gitlab.project_ids()[0]}"), 502)
    assert data["message"].startswith("GitLab failed")
    assert settings.gitlab.token not in data["message"]


def test_sync_of_one_item_is_409_while_another_update_holds_it(
        engine: Engine, db_url: str, gitlab: FakeGitLab) -> None:
    project_id = gitlab.project_ids()[0]
    assert store.acquire(engine, project_id, "someone-else", 60.0)
    with served(engine, gsettings(db_url, gitlab)) as api:
        data = assert_json_error(api.call("POST", f"/sync/{project_id}"), 409)
    assert "someone-else" in data["message"] and data["projectId"] == project_id
    assert scalar(engine, "SELECT COUNT(*) FROM items") == 0


def test_webhook_without_the_secret_is_401_and_enqueues_nothing(
        engine: Engine, db_url: str, gitlab: FakeGitLab) -> None:
    project_id = gitlab.project_ids()[0]
    with served(engine, gsettings(db_url, gitlab)) as api:
        for token in (None, "wrong-secret", SECRET[:-1], ""):
            assert_json_error(push(api, gitlab, project_id, token), 401)
        # A bearer token does not stand in for GitLab's secret.
        answer = api.call("POST", "/webHook", token=TOKEN, json=gitlab.push_body(project_id), headers=PUSH)
        assert_json_error(answer, 401)
    assert jobs(engine) == 0


def test_webhook_is_401_when_no_secret_is_configured(engine: Engine, db_url: str, gitlab: FakeGitLab) -> None:
    settings = gsettings(db_url, gitlab, DQUEUE_GITLAB_WEBHOOK_SECRET="")
    with served(engine, settings) as api:
        assert_json_error(push(api, gitlab, gitlab.project_ids()[0], ""), 401)
    assert jobs(engine) == 0


def test_webhook_push_to_the_default_branch_enqueues_the_item_update(
        engine: Engine, db_url: str, gitlab: FakeGitLab) -> None:
    project_id = gitlab.project_ids()[1]
    with served(engine, gsettings(db_url, gitlab)) as api:
        answer = push(api, gitlab, project_id, SECRET)
        assert answer.status_code == 200, answer.text
        data = body(answer)
    assert data["enqueued"] is True and data["projectId"] == project_id
    assert scalar(engine, "SELECT handler FROM delayed_jobs WHERE id = :i", i=data["jobId"]) is not None
    assert jobs(engine) == 1


def test_webhook_malformed_bodies_are_400_json(engine: Engine, db_url: str, gitlab: FakeGitLab) -> None:
    with served(engine, gsettings(db_url, gitlab)) as api:
        for payload in (b"{not json", b"[1, 2]", b'{"ref": "refs/heads/main"}', b"\xff\xfe",
                        b'{"project_id": 99999999999999999999, "ref": "refs/heads/main"}'):
            answer = api.call("POST", "/webHook", token=None, data=payload,
                              headers={**PUSH, "X-Gitlab-Token": SECRET})
            assert_json_error(answer, 400)
    assert jobs(engine) == 0
