"""The item-sync part of ``dqueue demo``: a fake GitLab item bank (shipped in ``dqueue.testing``, in a
process of its own: the workers fork and must not inherit its socket and threads), the full sync
started as operators start it (``launch.start``, the singleton guard), and its execution record."""
from __future__ import annotations

import click

from ..batch import launch
from ..config import Settings
from ..itemsync.sync import JOB_NAME
from .common import AppContext
from .demo_repository import start_program

TOKEN = "demo-gitlab-token"
GROUP = "item-bank/items"
PROJECTS = 120


class DemoGitLab:
    """The fake GitLab (120 projects, 5 ms per request, 10 already hooked) and the settings to sync it."""

    def __init__(self) -> None:
        self.proc, self.url = start_program(["dqueue.testing.gitlab", "--port", "0", "--projects", str(PROJECTS),
                                        "--token", TOKEN, "--group", GROUP, "--latency", "0.005", "--hooked", "10",
                                        "--hook-url", "http://127.0.0.1:8081/webHook"],
                                       "the fake GitLab", "--no-itemsync")

    def settings(self, settings: Settings) -> Settings:
        return settings.replace(gitlab_base_url=self.url, gitlab_group=GROUP, gitlab_token=TOKEN,
                                gitlab_webhook_url="http://127.0.0.1:8081/webHook",
                                gitlab_webhook_secret="demo-webhook-secret", gitlab_concurrency=8)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def start_sync(app: AppContext, settings: Settings) -> launch.Execution:
    """Start itemSynchronizationJob (a second start now would be refused: it is running)."""
    started = launch.start(app.engine, settings, JOB_NAME)
    click.echo(f"fake GitLab item bank: {PROJECTS} projects in {GROUP}; {JOB_NAME} started: "
               f"job execution id {started.job_execution_id}, instance {started.job_instance_id}, {started.status}")
    return started


def show_execution(app: AppContext, execution_id: int) -> None:
    found = launch.get(app.engine, execution_id)
    if found is None:
        return
    click.echo(f"batch_job_execution {execution_id}: {found.status}, exit message: {found.exit_message}")
    click.echo(f"  (dqueue executions show {execution_id}; 'dqueue sync --wait' runs it again)")
    app.engine.dispose()
