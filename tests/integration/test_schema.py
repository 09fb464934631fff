"""The schema the migrations build equals the model the code uses, and db init is idempotent."""
from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, text

from dqueue.capabilities import load as load_capabilities
from dqueue.store import SchemaError, make_engine, migrate
from tests.helpers import run_cli


def test_migrated_schema_matches_the_model(engine: Engine) -> None:
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True,
                                                    "version_table": migrate.VERSION_TABLE})
        assert compare_metadata(ctx, load_capabilities()) == []


def test_db_init_twice_is_safe(db_url: str) -> None:
    first = run_cli(["db", "init"], db_url)
    second = run_cli(["db", "init"], db_url)
    assert first.returncode == 0 and "upgraded from nothing to revision" in first.stdout, first.stderr
    assert second.returncode == 0 and "already at revision" in second.stdout
    assert run_cli(["db", "status"], db_url).returncode == 0


def test_commands_on_an_uninitialised_database_say_what_to_run(db_url: str) -> None:
    result = run_cli(["--import", "dqueue.samples", "enqueue", "sample.noop"], db_url)
    assert result.returncode == 1 and "dqueue db init" in result.stderr
    result = run_cli(["--import", "dqueue.samples", "worker", "--burst"], db_url)
    assert result.returncode == 1 and "dqueue db init" in result.stderr
    assert run_cli(["db", "status"], db_url).returncode == 1


def test_a_foreign_delayed_jobs_table_is_not_taken_over(db_url: str) -> None:
    engine = make_engine(db_url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE delayed_jobs (id INTEGER PRIMARY KEY, handler TEXT)"))
    with pytest.raises(SchemaError, match="Ruby delayed_job"):
        migrate.upgrade(engine)
    engine.dispose()


def test_every_timestamp_keeps_microseconds(engine: Engine) -> None:
    # Alembic's type comparison does not see DATETIME precision, so check it here.
    from sqlalchemy import inspect as sa_inspect
    for table in ("delayed_jobs", "dqueue_processes"):
        for col in sa_inspect(engine).get_columns(table):
            if "DATETIME" in str(col["type"]).upper() and engine.dialect.name != "sqlite":
                assert getattr(col["type"], "fsp", None) == 6, (table, col["name"], col["type"])
