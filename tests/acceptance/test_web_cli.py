"""The real ``dqueue web`` in a subprocess, with a real ``dqueue worker`` and the fake GitLab: a sync
started over HTTP completes, a running one is abandoned over HTTP, a GitLab push reaches the item
through /webHook and the worker; and the command's own behaviour (SIGTERM and SIGINT exit 0, a
taken port, a database that is missing or not initialised)."""
from __future__ import annotations

import signal
import socket
from pathlib import Path
from typing import Any

from dqueue.store import make_engine
from dqueue.testing.gitlab import FakeGitLab
from tests.helpers import run_cli, scalar, wait_until
from tests.itemsync_support import genv
from tests.web_support import Api, body, web_process
from tests.workers import worker


def init(db_url: str) -> None:
    result = run_cli(["db", "init"], db_url)
    assert result.returncode == 0, result.stderr


def execution(api: Api, execution_id: int) -> dict[str, Any]:
    return body(api.call("GET", f"/executions/{execution_id}"))


def ended(api: Api, execution_id: int, status: str, timeout: float = 60) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        shown = execution(api, execution_id)
        return shown if shown["endTime"] else None
    shown = wait_until(done, timeout=timeout, interval=0.2, message=f"execution {execution_id} to end")
    assert shown["status"] == status, shown
    return shown


def test_a_sync_started_over_http_completes_and_pushes_reach_the_item_through_the_webhook(
        db_url: str, gitlab: FakeGitLab, tmp_path: Path) -> None:
    init(db_url)
    with web_process(db_url, tmp_path / "web.log", **genv(gitlab)) as (_, api):
        hook_url = api.url + "/webHook"  # what the sync registers on every project
        with worker(db_url, tmp_path / "worker.log", **genv(gitlab, DQUEUE_GITLAB_WEBHOOK_URL=hook_url)):
            started = api.call("POST", "/sync")
            assert started.status_code == 200, started.text
            execution_id = body(started)["jobExecutionId"]
            shown = ended(api, execution_id, "COMPLETED")
            assert shown["exitMessage"].startswith(
                "Total item bank ids: 10, number of items requiring project webhook: 10")
            assert all(h.url == hook_url for p in gitlab.project_ids() for h in gitlab.hooks(p))

            project_id = gitlab.project_ids()[3]
            head = gitlab.push(project_id)  # GitLab POSTs the event to the hook: dqueue web
            assert gitlab.deliveries[-1] == (project_id, hook_url, 200)
            engine = make_engine(db_url, create=False)
            try:
                wait_until(lambda: scalar(engine, "SELECT head_commit FROM items WHERE project_id = :p",
                                          p=project_id) == head, timeout=30, message="the pushed head stored")
            finally:
                engine.dispose()
    log = (tmp_path / "web.log").read_text()
    assert "web request: POST /webHook 200" in log and "web request: POST /sync 200" in log
    assert "dqueue web stopped (SIGTERM)" in log


def test_a_running_sync_is_abandoned_over_http_and_the_next_one_starts(
        db_url: str, gitlab: FakeGitLab, tmp_path: Path) -> None:
    init(db_url)
    gitlab.add_projects(190)
    gitlab.latency = 0.05  # 200 projects, 2 requests in flight: the sync runs for several seconds
    env = genv(gitlab, DQUEUE_GITLAB_CONCURRENCY="2")
    with web_process(db_url, tmp_path / "web.log", **env) as (_, api), \
            worker(db_url, tmp_path / "worker.log", **env):
        started = body(api.call("POST", "/sync"))
        execution_id, instance_id = started["jobExecutionId"], started["jobInstanceId"]
        wait_until(lambda: execution(api, execution_id)["status"] == "STARTED", timeout=30,
                   message="the sync to start")
        assert api.call("POST", "/sync").status_code == 409

        answer = api.call("PUT", f"/abandon/{instance_id}")
        assert answer.status_code in (200, 202), answer.text
        assert body(answer)["jobExecutionId"] == execution_id
        assert body(answer)["status"] in ("ABANDONED", "STOPPING")
        shown = ended(api, execution_id, "ABANDONED")
        assert shown["exitCode"] == "ABANDONED"
        assert body(api.call("PUT", f"/abandon/{instance_id}"))["status"] == "NO JOB EXECUTIONS"

        gitlab.latency = 0.0
        again = api.call("POST", "/sync")
        assert again.status_code == 200, again.text
        ended(api, body(again)["jobExecutionId"], "COMPLETED")


def test_sigint_stops_it_with_status_0(db_url: str, tmp_path: Path) -> None:
    init(db_url)
    log = tmp_path / "web.log"
    with web_process(db_url, log) as (proc, api):
        assert body(api.call("GET", "/health", token=None)) == {"status": "UP", "database": "UP"}
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=20) == 0
    assert "dqueue web stopped (SIGINT)" in log.read_text()


def test_a_taken_port_is_a_one_line_error(sqlite_url: str, tmp_path: Path) -> None:
    init(sqlite_url)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli(["web", "--port", str(port)], sqlite_url, DQUEUE_WEB_TOKENS="a-token-0123456789abc")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        f"Error: cannot listen on 127.0.0.1:{port}: Address already in use")
    assert "Traceback" not in result.stderr


def test_a_missing_or_uninitialised_database_is_a_one_line_error(sqlite_url: str, mariadb_url: str) -> None:
    missing = run_cli(["web", "--port", "0"], sqlite_url)
    assert missing.returncode == 78
    assert missing.stderr.strip().splitlines()[-1].startswith("Error: no database at ")
    bare = run_cli(["web", "--port", "0"], mariadb_url)  # the database exists, without the schema
    assert bare.returncode == 78
    assert "run 'dqueue db init'" in bare.stderr.strip().splitlines()[-1]
    assert "Traceback" not in missing.stderr + bare.stderr


def test_without_tokens_it_warns_at_start_and_refuses_calls(sqlite_url: str, tmp_path: Path) -> None:
    init(sqlite_url)
    log = tmp_path / "web.log"
    with web_process(sqlite_url, log, DQUEUE_WEB_TOKENS="") as (_, api):
        assert api.call("POST", "/sync").status_code == 401
    assert "no API tokens configured" in log.read_text()
