"""The full item sync's tasklet, in-process against the fake GitLab, on SQLite and MariaDB: counts,
hooks created with the secret, an unchanged second run that writes nothing, paging until an empty
page, the ignore list, the deletion pass, a 429 honoured, per-item failures collected, a stop."""
from __future__ import annotations

import pytest
from sqlalchemy import Engine

from dqueue.testing.gitlab import FakeGitLab
from tests.conftest import GITLAB_TOKEN
from tests.helpers import rows
from tests.itemsync_support import HOOK_URL, SECRET, FakeStepContext, gsettings, items, run_sync


def _summary(total: int, hooks: int, updated: int, deleted: int) -> str:
    return (f"Total item bank ids: {total}, number of items requiring project webhook: {hooks}, "
            f"number of items updated: {updated}, number of items deleted: {deleted}")


def test_first_sync_hooks_and_ingests_everything_then_a_second_writes_nothing(
        engine: Engine, db_url: str, gitlab: FakeGitLab) -> None:
    gitlab.add_projects(2, empty=True)  # empty repositories: no default branch, stored with no head
    ids = gitlab.project_ids()
    settings = gsettings(db_url, gitlab, DQUEUE_GITLAB_PER_PAGE="5")
    result = run_sync(FakeStepContext(settings, engine))
    assert result.errors == []
    assert result.summary == _summary(12, 12, 12, 0)
    for pid in ids:
        (hook,) = gitlab.hooks(pid)
        assert (hook.url, hook.token, hook.events["push_events"], hook.events["tag_push_events"]) == (
            HOOK_URL, SECRET, True, False)
    stored = items(engine)
    assert {pid: head for pid, (head, _) in stored.items()} == {pid: gitlab.head(pid) for pid in ids}
    # 12 projects at 5 per page: pages 1-3 hold them, page 4 is the empty page that ends the listing.
    assert gitlab.counts()["group_projects"] == 4

    gitlab.reset_counts()
    again = run_sync(FakeStepContext(settings, engine))
    assert again.summary == _summary(12, 0, 0, 0) and again.errors == []
    assert items(engine) == stored  # not one row written: synced_at unchanged
    counts = gitlab.counts()
    assert counts.get("hooks_create", 0) == 0
    assert counts["hooks_list"] == 12 and counts["branch"] == 10  # every project checked, no hint trusted


def test_a_changed_item_and_a_missing_hook_are_repaired(engine: Engine, db_url: str, gitlab: FakeGitLab) -> None:
    settings = gsettings(db_url, gitlab)
    run_sync(FakeStepContext(settings, engine))
    before = items(engine)
    changed, unhooked = gitlab.project_ids()[3], gitlab.project_ids()[6]
    new_head = gitlab.push(changed, deliver=False)
    gitlab.remove_hook(unhooked)
    result = run_sync(FakeStepContext(settings, engine))
    assert result.summary == _summary(10, 1, 1, 0)
    after = items(engine)
    assert after[changed][0] == new_head and after[changed][1] > before[changed][1]
    assert {k: v for k, v in after.items() if k != changed} == {k: v for k, v in before.items() if k != changed}
    assert [h.url for h in gitlab.hooks(unhooked)] == [HOOK_URL]


def test_ignore_list_and_deletion_pass(engine: Engine, db_url: str, gitlab: FakeGitLab) -> None:
    ids = gitlab.project_ids()
    run_sync(FakeStepContext(gsettings(db_url, gitlab), engine))
    gone, kept_by_default = ids[0], ids[1]
    gitlab.delete_project(gone)
    gitlab.delete_project(kept_by_default)
    ignored_path = rows(engine, "SELECT path FROM items WHERE project_id = :p", p=ids[2])[0][0]
    settings = gsettings(db_url, gitlab, DQUEUE_GITLAB_IGNORE=f"{ids[3]},{ignored_path}")
    gitlab.remove_hook(ids[3])
    no_pass = run_sync(FakeStepContext(settings, engine))
    assert no_pass.summary == _summary(6, 0, 0, 0)  # 10 - 2 deleted - 2 ignored; nothing deleted
    assert gitlab.hooks(ids[3]) == []  # ignored: not even hooked
    assert set(items(engine)) == set(ids)

    with_pass = run_sync(FakeStepContext(gsettings(db_url, gitlab, DQUEUE_GITLAB_DELETE_PASS="true",
                                                   DQUEUE_GITLAB_IGNORE=f"{ids[3]},{ignored_path}"), engine))
    assert with_pass.summary == _summary(6, 0, 0, 2) and with_pass.errors == []
    assert set(items(engine)) == set(ids) - {gone, kept_by_default}
    assert gitlab.counts()["project"] == 2  # only the two stored items the listing did not name


def test_a_429_is_honoured_and_the_sync_completes(engine: Engine, db_url: str, gitlab: FakeGitLab) -> None:
    limited = gitlab.inject("429", path="/hooks", times=3, retry_after=1)
    result = run_sync(FakeStepContext(gsettings(db_url, gitlab), engine))
    assert result.errors == [] and result.summary == _summary(10, 10, 10, 0)
    assert limited.hits == 3
    assert len(items(engine)) == 10


def test_per_item_failures_are_all_reported_and_the_others_synced(
        engine: Engine, db_url: str, gitlab: FakeGitLab) -> None:
    bad = gitlab.project_ids()[:2]
    for pid in bad:
        gitlab.inject("500", path=f"/projects/{pid}/hooks", times=None)
    result = run_sync(FakeStepContext(gsettings(db_url, gitlab, DQUEUE_GITLAB_ATTEMPTS="2"), engine))
    assert result.summary == _summary(10, 8, 8, 0)
    assert len(result.errors) == 2
    assert sorted(e.split(" (")[0] for e in result.errors) == sorted(f"project {pid}" for pid in bad)
    assert all("500" in e and "Traceback" in e for e in result.errors)
    assert GITLAB_TOKEN not in "".join(result.errors)
    assert set(items(engine)) == set(gitlab.project_ids()) - set(bad)


def test_a_stop_request_ends_the_sync_early(engine: Engine, db_url: str, gitlab: FakeGitLab) -> None:
    gitlab.add_projects(90)
    gitlab.latency = 0.01
    ctx = FakeStepContext(gsettings(db_url, gitlab, DQUEUE_GITLAB_CONCURRENCY="2"), engine, stop_after=5)
    result = run_sync(ctx)
    assert "stopped on request" in result.summary
    assert 5 <= len(items(engine)) < 100


@pytest.mark.parametrize("missing", ["DQUEUE_GITLAB_TOKEN", "DQUEUE_GITLAB_WEBHOOK_SECRET"])
def test_missing_settings_are_named(engine: Engine, db_url: str, gitlab: FakeGitLab, missing: str) -> None:
    from dqueue.itemsync.item import NotConfigured
    settings = gsettings(db_url, gitlab, **{missing: ""})
    with pytest.raises(NotConfigured, match=missing.removeprefix("DQUEUE_").lower()):
        run_sync(FakeStepContext(settings, engine))
