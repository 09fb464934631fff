"""Repository submissions: ``stash_engine_repo_queue_states`` (append-only), ``stash_engine_submission_logs``
and ``stash_engine_resources.download_uri`` (where a deposited version's ARK is read from).

Revision ID: 0005
Revises: 0004
"""
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

# Types as of this revision; later revisions must not import them from the live schema module.
Timestamp = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")
MediumText = sa.Text().with_variant(mysql.MEDIUMTEXT(), "mysql", "mariadb")
Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TABLE_ARGS: dict[str, Any] = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4", "sqlite_autoincrement": True}
STATES = ("rejected_shutting_down", "enqueued", "processing", "provisional_complete", "completed", "errored")


def upgrade() -> None:
    op.create_table(
        "stash_engine_repo_queue_states",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("resource_id", sa.BigInteger, nullable=False),
        sa.Column("state", sa.Enum(*STATES, name="repo_state", native_enum=True, create_constraint=True),
                  nullable=True, server_default="enqueued"),
        sa.Column("hostname", sa.String(191), nullable=True),
        sa.Column("job_id", sa.BigInteger, nullable=True),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("updated_at", Timestamp, nullable=False),
        **TABLE_ARGS,
    )
    op.create_index("repo_queue_states_resource", "stash_engine_repo_queue_states", ["resource_id"])
    op.create_index("repo_queue_states_state", "stash_engine_repo_queue_states", ["state"])
    op.create_table(
        "stash_engine_submission_logs",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("resource_id", sa.BigInteger, nullable=False),
        sa.Column("archive_submission_request", MediumText, nullable=True),
        sa.Column("archive_response", MediumText, nullable=True),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("updated_at", Timestamp, nullable=False),
        **TABLE_ARGS,
    )
    op.create_index("submission_logs_resource", "stash_engine_submission_logs", ["resource_id"])
    op.add_column("stash_engine_resources", sa.Column("download_uri", sa.String(1000), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("stash_engine_resources") as batch:
        batch.drop_column("download_uri")
    op.drop_table("stash_engine_submission_logs")
    op.drop_table("stash_engine_repo_queue_states")
