"""The fake GitLab's HTTP side: routing, the token check, pagination, faults, rate limit and answers.

As GitLab's REST API v4 documentation describes it:

- Authentication: ``PRIVATE-TOKEN: <token>``, ``Authorization: Bearer <token>`` or ``?private_token=``;
  anything else is ``401 {"message": "401 Unauthorized"}``.
- A group or project id in a path is a number or the URL-encoded full path (``a%2Fb``); an
  unencoded ``/`` makes another route, which does not exist: ``404 {"error": "404 Not Found"}``.
- Not found: ``404 {"message": "404 Group Not Found"}`` (Project, Branch likewise).
- Offset pagination: ``page`` (default 1) and ``per_page`` (default 20; above 100 GitLab answers 100);
  headers ``X-Page``, ``X-Per-Page``, ``X-Next-Page`` and ``X-Prev-Page`` (empty at the ends),
  ``X-Total`` and ``X-Total-Pages`` (left out above 10,000 records, or always with ``omit_totals``),
  and ``Link`` (``rel="last"`` only with the totals).  A page past the end is ``[]``.  A value that is
  not an integer is ``400 {"error": "page is invalid"}``; the fake also refuses ``per_page`` < 1.
- ``order_by`` one of id, name, path, created_at (default), updated_at, last_activity_at, similarity,
  star_count; ``sort`` asc or desc (default) — otherwise ``400 {"error": "order_by does not have a
  valid value"}``.  Booleans: true/false (the parameter coercion also takes 1/0, t/f, y/n, yes/no,
  on/off); anything else is ``400 {"error": "<name> is invalid"}``.
- Rate limit: ``429`` with ``Retry-After`` (seconds), ``RateLimit-Limit``, ``RateLimit-Observed``,
  ``RateLimit-Remaining`` (0), ``RateLimit-Reset`` (epoch seconds), ``RateLimit-ResetTime`` (HTTP date)
  and the plain-text body ``Retry later``.

``/_fake/stats`` (GET; POST ``/_fake/reset`` clears it) is the fake's own, outside ``/api/v4`` and
without a token: the requests counted by endpoint, as JSON.
"""
from __future__ import annotations

import hmac
import json
import time
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import parse_qs, unquote, urlencode, urlsplit

from dqueue.testing.gitlab_state import HOOK_EVENTS, ORDER_BY, Project
from dqueue.testing.server import DispatchingHandler, QuietServer

if TYPE_CHECKING:
    from dqueue.testing.gitlab import FakeGitLab, GitLabFault

API = "/api/v4/"
MAX_PER_PAGE = 100
MAX_COUNTED = 10_000  # above this many records GitLab leaves out X-Total, X-Total-Pages, rel="last"
MAX_BODY = 1 << 20
ERROR_PAGE = {500: "500 Internal Server Error", 502: "502 Bad Gateway", 503: "503 Service Unavailable"}
TRUE, FALSE = ("true", "1", "t", "y", "yes", "on"), ("false", "0", "f", "n", "no", "off")


class Server(QuietServer):
    fake: FakeGitLab

    def __init__(self, address: tuple[str, int]) -> None:
        super().__init__(address, _Handler)


class Answer(Exception):
    def __init__(self, status: int, body: Any = None, headers: dict[str, str] | None = None,
                 text: str | None = None) -> None:
        super().__init__(status)
        self.status, self.headers = status, headers or {}
        if text is not None:
            self.body, self.content_type = text.encode(), "text/plain; charset=utf-8"
        else:
            self.body, self.content_type = json.dumps(body).encode(), "application/json"


def not_found(what: str = "") -> Answer:
    return Answer(404, {"message": f"404 {what} Not Found"} if what else {"error": "404 Not Found"})


class _Handler(DispatchingHandler):
    server_version = "nginx"

    @property
    def fake(self) -> FakeGitLab:
        return cast(Server, self.server).fake

    def _dispatch(self) -> None:
        split = urlsplit(self.path)
        self._raw_path, self._query = split.path, parse_qs(split.query, keep_blank_values=True)
        length = self.headers.get("Content-Length", "")
        self._left = int(length) if length.isdigit() else 0
        endpoint = self._endpoint()
        try:
            if endpoint.startswith("_fake"):
                self._control()
            self.fake.count(endpoint)
            self.fake.entered(1)
            try:
                self._api()
            finally:
                self.fake.entered(-1)
        except Answer as answer:
            self._reply(answer.status, answer.body, answer.content_type, answer.headers)
        except OSError:
            self.close_connection = True  # the client went away mid-answer

    def _api(self) -> None:
        if self.fake.latency > 0:
            time.sleep(self.fake.latency)
        fault = self.fake.take_fault(self.command, self._raw_path)
        if fault is not None and self._apply(fault):
            return
        limited = self.fake.over_limit()
        if limited is not None:
            raise Answer(429, headers=limited, text="Retry later\n")
        if not self._authorized():
            raise Answer(401, {"message": "401 Unauthorized"})
        self._route()

    def _endpoint(self) -> str:
        """The name requests are counted under: group, group_projects, project, hooks_list,
        hooks_create, branch, other, or _fake for the control endpoints."""
        if self._raw_path.startswith("/_fake/"):
            return "_fake"
        parts = self._parts()
        shapes = {("groups", 2, "GET"): "group", ("projects", 2, "GET"): "project"}
        if parts and (parts[0], len(parts), self.command) in shapes:
            return shapes[(parts[0], len(parts), self.command)]
        if len(parts) == 3 and parts[0] == "groups" and parts[2] == "projects":
            return "group_projects"
        if len(parts) == 3 and parts[0] == "projects" and parts[2] == "hooks":
            return "hooks_create" if self.command == "POST" else "hooks_list"
        if len(parts) == 5 and parts[0] == "projects" and parts[2:4] == ["repository", "branches"]:
            return "branch"
        return "other"

    def _parts(self) -> list[str]:
        if not self._raw_path.startswith(API):
            return []
        return self._raw_path[len(API):].rstrip("/").split("/")  # split before decoding: a%2Fb is one id

    def _apply(self, fault: GitLabFault) -> bool:
        if fault.kind == "slow":
            time.sleep(fault.delay)
            return False
        if fault.kind == "reset":
            self.fake.record(self.command, self._raw_path, 0)
            self._reset_connection()
            return True
        if fault.kind in ("429", "429-reset"):
            raise Answer(429, headers=self.fake.limit_headers(fault.retry_after, fault.kind == "429"),
                         text="Retry later\n")
        status = int(fault.kind)
        raise Answer(status, text=f"<html><body><h1>{ERROR_PAGE[status]}</h1></body></html>")

    def _authorized(self) -> bool:
        given = self.headers.get("PRIVATE-TOKEN") or self._query.get("private_token", [""])[0]
        auth = self.headers.get("Authorization", "")
        if not given and auth[:7].lower() == "bearer ":
            given = auth[7:].strip()
        return bool(given) and hmac.compare_digest(given.encode(), self.fake.token.encode())

    def _route(self) -> None:
        parts, method, state = self._parts(), self.command, self.fake.state
        if len(parts) < 2 or parts[0] not in ("groups", "projects"):
            raise not_found()
        fields = self._body() if method == "POST" else {}  # read before taking the lock
        with self.fake.lock:
            if parts[0] == "groups":
                group = state.find_group(unquote(parts[1]))
                if len(parts) not in (2, 3) or len(parts) == 3 and parts[2] != "projects" or method != "GET":
                    raise not_found()
                if group is None:
                    raise not_found("Group")
                if len(parts) == 2:
                    self._group(group)
                self._group_projects(group)
            project = state.find_project(unquote(parts[1]))
            route = (method, len(parts), tuple(parts[2:4]))
            if route not in (("GET", 2, ()), ("GET", 3, ("hooks",)), ("POST", 3, ("hooks",)),
                             ("GET", 5, ("repository", "branches"))):
                raise not_found()
            if project is None:
                raise not_found("Project")
            if len(parts) == 2:
                raise Answer(200, project.as_json(self.fake.url, self._bool("simple", False)))
            if len(parts) == 3 and method == "GET":
                self._paged([h.as_json() for h in project.hooks])
            if len(parts) == 3:
                self._create_hook(project, fields)
            if unquote(parts[4]) != project.default_branch or project.head is None:
                raise not_found("Branch")
            raise Answer(200, project.branch_json(self.fake.url))

    # -- endpoints --------------------------------------------------------------------------------

    def _group(self, group: Any) -> None:
        data = group.as_json(self.fake.url)
        if self._bool("with_projects", True):  # deprecated, at most 100, but GitLab still sends them
            listed = self.fake.state.listing(group, False, False, "created_at", "desc")[:MAX_PER_PAGE]
            data["projects"] = [p.as_json(self.fake.url, True) for p in listed]
        raise Answer(200, data)

    def _group_projects(self, group: Any) -> None:
        order_by = self._query.get("order_by", ["created_at"])[0]
        sort = self._query.get("sort", ["desc"])[0]
        if order_by not in ORDER_BY:
            raise Answer(400, {"error": "order_by does not have a valid value"})
        if sort not in ("asc", "desc"):
            raise Answer(400, {"error": "sort does not have a valid value"})
        listed = self.fake.state.listing(group, self._bool("include_subgroups", False),
                                         self._bool("with_shared", True), order_by, sort)
        simple = self._bool("simple", False)
        self._paged(listed, lambda p: p.as_json(self.fake.url, simple))

    def _create_hook(self, project: Project, fields: dict[str, Any]) -> None:
        url = fields.get("url")
        if not isinstance(url, str) or not url:
            raise Answer(400, {"error": "url is missing"})
        if urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).netloc:
            raise Answer(422, {"message": {"url": ["is blocked: Only allowed schemes are http, https"]}})
        events = {name: self._flag(fields, name, name == "push_events") for name in HOOK_EVENTS}
        ssl = self._flag(fields, "enable_ssl_verification", True)
        token = fields.get("token") or ""
        hook = self.fake.state.add_hook(project, url, str(token), events, ssl)
        raise Answer(201, hook.as_json())

    # -- parameters, bodies, answers ----------------------------------------------------------------

    def _paged(self, items: list[Any], render: Any = None) -> None:
        page, per_page = self._int("page", 1), self._int("per_page", 20)
        if per_page < 1:
            raise Answer(400, {"error": "per_page does not have a valid value"})
        page, per_page = max(page, 1), min(per_page, MAX_PER_PAGE)
        total = len(items)
        pages = max(1, -(-total // per_page))
        chosen = items[(page - 1) * per_page: page * per_page]
        headers = {"X-Page": str(page), "X-Per-Page": str(per_page),
                   "X-Next-Page": str(page + 1) if page < pages else "",
                   "X-Prev-Page": str(page - 1) if page > 1 else ""}
        counted = total <= MAX_COUNTED and not self.fake.omit_totals
        if counted:
            headers.update({"X-Total": str(total), "X-Total-Pages": str(pages)})
        headers["Link"] = self._links(page, per_page, pages, counted)
        raise Answer(200, [render(i) for i in chosen] if render else chosen, headers)

    def _links(self, page: int, per_page: int, pages: int, counted: bool) -> str:
        def link(n: int, rel: str) -> str:
            query = {k: v[-1] for k, v in self._query.items() if k != "private_token"}
            query.update(page=str(n), per_page=str(per_page))
            return f'<{self.fake.url}{self._raw_path}?{urlencode(query)}>; rel="{rel}"'
        rels = [link(page - 1, "prev")] if page > 1 else []
        rels += [link(page + 1, "next")] if page < pages else []
        rels += [link(1, "first")] + ([link(pages, "last")] if counted else [])
        return ", ".join(rels)

    def _int(self, name: str, default: int) -> int:
        value = self._query.get(name, [""])[-1].strip()
        if not value:
            return default
        try:
            return int(value)
        except ValueError:
            raise Answer(400, {"error": f"{name} is invalid"}) from None

    def _bool(self, name: str, default: bool) -> bool:
        return self._flag({k: v[-1] for k, v in self._query.items()}, name, default)

    def _flag(self, fields: dict[str, Any], name: str, default: bool) -> bool:
        value = fields.get(name)
        if value is None or value == "":
            return default
        if isinstance(value, bool):
            return value
        if str(value).lower() in TRUE:
            return True
        if str(value).lower() in FALSE:
            return False
        raise Answer(400, {"error": f"{name} is invalid"})

    def _body(self) -> dict[str, Any]:
        """The request's parameters: a JSON object, a form, or the query string."""
        raw = self.rfile.read(min(self._left, MAX_BODY)) if self._left else b""
        self._left = 0
        ctype = self.headers.get("Content-Type", "").split(";")[0].strip().lower()
        fields: dict[str, Any] = {k: v[-1] for k, v in self._query.items()}
        if ctype == "application/json" and raw:
            try:
                body = json.loads(raw)
            except ValueError:
                raise Answer(400, {"error": "The provided content-type 'application/json' is not supported."}) from None
            if not isinstance(body, dict):
                raise Answer(400, {"error": "url is missing"})
            fields.update(body)
        elif raw:
            fields.update({k: v[-1] for k, v in parse_qs(raw.decode("utf-8", "replace")).items()})
        return fields

    def _control(self) -> None:
        if self.command == "GET" and self._raw_path == "/_fake/stats":
            raise Answer(200, self.fake.stats())
        if self.command == "POST" and self._raw_path == "/_fake/reset":
            self.fake.reset_counts()
            raise Answer(200, self.fake.stats())
        raise not_found()

    def _reply(self, status: int, body: bytes, content_type: str, headers: dict[str, str]) -> None:
        if self._left > MAX_BODY:
            self.close_connection = True
        elif self._left:
            self.rfile.read(self._left)
            self._left = 0
        self.fake.record(self.command, self._raw_path, status)
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
