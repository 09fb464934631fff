"""The delayed_jobs work queue and the process registry.

Revision ID: 0001
Revises:
"""
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# Types as of this revision; later revisions must not import them from the live schema module.
Timestamp = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")
Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TABLE_ARGS: dict[str, Any] = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4", "sqlite_autoincrement": True}


def upgrade() -> None:
    op.create_table(
        "delayed_jobs",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("priority", sa.Integer, nullable=False, server_default="0"),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("handler", sa.Text().with_variant(mysql.LONGTEXT(), "mysql", "mariadb"), nullable=False),
        sa.Column("last_error", sa.Text().with_variant(mysql.MEDIUMTEXT(), "mysql", "mariadb"), nullable=True),
        sa.Column("run_at", Timestamp, nullable=False),
        sa.Column("locked_at", Timestamp, nullable=True),
        sa.Column("locked_by", sa.String(255), nullable=True),
        sa.Column("failed_at", Timestamp, nullable=True),
        sa.Column("queue", sa.String(255), nullable=False, server_default="default"),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("updated_at", Timestamp, nullable=False),
        **TABLE_ARGS,
    )
    op.create_index("delayed_jobs_claim", "delayed_jobs", ["failed_at", "locked_at", "priority", "run_at"])
    op.create_index("delayed_jobs_locked_by", "delayed_jobs", ["locked_by"])
    op.create_table(
        "dqueue_processes",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(255), nullable=False, unique=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("hostname", sa.String(255), nullable=False),
        sa.Column("pid", sa.Integer, nullable=False),
        sa.Column("queues", sa.String(1024), nullable=True),
        sa.Column("started_at", Timestamp, nullable=False),
        sa.Column("last_heartbeat_at", Timestamp, nullable=False),
        **TABLE_ARGS,
    )
    op.create_index("dqueue_processes_heartbeat", "dqueue_processes", ["last_heartbeat_at"])


def downgrade() -> None:
    op.drop_table("dqueue_processes")
    op.drop_table("delayed_jobs")
