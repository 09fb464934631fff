"""GitLab's REST API v4, the few calls the item sync makes, on the shared HTTP layer (dqueue/http.py).

- ``group_id``: ``GET /groups/:id`` (a full path is URL-encoded: ``item-bank%2Fitems``).
- ``projects_page``: ``GET /groups/:id/projects`` with an explicit ``page`` and ``per_page``,
  subgroups included, shared projects left out, oldest id first (``order_by=id&sort=asc``) so that
  pages do not shift when a project is created mid-listing.  The caller pages until an empty page:
  ``X-Total`` and ``X-Total-Pages`` are not to be trusted (GitLab omits them past 10,000 records).
- ``hooks`` / ``add_hook``: ``GET`` / ``POST /projects/:id/hooks``; a hook is created for push
  events only, with the secret GitLab sends back as ``X-Gitlab-Token`` (it never returns it).
- ``head_commit``: ``GET /projects/:id/repository/branches/:branch`` (branch URL-encoded) →
  ``commit.id``; None when the branch does not exist (an empty repository has none).
- ``project``: ``GET /projects/:id``; None when GitLab answers 404.

One client is shared by ``concurrency`` threads: its connection pool holds that many keep-alive
connections, a semaphore keeps at most that many requests in flight, and a ``RateGate`` spaces them
to ``request_rate`` per second; a 429 seen by one thread holds all of them until its ``Retry-After``
(or ``RateLimit-Reset``).  The token goes only to the configured origin, as ``Authorization:
Bearer`` (or ``PRIVATE-TOKEN``); it and the webhook secret are masked in every log line and error.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

import requests
from requests.adapters import HTTPAdapter

from .. import http
from ..backoff import Backoff
from ..masking import mask
from .settings import GitLabSettings

API = "/api/v4"


class GitLabError(http.HttpError):
    """A GitLab request failed.  The message names method, URL, status and GitLab's message."""


class GitLabRejected(GitLabError, http.Rejected):
    """A 4xx other than 429 (401: a bad token; 403: not allowed; 404: no such group/project)."""


class GitLabNotFound(GitLabRejected):
    """404: the group, project or branch does not exist (or the token may not see it)."""


class GitLabTransient(GitLabError, http.Transient):
    """5xx, a timeout or a dropped connection, still failing after every try."""


class GitLabRateLimited(GitLabError, http.RateLimited):
    """429 asking for a longer wait than ``max_wait`` allows."""


@dataclass(frozen=True)
class Project:
    id: int
    path: str  # path_with_namespace: item-bank/items/item-12
    name: str
    default_branch: str | None  # None: an empty repository

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Project:
        return cls(int(data["id"]), str(data.get("path_with_namespace") or data.get("path") or ""),
                   str(data.get("name") or ""), data.get("default_branch") or None)


class PrivateToken(http.TokenHeader):
    """``PRIVATE-TOKEN: <token>``, GitLab's own header for personal and project access tokens."""
    header = "PRIVATE-TOKEN"


class GitLabClient(http.HttpClient):
    Error = GitLabError
    RejectedError = GitLabRejected
    TransientError = GitLabTransient
    RateLimitedError = GitLabRateLimited
    rate_limit_reset_header = "RateLimit-Reset"

    def __init__(self, base_url: str, token: str, *, concurrency: int = 40, request_rate: float = 600.0,
                 private_token_header: bool = False, timeout: tuple[float, float] = (10, 60),
                 policy: Backoff = Backoff(attempts=5, base=1.0), max_wait: float = 300.0,
                 log: http.LogWriter | None = None, sleep: Callable[[float], None] = time.sleep,
                 gate: http.RateGate | None = None) -> None:
        auth = PrivateToken(base_url, token) if private_token_header else http.Bearer(base_url, token)
        super().__init__(base_url, auth, timeout=timeout, policy=policy, max_wait=max_wait, log=log,
                         sleep=sleep, gate=gate or http.RateGate(request_rate),
                         headers={"Accept": "application/json"})
        self.concurrency = concurrency
        # One keep-alive connection per thread; more threads than that wait for a free slot here.
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=concurrency)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self._in_flight = threading.BoundedSemaphore(concurrency)
        self._secrets: tuple[str, ...] = ()

    @classmethod
    def from_settings(cls, s: GitLabSettings, log: http.LogWriter | None = None) -> GitLabClient:
        client = cls(s.base_url, s.token, concurrency=s.concurrency, request_rate=s.request_rate,
                     timeout=s.timeouts, policy=s.http_policy, max_wait=s.max_wait, log=log)
        client.add_secret(s.webhook_secret)
        return client

    def add_secret(self, secret: str) -> None:
        """Mask ``secret`` too (the webhook secret this client sends) in its logs and errors."""
        if secret:
            self._secrets = (*self._secrets, secret)

    def mask(self, text: str) -> str:
        return mask(super().mask(text), *self._secrets)

    def once(self, method: str, url: str, **kwargs: Any) -> Any:
        with self._in_flight:
            return super().once(method, url, **kwargs)

    def classify(self, method: str, url: str, resp: requests.Response, ok_404: bool = False,
                 json_answer: bool = True) -> Any:
        try:
            return super().classify(method, url, resp, ok_404, json_answer)
        except GitLabRejected as exc:
            if exc.status == 404:
                raise GitLabNotFound(exc.message, exc.status, exc.body) from None
            raise

    def detail(self, body: Any) -> str:
        # GitLab says {"message": "404 Project Not Found"}, {"error": "per_page is invalid"}, or
        # {"message": {"url": ["is blocked…"]}} for a field.
        if isinstance(body, dict) and body.get("error") and not body.get("message"):
            return f": {body['error']}"
        if isinstance(body, dict) and isinstance(body.get("message"), dict):
            return ": " + "; ".join(f"{k}: {v}" for k, v in body["message"].items())
        return super().detail(body)

    # -- the API -------------------------------------------------------------------------------

    def url(self, path: str, **params: Any) -> str:
        query = f"?{urlencode(params)}" if params else ""
        return f"{self.base_url}{API}{path}{query}"

    def get(self, path: str, **params: Any) -> Any:
        return self.call("GET", self.url(path, **params))

    def group_id(self, group: str | int) -> int:
        """The numeric id of ``group`` (a full path or an id); GitLabNotFound if there is none."""
        answer = self.get(f"/groups/{_ref(group)}", with_projects="false")
        return int(answer["id"])

    def projects_page(self, group_id: int | str, page: int, per_page: int = 100) -> list[Project]:
        """Page ``page`` (from 1) of the group's projects, subgroups included; [] past the last."""
        answer = self.get(f"/groups/{_ref(group_id)}/projects", page=page, per_page=per_page,
                          include_subgroups="true", with_shared="false", simple="true", order_by="id",
                          sort="asc")
        return [Project.from_json(p) for p in answer or []]

    def hooks(self, project_id: int) -> list[dict[str, Any]]:
        """Every hook of the project (GitLab pages these too: read on while pages are full)."""
        hooks: list[dict[str, Any]] = []
        page = 1
        while True:
            answer = self.get(f"/projects/{project_id}/hooks", page=page, per_page=100) or []
            hooks.extend(answer)
            if len(answer) < 100:
                return hooks
            page += 1

    def add_hook(self, project_id: int, url: str, secret: str) -> dict[str, Any]:
        """Create a push-events-only hook posting to ``url`` with ``secret`` as its token."""
        self.add_secret(secret)
        body = {"url": url, "token": secret, "push_events": True, "tag_push_events": False,
                "merge_requests_events": False, "issues_events": False, "note_events": False,
                "pipeline_events": False, "job_events": False, "wiki_page_events": False,
                "enable_ssl_verification": True}
        return dict(self.call("POST", self.url(f"/projects/{project_id}/hooks"), body))

    def head_commit(self, project_id: int, branch: str) -> str | None:
        """The id of the commit at the head of ``branch``; None when the branch does not exist.
        A project that is gone raises GitLabNotFound ("404 Project Not Found")."""
        try:
            answer = self.get(f"/projects/{project_id}/repository/branches/{quote(branch, safe='')}")
        except GitLabNotFound as exc:
            if _not_found(exc) == "Branch":
                return None
            raise
        return str(answer["commit"]["id"])

    def project(self, project_id: int) -> Project | None:
        """The project, or None when GitLab answers 404 (deleted, or out of the token's sight)."""
        try:
            return Project.from_json(self.get(f"/projects/{project_id}"))
        except GitLabNotFound:
            return None


def _ref(group: str | int) -> str:
    """A group or project id for a URL path: a number as is, a full path URL-encoded (a/b → a%2Fb)."""
    return quote(str(group).strip("/"), safe="")


def _not_found(exc: GitLabNotFound) -> str:
    """What a 404 says is missing: "Project", "Branch", "Group"… ("" for a bare 404)."""
    message = exc.body.get("message") if isinstance(exc.body, dict) else None
    words = str(message or "").split()
    return words[1] if len(words) >= 3 and words[0] == "404" else ""
