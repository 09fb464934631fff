"""Item sync: ``items`` (stored head commits), ``project_lock`` (per-item lease) and
``item_update_pending`` (the webhook's waiting update per item).

Revision ID: 0007
Revises: 0006
"""
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

# Types as of this revision; later revisions must not import them from the live schema module.
Timestamp = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")
TABLE_ARGS: dict[str, Any] = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4"}


def upgrade() -> None:
    op.create_table(
        "items",
        sa.Column("project_id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("path", sa.String(255), nullable=False),
        sa.Column("default_branch", sa.String(255), nullable=True),
        sa.Column("head_commit", sa.String(64), nullable=True),
        sa.Column("synced_at", Timestamp, nullable=False),
        **TABLE_ARGS,
    )
    op.create_table(
        "project_lock",
        sa.Column("project_id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("owner", sa.String(255), nullable=False),
        sa.Column("locked_at", Timestamp, nullable=False),
        sa.Column("expires_at", Timestamp, nullable=False),
        **TABLE_ARGS,
    )
    op.create_table(
        "item_update_pending",
        sa.Column("project_id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("job_id", sa.BigInteger, nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
        **TABLE_ARGS,
    )


def downgrade() -> None:
    op.drop_table("item_update_pending")
    op.drop_table("project_lock")
    op.drop_table("items")
