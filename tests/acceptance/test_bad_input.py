"""Every bad input through the real commands: a one-line message naming the culprit, a non-zero
exit code (2 for a bad option or argument, as click's own; 78, EX_CONFIG, for a bad config file
or environment variable; 1 for the rest), never a traceback, and nothing written."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from dqueue import client
from dqueue.store import make_engine, migrate
from tests.conftest import MARIADB_URL
from tests.helpers import ROOT, cli_env, execute, job_rows

BIN = Path(sys.executable).parent  # the console scripts beside this interpreter (.venv/bin)
IMPORT = ["--import", "tests.sample_jobs"]
EX_USAGE, EX_CONFIG, FAILED = 2, 78, 1

# (command line, extra environment or config file text, exit code, what the message must say)
CASES: list[tuple[list[str], dict[str, str], int, str]] = [
    (["dqueue", *IMPORT, "enqueue", "t.record", "--priority", "99999999999"], {}, EX_USAGE,
     "'--priority': 99999999999 is not in the range -2147483648<=x<=2147483647"),
    (["dqueue", *IMPORT, "enqueue", "t.record", "--run-at", "0001-01-01T00:00:00+01:00"], {}, EX_USAGE,
     "--run-at: run_at 0001-01-01T00:00:00+01:00 is out of range"),
    (["dqueue", *IMPORT, "enqueue", "t.record", "--run-at", "0999-12-31T23:59:59Z"], {}, EX_USAGE,
     "--run-at: run_at 0999-12-31T23:59:59+00:00 is out of range"),
    (["dqueue", *IMPORT, "enqueue", "t.record", "--run-at", "9999-12-31T23:00:00-02:00"], {}, EX_USAGE,
     "is out of range: it must fall between 1000-01-01T00:00:00 and 9999-12-31T23:59:59.999999 UTC"),
    (["dqueue", *IMPORT, "enqueue", "t.record", "--args", "{\"a\": "], {}, EX_USAGE, "--args: not valid JSON"),
    (["dqueue", *IMPORT, "enqueue", "t.record", "--args", "[" * 100_000], {}, EX_USAGE,
     "--args: JSON nested too deeply"),
    (["dqueue", *IMPORT, "enqueue", "t.record", "--args", "@/nonexistent/args.json"], {}, EX_USAGE,
     "--args: cannot read /nonexistent/args.json: No such file or directory"),
    (["dqueue", *IMPORT, "enqueue", "t.record", "--queue", ""], {}, FAILED,
     "queue must be a non-empty name"),
    (["dqueue", "enqueue", "t.recrod"], {}, FAILED, "unknown job 't.recrod'"),
    (["dqueue", "enqueue", "t.record", "--import", "no.such.module"], {}, FAILED,
     "cannot import job module 'no.such.module'"),
    (["dqueue", "worker", "--sleep-delay", "-1"], {}, EX_USAGE,
     "setting 'sleep_delay' from option --sleep-delay: must be > 0"),
    (["dqueue", "worker", "--sleep-delay", "nan"], {}, EX_USAGE,
     "setting 'sleep_delay' from option --sleep-delay: must be > 0 (at least 0.001) and <= 315360000, got nan"),
    (["dqueue", "worker", "--grace-period", "inf"], {}, EX_USAGE,
     "setting 'grace_period' from option --grace-period"),
    (["dqueue", "worker", "--batch-size", "0"], {}, EX_USAGE, "'--batch-size': 0 is not in the range"),
    (["dqueue", "worker", "--min-priority", "99999999999"], {}, EX_USAGE, "'--min-priority'"),
    (["dqueue", "worker", "--import", "no.such.module"], {}, FAILED, "cannot import job module"),
    (["dqueue", "--import", ".relative", "jobs", "stats"], {}, EX_USAGE,
     "setting 'imports' from option --import: not a module name: '.relative'"),
    (["dqueue", "worker", "--import", "broken_jobs"], {"PYTHONPATH": f"{ROOT}:TMP"}, FAILED,
     "cannot import job module 'broken_jobs': RuntimeError: no config for this; python -c 'import broken_jobs'"),
    (["dqueue", "worker", "--min-priority", "5", "--max-priority", "1"], {}, EX_USAGE,
     "--min-priority 5 is above --max-priority 1"),
    (["dqueue", "jobs", "stats"], {"DQUEUE_DATABASE_URL": "mysql+pymysql://root@127.0.0.1:1/dq"}, FAILED,
     "database mysql+pymysql://root@127.0.0.1:1/dq: (2003, \"Can't connect to MySQL server"),
    (["dqueue", "workers"], {"DQUEUE_DATABASE_URL": make_url(MARIADB_URL).set(
        username="dq_nobody", password="hunter2", database="mysql").render_as_string(hide_password=False)}, FAILED,
     "Access denied for user 'dq_nobody'"),
    (["dqueue", "jobs", "list"], {"DQUEUE_DATABASE_URL": "sqlite:///FILE"}, FAILED,
     "database sqlite:///FILE: file is not a database"),
    (["dqueue", "jobs", "stats"], {"DQUEUE_SLEEP_DELAY": "nan"}, EX_CONFIG,
     "setting 'sleep_delay' from environment DQUEUE_SLEEP_DELAY: must be > 0"),
    (["dqueue", "jobs", "stats"], {"DQUEUE_BATCH_SIZE": "2.7"}, EX_CONFIG,
     "setting 'batch_size' from environment DQUEUE_BATCH_SIZE: cannot use '2.7' (not an integer)"),
    (["dqueue", "jobs", "stats"], {"config": 'log_level = "LOUD"'}, EX_CONFIG,
     "setting 'log_level' from file CONFIG: must be one of"),
    (["dqueue", "jobs", "stats"], {"config": "batch_size = 2.7"}, EX_CONFIG,
     "setting 'batch_size' from file CONFIG: must be an integer, not float, got 2.7"),
    (["dqueue", "jobs", "stats"], {"config": "hostname = [1, 2]"}, EX_CONFIG,
     "setting 'hostname' from file CONFIG: must be a string, not list"),
    (["dqueue", "jobs", "stats"], {"config": "stale_after = -inf"}, EX_CONFIG,
     "setting 'stale_after' from file CONFIG: must be > 0"),
    (["dqueue", "--config", "/nonexistent/dq.toml", "jobs", "stats"], {}, EX_CONFIG,
     "config file /nonexistent/dq.toml does not exist"),
    (["dqueue", "--database-url", "postgres+foo://h/db", "jobs", "stats"], {}, EX_USAGE,
     "setting 'database_url' from option --database-url: unsupported database 'postgres+foo'"),
    (["dqueue", "jobs", "stats"], {"DQUEUE_DATABASE_URL": "ftp://h/db"}, EX_CONFIG,
     "setting 'database_url' from environment DQUEUE_DATABASE_URL: unsupported database 'ftp'"),
    (["dqueue", "--database-url", "mysql+pymysql://u:hunter2@h:port/db", "jobs", "stats"], {}, EX_USAGE,
     "setting 'database_url' from option --database-url: not a database URL"),
    (["dqueue", "jobs", "show", str(2 ** 64)], {}, EX_USAGE, f"'ID': {2 ** 64} is not in the range"),
    (["dqueue", "jobs", "retry", str(2 ** 63)], {}, EX_USAGE, f"{2 ** 63} is not in the range"),
    (["dqueue", "jobs", "delete", str(2 ** 63)], {}, EX_USAGE, f"{2 ** 63} is not in the range"),
    (["dqueue", "jobs", "list", "--limit", str(2 ** 63)], {}, EX_USAGE, "'--limit'"),
    (["dqueue", "repo", "submit", str(2 ** 63)], {}, EX_USAGE, f"{2 ** 63} is not in the range"),
    (["dqueue", "repo", "show", str(2 ** 64)], {}, EX_USAGE, f"{2 ** 64} is not in the range"),
    (["dqueue", "repo", "list", "--limit", str(2 ** 63)], {}, EX_USAGE, "'--limit'"),
    (["dqueue", "zenodo", "send", str(2 ** 63)], {}, EX_USAGE, f"{2 ** 63} is not in the range"),
    (["dqueue", "zenodo", "list", "--resource", str(2 ** 63)], {}, EX_USAGE, f"{2 ** 63} is not in the range"),
    (["dqueue", "resource", "show", str(2 ** 63)], {}, EX_USAGE, f"{2 ** 63} is not in the range"),
    (["long_jobs", "drain"], {"DQUEUE_FLAG_DIR": "FILE/flags"}, FAILED,
     "cannot create the markers in FILE/flags: Not a directory"),
    (["long_jobs", "--flag-dir", "x", "status"], {"DQUEUE_KILL_AFTER": "-1"}, EX_CONFIG,
     "setting 'kill_after' from environment DQUEUE_KILL_AFTER: must be >= 0"),
    (["delayed_job", "run", "--import", "no.such.module"], {}, FAILED,  # --import after the command
     "cannot import job module 'no.such.module'"),
    (["delayed_job", "start", "--import", "no.such.module"], {}, FAILED,
     "cannot import job module 'no.such.module'"),
    (["delayed_job", "run", "--sleep-delay", "-1"], {}, EX_USAGE,
     "setting 'sleep_delay' from option --sleep-delay: must be > 0"),
    (["delayed_job", "run"], {"DQUEUE_GRACE_PERIOD": "0"}, EX_CONFIG,
     "setting 'grace_period' from environment DQUEUE_GRACE_PERIOD: must be > 0"),
]


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'dqueue.sqlite3'}"
    engine = make_engine(url)
    migrate.upgrade(engine)
    engine.dispose()
    return url


def run(argv: list[str], db_url: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / argv[0]), *argv[1:]], env=cli_env(db_url, **env), cwd=cwd,
                          capture_output=True, text=True, timeout=60)


def assert_clean_failure(result: subprocess.CompletedProcess[str], code: int, message: str) -> None:
    shown = result.stdout + result.stderr
    assert "Traceback" not in shown, shown
    assert result.returncode == code, (result.returncode, shown)
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and message in errors[0], result.stderr


@pytest.mark.parametrize("argv, env, code, message", CASES, ids=[" ".join(c[0])[:60] for c in CASES])
def test_bad_input_gets_one_clear_line_and_an_exit_code(database: str, tmp_path: Path, argv: list[str],
                                                        env: dict[str, str], code: int, message: str) -> None:
    (tmp_path / "FILE").write_text("a file where a directory should be\n")
    (tmp_path / "broken_jobs.py").write_text("raise RuntimeError('no config for this')\n")
    extra = {k: v.replace("FILE", str(tmp_path / "FILE")).replace("TMP", str(tmp_path))
             for k, v in env.items() if k != "config"}
    if "config" in env:
        (tmp_path / "dq.toml").write_text(env["config"] + "\n")
        extra["DQUEUE_CONFIG"] = str(tmp_path / "dq.toml")
    result = run(argv, database, tmp_path, **extra)
    assert_clean_failure(result, code, message.replace("CONFIG", str(tmp_path / "dq.toml"))
                         .replace("FILE", str(tmp_path / "FILE")))
    assert "hunter2" not in result.stdout + result.stderr  # a URL's password is never repeated
    engine = make_engine(database)
    assert job_rows(engine) == {}  # nothing was written
    engine.dispose()


READ_ONLY = [["dqueue", "jobs", "stats"], ["dqueue", "jobs", "list"], ["dqueue", "jobs", "show", "1"],
             ["dqueue", "workers"], ["dqueue", "db", "status"], ["long_jobs", "status"],
             ["dqueue", "jobs", "retry", "1"], ["dqueue", "jobs", "delete", "1"], ["dqueue", "worker"]]


@pytest.mark.parametrize("argv", READ_ONLY, ids=[" ".join(a) for a in READ_ONLY])
def test_a_command_never_creates_a_missing_sqlite_database(tmp_path: Path, argv: list[str]) -> None:
    path = tmp_path / "var" / "db" / "dqueue.sqlite3"
    result = run(argv, f"sqlite:///{path}", tmp_path)
    assert_clean_failure(result, FAILED, f"no database at {path}; run 'dqueue db init'")
    assert not (tmp_path / "var").exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into a read-only directory")
def test_drain_into_a_read_only_flag_directory_fails_clearly(database: str, tmp_path: Path) -> None:
    flags = tmp_path / "flags"
    flags.mkdir(mode=0o555)
    result = run(["long_jobs", "drain"], database, tmp_path, DQUEUE_FLAG_DIR=str(flags))
    assert_clean_failure(result, FAILED, f"cannot create the markers in {flags}: Permission denied")
    assert list(flags.iterdir()) == []


def test_an_unreadable_stored_time_says_how_to_find_the_row(tmp_path: Path) -> None:
    # What an enqueue of year 1 left on SQLite before times were checked: listings crashed on it.
    url = f"sqlite:///{tmp_path / 'dqueue.sqlite3'}"
    engine = make_engine(url)
    migrate.upgrade(engine)
    job_id = client.Client(engine=engine).enqueue("elsewhere.job", check=False)
    execute(engine, "UPDATE delayed_jobs SET run_at = '1-01-01 00:00:00.000000'")
    for argv in (["dqueue", "jobs", "list"], ["dqueue", "jobs", "stats"], ["dqueue", "jobs", "show", str(job_id)]):
        assert_clean_failure(run(argv, url, tmp_path), FAILED, "a stored time cannot be read")
    assert run(["dqueue", "jobs", "delete", str(job_id)], url, tmp_path).returncode == 0
    assert run(["dqueue", "jobs", "list"], url, tmp_path).returncode == 0
    engine.dispose()
