"""Worker behaviour through the real CLI: burst, bad handlers, retries, timeouts, direct edits."""
from __future__ import annotations

import datetime as dt
import json
import signal
from pathlib import Path

from sqlalchemy import Engine

from dqueue import client
from dqueue.store.schema import delayed_jobs
from tests import sample_jobs  # noqa: F401  (registers the t.* jobs for Client.enqueue)
from tests.helpers import execute, job_rows, scalar, wait_until
from tests.workers import burst, lines, worker


def _enqueue(engine: Engine, name: str, args: dict, **kw: object) -> int:
    return client.Client(engine=engine).enqueue(name, args, **kw)  # type: ignore[arg-type]


def test_burst_runs_what_is_runnable_and_leaves_future_jobs(engine: Engine, db_url: str,
                                                            tmp_path: Path) -> None:
    out = tmp_path / "out"
    specs = [client.JobSpec("t.record", {"path": str(out), "token": str(i)}) for i in range(30)]
    client.Client(engine=engine).enqueue_many(specs)
    future = _enqueue(engine, "t.record", {"path": str(out), "token": "future"},
                      run_at=dt.datetime.utcnow() + dt.timedelta(hours=1))
    result = burst(db_url, "-n", "2")
    assert result.returncode == 0, result.stderr[-3000:]
    tokens = sorted(int(line.split()[0]) for line in lines(out))
    assert tokens == list(range(30))
    assert list(job_rows(engine)) == [future]


def test_bad_handlers_fail_clearly_and_nothing_else_is_affected(engine: Engine, db_url: str,
                                                                tmp_path: Path) -> None:
    out = tmp_path / "out"
    bad = {"not json at all": "not valid JSON",
           "--- !ruby/object:Delayed::PerformableMethod\nmethod_name: :x\n": "not valid JSON",
           '{"job": "no.such.job", "args": {}}': "unknown job 'no.such.job'",
           '{"job": "t.record", "args": [1, 2]}': "args must be a JSON object",
           '{"job": "t.record", "args": {"nope": 1}}': "args do not fit t.record"}
    ids = {}
    with engine.begin() as conn:
        for handler in bad:
            ids[handler] = conn.execute(delayed_jobs.insert().values(
                handler=handler, run_at=dt.datetime.utcnow(), created_at=dt.datetime.utcnow(),
                updated_at=dt.datetime.utcnow())).inserted_primary_key[0]
    good = _enqueue(engine, "t.record", {"path": str(out), "token": "good"})
    result = burst(db_url)
    assert result.returncode == 0, result.stderr[-3000:]
    assert [line.split()[0] for line in lines(out)] == ["good"]
    table = job_rows(engine)
    assert good not in table
    for handler, expected in bad.items():
        row = table[ids[handler]]
        assert row["failed_at"] is not None and row["attempts"] == 1
        assert "HandlerError" in row["last_error"] and expected in row["last_error"], row["last_error"]
    assert "job.failed_permanently" in result.stderr


def test_failing_job_backs_off_then_fails_for_good_with_traceback(engine: Engine, db_url: str,
                                                                  tmp_path: Path) -> None:
    out = tmp_path / "out"
    job_id = _enqueue(engine, "t.fail", {"path": str(out)})
    with worker(db_url, tmp_path / "log"):
        wait_until(lambda: job_rows(engine)[job_id]["failed_at"], 30, message="the job to fail")
    row = job_rows(engine)[job_id]
    assert row["attempts"] == 3 and lines(out) == ["try"] * 3
    assert "Traceback" in row["last_error"] and "RuntimeError: this job always fails" in row["last_error"]
    assert row["locked_at"] is None and row["locked_by"] is None


def test_permanent_error_is_not_retried(engine: Engine, db_url: str, tmp_path: Path) -> None:
    out = tmp_path / "out"
    job_id = _enqueue(engine, "t.permanent", {"path": str(out)})
    assert burst(db_url).returncode == 0
    row = job_rows(engine)[job_id]
    assert row["failed_at"] is not None and row["attempts"] == 1 and lines(out) == ["try"]
    assert "PermanentError: bad input" in row["last_error"]


def test_job_over_max_run_time_is_stopped_and_counted(engine: Engine, db_url: str, tmp_path: Path) -> None:
    out, after = tmp_path / "out", tmp_path / "after"
    hang = _enqueue(engine, "t.hang", {"path": str(out)})
    swallow = _enqueue(engine, "t.catch_all", {"path": str(out)})
    with worker(db_url, tmp_path / "log"):
        wait_until(lambda: all(job_rows(engine)[i]["failed_at"] for i in (hang, swallow)), 30,
                   message="both jobs to time out")
        # The worker is still healthy: it runs the next job.
        _enqueue(engine, "t.record", {"path": str(after), "token": "next"})
        wait_until(lambda: lines(after), 10, message="the next job")
    rows = job_rows(engine)
    assert rows[hang]["attempts"] == 2 and lines(out).count("start") == 2
    assert "JobTimeout" in rows[hang]["last_error"]
    assert "JobTimeout" in rows[swallow]["last_error"] and "swallowed" not in lines(out)


def test_job_that_ignores_interruption_is_ended_with_its_process(engine: Engine, db_url: str,
                                                                 tmp_path: Path) -> None:
    out, log = tmp_path / "out", tmp_path / "log"
    job_id = _enqueue(engine, "t.stubborn", {"path": str(out)})
    with worker(db_url, log):
        wait_until(lambda: job_rows(engine)[job_id]["failed_at"], 30, message="the stubborn job to fail")
        wait_until(lambda: "supervisor.spawned slot=0" in log.read_text().split("job.stuck")[-1], 10,
                   message="a replacement worker")
    assert "did not stop when interrupted" in job_rows(engine)[job_id]["last_error"]
    assert "swallowed" in lines(out)  # it really did ignore the interruption


def test_job_that_kills_its_worker_ends_failed_after_max_attempts(engine: Engine, db_url: str,
                                                                   tmp_path: Path) -> None:
    out, log = tmp_path / "out", tmp_path / "log"
    job_id = _enqueue(engine, "t.suicide", {"path": str(out)})
    with worker(db_url, log):
        wait_until(lambda: job_rows(engine)[job_id]["failed_at"], 30, message="the job to fail")
    row = job_rows(engine)[job_id]
    assert len(lines(out)) == 2 and row["attempts"] == 3
    assert "gave up" in row["last_error"]
    assert log.read_text().count("killed by SIGKILL") == 2


def test_reschedule_does_not_use_an_attempt(engine: Engine, db_url: str, tmp_path: Path) -> None:
    out = tmp_path / "out"
    job_id = _enqueue(engine, "t.later", {"path": str(out), "seconds": 3600})
    assert burst(db_url).returncode == 0
    row = job_rows(engine)[job_id]
    assert row["attempts"] == 0 and row["failed_at"] is None
    assert row["run_at"] > dt.datetime.utcnow() + dt.timedelta(minutes=50)
    execute(engine, "UPDATE delayed_jobs SET run_at = created_at WHERE id = :i", i=job_id)
    assert burst(db_url).returncode == 0
    assert lines(out) == ["ran", "ran"] and job_id not in job_rows(engine)


def test_direct_table_edits_are_honoured(engine: Engine, db_url: str, tmp_path: Path) -> None:
    out = tmp_path / "out"
    later = dt.datetime.utcnow() + dt.timedelta(hours=1)

    def job(token: str, **kw: object) -> int:
        return _enqueue(engine, "t.record", {"path": str(out), "token": token}, run_at=later, **kw)
    failed, low, high, elsewhere, cancelled = (job(t) for t in ("failed", "low", "high", "moved", "cancel"))
    execute(engine, "UPDATE delayed_jobs SET failed_at = run_at, attempts = 25 WHERE id = :i", i=failed)
    execute(engine, "UPDATE delayed_jobs SET queue = 'elsewhere' WHERE id = :i", i=elsewhere)
    with worker(db_url, tmp_path / "log", "--queues", "default", "--batch-size", "1"):
        execute(engine, "DELETE FROM delayed_jobs WHERE id = :i", i=cancelled)
        # An operator's reset of a failed job, with the database's own clock.
        now = "UTC_TIMESTAMP(6)" if engine.dialect.name != "sqlite" else "dq_utcnow()"
        execute(engine, f"UPDATE delayed_jobs SET attempts = 0, failed_at = NULL, run_at = {now} WHERE id = :i",
                i=failed)
        wait_until(lambda: "failed" in out.read_text() if out.exists() else False, 10, message="reset job")
        # Make two jobs due at once, raising the priority of the one enqueued second.
        execute(engine, f"UPDATE delayed_jobs SET run_at = {now}, priority = CASE WHEN id = :h THEN -5 ELSE 5 END "
                        "WHERE id IN (:l, :h)", l=low, h=high)
        wait_until(lambda: len(lines(out)) == 3, 10, message="re-prioritised jobs")
        execute(engine, f"UPDATE delayed_jobs SET queue = 'default', run_at = {now} WHERE id = :i", i=elsewhere)
        wait_until(lambda: len(lines(out)) == 4, 10, message="the job moved to our queue")
    assert [line.split()[0] for line in lines(out)] == ["failed", "high", "low", "moved"]
    assert scalar(engine, "SELECT COUNT(*) FROM delayed_jobs") == 0
    assert "db.unavailable" not in (tmp_path / "log").read_text()  # the queue-filtered probe works


def test_sigterm_lets_the_running_job_finish_and_exits_0(engine: Engine, db_url: str, tmp_path: Path) -> None:
    out, log = tmp_path / "out", tmp_path / "log"
    job_id = _enqueue(engine, "t.slow_record", {"path": str(out), "token": "a", "seconds": 1.5})
    with worker(db_url, log) as proc:
        wait_until(lambda: lines(out), 10, message="the job to start")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    assert [line.split()[0] for line in lines(out)] == ["start", "end"]
    assert job_id not in job_rows(engine)


def test_sigterm_past_the_grace_period_releases_the_job_for_retry(engine: Engine, db_url: str,
                                                                  tmp_path: Path) -> None:
    out, log = tmp_path / "out", tmp_path / "log"
    job_id = _enqueue(engine, "t.slow_record", {"path": str(out), "token": "a", "seconds": 60})
    with worker(db_url, log, "--grace-period", "0.5") as proc:
        wait_until(lambda: lines(out), 10, message="the job to start")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    row = job_rows(engine)[job_id]
    assert row["locked_at"] is None and row["attempts"] == 0 and row["failed_at"] is None
    assert len(lines(out)) == 1


def test_handler_column_is_documented_json(engine: Engine, tmp_path: Path) -> None:
    job_id = _enqueue(engine, "t.record", {"path": "/x", "token": "é"})
    assert json.loads(job_rows(engine)[job_id]["handler"]) == {"job": "t.record",
                                                               "args": {"path": "/x", "token": "é"}}
