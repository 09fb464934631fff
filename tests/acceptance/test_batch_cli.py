"""``dqueue executions list|show|start`` and ``dqueue abandon`` through the real CLI, with a real
worker running the executions, on SQLite and MariaDB."""
from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import Engine

from tests.batch_support import LABEL, SECRET, WALK, status, walked
from tests.helpers import run_cli, wait_until
from tests.workers import worker

BATCH = ["--import", "tests.batch_support"]


def _start(db_url: str, *params: str, **env: str) -> dict[str, object]:
    result = run_cli([*BATCH, "executions", "start", WALK, "--json", *(f"--param={p}" for p in params)],
                     db_url, None, 60, **env)
    assert result.returncode == 0, result.stdout + result.stderr
    return dict(json.loads(result.stdout))


def test_start_list_show_and_refusal(engine: Engine, db_url: str, tmp_path: Path) -> None:
    first = _start(db_url, "items=2", "sleep(double)=0.01")
    assert first["status"] == "STARTING" and first["params"] == {"items": "2", "sleep": 0.01}
    refused = run_cli([*BATCH, "executions", "start", WALK], db_url)
    assert refused.returncode == 1 and "A job execution for this job is already running" in refused.stderr
    assert f"Job execution id: {first['jobExecutionId']}" in refused.stderr
    assert "Traceback" not in refused.stderr
    as_json = run_cli([*BATCH, "executions", "start", WALK, "--json"], db_url)
    assert as_json.returncode == 1 and json.loads(as_json.stdout)["error"] == "A job is already running"
    log = tmp_path / "worker.log"
    with worker(db_url, log, *BATCH):
        wait_until(lambda: status(engine, int(str(first["jobExecutionId"]))) == "COMPLETED", 30,
                   message="the execution to complete")
    text = log.read_text()
    assert f"{LABEL} starting.  Job execution id: {first['jobExecutionId']}" in text
    assert (f"{LABEL} complete.  Job execution id: {first['jobExecutionId']}, exit status code: COMPLETED, "
            "exit message: Total items: 2, walked: 2") in text
    listed = run_cli(["executions", "list"], db_url)
    assert listed.returncode == 0 and "COMPLETED" in listed.stdout and WALK in listed.stdout
    shown = run_cli(["executions", "show", str(first["jobExecutionId"])], db_url)
    assert shown.returncode == 0, shown.stderr
    assert "COMPLETED" in shown.stdout and "testWalkStep" in shown.stdout and "Total items: 2" in shown.stdout
    assert "progress: 2 of 2 done" in shown.stdout
    data = json.loads(run_cli(["executions", "show", str(first["jobExecutionId"]), "--json"], db_url).stdout)
    assert data["status"] == "COMPLETED" and data["steps"][0]["readCount"] == 2 and data["progress"]["done"] == 2
    assert [e["jobExecutionId"] for e in json.loads(run_cli(["executions", "list", "--json"], db_url).stdout)] == [
        first["jobExecutionId"]]


def test_a_failure_shows_its_masked_traceback(engine: Engine, db_url: str, tmp_path: Path) -> None:
    env = {"DQUEUE_ZENODO_TOKEN": SECRET}
    started = _start(db_url, "items=1", "raise=1", **env)
    log = tmp_path / "worker.log"
    with worker(db_url, log, *BATCH, **env):
        wait_until(lambda: status(engine, int(str(started["jobExecutionId"]))) == "FAILED", 30,
                   message="the execution to fail")
    shown = run_cli(["executions", "show", str(started["jobExecutionId"])], db_url, None, 60, **env)
    assert "exit code: FAILED" in shown.stdout and "Traceback (most recent call last)" in shown.stdout
    assert "the server refused hidden" in shown.stdout
    assert SECRET not in shown.stdout and SECRET not in log.read_text()


def test_bad_input_gets_one_line(engine: Engine, db_url: str) -> None:
    for args, code, words in [
            (["executions", "show", "99"], 1, "no job execution 99"),
            (["abandon", "99"], 1, "no job instance 99"),
            ([*BATCH, "executions", "start", "nope"], 1, "no batch job 'nope'"),
            ([*BATCH, "executions", "start", WALK, "--param", "oops"], 2, "expected key=value"),
            ([*BATCH, "executions", "start", WALK, "--param", "n(long)=x"], 2, "is not a long"),
            (["executions", "show", "0"], 2, "0"),
            (["abandon", "1", "--wait", "-1"], 2, "--wait")]:
        result = run_cli(args, db_url)
        assert result.returncode == code and words in result.stderr, (args, result.stderr)
        assert "Traceback" not in result.stderr
    assert "Abandon the running execution" in run_cli(["abandon", "--help"], db_url).stdout


def test_abandon_a_running_execution_with_a_real_worker(engine: Engine, db_url: str, tmp_path: Path) -> None:
    started = _start(db_url, "items=2000", "sleep(double)=0.02")
    n, instance = int(str(started["jobExecutionId"])), str(started["jobInstanceId"])
    with worker(db_url, tmp_path / "worker.log", *BATCH):
        wait_until(lambda: walked(engine, n) > 0, 30, message="items walked")
        result = run_cli(["abandon", instance, "--wait", "20", "--json"], db_url)
        assert result.returncode == 0, result.stdout + result.stderr
        assert json.loads(result.stdout) == {
            "jobExecutionId": n, "jobInstanceId": int(instance), "name": WALK, "status": "ABANDONED",
            "message": f"Job Execution {n} for Job {WALK} abandoned successfully"}
        again = run_cli(["abandon", instance], db_url)
        assert again.returncode == 0 and "No job executions are currently running" in again.stdout
        nxt = _start(db_url, "items=1")
        wait_until(lambda: status(engine, int(str(nxt["jobExecutionId"]))) == "COMPLETED", 30,
                   message="the next execution to complete")
    shown = json.loads(run_cli(["executions", "show", str(n), "--json"], db_url).stdout)
    assert shown["status"] == "ABANDONED" and shown["endTime"] and shown["exitCode"] == "ABANDONED"
    assert [s["status"] for s in shown["steps"]] == ["ABANDONED"] and 0 < shown["steps"][0]["readCount"] < 2000
