"""The GitLab webhook receiver's logic (``POST /webHook`` in dqueue/web calls ``accept_push``).

GitLab sends the hook's secret token in ``X-Gitlab-Token`` and the event's kind in
``X-Gitlab-Event``.  The token is compared with ``webhook_secret`` in constant time; a missing or
wrong one, or no secret configured at all (the safe default: an unauthenticated receiver would let
anyone trigger GitLab traffic), is ``WebhookUnauthorized`` and nothing is enqueued.  A ``Push
Hook`` to ``refs/heads/<the project's default branch>`` enqueues ``itemsync.update`` for the
project; any other branch, a tag push or another event is accepted and ignored with the reason
(GitLab disables hooks that keep failing, so ignoring is not an error).

While an update of the item is waiting (enqueued, and not yet past reading GitLab), a second push
enqueues nothing: the waiting job will read the newer head.  The job clears its marker once it
holds the item's lock and before it reads GitLab (jobs.py), so a push that finds the marker was
sent before that read.
"""
from __future__ import annotations

import hmac
import json
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Mapping

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError

from ..client import Client
from ..store.owned import JobState, job_state
from ..store.queue import retry_on_deadlock, transaction
from . import store

if TYPE_CHECKING:
    from ..config import Settings

UPDATE_JOB = "itemsync.update"
PUSH_EVENT = "Push Hook"


class WebhookUnauthorized(PermissionError):
    """The request does not carry the configured secret token (HTTP 401)."""


class BadWebhook(ValueError):
    """The request is not a GitLab webhook we can read (HTTP 400)."""


@dataclass(frozen=True)
class WebhookResult:
    enqueued: bool
    reason: str
    project_id: int | None = None
    job_id: int | None = None  # the update job: new, or the one already waiting
    duplicate: bool = False  # an update of the item was already waiting

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _header(headers: Mapping[str, str], name: str) -> str | None:
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            return value
    return None


def check_token(settings: "Settings", headers: Mapping[str, str]) -> None:
    secret = settings.gitlab.webhook_secret
    if not secret:
        raise WebhookUnauthorized("no webhook secret is configured (gitlab_webhook_secret): every webhook is refused")
    given = _header(headers, "X-Gitlab-Token")
    if given is None:
        raise WebhookUnauthorized("missing X-Gitlab-Token")
    if not hmac.compare_digest(given.encode("utf-8", "surrogateescape"), secret.encode("utf-8")):
        raise WebhookUnauthorized("wrong X-Gitlab-Token")


def _payload(body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadWebhook(f"the body is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise BadWebhook("the body is not a JSON object")
    return data


def _push_target(data: dict[str, Any]) -> tuple[int, str, str | None, str]:
    """(project id, ref, default branch, full path) of a push event; BadWebhook when absent."""
    project: dict[str, Any] = data["project"] if isinstance(data.get("project"), dict) else {}
    project_id = data.get("project_id", project.get("id"))
    if isinstance(project_id, bool) or not isinstance(project_id, int) or not 0 < project_id < 2 ** 63:
        raise BadWebhook("a push event without a valid project_id")
    ref = data.get("ref")
    if not isinstance(ref, str):
        raise BadWebhook("a push event without a ref")
    branch = project.get("default_branch")
    path = project.get("path_with_namespace") or project.get("path") or ""
    return project_id, ref, branch if isinstance(branch, str) else None, str(path)


def accept_push(engine: Engine, settings: "Settings", headers: Mapping[str, str], body: bytes) -> WebhookResult:
    """Check and act on one webhook request (see the module docstring)."""
    check_token(settings, headers)
    data = _payload(body)
    event = _header(headers, "X-Gitlab-Event")
    if event != PUSH_EVENT:
        return WebhookResult(False, f"ignored: event {event or '(none)'!r} is not a push to a branch")
    project_id, ref, branch, path = _push_target(data)
    if settings.gitlab.ignored(project_id, path):
        return WebhookResult(False, "ignored: the project is in gitlab_ignore", project_id)
    if branch is None:
        return WebhookResult(False, "ignored: the event names no default branch", project_id)
    if ref != f"refs/heads/{branch}":
        return WebhookResult(False, f"ignored: {ref} is not the default branch ({branch})", project_id)
    return enqueue_update(engine, settings, project_id)


def enqueue_update(engine: Engine, settings: "Settings", project_id: int) -> WebhookResult:
    """Enqueue ``itemsync.update`` for the item unless one is already waiting."""
    client = Client(settings, engine=engine)

    def run() -> WebhookResult:
        with transaction(engine) as conn:
            waiting = store.pending_job(conn, project_id)
            if waiting is not None and job_state(conn, waiting) in (JobState.WAITING, JobState.RUNNING):
                return WebhookResult(False, "an update of the item is already waiting", project_id, waiting, True)
            job_id = client.enqueue(UPDATE_JOB, {"project_id": project_id}, connection=conn)
            store.set_pending(conn, project_id, job_id)
        return WebhookResult(True, "push to the default branch: update enqueued", project_id, job_id)
    try:
        return retry_on_deadlock(run)
    except IntegrityError:  # a concurrent push recorded its job first: it is the one waiting
        with transaction(engine) as conn:
            waiting = store.pending_job(conn, project_id)
        return WebhookResult(False, "an update of the item is already waiting", project_id, waiting, True)
