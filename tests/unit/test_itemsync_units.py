"""The item sync's pure pieces: the exit summary, the progress line, the item result's message and
the webhook's token and body checks (which refuse before touching the database)."""
from __future__ import annotations

import pytest

from dqueue import config
from dqueue.itemsync.cli import render
from dqueue.itemsync.item import ItemResult
from dqueue.itemsync.sync import summary
from dqueue.itemsync.webhook import BadWebhook, WebhookUnauthorized, accept_push, check_token

SECRET = "s3cret-token"


def _settings(secret: str = SECRET) -> config.Settings:
    return config.load(environ={"DQUEUE_GITLAB_WEBHOOK_SECRET": secret} if secret else {},
                       database_url="sqlite:///unused.sqlite3")


def test_summary_is_the_runbooks_exit_message_with_updated_and_deleted() -> None:
    assert summary(1811, 10, 3, 1) == ("Total item bank ids: 1811, number of items requiring project webhook: 10, "
                                       "number of items updated: 3, number of items deleted: 1")


def test_progress_line() -> None:
    assert render(None, "STARTING") == "starting: waiting for a worker / getting item bank ids"
    listing = render({"done": 12, "total": None, "rate": 4.0, "eta": None}, "STARTED")
    assert listing.startswith("[???") and "12 items (listing), 4.0/s, ETA unknown" in listing
    line = render({"done": 50, "total": 200, "rate": 10.0, "eta": 15.0, "updated": 2, "hooks_added": 0}, "STARTED")
    assert line == "[#######-----------------------] 50/200 items, 10.0/s, ETA 15s  (2 updated)"
    assert "ETA 2m05s" in render({"done": 1, "total": 2, "rate": 1.0, "eta": 125}, "STARTED")


def test_item_result_messages() -> None:
    assert ItemResult(7).message() == "Synced project 7: unchanged"
    changed = ItemResult(7, "a/b", hook_added=True, updated=True, previous_commit="a" * 40, head_commit="b" * 40)
    assert changed.message() == f"Synced project 7: webhook added, head {'a' * 12} -> {'b' * 12}"
    assert "its stored item was deleted" in ItemResult(7, gone=True, deleted=True).message()
    assert ItemResult(7, ignored=True).as_dict()["message"].endswith("ignored (in gitlab_ignore), nothing done")


@pytest.mark.parametrize(("headers", "match"), [
    ({}, "missing X-Gitlab-Token"),
    ({"X-Gitlab-Token": "nope"}, "wrong"),
    ({"x-gitlab-token": SECRET + "x"}, "wrong"),
])
def test_token_refused(headers: dict[str, str], match: str) -> None:
    with pytest.raises(WebhookUnauthorized, match=match):
        check_token(_settings(), headers)


def test_token_accepted_whatever_the_header_case() -> None:
    check_token(_settings(), {"x-gitlab-token": SECRET})


def test_no_secret_configured_refuses_every_request() -> None:
    with pytest.raises(WebhookUnauthorized, match="no webhook secret"):
        check_token(_settings(""), {"X-Gitlab-Token": ""})


def test_a_refusal_or_an_ignored_event_does_not_touch_the_database() -> None:
    engine = None  # any use of it would raise
    with pytest.raises(WebhookUnauthorized):
        accept_push(engine, _settings(), {"X-Gitlab-Token": "bad"}, b"{}")  # type: ignore[arg-type]
    with pytest.raises(BadWebhook):
        accept_push(engine, _settings(), {"X-Gitlab-Token": SECRET}, b"not json")  # type: ignore[arg-type]
    result = accept_push(engine, _settings(), {"X-Gitlab-Token": SECRET, "X-Gitlab-Event": "Note Hook"},  # type: ignore[arg-type]
                         b"{}")
    assert not result.enqueued and "Note Hook" in result.reason
