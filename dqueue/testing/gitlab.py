"""A fake GitLab (REST API v4: groups, projects, hooks, branches) on 127.0.0.1, shipped for tests,
the demo and the benchmark.

In a test::

    with FakeGitLab(projects=250, token="t0ken", latency=0.01) as gitlab:
        client = GitLabClient(gitlab.url, "t0ken")
        ...                                   # the group is gitlab.group_path (id gitlab.group_id)
        gitlab.push(gitlab.project_ids()[0])  # a new head commit, delivered to the project's hooks
        assert gitlab.counts()["branch"] == 250

From a demo or the benchmark: ``python -m dqueue.testing.gitlab --projects 1811 --latency 0.05``
prints its URL on the first line of stdout and serves until SIGTERM or SIGINT; ``GET
{url}/_fake/stats`` answers the request counts by endpoint.

What it serves and how strictly is in gitlab_handler.py; the data and its JSON in gitlab_state.py.
Every API request waits ``latency`` seconds first (one thread per keep-alive connection, so 40
connections overlap their waits).  ``rate_limit`` requests per ``rate_period`` seconds, counted in
fixed windows, are admitted; the rest get 429 until the window ends.  Faults (``inject``) come
before the rate limit and the token check.
"""
from __future__ import annotations

import argparse
import email.utils
import json
import math
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import dataclass
from typing import Any

from dqueue.testing.gitlab_handler import Server
from dqueue.testing.gitlab_state import HOOK_EVENTS, Hook, State, commit_id, push_payload
from dqueue.testing.server import Fault, Faults, ServedFake, serve_until_signalled

KINDS = {"500", "502", "503", "slow", "reset", "429", "429-reset"}

__all__ = ["FakeGitLab", "GitLabFault", "main", "send_push"]


@dataclass
class GitLabFault(Fault):
    retry_after: float = 1.0  # "429": Retry-After and RateLimit-Reset; "429-reset": RateLimit-Reset only


class FakeGitLab(ServedFake):
    def __init__(self, projects: int = 10, *, token: str = "gitlab-token", group: str = "item-bank/items",
                 group_id: int = 42, commits: int = 3, empty: int = 0, subgroups: int = 0, shared: int = 0,
                 hooked: int = 0, hook_url: str = "", hook_token: str = "", latency: float = 0.0,
                 rate_limit: int = 0, rate_period: float = 60.0, omit_totals: bool = False, seed: int = 0,
                 port: int = 0, keep_requests: bool = True) -> None:
        """``projects`` (the first ``empty`` of them with an empty repository) spread over the group
        and ``subgroups`` subgroups; ``shared`` projects of another group shared with it; the first
        ``hooked`` projects already have a push hook to ``hook_url`` signed with ``hook_token``."""
        self.token = token
        self.latency = latency
        self.rate_limit, self.rate_period = rate_limit, rate_period
        self.omit_totals = omit_totals
        self.keep_requests = keep_requests
        self.lock = threading.RLock()
        self.state = State(group, group_id, subgroups, seed)
        self.state.add_projects(empty, commits, empty=True)
        self.state.add_projects(projects - empty, commits)
        self.state.add_shared(shared, commits)
        for project in list(self.state.projects.values())[:hooked]:
            self.state.add_hook(project, hook_url, hook_token, _push_only(), True)
        self.requests: list[tuple[str, str, int]] = []  # (method, path, status); status 0: reset
        self.deliveries: list[tuple[int, str, int]] = []  # (project id, hook url, status) of pushes sent
        self._counts: Counter[str] = Counter()
        self.in_flight = 0  # API requests being answered now
        self.peak_in_flight = 0  # the most at once since the last reset_counts()
        self._window = (0.0, 0)  # (start, requests admitted in it)
        self._faults = Faults(GitLabFault, KINDS)
        http = Server(("127.0.0.1", port))
        http.fake = self
        self._listen(http, "fake-gitlab")

    @property
    def group_path(self) -> str:
        return self.state.group.full_path

    @property
    def group_id(self) -> int:
        return self.state.group.id

    # -- faults and limits ------------------------------------------------------------------------

    def inject(self, kind: str, *, method: str | None = None, path: str = "", times: int | None = 1,
               delay: float = 0.0, retry_after: float = 1.0) -> GitLabFault:
        """Answer the next ``times`` requests matching ``method`` and the regex ``path`` (searched in
        the raw path, e.g. ``/hooks$``) with ``kind``: "500", "502", "503" (an HTML error page),
        "reset" (the connection dropped unanswered), "slow" (``delay`` seconds, then the normal
        answer), "429" (``Retry-After`` and ``RateLimit-Reset`` ``retry_after`` seconds on) or
        "429-reset" (``RateLimit-Reset`` only)."""
        return self._faults.inject(kind, method, path, times, delay=delay, retry_after=retry_after)

    def clear_faults(self) -> None:
        self._faults.clear()

    def take_fault(self, method: str, path: str) -> GitLabFault | None:
        return self._faults.take(method, path)

    def over_limit(self) -> dict[str, str] | None:
        """None if this request is admitted by the rate limit, else the 429's headers."""
        if self.rate_limit <= 0:
            return None
        now = time.time()
        with self.lock:
            start, admitted = self._window
            if now >= start + self.rate_period:
                start, admitted = now, 0
            self._window = (start, admitted + (admitted < self.rate_limit))
            if admitted < self.rate_limit:
                return None
        return self.limit_headers(start + self.rate_period - now, True, observed=admitted + 1)

    def limit_headers(self, wait: float, retry_after: bool, observed: int = 0) -> dict[str, str]:
        reset = time.time() + wait
        headers = {"RateLimit-Name": "throttle_authenticated_api", "RateLimit-Limit": str(self.rate_limit or 60),
                   "RateLimit-Observed": str(observed or (self.rate_limit or 60) + 1), "RateLimit-Remaining": "0",
                   "RateLimit-Reset": str(math.ceil(reset)),
                   "RateLimit-ResetTime": email.utils.formatdate(math.ceil(reset), usegmt=True)}
        if retry_after:
            headers["Retry-After"] = str(max(1, math.ceil(wait)))
        return headers

    # -- counting ---------------------------------------------------------------------------------

    def count(self, endpoint: str) -> None:
        with self.lock:
            self._counts[endpoint] += 1

    def entered(self, delta: int) -> None:
        """An API request starts (+1) or ends (-1): ``peak_in_flight`` shows a client's concurrency."""
        with self.lock:
            self.in_flight += delta
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)

    def counts(self) -> dict[str, int]:
        """Requests received by endpoint: group, group_projects, project, hooks_list, hooks_create,
        branch, other (faulted, limited and refused requests included)."""
        with self.lock:
            return dict(self._counts)

    def stats(self) -> dict[str, Any]:
        counts = self.counts()
        return {"requests": counts, "total": sum(counts.values()), "projects": len(self.state.projects),
                "peak_in_flight": self.peak_in_flight}

    def reset_counts(self) -> None:
        with self.lock:
            self._counts.clear()
            self.requests.clear()
            self.peak_in_flight = self.in_flight

    def record(self, method: str, path: str, status: int) -> None:
        if self.keep_requests:
            with self.lock:
                self.requests.append((method, path, status))

    # -- changing the data ------------------------------------------------------------------------

    def project_ids(self) -> list[int]:
        with self.lock:
            return sorted(self.state.projects)

    def head(self, project_id: int) -> str | None:
        with self.lock:
            return self.state.projects[project_id].head

    def hooks(self, project_id: int) -> list[Hook]:
        with self.lock:
            return list(self.state.projects[project_id].hooks)

    def add_projects(self, n: int, *, commits: int = 3, empty: bool = False) -> list[int]:
        with self.lock:
            return [p.id for p in self.state.add_projects(n, commits, empty)]

    def set_default_branch(self, project_id: int, branch: str) -> None:
        with self.lock:
            self.state.projects[project_id].default_branch = branch

    def delete_project(self, project_id: int) -> None:
        with self.lock:
            del self.state.projects[project_id]

    def add_hook(self, project_id: int, url: str, token: str = "") -> Hook:
        with self.lock:
            return self.state.add_hook(self.state.projects[project_id], url, token, _push_only(), True)

    def remove_hook(self, project_id: int, hook_id: int | None = None) -> None:
        """Remove the project's hook ``hook_id`` (every hook when None)."""
        with self.lock:
            project = self.state.projects[project_id]
            project.hooks = [h for h in project.hooks if hook_id is not None and h.id != hook_id]

    def push(self, project_id: int, deliver: bool = True, timeout: float = 10.0) -> str:
        """A new commit on the project's default branch (its first, for an empty repository): the new
        head's id.  With ``deliver``, the push event is POSTed to every push hook of the project, as
        GitLab does, each with its own token; ``deliveries`` records the answers (0: no answer)."""
        with self.lock:
            project = self.state.projects[project_id]
            before = project.head or "0" * 40
            project.commits += 1
            after = commit_id(project.id, project.commits)
            body = push_payload(project, before, after, self.url)
            hooks = [(h.url, h.token) for h in project.hooks if h.events.get("push_events")]
        for url, token in hooks if deliver else []:
            status = send_push(url, body, token or None, timeout=timeout)
            with self.lock:
                self.deliveries.append((project_id, url, status))
        return after

    def push_body(self, project_id: int, ref: str | None = None) -> dict[str, Any]:
        """The push event body for the project's current head (``before`` its previous commit)."""
        with self.lock:
            project = self.state.projects[project_id]
            before = commit_id(project.id, project.commits - 1) if project.commits > 1 else "0" * 40
            return push_payload(project, before, project.head or "0" * 40, self.url, ref)


def _push_only() -> dict[str, bool]:
    return {name: name == "push_events" for name in HOOK_EVENTS}


def send_push(url: str, body: dict[str, Any], token: str | None = None, *, timeout: float = 10.0,
              headers: dict[str, str] | None = None) -> int:
    """POST a push event ``body`` to ``url`` as GitLab does (``X-Gitlab-Event: Push Hook``, the
    hook's secret as ``X-Gitlab-Token`` when given); the answer's status, 0 if none came."""
    sent = {"Content-Type": "application/json", "User-Agent": "GitLab/17.0.0", "X-Gitlab-Event": "Push Hook",
            "X-Gitlab-Instance": "http://fake-gitlab", "X-Gitlab-Webhook-UUID": "00000000-0000-4000-8000-000000000000",
            "X-Gitlab-Event-UUID": f"{time.time_ns():032x}"[-32:]}
    if token is not None:
        sent["X-Gitlab-Token"] = token
    sent.update(headers or {})
    request = urllib.request.Request(url, json.dumps(body).encode(), sent, method="POST")
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # the receiver is local
    try:
        with opener.open(request, timeout=timeout) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except (urllib.error.URLError, OSError):
        return 0


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m dqueue.testing.gitlab", description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--projects", type=int, default=10)
    parser.add_argument("--token", default="gitlab-token")
    parser.add_argument("--group", default="item-bank/items", help="the group's full path")
    parser.add_argument("--group-id", type=int, default=42)
    parser.add_argument("--commits", type=int, default=3, help="commits per project")
    parser.add_argument("--empty", type=int, default=0, help="projects with an empty repository")
    parser.add_argument("--subgroups", type=int, default=0)
    parser.add_argument("--hooked", type=int, default=0, help="projects that already have the hook")
    parser.add_argument("--hook-url", default="")
    parser.add_argument("--hook-token", default="")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before each API answer")
    parser.add_argument("--rate-limit", type=int, default=0, help="requests per --rate-period (0: none)")
    parser.add_argument("--rate-period", type=float, default=60.0)
    parser.add_argument("--omit-totals", action="store_true", help="no X-Total / X-Total-Pages")
    args = parser.parse_args(argv)
    try:
        fake = FakeGitLab(args.projects, token=args.token, group=args.group, group_id=args.group_id,
                          commits=args.commits, empty=args.empty, subgroups=args.subgroups, hooked=args.hooked,
                          hook_url=args.hook_url, hook_token=args.hook_token, latency=args.latency,
                          rate_limit=args.rate_limit, rate_period=args.rate_period, omit_totals=args.omit_totals,
                          port=args.port, keep_requests=False)
    except OSError as exc:
        parser.exit(2, f"error: cannot listen on 127.0.0.1:{args.port}: {exc.strerror or exc}\n")
    serve_until_signalled(fake)


if __name__ == "__main__":
    main()
