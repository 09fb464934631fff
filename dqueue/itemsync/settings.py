"""The ``[gitlab]`` settings section (``settings.gitlab``): which GitLab, which group, how hard to push.

    [gitlab]
    base_url = "https://gitlab.example.org"   # the instance; the client adds /api/v4
    group = "item-bank/items"                 # the group's full path, or its numeric id
    token = "glpat-…"                         # or DQUEUE_GITLAB_TOKEN; masked everywhere
    webhook_url = "https://dqueue.example.org/webHook"  # the hook every project must have
    webhook_secret = "…"                      # sent by GitLab as X-Gitlab-Token; masked everywhere
    per_page = 100                            # GitLab's maximum
    concurrency = 40                          # requests in flight at most
    request_rate = 600.0                      # requests per second at most (0: unpaced)
    ignore = ["12", "item-bank/items/sandbox"]  # project ids or full paths the sync skips

Every field can also be given flat (``gitlab_token = …``) or as ``DQUEUE_GITLAB_<FIELD>``.  An empty
base_url means GitLab is not configured: the sync refuses with ``missing()``'s names.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..config import COUNT, POSITIVE, SECRET, ZERO_OK, section
from ..config_sections import HttpSection
from ..config_values import Limit

PER_PAGE = Limit(1, inclusive=True, high=100)  # GitLab answers at most 100 per page whatever is asked
CONCURRENCY = Limit(1, inclusive=True, high=1000)
RATE = Limit(0, inclusive=True, high=100_000)


@section("gitlab")
@dataclass(frozen=True)
class GitLabSettings(HttpSection):
    base_url: str = field(default="", metadata={"url": True})
    group: str = ""  # full path (item-bank/items) or numeric id
    token: str = field(default="", repr=False, metadata=SECRET)
    webhook_url: str = field(default="", metadata={"url": True})
    webhook_secret: str = field(default="", repr=False, metadata=SECRET)
    per_page: int = field(default=100, metadata={"limit": PER_PAGE})
    concurrency: int = field(default=40, metadata={"limit": CONCURRENCY})  # requests in flight at most
    request_rate: float = field(default=600.0, metadata={"limit": RATE})  # requests/s, this client; 0: unpaced
    delete_pass: bool = False  # drop stored items whose project is gone (404)
    ignore: tuple[str, ...] = ()  # project ids or full paths
    connect_timeout: float = field(default=10.0, metadata={"limit": POSITIVE})
    read_timeout: float = field(default=60.0, metadata={"limit": POSITIVE})
    attempts: int = field(default=5, metadata={"limit": COUNT})  # tries per request (5xx, timeouts)
    backoff: float = field(default=1.0, metadata={"limit": ZERO_OK})  # first wait between them
    max_wait: float = field(default=300.0, metadata={"limit": ZERO_OK})  # total 429 wait per request
    lock_lease: float = field(default=60.0, metadata={"limit": POSITIVE})  # per-item lock lease, s

    def missing(self) -> list[str]:
        """The settings a sync needs that are not set, as ``gitlab_<field>`` names."""
        needed = ("base_url", "group", "token", "webhook_url", "webhook_secret")
        return self.unset("gitlab", needed)

    def ignored(self, project_id: int, path: str) -> bool:
        """Whether the ignore list names this project, by id or by full path."""
        return str(project_id) in self.ignore or path in self.ignore
