"""One item: its webhook, its head commit, its ingest under the per-item lock.

What every path that touches an item shares (the full sync, ``dqueue sync --item``, ``POST
/sync/{projectId}`` and the webhook's ``itemsync.update`` job):

- ``ensure_hook``: the project has a hook whose URL equals ``webhook_url`` (exact match, as IIS),
  or one is added (push events only, with ``webhook_secret`` as its token);
- ``refresh``: under the item's lock, the default branch's head is read from GitLab and stored
  only if it differs from the stored one — an unchanged item writes nothing.  The head is read
  again under the lock even when the caller read it just before: an update that read an older
  head and waited for the lock must not write it over a newer one.

``sync_one`` is the single-item sync: no singleton check, the item's lock held throughout, a
project that is gone (404) has its stored row deleted.
"""
from __future__ import annotations

import os
import socket
import time
import uuid
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Callable, Iterator

from sqlalchemy import Engine

from ..store.queue import transaction
from . import store

if TYPE_CHECKING:
    from ..config import Settings
    from .gitlab import GitLabClient, Project
    from .settings import GitLabSettings

LOCK_WAIT = 5.0  # seconds sync_one waits for another update of the item to finish
LOCK_POLL = 0.1


class NotConfigured(ValueError):
    """The [gitlab] settings a sync needs are not all set."""

    def __init__(self, missing: list[str]) -> None:
        super().__init__(f"GitLab is not configured: {', '.join(missing)} not set "
                         "(in the [gitlab] section of the config file, or DQUEUE_GITLAB_<NAME>)")
        self.missing = missing


class ItemBusy(RuntimeError):
    """Another update of the item holds its lock."""

    def __init__(self, project_id: int, lock: store.Lock | None, waited: float) -> None:
        held = (f" (held by {lock.owner} since {lock.locked_at:%Y-%m-%d %H:%M:%S} UTC, lease until "
                f"{lock.expires_at:%H:%M:%S})") if lock else ""
        super().__init__(f"project {project_id} is being updated by someone else{held}; waited {waited:g}s, "
                         "try again shortly")
        self.project_id = project_id
        self.lock = lock


@dataclass(frozen=True)
class ItemResult:
    project_id: int
    path: str | None = None
    hook_added: bool = False
    updated: bool = False  # the stored head changed (or the item was stored for the first time)
    deleted: bool = False  # the project is gone (404) and its stored row was deleted
    gone: bool = False  # the project is gone (404), stored or not
    ignored: bool = False  # named by the ignore list: nothing done
    previous_commit: str | None = None
    head_commit: str | None = None

    def message(self) -> str:
        """``Synced project <id>`` (IIS's answer) and what changed."""
        if self.ignored:
            return f"Synced project {self.project_id}: ignored (in gitlab_ignore), nothing done"
        if self.gone:
            return (f"Synced project {self.project_id}: not found in GitLab (404); "
                    + ("its stored item was deleted" if self.deleted else "no stored item"))
        changes = []
        if self.hook_added:
            changes.append("webhook added")
        if self.updated:
            changes.append(f"head {_short(self.previous_commit)} -> {_short(self.head_commit)}")
        return f"Synced project {self.project_id}: " + (", ".join(changes) if changes else "unchanged")

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "message": self.message()}


def _short(commit: str | None) -> str:
    return commit[:12] if commit else "(none)"


def require_configured(gl: "GitLabSettings") -> None:
    missing = gl.missing()
    if missing:
        raise NotConfigured(missing)


def owner_token() -> str:
    """Unique per acquisition, and says who: ``<host>:<pid>:<random>``."""
    return f"{socket.gethostname()[:180]}:{os.getpid()}:{uuid.uuid4().hex[:16]}"


@contextmanager
def item_lock(engine: Engine, gl: "GitLabSettings", project_id: int, wait: float = LOCK_WAIT) -> Iterator[str]:
    """Hold the item's lock (its owner token) for the block; ``ItemBusy`` after ``wait`` seconds."""
    owner = owner_token()
    deadline = time.monotonic() + wait
    while not store.acquire(engine, project_id, owner, gl.lock_lease):
        if time.monotonic() >= deadline:
            with transaction(engine) as conn:
                raise ItemBusy(project_id, store.holder(conn, project_id), wait)
        time.sleep(LOCK_POLL)
    try:
        yield owner
    finally:
        store.release(engine, project_id, owner)


def ensure_hook(client: "GitLabClient", gl: "GitLabSettings", project_id: int) -> bool:
    """Add the project's webhook if no hook has exactly ``webhook_url``; True when one was added."""
    if any(hook.get("url") == gl.webhook_url for hook in client.hooks(project_id)):
        return False
    client.add_hook(project_id, gl.webhook_url, gl.webhook_secret)
    return True


@dataclass(frozen=True)
class Refreshed:
    updated: bool
    previous: str | None
    head: str | None


def refresh(engine: Engine, gl: "GitLabSettings", client: "GitLabClient", project: "Project",
            owner: str) -> Refreshed:
    """Read the head under the held lock ``owner``; store it only if it changed."""
    head = client.head_commit(project.id, project.default_branch) if project.default_branch else None
    with transaction(engine) as conn:
        stored = store.get(conn, project.id)
    if stored is not None and stored.head_commit == head:
        return Refreshed(False, head, head)
    store.save(engine, project.id, owner, gl.lock_lease, _path(project), project.default_branch, head)
    return Refreshed(True, stored.head_commit if stored else None, head)


def _path(project: "Project") -> str:
    return str(getattr(project, "path_with_namespace", None) or project.path)


def ignored(gl: "GitLabSettings", project: "Project") -> bool:
    return gl.ignored(project.id, _path(project)) or gl.ignored(project.id, project.path)


def open_client(settings: "Settings") -> "GitLabClient":
    from .gitlab import GitLabClient  # the HTTP stack only where GitLab is called
    return GitLabClient.from_settings(settings.gitlab)


def sync_one(engine: Engine, settings: "Settings", project_id: int, client: "GitLabClient | None" = None, *,
             wait: float = LOCK_WAIT, on_locked: Callable[[], None] | None = None) -> ItemResult:
    """Sync one item now (see the module docstring).  ``ItemBusy`` when another update holds its
    lock for longer than ``wait``; ``NotConfigured`` without the [gitlab] settings; GitLab's
    errors as the client raises them.  ``on_locked`` runs once the lock is held, before GitLab is read."""
    gl: GitLabSettings = settings.gitlab
    require_configured(gl)
    own = client is None
    gitlab = client if client is not None else open_client(settings)
    try:
        with item_lock(engine, gl, project_id, wait) as owner:
            if on_locked is not None:
                on_locked()
            return _sync_locked(engine, gl, gitlab, project_id, owner)
    finally:
        if own:
            gitlab.close()


def _sync_locked(engine: Engine, gl: "GitLabSettings", client: "GitLabClient", project_id: int,
                 owner: str) -> ItemResult:
    project = client.project(project_id)
    if project is None:
        deleted = store.remove(engine, project_id, owner, gl.lock_lease)
        return ItemResult(project_id, gone=True, deleted=deleted)
    if ignored(gl, project):
        return ItemResult(project_id, _path(project), ignored=True)
    hook_added = ensure_hook(client, gl, project_id)
    done = refresh(engine, gl, client, project, owner)
    return ItemResult(project_id, _path(project), hook_added=hook_added, updated=done.updated,
                      previous_commit=done.previous, head_commit=done.head)
