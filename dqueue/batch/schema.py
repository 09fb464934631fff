"""Spring Batch's six job-repository tables, with its names, columns and foreign keys (4.x
columns; imrt_lblod.md A.11), so that operators' SQL from the runbooks runs unchanged: the history
query, the exit-message query, "mark complete / abandoned by SQL" and the six ``DELETE FROM
batch_…`` in the runbook's order (children first, as the foreign keys require).

Columns of ours on ``batch_job_execution`` (Spring ignores extra columns):

- ``guard_key``: the job name for a singleton kind, NULL otherwise;
- ``running_guard``: a STORED generated column, ``guard_key`` while the status is STARTING,
  STARTED or STOPPING and NULL after; its UNIQUE index is the singleton guard.  The database
  refuses a second running execution of a kind atomically, from any host, with no lock table and
  nothing in memory; and an UPDATE by hand that ends an execution releases the guard by itself
  (a deleted row too), so no state is kept anywhere else that could disagree with these tables;
- ``stop_request``: STOP or ABANDON while STOPPING (status.StopRequest);
- ``delayed_job_id``: the ``batch.run`` job that runs it (a job-owned row, dqueue/owned.py).
"""
from __future__ import annotations

from typing import Any

from sqlalchemy import (
    CHAR,
    BigInteger,
    Column,
    Computed,
    Double,
    ForeignKey,
    Index,
    String,
    Table,
    UniqueConstraint,
)

from ..store.schema import Id, MediumText, Timestamp, metadata
from .status import RUNNING_SQL

ENGINE_ARGS: dict[str, Any] = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4"}
TABLE_ARGS: dict[str, Any] = {**ENGINE_ARGS, "sqlite_autoincrement": True}  # ids are never reused
GUARD_SQL = f"CASE WHEN status IN {RUNNING_SQL} THEN guard_key END"
SHORT_CONTEXT = 2500  # Spring's short_context length; the full text is in serialized_context

job_instance = Table(
    "batch_job_instance", metadata,
    Column("job_instance_id", Id, primary_key=True, autoincrement=True),
    Column("version", BigInteger, nullable=True),
    Column("job_name", String(100), nullable=False),
    Column("job_key", String(32), nullable=False),  # MD5 of the identifying parameters
    UniqueConstraint("job_name", "job_key", name="job_inst_un"),
    **TABLE_ARGS,
)

job_execution = Table(
    "batch_job_execution", metadata,
    Column("job_execution_id", Id, primary_key=True, autoincrement=True),
    Column("version", BigInteger, nullable=True),
    Column("job_instance_id", BigInteger, ForeignKey("batch_job_instance.job_instance_id",
                                                     name="job_inst_exec_fk"), nullable=False),
    Column("create_time", Timestamp, nullable=False),
    Column("start_time", Timestamp, nullable=True),
    Column("end_time", Timestamp, nullable=True),
    Column("status", String(10), nullable=True),
    Column("exit_code", String(2500), nullable=True),
    Column("exit_message", MediumText, nullable=True),  # every traceback, not Spring's 2,500 characters
    Column("last_updated", Timestamp, nullable=True),
    Column("job_configuration_location", String(2500), nullable=True),
    Column("guard_key", String(100), nullable=True),
    Column("running_guard", String(100), Computed(GUARD_SQL, persisted=True)),
    Column("stop_request", String(10), nullable=True),
    Column("delayed_job_id", BigInteger, nullable=True),
    Index("batch_job_execution_running_guard", "running_guard", unique=True),
    Index("batch_job_execution_instance", "job_instance_id"),
    Index("batch_job_execution_status", "status"),
    **TABLE_ARGS,
)

job_execution_params = Table(
    "batch_job_execution_params", metadata,  # no primary key, as Spring's
    Column("job_execution_id", BigInteger, ForeignKey("batch_job_execution.job_execution_id",
                                                      name="job_exec_params_fk"), nullable=False),
    Column("type_cd", String(6), nullable=False),  # STRING, DATE, LONG, DOUBLE
    Column("key_name", String(100), nullable=False),
    Column("string_val", String(250), nullable=True),
    Column("date_val", Timestamp, nullable=True),
    Column("long_val", BigInteger, nullable=True),
    Column("double_val", Double(), nullable=True),
    Column("identifying", CHAR(1), nullable=False),  # 'Y' / 'N'
    Index("batch_job_execution_params_execution", "job_execution_id"),
    **ENGINE_ARGS,
)

COUNTS = ("commit_count", "read_count", "filter_count", "write_count", "read_skip_count",
          "write_skip_count", "process_skip_count", "rollback_count")

step_execution = Table(
    "batch_step_execution", metadata,
    Column("step_execution_id", Id, primary_key=True, autoincrement=True),
    Column("version", BigInteger, nullable=False),
    Column("step_name", String(100), nullable=False),
    Column("job_execution_id", BigInteger, ForeignKey("batch_job_execution.job_execution_id",
                                                      name="job_exec_step_fk"), nullable=False),
    Column("start_time", Timestamp, nullable=False),
    Column("end_time", Timestamp, nullable=True),
    Column("status", String(10), nullable=True),
    *(Column(name, BigInteger, nullable=True) for name in COUNTS),
    Column("exit_code", String(2500), nullable=True),
    Column("exit_message", MediumText, nullable=True),
    Column("last_updated", Timestamp, nullable=True),
    Index("batch_step_execution_execution", "job_execution_id"),
    **TABLE_ARGS,
)


def _context(name: str, key: str, parent: str, fk: str) -> Table:
    return Table(
        name, metadata,
        Column(key, Id, ForeignKey(f"{parent}.{key}", name=fk), primary_key=True, autoincrement=False),
        Column("short_context", String(SHORT_CONTEXT), nullable=False),
        Column("serialized_context", MediumText, nullable=True),
        **ENGINE_ARGS,
    )


job_execution_context = _context("batch_job_execution_context", "job_execution_id",
                                 "batch_job_execution", "job_exec_ctx_fk")
step_execution_context = _context("batch_step_execution_context", "step_execution_id",
                                  "batch_step_execution", "step_exec_ctx_fk")
