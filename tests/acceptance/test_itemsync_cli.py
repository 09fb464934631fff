"""``dqueue sync`` from the shell with real worker processes and the fake GitLab, on SQLite and
MariaDB: ``--wait`` to COMPLETED with the runbook's log lines, a second start refused with the
running ids, a worker SIGKILLed mid-sync and the next ``sync --wait`` succeeding with nobody
touching the database, ``--item``, and the error when [gitlab] is not configured."""
from __future__ import annotations

import json
import os
import re
import signal
from pathlib import Path

from sqlalchemy import Engine

from dqueue.store import processes
from dqueue.testing.gitlab import FakeGitLab
from tests.helpers import rows, run_cli, scalar, wait_until
from tests.itemsync_support import HOOK_URL, genv, items
from tests.workers import worker

SUMMARY = "Total item bank ids: {n}, number of items requiring project webhook: {m}, number of items updated: {u}, " \
          "number of items deleted: 0"


def _executions(engine: Engine) -> list[tuple[int, str, str | None]]:
    return [(int(r[0]), r[1], r[2]) for r in rows(
        engine, "SELECT job_execution_id, status, exit_message FROM batch_job_execution ORDER BY job_execution_id")]


def test_sync_wait_completes_with_the_runbooks_log_lines(
        engine: Engine, db_url: str, gitlab: FakeGitLab, tmp_path: Path) -> None:
    gitlab.add_projects(30)  # 40 projects, 2 in flight, 0.15 s a request: about 6 s, so progress is logged
    gitlab.latency = 0.15
    env = genv(gitlab, DQUEUE_GITLAB_CONCURRENCY="2")
    log = tmp_path / "worker.log"
    with worker(db_url, log, **env):
        done = run_cli(["sync", "--wait"], db_url, timeout=120, **env)
    assert done.returncode == 0, done.stdout + done.stderr
    summary = SUMMARY.format(n=40, m=40, u=40)
    assert re.search(rf"Job execution 1 COMPLETED: {summary}$", done.stdout.strip())
    assert re.search(r"\d+/40 items, [\d.]+/s, ETA", done.stderr)  # the progress bar, one line per update
    text = log.read_text()
    for line in ("Item Synchronization Process starting.  Job execution id: 1",
                 "getting item bank ids from source control",
                 "retrieved 40 item bank ids from source control in ",
                 "Item Synchronization Process complete.  Job execution id: 1, exit status code: COMPLETED, "
                 f"exit message: {summary}"):
        assert line in text, line
    assert re.search(r"processed \d+ (of 40 )?item bank ids.*, [\d.]+/s, ETA ", text)
    assert _executions(engine) == [(1, "COMPLETED", summary)]
    assert len(items(engine)) == 40 and all(h[0].url == HOOK_URL for h in map(gitlab.hooks, gitlab.project_ids()))


def test_a_second_start_is_refused_with_the_running_ids(engine: Engine, db_url: str, gitlab: FakeGitLab) -> None:
    env = genv(gitlab)
    first = run_cli(["sync", "--json"], db_url, **env)  # no worker: it stays STARTING
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout) == {"jobExecutionId": 1, "name": "itemSynchronizationJob", "status": "STARTING"}
    second = run_cli(["sync"], db_url, **env)
    assert second.returncode == 1
    assert ("A job execution for this job is already running: JobInstance: id=1, version=0, "
            "Job=[itemSynchronizationJob].  Job execution id: 1") in second.stderr
    assert "dqueue abandon 1" in second.stderr and "Traceback" not in second.stderr
    as_json = run_cli(["sync", "--json"], db_url, **env)
    assert as_json.returncode == 1
    answer = json.loads(as_json.stdout)
    assert (answer["error"], answer["jobExecutionId"], answer["jobInstanceId"]) == ("A job is already running", 1, 1)
    assert [e[:2] for e in _executions(engine)] == [(1, "STARTING")]


def test_a_worker_killed_mid_sync_then_sync_wait_succeeds_with_no_manual_step(
        engine: Engine, db_url: str, gitlab: FakeGitLab, tmp_path: Path) -> None:
    gitlab.add_projects(50)  # 60 projects, 2 in flight, 0.1 s a request: several seconds
    gitlab.latency = 0.1
    env = genv(gitlab, DQUEUE_GITLAB_CONCURRENCY="2", DQUEUE_GITLAB_LOCK_LEASE="3")
    log = tmp_path / "worker.log"
    with worker(db_url, log, **env):
        assert run_cli(["sync"], db_url, **env).returncode == 0
        wait_until(lambda: scalar(engine, "SELECT COUNT(*) FROM items") >= 5, 30, message="the sync to be under way")
        (pid,) = [p["pid"] for p in processes.list_processes(engine) if p["kind"] == "worker"]
        os.kill(pid, signal.SIGKILL)
        done = run_cli(["sync", "--wait"], db_url, timeout=180, **env)
    assert done.returncode == 0, done.stdout + done.stderr
    executions = _executions(engine)
    assert executions[0][1] == "FAILED" and executions[0][2]  # the killed one, with the reason
    assert executions[-1][1] == "COMPLETED"
    assert len(items(engine)) == 60
    assert {pid: head for pid, (head, _) in items(engine).items()} == {p: gitlab.head(p) for p in gitlab.project_ids()}
    assert "killed by SIGKILL" in log.read_text()


def test_sync_item_now(engine: Engine, db_url: str, gitlab: FakeGitLab) -> None:
    env = genv(gitlab)
    pid = gitlab.project_ids()[0]
    first = run_cli(["sync", "--item", str(pid)], db_url, **env)
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith(f"Synced project {pid}: webhook added, head (none) -> ")
    again = run_cli(["sync", "--item", str(pid), "--json"], db_url, **env)
    answer = json.loads(again.stdout)
    assert (answer["updated"], answer["hook_added"], answer["message"]) == (
        False, False, f"Synced project {pid}: unchanged")
    assert list(items(engine)) == [pid]


def test_without_gitlab_settings_sync_names_what_is_missing(engine: Engine, db_url: str) -> None:
    result = run_cli(["sync"], db_url)
    assert result.returncode == 1
    assert ("GitLab is not configured: gitlab_base_url, gitlab_group, gitlab_token, gitlab_webhook_url, "
            "gitlab_webhook_secret not set") in result.stderr
    assert "Traceback" not in result.stderr
    assert _executions(engine) == []
