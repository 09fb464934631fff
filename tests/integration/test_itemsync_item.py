"""Single-item sync, the webhook receiver's logic and the ``itemsync.update`` job, on SQLite and
MariaDB against the fake GitLab: the hook and head repaired, an unchanged item untouched, a gone
project's row deleted, a held lock (ItemBusy, Reschedule), a bad token enqueuing nothing, a second
push deduplicated while the first update waits."""
from __future__ import annotations

import json

import pytest
from sqlalchemy import Engine

from dqueue import config, jobs
from dqueue.errors import Reschedule
from dqueue.itemsync import item, store
from dqueue.itemsync.jobs import update
from dqueue.itemsync.webhook import BadWebhook, WebhookResult, WebhookUnauthorized, accept_push
from dqueue.testing.gitlab import FakeGitLab
from tests.helpers import rows, scalar
from tests.itemsync_support import HOOK_URL, SECRET, gsettings, items


def test_sync_one_adds_the_hook_ingests_and_then_changes_nothing(
        engine: Engine, db_url: str, gitlab: FakeGitLab) -> None:
    pid = gitlab.project_ids()[0]
    settings = gsettings(db_url, gitlab)
    first = item.sync_one(engine, settings, pid)
    assert first.hook_added and first.updated and first.head_commit == gitlab.head(pid)
    assert first.message().startswith(f"Synced project {pid}: webhook added, head (none) -> ")
    stored = items(engine)
    again = item.sync_one(engine, settings, pid)
    assert not again.hook_added and not again.updated
    assert again.message() == f"Synced project {pid}: unchanged"
    assert items(engine) == stored
    assert [(h.url, h.token) for h in gitlab.hooks(pid)] == [(HOOK_URL, SECRET)]
    assert scalar(engine, "SELECT COUNT(*) FROM project_lock") == 0  # released


def test_sync_one_of_a_gone_project_deletes_its_row(engine: Engine, db_url: str, gitlab: FakeGitLab) -> None:
    pid = gitlab.project_ids()[1]
    settings = gsettings(db_url, gitlab)
    item.sync_one(engine, settings, pid)
    gitlab.delete_project(pid)
    result = item.sync_one(engine, settings, pid)
    assert result.gone and result.deleted and "404" in result.message()
    assert items(engine) == {}
    assert not item.sync_one(engine, settings, pid).deleted


def test_sync_one_waits_for_a_held_lock_then_says_busy(engine: Engine, db_url: str, gitlab: FakeGitLab) -> None:
    pid = gitlab.project_ids()[2]
    assert store.acquire(engine, pid, "other-host:1:x", 60)
    with pytest.raises(item.ItemBusy, match=f"project {pid} is being updated by someone else.*other-host"):
        item.sync_one(engine, gsettings(db_url, gitlab), pid, wait=0.3)
    assert items(engine) == {} and gitlab.counts().get("project", 0) == 0  # nothing read nor written


def _push(engine: Engine, settings: config.Settings, gitlab: FakeGitLab, pid: int, *, token: str | None = SECRET,
          event: str = "Push Hook", ref: str | None = None) -> WebhookResult:
    headers = {"X-Gitlab-Event": event, "Content-Type": "application/json"}
    if token is not None:
        headers["X-Gitlab-Token"] = token
    return accept_push(engine, settings, headers, json.dumps(gitlab.push_body(pid, ref)).encode())


def _jobs(engine: Engine) -> list[str]:
    return [r[0] for r in rows(engine, "SELECT handler FROM delayed_jobs ORDER BY id")]


@pytest.mark.parametrize("token", [None, "wrong", SECRET[:-1], ""])
def test_a_missing_or_wrong_token_is_refused_and_enqueues_nothing(
        engine: Engine, db_url: str, gitlab: FakeGitLab, token: str | None) -> None:
    with pytest.raises(WebhookUnauthorized):
        _push(engine, gsettings(db_url, gitlab), gitlab, gitlab.project_ids()[0], token=token)
    assert _jobs(engine) == []


def test_without_a_configured_secret_every_webhook_is_refused(
        engine: Engine, db_url: str, gitlab: FakeGitLab) -> None:
    settings = gsettings(db_url, gitlab, DQUEUE_GITLAB_WEBHOOK_SECRET="")
    with pytest.raises(WebhookUnauthorized, match="no webhook secret"):
        _push(engine, settings, gitlab, gitlab.project_ids()[0], token="")
    assert _jobs(engine) == []


def test_a_push_to_the_default_branch_enqueues_one_update_until_it_runs(
        engine: Engine, db_url: str, gitlab: FakeGitLab) -> None:
    settings = gsettings(db_url, gitlab)
    pid = gitlab.project_ids()[0]
    first = _push(engine, settings, gitlab, pid)
    assert first.enqueued and first.job_id is not None
    second = _push(engine, settings, gitlab, pid)
    assert not second.enqueued and second.duplicate and second.job_id == first.job_id
    assert _jobs(engine) == [json.dumps({"args": {"project_id": pid}, "job": "itemsync.update"},
                                        separators=(",", ":"))]
    _run_update(engine, settings, first.job_id, pid)
    assert items(engine)[pid][0] == gitlab.head(pid)
    assert scalar(engine, "SELECT COUNT(*) FROM item_update_pending") == 0
    third = _push(engine, settings, gitlab, pid)  # the update read GitLab: a new push needs a new job
    assert third.enqueued and third.job_id != first.job_id


@pytest.mark.parametrize(("event", "ref", "reason"), [
    ("Push Hook", "refs/heads/feature", "is not the default branch"),
    ("Tag Push Hook", "refs/tags/v1", "is not a push"),
    ("Merge Request Hook", None, "is not a push"),
])
def test_other_branches_tags_and_events_are_accepted_and_ignored(
        engine: Engine, db_url: str, gitlab: FakeGitLab, event: str, ref: str | None, reason: str) -> None:
    result = _push(engine, gsettings(db_url, gitlab), gitlab, gitlab.project_ids()[0], event=event, ref=ref)
    assert not result.enqueued and reason in result.reason
    assert _jobs(engine) == []


@pytest.mark.parametrize("body", [b"{not json", b"[1, 2]", b'{"ref": "refs/heads/main"}', b"\xff\xfe"])
def test_a_malformed_body_is_a_bad_webhook(engine: Engine, db_url: str, gitlab: FakeGitLab, body: bytes) -> None:
    headers = {"X-Gitlab-Event": "Push Hook", "X-Gitlab-Token": SECRET}
    with pytest.raises(BadWebhook):
        accept_push(engine, gsettings(db_url, gitlab), headers, body)
    assert _jobs(engine) == []


def _run_update(engine: Engine, settings: config.Settings, job_id: int | None, pid: int) -> None:
    assert job_id is not None
    with jobs.running(jobs.JobContext(job_id, 1, 5, settings, engine)):
        update(project_id=pid)


def test_the_update_job_is_rescheduled_while_the_item_is_locked_and_keeps_its_marker(
        engine: Engine, db_url: str, gitlab: FakeGitLab) -> None:
    settings = gsettings(db_url, gitlab)
    pid = gitlab.project_ids()[4]
    pushed = _push(engine, settings, gitlab, pid)
    assert store.acquire(engine, pid, "sync-thread", 60)
    with pytest.raises(Reschedule):
        _run_update(engine, settings, pushed.job_id, pid)
    assert not _push(engine, settings, gitlab, pid).enqueued  # still waiting: deduplicated
    assert store.release(engine, pid, "sync-thread")
    _run_update(engine, settings, pushed.job_id, pid)
    assert items(engine)[pid][0] == gitlab.head(pid)
