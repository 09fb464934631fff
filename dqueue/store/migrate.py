"""Creating and upgrading the schema with Alembic (``dqueue db init``)."""
from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect

VERSION_TABLE = "dqueue_alembic_version"
_SCRIPTS = str(Path(__file__).with_name("migrations"))


class SchemaError(RuntimeError):
    """The database is not at the schema this dqueue expects; the message says what to run."""


def _config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", _SCRIPTS)
    return cfg


def head_revision() -> str:
    head = ScriptDirectory.from_config(_config()).get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE}).get_current_revision()


def upgrade(engine: Engine) -> tuple[str | None, str]:
    """Create or upgrade the schema to the newest revision; safe to run again. Returns (from, to)."""
    before = current_revision(engine)
    if before is None and inspect(engine).has_table("delayed_jobs"):
        raise SchemaError(
            "a delayed_jobs table exists that dqueue did not create (no dqueue_alembic_version "
            "table): it is probably Ruby delayed_job's, whose YAML handlers dqueue will not run. "
            "Drain it, then rename or drop it, and run 'dqueue db init' again.")
    cfg = _config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
    return before, head_revision()


def check(engine: Engine) -> None:
    """Raise SchemaError unless the schema is at the newest revision."""
    current = current_revision(engine)
    head = head_revision()
    if current != head:
        state = "has no dqueue schema" if current is None else f"is at schema revision {current}"
        raise SchemaError(f"the database {state}, this dqueue needs {head}: run 'dqueue db init'")
