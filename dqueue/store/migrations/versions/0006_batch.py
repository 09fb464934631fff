"""Batch executions: Spring Batch's six job-repository tables (dqueue/batch/schema.py), with the
singleton guard (``running_guard``, a stored generated column under a UNIQUE index).

Revision ID: 0006
Revises: 0005
"""
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

# Types as of this revision; later revisions must not import them from the live schema module.
Timestamp = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")
MediumText = sa.Text().with_variant(mysql.MEDIUMTEXT(), "mysql", "mariadb")
Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
ENGINE_ARGS: dict[str, Any] = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4"}
TABLE_ARGS: dict[str, Any] = {**ENGINE_ARGS, "sqlite_autoincrement": True}
GUARD_SQL = "CASE WHEN status IN ('STARTING','STARTED','STOPPING') THEN guard_key END"
COUNTS = ("commit_count", "read_count", "filter_count", "write_count", "read_skip_count",
          "write_skip_count", "process_skip_count", "rollback_count")


def upgrade() -> None:
    op.create_table(
        "batch_job_instance",
        sa.Column("job_instance_id", Id, primary_key=True, autoincrement=True),
        sa.Column("version", sa.BigInteger, nullable=True),
        sa.Column("job_name", sa.String(100), nullable=False),
        sa.Column("job_key", sa.String(32), nullable=False),
        sa.UniqueConstraint("job_name", "job_key", name="job_inst_un"),
        **TABLE_ARGS,
    )
    op.create_table(
        "batch_job_execution",
        sa.Column("job_execution_id", Id, primary_key=True, autoincrement=True),
        sa.Column("version", sa.BigInteger, nullable=True),
        sa.Column("job_instance_id", sa.BigInteger, sa.ForeignKey(
            "batch_job_instance.job_instance_id", name="job_inst_exec_fk"), nullable=False),
        sa.Column("create_time", Timestamp, nullable=False),
        sa.Column("start_time", Timestamp, nullable=True),
        sa.Column("end_time", Timestamp, nullable=True),
        sa.Column("status", sa.String(10), nullable=True),
        sa.Column("exit_code", sa.String(2500), nullable=True),
        sa.Column("exit_message", MediumText, nullable=True),
        sa.Column("last_updated", Timestamp, nullable=True),
        sa.Column("job_configuration_location", sa.String(2500), nullable=True),
        sa.Column("guard_key", sa.String(100), nullable=True),
        sa.Column("running_guard", sa.String(100), sa.Computed(GUARD_SQL, persisted=True)),
        sa.Column("stop_request", sa.String(10), nullable=True),
        sa.Column("delayed_job_id", sa.BigInteger, nullable=True),
        **TABLE_ARGS,
    )
    op.create_index("batch_job_execution_running_guard", "batch_job_execution", ["running_guard"], unique=True)
    op.create_index("batch_job_execution_instance", "batch_job_execution", ["job_instance_id"])
    op.create_index("batch_job_execution_status", "batch_job_execution", ["status"])
    op.create_table(
        "batch_job_execution_params",
        sa.Column("job_execution_id", sa.BigInteger, sa.ForeignKey(
            "batch_job_execution.job_execution_id", name="job_exec_params_fk"), nullable=False),
        sa.Column("type_cd", sa.String(6), nullable=False),
        sa.Column("key_name", sa.String(100), nullable=False),
        sa.Column("string_val", sa.String(250), nullable=True),
        sa.Column("date_val", Timestamp, nullable=True),
        sa.Column("long_val", sa.BigInteger, nullable=True),
        sa.Column("double_val", sa.Double(), nullable=True),
        sa.Column("identifying", sa.CHAR(1), nullable=False),
        **ENGINE_ARGS,
    )
    op.create_index("batch_job_execution_params_execution", "batch_job_execution_params", ["job_execution_id"])
    op.create_table(
        "batch_step_execution",
        sa.Column("step_execution_id", Id, primary_key=True, autoincrement=True),
        sa.Column("version", sa.BigInteger, nullable=False),
        sa.Column("step_name", sa.String(100), nullable=False),
        sa.Column("job_execution_id", sa.BigInteger, sa.ForeignKey(
            "batch_job_execution.job_execution_id", name="job_exec_step_fk"), nullable=False),
        sa.Column("start_time", Timestamp, nullable=False),
        sa.Column("end_time", Timestamp, nullable=True),
        sa.Column("status", sa.String(10), nullable=True),
        *(sa.Column(name, sa.BigInteger, nullable=True) for name in COUNTS),
        sa.Column("exit_code", sa.String(2500), nullable=True),
        sa.Column("exit_message", MediumText, nullable=True),
        sa.Column("last_updated", Timestamp, nullable=True),
        **TABLE_ARGS,
    )
    op.create_index("batch_step_execution_execution", "batch_step_execution", ["job_execution_id"])
    for name, key, parent, fk in (
            ("batch_job_execution_context", "job_execution_id", "batch_job_execution", "job_exec_ctx_fk"),
            ("batch_step_execution_context", "step_execution_id", "batch_step_execution", "step_exec_ctx_fk")):
        op.create_table(
            name,
            sa.Column(key, Id, sa.ForeignKey(f"{parent}.{key}", name=fk), primary_key=True, autoincrement=False),
            sa.Column("short_context", sa.String(2500), nullable=False),
            sa.Column("serialized_context", MediumText, nullable=True),
            **ENGINE_ARGS,
        )


def downgrade() -> None:
    for name in ("batch_step_execution_context", "batch_step_execution", "batch_job_execution_context",
                 "batch_job_execution_params", "batch_job_execution", "batch_job_instance"):
        op.drop_table(name)
