"""The fake GitLab is as strict as GitLab's documentation: raw requests, no client of ours in between."""
from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests

from dqueue.testing.gitlab import FakeGitLab, send_push


def get(gitlab: FakeGitLab, path: str, **headers: str) -> requests.Response:
    sent = {"PRIVATE-TOKEN": gitlab.token, **headers}
    return requests.get(f"{gitlab.url}/api/v4{path}", headers=sent, timeout=10)


@pytest.mark.parametrize("headers", [{}, {"PRIVATE-TOKEN": "wrong"}, {"Authorization": "Bearer wrong"},
                                     {"Authorization": "Basic Zm9vOmJhcg=="}])
def test_no_or_a_wrong_token_is_401_json(gitlab: FakeGitLab, headers: dict[str, str]) -> None:
    r = requests.get(f"{gitlab.url}/api/v4/groups/42", headers=headers, timeout=10)
    assert (r.status_code, r.json()) == (401, {"message": "401 Unauthorized"})


def test_the_token_in_either_header_or_the_query(gitlab: FakeGitLab) -> None:
    assert get(gitlab, "/groups/42").status_code == 200
    assert requests.get(f"{gitlab.url}/api/v4/groups/42", headers={"Authorization": f"Bearer {gitlab.token}"},
                        timeout=10).status_code == 200
    assert requests.get(f"{gitlab.url}/api/v4/groups/42?private_token={gitlab.token}", timeout=10).ok


def test_a_full_path_must_be_url_encoded(gitlab: FakeGitLab) -> None:
    assert get(gitlab, "/groups/item-bank%2Fitems").json()["id"] == 42
    r = get(gitlab, "/groups/item-bank/items")
    assert (r.status_code, r.json()) == (404, {"error": "404 Not Found"})
    assert get(gitlab, "/groups/nobody").json() == {"message": "404 Group Not Found"}
    pid = gitlab.project_ids()[0]
    assert get(gitlab, f"/projects/item-bank%2Fitems%2Fitem-{pid}").json()["id"] == pid
    assert get(gitlab, "/projects/1").json() == {"message": "404 Project Not Found"}


def test_pagination_headers_and_limits(gitlab: FakeGitLab) -> None:
    gitlab.add_projects(30)  # 40
    first = get(gitlab, "/groups/42/projects")
    assert len(first.json()) == 20 and first.headers["X-Per-Page"] == "20"  # the default
    r = get(gitlab, "/groups/42/projects?per_page=15&page=2")
    h = r.headers
    assert (h["X-Page"], h["X-Next-Page"], h["X-Prev-Page"], h["X-Total"], h["X-Total-Pages"]) == (
        "2", "3", "1", "40", "3")
    assert ['rel="prev"', 'rel="next"', 'rel="first"', 'rel="last"'] == [
        part.split("; ")[1] for part in h["Link"].split(", ")]
    last = get(gitlab, "/groups/42/projects?per_page=15&page=3").headers
    assert last["X-Next-Page"] == "" and 'rel="next"' not in last["Link"]
    past = get(gitlab, "/groups/42/projects?per_page=15&page=9")
    assert past.json() == [] and past.headers["X-Page"] == "9"
    assert len(get(gitlab, "/groups/42/projects?per_page=1000").json()) == 40
    assert get(gitlab, "/groups/42/projects?per_page=1000").headers["X-Per-Page"] == "100"
    assert get(gitlab, "/groups/42/projects?page=x").json() == {"error": "page is invalid"}
    assert get(gitlab, "/groups/42/projects?per_page=0").status_code == 400


def test_totals_are_left_out_above_10000_records() -> None:
    with FakeGitLab(projects=10_001) as gitlab:
        h = get(gitlab, "/groups/42/projects?per_page=100&page=100").headers
        assert "X-Total" not in h and "X-Total-Pages" not in h and 'rel="last"' not in h["Link"]
        assert h["X-Next-Page"] == "101"


def test_listing_options() -> None:
    with FakeGitLab(projects=12, subgroups=2, shared=3) as g:
        ids = [p["id"] for p in get(g, "/groups/42/projects?per_page=100").json()]
        assert len(ids) == 4 + 3  # direct projects only, shared ones by default
        assert len(get(g, "/groups/42/projects?include_subgroups=true&with_shared=false").json()) == 12
        ascending = [p["id"] for p in get(g, "/groups/42/projects?include_subgroups=true&with_shared=false"
                                                 "&order_by=id&sort=asc").json()]
        assert ascending == g.project_ids()
        assert get(g, "/groups/42/projects?order_by=size").json() == {
            "error": "order_by does not have a valid value"}
        assert get(g, "/groups/42/projects?include_subgroups=maybe").status_code == 400
        simple = get(g, "/groups/42/projects?simple=true").json()[0]
        assert {"id", "path_with_namespace", "default_branch"} <= set(simple) and "visibility" not in simple


def test_empty_repositories_and_branches() -> None:
    with FakeGitLab(projects=3, empty=1) as gitlab:
        empty, full = gitlab.project_ids()[0], gitlab.project_ids()[1]
        assert get(gitlab, f"/projects/{empty}").json()["default_branch"] is None
        assert get(gitlab, f"/projects/{empty}/repository/branches/main").json() == {
            "message": "404 Branch Not Found"}
        branch = get(gitlab, f"/projects/{full}/repository/branches/main").json()
        assert branch["commit"]["id"] == gitlab.head(full) and len(branch["commit"]["id"]) == 40
        gitlab.push(empty)
        assert get(gitlab, f"/projects/{empty}/repository/branches/main").ok


def test_hook_creation_is_validated_and_the_token_never_returned(gitlab: FakeGitLab) -> None:
    pid = gitlab.project_ids()[0]
    url = f"{gitlab.url}/api/v4/projects/{pid}/hooks"
    auth = {"PRIVATE-TOKEN": gitlab.token}
    assert requests.post(url, json={}, headers=auth, timeout=10).json() == {"error": "url is missing"}
    r = requests.post(url, json={"url": "file:///etc/passwd"}, headers=auth, timeout=10)
    assert r.status_code == 422 and "url" in r.json()["message"]
    r = requests.post(url, json={"url": "http://x.example/h", "push_events": "perhaps"}, headers=auth, timeout=10)
    assert r.json() == {"error": "push_events is invalid"}
    made = requests.post(url, data={"url": "http://x.example/h", "token": "s3cret-hook"}, headers=auth, timeout=10)
    assert made.status_code == 201 and "token" not in made.json() and "s3cret-hook" not in made.text
    assert made.json()["push_events"] is True and made.json()["tag_push_events"] is False
    listed = get(gitlab, f"/projects/{pid}/hooks")
    assert listed.json() == [made.json()] and "s3cret-hook" not in listed.text


def test_rate_limit_answers_429_with_gitlab_headers() -> None:
    with FakeGitLab(projects=1, rate_limit=3, rate_period=60) as gitlab:
        assert [get(gitlab, "/groups/42").status_code for _ in range(3)] == [200, 200, 200]
        r = get(gitlab, "/groups/42")
        assert r.status_code == 429 and r.text == "Retry later\n"
        assert 1 <= int(r.headers["Retry-After"]) <= 60 and r.headers["RateLimit-Limit"] == "3"
        assert r.headers["RateLimit-Remaining"] == "0" and int(r.headers["RateLimit-Reset"]) > 0
        assert r.headers["RateLimit-ResetTime"].endswith("GMT")


def test_faults(gitlab: FakeGitLab) -> None:
    gitlab.inject("502", path="/groups/", times=1)
    gitlab.inject("429-reset", path="/groups/", times=1, retry_after=30)
    gitlab.inject("reset", path="/groups/", times=1)
    assert get(gitlab, "/groups/42").status_code == 502
    limited = get(gitlab, "/groups/42")
    assert limited.status_code == 429 and "Retry-After" not in limited.headers
    with pytest.raises(requests.ConnectionError):
        get(gitlab, "/groups/42")
    assert get(gitlab, "/groups/42").ok


def test_requests_are_counted_by_endpoint_also_over_http(gitlab: FakeGitLab) -> None:
    pid = gitlab.project_ids()[0]
    for path in ("/groups/42", "/groups/42/projects", f"/projects/{pid}", f"/projects/{pid}/hooks",
                 f"/projects/{pid}/repository/branches/main", f"/projects/{pid}/repository/branches/main"):
        get(gitlab, path)
    stats = requests.get(f"{gitlab.url}/_fake/stats", timeout=10).json()
    assert stats["requests"] == {"group": 1, "group_projects": 1, "project": 1, "hooks_list": 1, "branch": 2}
    assert stats["total"] == 6 and stats["projects"] == 10
    requests.post(f"{gitlab.url}/_fake/reset", timeout=10)
    assert gitlab.counts() == {}


def test_changes_through_the_python_api(gitlab: FakeGitLab) -> None:
    pid = gitlab.project_ids()[0]
    hook = gitlab.add_hook(pid, "http://x.example/h", "tok-1")
    gitlab.remove_hook(pid, hook.id)
    assert get(gitlab, f"/projects/{pid}/hooks").json() == []
    new = gitlab.add_projects(2)
    assert len(new) == 2 and set(new) <= set(gitlab.project_ids())
    gitlab.delete_project(pid)
    assert get(gitlab, f"/projects/{pid}").status_code == 404


class Receiver:
    """A web server recording the pushes it receives."""

    def __init__(self) -> None:
        self.got: list[tuple[dict[str, str], dict[str, Any]]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                receiver.got.append((dict(self.headers), body))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/webHook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.server.shutdown()
    r.server.server_close()


def test_a_push_is_delivered_to_the_project_hooks(gitlab: FakeGitLab, receiver: Receiver) -> None:
    pid = gitlab.project_ids()[3]
    before = gitlab.head(pid)
    gitlab.add_hook(pid, receiver.url, "hook-secret-7")
    after = gitlab.push(pid)
    assert gitlab.deliveries == [(pid, receiver.url, 200)]
    headers, body = receiver.got[0]
    assert headers["X-Gitlab-Event"] == "Push Hook" and headers["X-Gitlab-Token"] == "hook-secret-7"
    assert (body["object_kind"], body["ref"], body["before"], body["after"], body["checkout_sha"]) == (
        "push", "refs/heads/main", before, after, after)
    assert body["project_id"] == body["project"]["id"] == pid
    assert body["project"]["default_branch"] == "main"
    assert body["project"]["path_with_namespace"] == f"item-bank/items/item-{pid}"


def test_send_push_with_and_without_a_token(gitlab: FakeGitLab, receiver: Receiver) -> None:
    pid = gitlab.project_ids()[0]
    assert send_push(receiver.url, gitlab.push_body(pid, ref="refs/heads/other")) == 200
    assert send_push(receiver.url, gitlab.push_body(pid), "t") == 200
    assert "X-Gitlab-Token" not in receiver.got[0][0] and receiver.got[0][1]["ref"] == "refs/heads/other"
    assert receiver.got[1][0]["X-Gitlab-Token"] == "t"
    assert send_push("http://127.0.0.1:9/webHook", gitlab.push_body(pid), timeout=2) == 0


def test_forty_keep_alive_connections_get_correct_answers() -> None:
    with FakeGitLab(projects=200, latency=0.005) as gitlab:
        def one(pid: int) -> tuple[int, str]:
            with requests.Session() as s:  # keep-alive: several requests on one connection
                s.headers["PRIVATE-TOKEN"] = gitlab.token
                s.get(f"{gitlab.url}/api/v4/projects/{pid}/hooks", timeout=10).raise_for_status()
                branch = s.get(f"{gitlab.url}/api/v4/projects/{pid}/repository/branches/main", timeout=10)
                return branch.status_code, branch.json()["commit"]["id"]
        with ThreadPoolExecutor(40) as pool:
            answers = list(pool.map(one, gitlab.project_ids()))
        assert answers == [(200, gitlab.head(pid)) for pid in gitlab.project_ids()]
        assert gitlab.peak_in_flight <= 40
