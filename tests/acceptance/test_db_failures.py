"""Permission and schema errors are failures, not outages (issue 7, point 4): the worker logs one
line naming the statement and what is missing, exits 78, and the supervisor exits 1 (also with
``--burst``); nothing is retried for ever."""
from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url

from dqueue import client
from dqueue.store import make_engine, migrate
from tests import sample_jobs  # noqa: F401  (registers the t.* jobs)
from tests.helpers import execute
from tests.workers import burst, lines


def _assert_failed_once(result: object, *needles: str) -> None:
    stderr: str = result.stderr  # type: ignore[attr-defined]
    assert result.returncode == 1, stderr[-3000:]  # type: ignore[attr-defined]
    failures = [ln for ln in stderr.splitlines() if "worker.database_failure" in ln]
    assert len(failures) == 1, stderr[-3000:]
    for needle in needles:
        assert needle in failures[0], failures[0]
    assert "exiting 78" in failures[0] and "supervisor.giving_up" in stderr
    assert "Traceback" not in stderr and "db.unavailable" not in stderr


@pytest.mark.parametrize("damage, needles", [
    ("DROP TABLE dqueue_processes", ("during register", "no such table", "INSERT INTO dqueue_processes")),
    ("ALTER TABLE dqueue_processes DROP COLUMN process_start",
     ("during register", "unknown column", "process_start")),
])
def test_a_missing_table_or_column_stops_the_worker(engine: Engine, db_url: str, damage: str,
                                                    needles: tuple[str, ...]) -> None:
    execute(engine, damage)
    _assert_failed_once(burst(db_url, timeout=60), *needles)


def test_a_user_without_delete_fails_instead_of_retrying_for_ever(mariadb_url: str, tmp_path: Path) -> None:
    engine = make_engine(mariadb_url)
    migrate.upgrade(engine)
    out = tmp_path / "out"
    client.Client(engine=engine).enqueue("t.record", {"path": str(out), "token": "a"})
    url = make_url(mariadb_url)
    user, password = f"dq_nodel_{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    hosts = ("%", "localhost")
    with engine.begin() as conn:
        for host in hosts:
            conn.execute(text(f"CREATE USER '{user}'@'{host}' IDENTIFIED BY '{password}'"))
            conn.execute(text(f"GRANT SELECT, INSERT, UPDATE ON `{url.database}`.* TO '{user}'@'{host}'"))
    try:
        limited = url.set(username=user, password=password).render_as_string(hide_password=False)
        result = burst(limited, timeout=60)
    finally:
        with engine.begin() as conn:
            for host in hosts:
                conn.execute(text(f"DROP USER IF EXISTS '{user}'@'{host}'"))
        engine.dispose()
    _assert_failed_once(result, "DELETE command denied", "missing privilege", "DELETE FROM delayed_jobs")
    assert password not in result.stderr
    assert len(lines(out)) == 1  # the job ran once; only its outcome could not be written


def test_a_read_only_sqlite_database_stops_the_worker(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    migrate.upgrade(engine)
    engine.dispose()
    path = make_url(sqlite_url).database
    read_only = f"sqlite:///file:{path}?mode=ro&uri=true"
    _assert_failed_once(burst(read_only, timeout=60), "read-only", "INSERT INTO dqueue_processes")
