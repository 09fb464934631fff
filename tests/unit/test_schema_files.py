"""sql/*.sql hold exactly the DDL the migrations run (see also the live-schema test)."""
from __future__ import annotations

import pytest

from dqueue.store import migrate
from tests.helpers import ROOT


@pytest.mark.parametrize("dialect", ["mysql", "sqlite"])
def test_sql_files_match_the_migrations(dialect: str) -> None:
    on_disk = (ROOT / "sql" / f"{dialect}.sql").read_text()
    assert on_disk == migrate.schema_file_text(dialect), (
        f"sql/{dialect}.sql is stale: run 'dqueue db schema --dialect {dialect} > sql/{dialect}.sql'")


def test_delayed_jobs_keeps_delayed_jobs_column_names() -> None:
    ddl = migrate.render_ddl("mysql")
    for column in ("id", "priority", "attempts", "handler", "last_error", "run_at", "locked_at",
                   "locked_by", "failed_at", "queue", "created_at", "updated_at"):
        assert f"\n    {column} " in ddl.split("CREATE TABLE delayed_jobs")[1].split(";")[0]
