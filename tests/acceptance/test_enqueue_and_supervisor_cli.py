"""``dqueue enqueue`` from the shell, and a supervisor that cannot keep its workers alive."""
from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

from sqlalchemy import Engine

from dqueue import client, jobs
from tests import sample_jobs  # noqa: F401
from tests.helpers import cli_env, job_rows, run_cli
from tests.workers import FAST, burst


def test_enqueue_prints_the_id_and_writes_the_row(engine: Engine, db_url: str) -> None:
    result = run_cli(["--import", "tests.sample_jobs", "enqueue", "t.record", "--args",
                      '{"path": "/dev/null", "token": "x"}', "--queue", "mail", "--priority", "-3",
                      "--run-at", "2030-01-02T03:04:05+02:00"], db_url)
    assert result.returncode == 0, result.stderr
    row = job_rows(engine)[int(result.stdout.strip())]
    assert (row["queue"], row["priority"]) == ("mail", -3)
    assert row["run_at"] == dt.datetime(2030, 1, 2, 1, 4, 5)  # stored as UTC
    as_json = run_cli(["--import", "tests.sample_jobs", "enqueue", "t.record", "--json", "--args",
                       '{"path": "/dev/null", "token": "y"}'], db_url)
    assert json.loads(as_json.stdout)["id"] in job_rows(engine)


def test_enqueue_refuses_bad_input_and_writes_nothing(engine: Engine, db_url: str) -> None:
    cases = [(["t.record", "--args", "{not json"], "not valid JSON"),
             (["t.record", "--args", "[1, 2]"], "must be a JSON object"),
             (["t.record", "--run-at", "next tuesday"], "not an ISO 8601 time"),
             (["t.recrod"], "unknown job 't.recrod'"),
             (["t.record", "--priority", "high"], "'high' is not a valid integer")]
    for args, message in cases:
        result = run_cli(["--import", "tests.sample_jobs", "enqueue", *args], db_url)
        assert result.returncode != 0 and message in result.stderr, (args, result.stderr)
    assert job_rows(engine) == {}
    forced = run_cli(["enqueue", "elsewhere.job", "--force"], db_url)
    assert forced.returncode == 0 and len(job_rows(engine)) == 1


def test_jobs_that_kill_their_workers_never_make_the_supervisor_give_up(engine: Engine, db_url: str,
                                                                         tmp_path: Path) -> None:
    """Issue 7 reversed the old rule (exit 1 after six deaths, whatever caused them): a death
    while running a job is that job's, which fails for good after max_attempts.  Deaths no job
    explains still make it give up: test_poison_jobs.py::test_workers_dying_for_no_job_..."""
    c = client.Client(engine=engine)
    for i in range(8):
        c.enqueue("t.suicide", {"path": str(tmp_path / f"out{i}")})
    result = burst(db_url, timeout=120, **FAST)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "giving_up" not in result.stderr
    rows = job_rows(engine)
    assert len(rows) == 8 and all(r["failed_at"] is not None and r["attempts"] == 3 for r in rows.values())


def test_import_is_taken_after_the_command_too(engine: Engine, db_url: str, tmp_path: Path) -> None:
    out = tmp_path / "out"
    queued = run_cli(["enqueue", "t.record", "--import", "tests.sample_jobs", "--args",
                      json.dumps({"path": str(out), "token": "after"})], db_url)
    assert queued.returncode == 0, queued.stderr
    result = run_cli(["worker", "--burst", "--import", "tests.sample_jobs"], db_url, **FAST)
    assert result.returncode == 0, result.stderr[-2000:]
    assert out.read_text().split()[0] == "after" and job_rows(engine) == {}


def test_enqueue_reads_args_from_standard_input_or_a_file(engine: Engine, db_url: str, tmp_path: Path) -> None:
    big = {"path": "/dev/null", "token": "x" * (1024 * 1024)}  # beyond what a shell passes comfortably
    piped = subprocess.run([sys.executable, "-m", "dqueue", "--import", "tests.sample_jobs", "enqueue",
                            "t.record", "--args", "-"], input=json.dumps(big), env=cli_env(db_url),
                           capture_output=True, text=True, timeout=60)
    assert piped.returncode == 0, piped.stderr
    (tmp_path / "args.json").write_text(json.dumps({"path": "/dev/null", "token": "from a file"}))
    filed = run_cli(["--import", "tests.sample_jobs", "enqueue", "t.record", "--args",
                     f"@{tmp_path / 'args.json'}"], db_url)
    assert filed.returncode == 0, filed.stderr
    handlers = {i: jobs.decode_handler(r["handler"]) for i, r in job_rows(engine).items()}
    assert handlers == {int(piped.stdout): ("t.record", big),
                        int(filed.stdout): ("t.record", {"path": "/dev/null", "token": "from a file"})}
