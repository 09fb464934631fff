"""Tables, indexes and the database-clock expressions.

``delayed_jobs`` keeps delayed_job's column names so operators' SQL keeps working.  The claim
index leads with the two NULL tests of the claim predicate (failed_at, locked_at), then
priority and run_at, so that a claim for one priority is a short range scan however many
future-dated or failed rows the table holds (see docs/design.md, "The claim path").
"""
from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)
from sqlalchemy.dialects import mysql
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import FunctionElement

metadata = MetaData()

# Microsecond DATETIME on MariaDB/MySQL; SQLAlchemy stores SQLite datetimes as
# 'YYYY-MM-DD HH:MM:SS.ffffff' text, which sorts and compares correctly as a string.
Timestamp = DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")
LongText = Text().with_variant(mysql.LONGTEXT(), "mysql", "mariadb")
MediumText = Text().with_variant(mysql.MEDIUMTEXT(), "mysql", "mariadb")
Id = BigInteger().with_variant(Integer(), "sqlite")  # SQLite only auto-increments INTEGER keys

delayed_jobs = Table(
    "delayed_jobs", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("priority", Integer, nullable=False, server_default="0"),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("handler", LongText, nullable=False),
    Column("last_error", MediumText, nullable=True),
    Column("run_at", Timestamp, nullable=False),
    Column("locked_at", Timestamp, nullable=True),
    Column("locked_by", String(255), nullable=True),
    Column("failed_at", Timestamp, nullable=True),
    Column("queue", String(255), nullable=False, server_default="default"),
    Column("created_at", Timestamp, nullable=False),
    Column("updated_at", Timestamp, nullable=False),
    Index("delayed_jobs_claim", "failed_at", "locked_at", "priority", "run_at"),
    Index("delayed_jobs_locked_by", "locked_by"),
    mysql_engine="InnoDB",
    mysql_charset="utf8mb4",
    sqlite_autoincrement=True,  # never reuse an id: ids name jobs and processes in logs and locks
)

dqueue_processes = Table(
    "dqueue_processes", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("name", String(255), nullable=False, unique=True),
    Column("kind", String(32), nullable=False),
    Column("hostname", String(255), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("queues", String(1024), nullable=True),
    Column("started_at", Timestamp, nullable=False),
    Column("last_heartbeat_at", Timestamp, nullable=False),
    # "udp <ip> <port> <secret>": where a worker on another host than the enqueuer can be woken
    # (see netbell.py); NULL on SQLite, or with network_doorbell = "off".
    Column("doorbell", String(200), nullable=True),
    # "<boot id>/<pid namespace>/<start time>" (localproc.py): on its own host a reaper judges
    # a process by this, not by heartbeat age; NULL off Linux.
    Column("process_start", String(100), nullable=True),
    # When this process's heartbeats last became continuous: a reaper judges other hosts by
    # heartbeat age only once its own have been for stale_after (processes.reap).
    Column("up_since", Timestamp, nullable=True),
    Index("dqueue_processes_heartbeat", "last_heartbeat_at"),
    mysql_engine="InnoDB",
    mysql_charset="utf8mb4",
    sqlite_autoincrement=True,  # never reuse an id: ids name jobs and processes in logs and locks
)


# Spaces requests to an external service across every worker and host (pacing.py): one row per
# service.
pacing = Table(
    "dqueue_pacing", metadata,
    Column("name", String(64), primary_key=True),
    Column("next_at", Timestamp, nullable=False),  # the earliest time the next request may go
    mysql_engine="InnoDB",
    mysql_charset="utf8mb4",
)


class utcnow(FunctionElement[Any]):
    """The database clock, UTC, with microseconds."""
    type = Timestamp
    inherit_cache = True


class utcnow_plus(FunctionElement[Any]):
    """The database clock plus a number of seconds (a float bind parameter)."""
    type = Timestamp
    inherit_cache = True


@compiles(utcnow, "mysql")
@compiles(utcnow, "mariadb")
def _utcnow_mysql(element: Any, compiler: Any, **kw: Any) -> str:
    return "UTC_TIMESTAMP(6)"


@compiles(utcnow, "sqlite")
def _utcnow_sqlite(element: Any, compiler: Any, **kw: Any) -> str:
    return "dq_utcnow()"


@compiles(utcnow_plus, "mysql")
@compiles(utcnow_plus, "mariadb")
def _utcnow_plus_mysql(element: Any, compiler: Any, **kw: Any) -> str:
    (seconds,) = list(element.clauses)
    value = compiler.process(seconds, **kw)
    return f"DATE_ADD(UTC_TIMESTAMP(6), INTERVAL CAST(ROUND({value} * 1000000) AS SIGNED) MICROSECOND)"


@compiles(utcnow_plus, "sqlite")
def _utcnow_plus_sqlite(element: Any, compiler: Any, **kw: Any) -> str:
    (seconds,) = list(element.clauses)
    return f"dq_utcnow_plus({compiler.process(seconds, **kw)})"
