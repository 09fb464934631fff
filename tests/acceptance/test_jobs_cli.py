"""``dqueue jobs …`` and ``dqueue workers`` through the real CLI, on SQLite and MariaDB."""
from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from sqlalchemy import Engine

from dqueue import jobs
from dqueue.store import NewJob, processes, queue
from dqueue.store.claim import Claimer
from dqueue.store.queue import ClaimedJob
from tests.helpers import job_rows, run_cli

ERROR = "RuntimeError: the disk is full\nTraceback (most recent call last):\n  File job.py"


def _add(engine: Engine, name: str = "t.x", handler: str | None = None, **kw: Any) -> int:
    with engine.begin() as conn:
        return queue.enqueue(conn, NewJob(handler or jobs.encode_handler(name, {"path": "/tmp/f"}), **kw))


@pytest.fixture
def seeded(engine: Engine) -> tuple[dict[str, int], ClaimedJob]:
    """One job per state, plus a malformed handler; the running job is held by 'host:h pid:1'."""
    running = _add(engine, "t.run", queue="mail")
    failed = _add(engine, "t.fail", queue="mail")
    held = {j.id: j for j in Claimer(engine, "host:h pid:1").claim(2)}
    assert queue.fail(engine, held[failed], ERROR, None)
    ids = {"running": running, "failed": failed, "ready": _add(engine, "t.ready"),
           "scheduled": _add(engine, "t.later", run_at=dt.datetime(2099, 1, 1)),
           "malformed": _add(engine, handler="{oops")}
    return ids, held[running]


def _json(result: Any) -> Any:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_list_prints_a_table_and_json(db_url: str, seeded: tuple[dict[str, int], ClaimedJob]) -> None:
    ids, _ = seeded
    result = run_cli(["jobs", "list"], db_url)
    assert result.returncode == 0, result.stderr
    header, *lines = result.stdout.splitlines()
    assert header.split()[:6] == ["ID", "QUEUE", "PRI", "STATE", "ATT", "JOB"]
    assert [int(line.split()[0]) for line in lines] == sorted(ids.values(), reverse=True)
    by_id = {int(line.split()[0]): line for line in lines}
    assert "failed" in by_id[ids["failed"]] and "RuntimeError: the disk is full" in by_id[ids["failed"]]
    assert "Traceback" not in result.stdout
    assert by_id[ids["malformed"]].split()[5] == "?"
    assert "running" in by_id[ids["running"]] and "host:h pid:1" in by_id[ids["running"]]
    listed = _json(run_cli(["jobs", "list", "--state", "failed", "--json"], db_url))
    assert [(j["id"], j["state"], j["job"], j["queue"]) for j in listed] == [
        (ids["failed"], "failed", "t.fail", "mail")]
    assert listed[0]["run_at"].endswith("Z")
    assert [j["id"] for j in _json(run_cli(["jobs", "list", "--job", "t.later", "--json"], db_url))] == [
        ids["scheduled"]]


def test_show_prints_every_column_and_exits_1_when_missing(
        db_url: str, seeded: tuple[dict[str, int], ClaimedJob]) -> None:
    ids, _ = seeded
    result = run_cli(["jobs", "show", str(ids["failed"])], db_url)
    assert result.returncode == 0, result.stderr
    for expected in ("state       failed", "job         t.fail", '"path": "/tmp/f"', "File job.py",
                     "locked_by   -", "failed_at   2"):
        assert expected in result.stdout
    shown = _json(run_cli(["jobs", "show", str(ids["malformed"]), "--json"], db_url))
    assert shown["job"] is None and shown["handler"] == "{oops" and "not valid JSON" in shown["handler_error"]
    assert set(shown) >= {"priority", "attempts", "run_at", "locked_at", "created_at", "updated_at"}
    missing = run_cli(["jobs", "show", "987654"], db_url)
    assert missing.returncode == 1 and "no job with id 987654" in missing.stderr


def test_retried_failed_job_becomes_claimable(
        db_url: str, engine: Engine, seeded: tuple[dict[str, int], ClaimedJob]) -> None:
    ids, _ = seeded
    result = run_cli(["jobs", "retry", str(ids["failed"])], db_url)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"retried 1 job: {ids['failed']}"
    row = job_rows(engine)[ids["failed"]]
    assert (row["attempts"], row["failed_at"], row["last_error"]) == (0, None, ERROR)
    claimed = {j.id for j in Claimer(engine, "w").claim(10)}
    assert ids["failed"] in claimed


def test_retry_refuses_running_jobs_and_reports_missing_ones(
        db_url: str, seeded: tuple[dict[str, int], ClaimedJob]) -> None:
    ids, _ = seeded
    args = ["jobs", "retry", str(ids["scheduled"]), str(ids["running"]), str(ids["ready"]), "987654"]
    result = run_cli(args, db_url)
    assert result.returncode == 1
    assert f"retried 1 job: {ids['scheduled']}" in result.stdout
    assert f"already ready: {ids['ready']}" in result.stdout
    assert f"refused job {ids['running']}: it is running" in result.stderr
    assert "job 987654: no such job" in result.stderr
    again = run_cli([*args, "--json"], db_url)
    assert again.returncode == 1 and json.loads(again.stdout) == {
        "retried": [], "ready": [ids["scheduled"], ids["ready"]], "running": [ids["running"]],
        "missing": [987654]}


def test_retry_all_failed_of_one_queue(db_url: str, engine: Engine,
                                       seeded: tuple[dict[str, int], ClaimedJob]) -> None:
    ids, _ = seeded
    assert _json(run_cli(["jobs", "retry", "--all-failed", "--queue", "other", "--json"], db_url))[
        "retried"] == []
    out = _json(run_cli(["jobs", "retry", "--all-failed", "--queue", "mail", "--json"], db_url))
    assert out["retried"] == [ids["failed"]]
    assert ids["failed"] in {j.id for j in Claimer(engine, "w").claim(10)}


@pytest.mark.parametrize("args", [[], ["1", "--all-failed"], ["1", "--queue", "mail"]])
def test_retry_usage_errors(db_url: str, engine: Engine, args: list[str]) -> None:
    result = run_cli(["jobs", "retry", *args], db_url)
    assert result.returncode == 2 and "Usage" in result.stderr


def test_delete_refuses_running_jobs_unless_forced(
        db_url: str, engine: Engine, seeded: tuple[dict[str, int], ClaimedJob]) -> None:
    ids, held = seeded
    result = run_cli(["jobs", "delete", str(ids["ready"]), str(ids["running"])], db_url)
    assert result.returncode == 1
    assert result.stdout.strip() == f"deleted 1 job: {ids['ready']}"
    assert "use --force" in result.stderr and "not record the result" in result.stderr
    assert ids["running"] in job_rows(engine)
    forced = _json(run_cli(["jobs", "delete", str(ids["running"]), "--force", "--json"], db_url))
    assert forced == {"deleted": [ids["running"]], "running": [], "missing": []}
    assert not queue.finish(engine, held)
    missing = run_cli(["jobs", "delete", str(ids["running"])], db_url)
    assert missing.returncode == 1 and "no such job" in missing.stderr


def test_stats_counts_by_queue_and_state(db_url: str, seeded: tuple[dict[str, int], ClaimedJob]) -> None:
    result = run_cli(["jobs", "stats"], db_url)
    assert result.returncode == 0, result.stderr
    table = {line.split()[0]: line.split()[1:] for line in result.stdout.splitlines()}
    assert table["QUEUE"] == ["READY", "SCHEDULED", "RUNNING", "FAILED", "TOTAL", "OLDEST", "READY"]
    assert table["mail"] == ["0", "0", "1", "1", "2", "-"]
    assert table["default"][:5] == ["2", "1", "0", "0", "3"] and table["default"][5].endswith("s")
    stats = _json(run_cli(["jobs", "stats", "--json"], db_url))
    assert stats["total"] | {"oldest_ready_age": None} == {
        "ready": 2, "scheduled": 1, "running": 1, "failed": 1, "total": 5, "oldest_ready_age": None}
    assert 0 <= stats["total"]["oldest_ready_age"] < 60
    assert stats["queues"]["mail"]["oldest_ready_age"] is None


def test_workers_lists_the_registry(db_url: str, engine: Engine) -> None:
    empty = run_cli(["workers"], db_url)
    assert empty.returncode == 0 and "no worker processes" in empty.stdout
    reg = processes.register(engine, "worker", "host-a", 4242, ["mail"])
    _add(engine)
    Claimer(engine, reg.name).claim(1)
    result = run_cli(["workers"], db_url)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[1].split()[1:5] == ["worker", "host-a", "4242", "mail"]
    (worker,) = _json(run_cli(["workers", "--json"], db_url))
    assert (worker["hostname"], worker["pid"], worker["running_jobs"]) == ("host-a", 4242, 1)
    assert worker["started_at"].endswith("Z") and 0 <= worker["heartbeat_age"] < 60


def test_help_defines_the_states(db_url: str) -> None:
    for command in (["jobs", "--help"], ["jobs", "list", "--help"], ["jobs", "stats", "--help"]):
        result = run_cli(command, db_url)
        assert result.returncode == 0
        assert "failed_at is set" in result.stdout and "run_at > now" in result.stdout
