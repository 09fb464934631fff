"""A real ``dqueue worker`` SIGKILLed mid-execution (its worker child; or its whole process group,
supervisor included): the next start succeeds with nobody touching the database, and the old
execution is FAILED with the reason, steps included; abandoned while STOPPING, it ends ABANDONED."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from sqlalchemy import Engine

from dqueue.batch import launch
from dqueue.store import processes
from tests.batch_support import WALK, status, walked
from tests.helpers import cli_env, run_cli, wait_until
from tests.workers import FAST, worker

BATCH = ["--import", "tests.batch_support"]


def _start(db_url: str, *params: str) -> subprocess.CompletedProcess[str]:
    return run_cli([*BATCH, "executions", "start", WALK, "--json", *(f"--param={p}" for p in params)], db_url)


def _started(db_url: str, *params: str) -> tuple[int, int]:
    result = _start(db_url, *params)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    return int(data["jobExecutionId"]), int(data["jobInstanceId"])


def _worker_pid(engine: Engine) -> int:
    (pid,) = [p["pid"] for p in processes.list_processes(engine) if p["kind"] == "worker"]
    return int(pid)


def _assert_failed_by_crash(engine: Engine, execution_id: int) -> None:
    old = launch.get(engine, execution_id)
    assert old is not None and old.status == "FAILED" and old.end_time is not None
    assert old.exit_message and "the worker running it died" in old.exit_message
    assert [(s.status, s.exit_code, s.end_time is not None) for s in old.steps] == [("FAILED", "FAILED", True)]


def test_sigkill_of_the_worker_child_then_the_next_start_runs(engine: Engine, db_url: str, tmp_path: Path) -> None:
    old, _ = _started(db_url, "items=3000", "sleep(double)=0.02")
    with worker(db_url, tmp_path / "worker.log", *BATCH):
        wait_until(lambda: walked(engine, old) > 0, 30, message="the walk to be under way")
        os.kill(_worker_pid(engine), signal.SIGKILL)
        nxt = wait_until(lambda: _start(db_url, "items=1").returncode == 0 and launch.listing(engine, 1)[0],
                         30, message="a start to succeed after the crash")
        _assert_failed_by_crash(engine, old)
        wait_until(lambda: status(engine, nxt.job_execution_id) == "COMPLETED", 30, message="the next run")
    assert "killed by SIGKILL" in (tmp_path / "worker.log").read_text()


def test_sigkill_of_the_whole_process_group_then_a_restarted_worker(
        engine: Engine, db_url: str, tmp_path: Path) -> None:
    old, _ = _started(db_url, "items=3000", "sleep(double)=0.02")
    log = open(tmp_path / "first.log", "ab")
    first = subprocess.Popen([sys.executable, "-m", "dqueue", *BATCH, "worker"], env=cli_env(db_url, **FAST),
                             stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_until(lambda: walked(engine, old) > 0, 30, message="the walk to be under way")
        os.killpg(first.pid, signal.SIGKILL)  # supervisor and worker at once: nobody releases the job
        first.wait(10)
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
        log.close()
    refused = _start(db_url, "items=1")
    assert refused.returncode == 1 and "already running" in refused.stdout  # its job is still locked
    with worker(db_url, tmp_path / "second.log", *BATCH):  # the service comes back: crash detection runs
        nxt = wait_until(lambda: _start(db_url, "items=1").returncode == 0 and launch.listing(engine, 1)[0],
                         30, message="a start to succeed after the restart")
        _assert_failed_by_crash(engine, old)
        wait_until(lambda: status(engine, nxt.job_execution_id) == "COMPLETED", 30, message="the next run")


def test_abandoned_while_stopping_then_the_worker_dies(engine: Engine, db_url: str, tmp_path: Path) -> None:
    mark = tmp_path / "mark"
    old, instance = _started(db_url, "items=3", "sleep(double)=60")  # one item outlasts the test
    with worker(db_url, tmp_path / "worker.log", *BATCH, DQUEUE_TEST_WALK_MARK=str(mark)):
        wait_until(mark.exists, 30, message="the first item to begin")
        asked = run_cli(["abandon", str(instance), "--wait", "0.5"], db_url)
        assert asked.returncode == 1 and "still STOPPING" in asked.stderr, asked.stdout + asked.stderr
        again = run_cli(["abandon", str(instance), "--wait", "0"], db_url)  # Spring answered 500 here
        assert again.returncode == 1 and "has not reached its next item" in again.stdout
        os.kill(_worker_pid(engine), signal.SIGKILL)
        wait_until(lambda: status(engine, old) == "ABANDONED", 30, message="the STOPPING execution to end")
        done = run_cli(["abandon", str(instance)], db_url)
        assert done.returncode == 0 and "No job executions are currently running" in done.stdout
        result = _start(db_url, "items=1")
        assert result.returncode == 0, result.stderr
    after = launch.get(engine, old)
    assert after is not None and after.end_time is not None and after.exit_code == "ABANDONED"
    assert [s.status for s in after.steps] == ["ABANDONED"]
