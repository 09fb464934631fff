"""Helpers for the item sync tests: settings that point at the fake GitLab, and a StepContext
stand-in for running the sync's tasklet in-process (the real one needs a batch execution row)."""
from __future__ import annotations

import datetime as dt
import logging
import threading
from typing import Any

from sqlalchemy import Engine

from dqueue import config
from dqueue.batch.kinds import Result
from dqueue.testing.gitlab import FakeGitLab
from tests.conftest import GITLAB_TOKEN
from tests.helpers import rows

HOOK_URL = "https://dqueue.example.org/webHook"
SECRET = "whsec-fake-webhook-secret-123"


def genv(gitlab: FakeGitLab, **extra: str) -> dict[str, str]:
    """DQUEUE_* variables for a worker, CLI or settings object that syncs against ``gitlab``."""
    env = {"DQUEUE_GITLAB_BASE_URL": gitlab.url, "DQUEUE_GITLAB_GROUP": gitlab.group_path,
           "DQUEUE_GITLAB_TOKEN": GITLAB_TOKEN, "DQUEUE_GITLAB_WEBHOOK_URL": HOOK_URL,
           "DQUEUE_GITLAB_WEBHOOK_SECRET": SECRET, "DQUEUE_GITLAB_CONCURRENCY": "8",
           "DQUEUE_GITLAB_REQUEST_RATE": "0", "DQUEUE_GITLAB_CONNECT_TIMEOUT": "2",
           "DQUEUE_GITLAB_READ_TIMEOUT": "10", "DQUEUE_GITLAB_ATTEMPTS": "3", "DQUEUE_GITLAB_BACKOFF": "0.01",
           "DQUEUE_GITLAB_MAX_WAIT": "30"}
    env.update(extra)
    return env


def gsettings(db_url: str, gitlab: FakeGitLab, **extra: str) -> config.Settings:
    return config.load(environ=genv(gitlab, **extra), database_url=db_url)


class FakeStepContext:
    """What ``sync.synchronize`` uses of a StepContext: progress recorded, a stop flag to set."""

    def __init__(self, settings: config.Settings, engine: Engine, stop_after: int | None = None) -> None:
        self.execution_id, self.instance_id, self.job_name = 1, 1, "itemSynchronizationJob"
        self.params: dict[str, Any] = {}
        self.settings, self.engine = settings, engine
        self.log = logging.getLogger("tests.itemsync")
        self.reports: list[dict[str, Any]] = []
        self.stop = threading.Event()
        self.stop_after = stop_after
        self.lock = threading.Lock()

    def progress(self, done: int, total: int | None = None, **counts: int) -> None:
        with self.lock:
            self.reports.append({"done": done, "total": total, **counts})
            if self.stop_after is not None and done >= self.stop_after:
                self.stop.set()

    def stop_requested(self) -> bool:
        return self.stop.is_set()


def run_sync(ctx: FakeStepContext) -> Result:
    from dqueue.itemsync.sync import synchronize
    return synchronize(ctx)  # type: ignore[arg-type]


def items(engine: Engine) -> dict[int, tuple[str | None, dt.datetime]]:
    """Every stored item: project id -> (head commit, synced_at as stored)."""
    return {int(r.project_id): (r.head_commit, r.synced_at)
            for r in rows(engine, "SELECT project_id, head_commit, synced_at FROM items")}
