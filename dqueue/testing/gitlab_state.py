"""The fake GitLab's state: one group (and its subgroups), its projects, their hooks and head commits.

Pure data and rules, no HTTP: ``dqueue/testing/gitlab.py`` calls these methods under one lock, and
``gitlab_handler.py`` turns their results into answers.  The JSON shapes follow GitLab's REST API v4
documentation (groups, projects with ``simple=true``, project webhooks, branches); only the fields
a client of ours could read are filled in, with GitLab's names and types.
"""
from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

EPOCH = datetime(2020, 1, 1, tzinfo=timezone.utc)
ORDER_BY = ("id", "name", "path", "created_at", "updated_at", "last_activity_at", "similarity", "star_count")
HOOK_EVENTS = ("push_events", "issues_events", "confidential_issues_events", "merge_requests_events",
               "tag_push_events", "note_events", "confidential_note_events", "job_events", "pipeline_events",
               "wiki_page_events", "deployment_events", "releases_events")


def commit_id(project_id: int, n: int) -> str:
    """The id of the project's n-th commit: 40 hex digits, the same in every run."""
    return hashlib.sha1(f"project {project_id} commit {n}".encode()).hexdigest()


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


@dataclass
class Group:
    id: int
    full_path: str
    name: str
    parent_id: int | None = None

    def as_json(self, base_url: str) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "path": self.full_path.rsplit("/", 1)[-1],
                "full_name": self.name, "full_path": self.full_path, "parent_id": self.parent_id,
                "visibility": "private", "web_url": f"{base_url}/groups/{self.full_path}", "description": ""}


@dataclass
class Hook:
    id: int
    project_id: int
    url: str
    token: str  # kept to sign deliveries; never answered
    events: dict[str, bool]
    enable_ssl_verification: bool
    created_at: str

    def as_json(self) -> dict[str, Any]:
        return {"id": self.id, "url": self.url, "project_id": self.project_id, "created_at": self.created_at,
                "push_events_branch_filter": "", "alert_status": "executable", "disabled_until": None,
                "enable_ssl_verification": self.enable_ssl_verification, **self.events}


@dataclass
class Project:
    id: int
    group: Group
    path: str
    created_at: datetime
    commits: int  # how many commits the default branch has; 0: an empty repository
    default_branch: str = "main"
    hooks: list[Hook] = field(default_factory=list)

    @property
    def path_with_namespace(self) -> str:
        return f"{self.group.full_path}/{self.path}"

    @property
    def head(self) -> str | None:
        return commit_id(self.id, self.commits) if self.commits else None

    def as_json(self, base_url: str, simple: bool) -> dict[str, Any]:
        web = f"{base_url}/{self.path_with_namespace}"
        data: dict[str, Any] = {
            "id": self.id, "description": None, "name": self.path, "name_with_namespace":
            f"{self.group.name} / {self.path}", "path": self.path, "path_with_namespace": self.path_with_namespace,
            "created_at": iso(self.created_at), "default_branch": self.default_branch if self.commits else None,
            "tag_list": [], "topics": [], "ssh_url_to_repo": f"git@fake-gitlab:{self.path_with_namespace}.git",
            "http_url_to_repo": f"{web}.git", "web_url": web, "readme_url": None, "forks_count": 0,
            "avatar_url": None, "star_count": 0, "last_activity_at": iso(self.created_at),
            "namespace": {"id": self.group.id, "name": self.group.name, "path": self.group.full_path.rsplit("/", 1)[-1],
                          "kind": "group", "full_path": self.group.full_path, "parent_id": self.group.parent_id},
        }
        if not simple:
            data.update({"visibility": "private", "archived": False, "empty_repo": not self.commits,
                         "open_issues_count": 0, "creator_id": 1, "shared_with_groups": []})
        return data

    def branch_json(self, base_url: str) -> dict[str, Any]:
        head = self.head or ""
        when = iso(self.created_at + timedelta(minutes=self.commits))
        return {"name": self.default_branch, "merged": False, "protected": True, "default": True,
                "developers_can_push": False, "developers_can_merge": False, "can_push": True,
                "web_url": f"{base_url}/{self.path_with_namespace}/-/tree/{self.default_branch}",
                "commit": {"id": head, "short_id": head[:8], "created_at": when, "parent_ids":
                           [commit_id(self.id, self.commits - 1)] if self.commits > 1 else [],
                           "title": f"commit {self.commits}", "message": f"commit {self.commits}\n",
                           "author_name": "Item Author", "author_email": "author@example.org",
                           "authored_date": when, "committer_name": "Item Author",
                           "committer_email": "author@example.org", "committed_date": when, "trailers": {},
                           "web_url": f"{base_url}/{self.path_with_namespace}/-/commit/{head}"}}


class State:
    """The group tree and its projects.  Project ids are not contiguous, as on a real instance."""

    def __init__(self, group_path: str, group_id: int, subgroups: int, seed: int) -> None:
        self.rng = random.Random(seed)
        self.group = Group(group_id, group_path, group_path.rsplit("/", 1)[-1])
        self.subgroups = [Group(group_id + 1 + i, f"{group_path}/sub{i + 1}", f"sub{i + 1}", group_id)
                          for i in range(subgroups)]
        self.shared: list[Project] = []  # another group's projects shared with this one
        self.projects: dict[int, Project] = {}
        self._next_id = 1000
        self._next_hook = 1
        self._made = 0

    def groups(self) -> list[Group]:
        return [self.group, *self.subgroups]

    def find_group(self, ref: str) -> Group | None:
        for group in self.groups():
            if ref == str(group.id) or ref == group.full_path:
                return group
        return None

    def add_projects(self, n: int, commits: int, empty: bool = False) -> list[Project]:
        made = []
        for _ in range(n):
            self._next_id += self.rng.randint(1, 7)  # gaps: deleted projects, other groups' projects
            groups = self.groups()
            group = groups[self._made % len(groups)]
            project = Project(self._next_id, group, f"item-{self._next_id}",
                              EPOCH + timedelta(minutes=self._made), 0 if empty else commits)
            self._made += 1
            self.projects[project.id] = project
            made.append(project)
        return made

    def add_shared(self, n: int, commits: int) -> None:
        other = Group(9_000_000, "elsewhere", "elsewhere")
        for i in range(n):
            self.shared.append(Project(8_000_000 + i, other, f"shared-{i}", EPOCH, commits))

    def find_project(self, ref: str) -> Project | None:
        if ref.isdigit():
            return self.projects.get(int(ref))
        return next((p for p in self.projects.values() if p.path_with_namespace == ref), None)

    def listing(self, group: Group, subgroups: bool, shared: bool, order_by: str, sort: str) -> list[Project]:
        """The group's projects as ``GET /groups/:id/projects`` orders them."""
        inside = {group.id} | ({g.id for g in self.subgroups if _under(g, group)} if subgroups else set())
        chosen = [p for p in self.projects.values() if p.group.id in inside]
        if shared and group is self.group:
            chosen += self.shared
        key = {"id": lambda p: p.id, "name": lambda p: p.path, "path": lambda p: p.path}.get(
            order_by, lambda p: (p.created_at, p.id))
        return sorted(chosen, key=key, reverse=sort == "desc")

    def add_hook(self, project: Project, url: str, token: str, events: dict[str, bool], ssl: bool) -> Hook:
        hook = Hook(self._next_hook, project.id, url, token, events, ssl, iso(datetime.now(timezone.utc)))
        self._next_hook += 1
        project.hooks.append(hook)
        return hook


def _under(group: Group, ancestor: Group) -> bool:
    return group.full_path.startswith(ancestor.full_path + "/")


def push_payload(project: Project, before: str, after: str, base_url: str, ref: str | None = None) -> dict[str, Any]:
    """The body GitLab POSTs for a push (``X-Gitlab-Event: Push Hook``), the fields its docs show."""
    web = f"{base_url}/{project.path_with_namespace}"
    return {
        "object_kind": "push", "event_name": "push", "before": before, "after": after,
        "ref": ref or f"refs/heads/{project.default_branch}", "ref_protected": True, "checkout_sha": after,
        "message": None, "user_id": 4, "user_name": "Item Author", "user_username": "author",
        "user_email": "", "user_avatar": None, "project_id": project.id,
        "project": {"id": project.id, "name": project.path, "description": "", "web_url": web,
                    "avatar_url": None, "git_ssh_url": f"git@fake-gitlab:{project.path_with_namespace}.git",
                    "git_http_url": f"{web}.git", "namespace": project.group.name, "visibility_level": 0,
                    "path_with_namespace": project.path_with_namespace,
                    "default_branch": project.default_branch, "homepage": web,
                    "url": f"git@fake-gitlab:{project.path_with_namespace}.git",
                    "ssh_url": f"git@fake-gitlab:{project.path_with_namespace}.git", "http_url": f"{web}.git"},
        "commits": [{"id": after, "message": "an edit\n", "title": "an edit", "timestamp": iso(
            datetime.now(timezone.utc)), "url": f"{web}/-/commit/{after}",
            "author": {"name": "Item Author", "email": "[REDACTED]"}, "added": [], "modified": ["item.json"],
            "removed": []}],
        "total_commits_count": 1,
        "repository": {"name": project.path, "url": f"git@fake-gitlab:{project.path_with_namespace}.git",
                       "description": "", "homepage": web, "git_http_url": f"{web}.git",
                       "git_ssh_url": f"git@fake-gitlab:{project.path_with_namespace}.git", "visibility_level": 0},
    }
