"""The GitLab client against the fake GitLab over real HTTP: paging, 404s, 401, 429s, retries, hooks,
secrets, the origin-only token and the bound on requests in flight.  Waits run on a virtual clock."""
from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from dqueue.backoff import Backoff
from dqueue.http import RateGate
from dqueue.itemsync.gitlab import (
    GitLabClient,
    GitLabNotFound,
    GitLabRateLimited,
    GitLabRejected,
    GitLabTransient,
    Project,
)
from dqueue.testing.gitlab import FakeGitLab

HOOK_SECRET = "whsec-4411-abcdef"


class Clock:
    """Virtual time: ``sleeps`` are the gate's waits (pacing, 429 holds), ``backoffs`` the client's
    own sleeps between tries."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []
        self.backoffs: list[float] = []
        self.lock = threading.Lock()

    def backoff(self, seconds: float) -> None:
        with self.lock:
            self.backoffs.append(seconds)

    def clock(self) -> float:
        with self.lock:
            return self.now

    def sleep(self, seconds: float) -> None:
        with self.lock:
            self.sleeps.append(seconds)
            self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


def make_client(gitlab: FakeGitLab, clock: Clock, token: str | None = None, log: list[str] | None = None,
                **kw: object) -> GitLabClient:
    options: dict[str, object] = {"policy": Backoff(attempts=3, base=0.5, jitter=0), "max_wait": 60.0,
                                  "sleep": clock.backoff, "gate": RateGate(0, clock=clock.clock, sleep=clock.sleep),
                                  "timeout": (5, 10)}
    options.update(kw)
    return GitLabClient(gitlab.url, token or gitlab.token, log=log.append if log is not None else None,
                        **options)  # type: ignore[arg-type]


@pytest.fixture
def client(gitlab: FakeGitLab, clock: Clock) -> Iterator[GitLabClient]:
    with make_client(gitlab, clock) as c:
        yield c


def every_project(client: GitLabClient, group: int, per_page: int) -> tuple[list[Project], int]:
    """Page until an empty page, as the sync does; also how many pages were read."""
    found: list[Project] = []
    page = 1
    while batch := client.projects_page(group, page, per_page):
        found += batch
        page += 1
    return found, page


def test_paging_until_an_empty_page_finds_every_project_once(gitlab: FakeGitLab, client: GitLabClient) -> None:
    gitlab.add_projects(240)  # 250 in all
    found, pages = every_project(client, client.group_id(gitlab.group_path), 100)
    assert [p.id for p in found] == gitlab.project_ids()  # oldest first, none twice
    assert pages == 4 and gitlab.counts()["group_projects"] == 4


def test_subgroups_are_listed_and_shared_projects_are_not(clock: Clock) -> None:
    with FakeGitLab(projects=30, subgroups=2, shared=5) as gitlab, make_client(gitlab, clock) as client:
        found, _ = every_project(client, gitlab.group_id, 7)
        assert sorted(p.id for p in found) == gitlab.project_ids()
        assert {p.path.count("/") for p in found} == {2, 3}  # in the group and in its subgroups


def test_a_per_page_above_100_gets_pages_of_100_and_the_listing_stays_complete(clock: Clock) -> None:
    with FakeGitLab(projects=230, omit_totals=True) as gitlab, make_client(gitlab, clock) as client:
        assert len(client.projects_page(gitlab.group_id, 1, 500)) == 100
        found, pages = every_project(client, gitlab.group_id, 500)
        assert len(found) == 230 and pages == 4  # no X-Total needed


def test_a_group_by_path_or_id_and_an_unknown_group(gitlab: FakeGitLab, client: GitLabClient) -> None:
    assert client.group_id("item-bank/items") == client.group_id(42) == 42
    with pytest.raises(GitLabNotFound, match="404 Group Not Found"):
        client.group_id("item-bank/other")


def test_a_bad_token_is_rejected_with_401_and_never_shown(gitlab: FakeGitLab, clock: Clock) -> None:
    log: list[str] = []
    with make_client(gitlab, clock, token="glpat-wrong-token-99", log=log) as bad:
        with pytest.raises(GitLabRejected, match="401 Unauthorized") as caught:
            bad.group_id(gitlab.group_path)
    assert caught.value.status == 401 and not isinstance(caught.value, GitLabNotFound)
    assert gitlab.counts()["group"] == 1  # not retried
    assert all("glpat-wrong-token-99" not in text for text in [str(caught.value), *log])


def test_the_private_token_header_works_too(gitlab: FakeGitLab, clock: Clock) -> None:
    with make_client(gitlab, clock, private_token_header=True) as c:
        assert c.group_id(gitlab.group_path) == 42


def test_404s(gitlab: FakeGitLab, client: GitLabClient) -> None:
    empty = gitlab.add_projects(1, empty=True)[0]
    gone = gitlab.project_ids()[0]
    gitlab.delete_project(gone)
    assert client.project(gone) is None
    assert client.project(empty) == Project(empty, f"item-bank/items/item-{empty}", f"item-{empty}", None)
    assert client.head_commit(empty, "main") is None  # an empty repository has no branch
    assert client.head_commit(gitlab.project_ids()[0], "no-such-branch") is None
    with pytest.raises(GitLabNotFound, match="404 Project Not Found"):
        client.head_commit(gone, "main")
    with pytest.raises(GitLabNotFound, match="404 Project Not Found"):
        client.hooks(gone)


def test_head_commit_follows_pushes_and_url_encodes_the_branch(gitlab: FakeGitLab, client: GitLabClient) -> None:
    pid = gitlab.project_ids()[1]
    assert client.head_commit(pid, "main") == gitlab.head(pid)
    new = gitlab.push(pid)
    assert client.head_commit(pid, "main") == new != ""
    gitlab.set_default_branch(pid, "release/2.0")
    assert client.head_commit(pid, "release/2.0") == new
    assert gitlab.requests[-1][1].endswith("/repository/branches/release%2F2.0")


def test_429_with_retry_after_holds_the_gate_then_succeeds(gitlab: FakeGitLab, client: GitLabClient,
                                                           clock: Clock) -> None:
    gitlab.inject("429", path="/hooks$", times=2, retry_after=7)
    assert client.hooks(gitlab.project_ids()[0]) == []
    assert clock.sleeps == [7.0, 7.0] and clock.backoffs == []  # waited at the gate, where every thread would
    assert [r[2] for r in gitlab.requests] == [429, 429, 200]


def test_429_with_only_ratelimit_reset(gitlab: FakeGitLab, client: GitLabClient, clock: Clock) -> None:
    gitlab.inject("429-reset", path="/projects/", times=1, retry_after=5)
    assert client.project(gitlab.project_ids()[0]) is not None
    assert len(clock.sleeps) == 1 and 3.0 <= clock.sleeps[0] <= 6.0  # epoch seconds, rounded up by GitLab


def test_429_longer_than_max_wait_gives_up(gitlab: FakeGitLab, clock: Clock) -> None:
    gitlab.inject("429", times=None, retry_after=600)
    with make_client(gitlab, clock, max_wait=60.0) as c, pytest.raises(GitLabRateLimited) as caught:
        c.project(gitlab.project_ids()[0])
    assert caught.value.wait >= 599 and clock.sleeps == []


def test_a_429_on_one_thread_holds_the_others(gitlab: FakeGitLab, clock: Clock) -> None:
    first, second = gitlab.project_ids()[:2]
    a_held, b_done = threading.Event(), threading.Event()

    def sleep(seconds: float) -> None:
        if threading.current_thread().name == "A":  # A met the 429: B starts while A waits
            a_held.set()
            assert b_done.wait(10)
        clock.sleep(seconds)

    gate = RateGate(0, clock=clock.clock, sleep=sleep)
    gitlab.inject("429", path=f"/projects/{first}$", times=1, retry_after=9)
    with make_client(gitlab, clock, gate=gate) as c:
        a = threading.Thread(target=c.project, args=(first,), name="A")
        a.start()
        assert a_held.wait(10)
        assert c.project(second) is not None  # B had no 429 of its own, yet waited for A's
        b_done.set()
        a.join()
    assert clock.sleeps == [9.0, 9.0] and clock.backoffs == []
    assert [r[2] for r in gitlab.requests] == [429, 200, 200]


def test_5xx_and_reset_connections_are_retried(gitlab: FakeGitLab, client: GitLabClient, clock: Clock) -> None:
    pid = gitlab.project_ids()[0]
    gitlab.inject("502", path="/repository/branches/", times=1)
    gitlab.inject("reset", path="/repository/branches/", times=1)
    assert client.head_commit(pid, "main") == gitlab.head(pid)
    assert [r[2] for r in gitlab.requests] == [502, 0, 200] and clock.backoffs == [0.5, 1.0]


def test_5xx_every_time_is_transient_after_the_attempts(gitlab: FakeGitLab, client: GitLabClient) -> None:
    gitlab.inject("503", times=None)
    with pytest.raises(GitLabTransient, match="gave up after 3 attempts"):
        client.group_id(gitlab.group_path)
    assert gitlab.counts()["group"] == 3


def test_add_hook_push_events_only_and_the_secret_never_comes_back(gitlab: FakeGitLab, clock: Clock) -> None:
    log: list[str] = []
    pid = gitlab.project_ids()[2]
    with make_client(gitlab, clock, log=log) as c:
        made = c.add_hook(pid, "https://dq.example.org/webHook", HOOK_SECRET)
        listed = c.hooks(pid)
    assert made["url"] == "https://dq.example.org/webHook" and made["push_events"] is True
    assert not any(made[k] for k in ("issues_events", "tag_push_events", "merge_requests_events", "note_events"))
    assert "token" not in made and listed == [made]
    assert gitlab.hooks(pid)[0].token == HOOK_SECRET
    assert HOOK_SECRET not in "".join(log) and gitlab.token not in "".join(log)


def test_a_refused_hook_names_the_field_and_masks_the_secret(gitlab: FakeGitLab, clock: Clock) -> None:
    log: list[str] = []
    with make_client(gitlab, clock, log=log) as c, pytest.raises(GitLabRejected) as caught:
        c.add_hook(gitlab.project_ids()[0], f"ftp://dq.example.org/{HOOK_SECRET}", HOOK_SECRET)
    assert caught.value.status == 422 and "url: ['is blocked" in str(caught.value)
    assert HOOK_SECRET not in str(caught.value) and HOOK_SECRET not in "".join(log)


def test_the_token_goes_to_gitlab_only(gitlab: FakeGitLab, client: GitLabClient) -> None:
    with FakeGitLab(projects=1, token=gitlab.token) as elsewhere:
        with pytest.raises(GitLabRejected, match="401"):
            client.call("GET", f"{elsewhere.url}/api/v4/projects/{elsewhere.project_ids()[0]}")


def test_requests_in_flight_never_exceed_concurrency(clock: Clock) -> None:
    with FakeGitLab(projects=60, latency=0.02) as gitlab, make_client(gitlab, clock, concurrency=4) as c:
        with ThreadPoolExecutor(16) as pool:
            heads = list(pool.map(lambda pid: c.head_commit(pid, "main"), gitlab.project_ids()))
        assert heads == [gitlab.head(pid) for pid in gitlab.project_ids()]
        assert 1 <= gitlab.peak_in_flight <= 4
