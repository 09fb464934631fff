"""Datasets, their versions and files, the Zenodo copies, and request pacing.

Revision ID: 0003
Revises: 0002
"""
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

# Types as of this revision; later revisions must not import them from the live schema module.
Timestamp = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")
MediumText = sa.Text().with_variant(mysql.MEDIUMTEXT(), "mysql", "mariadb")
Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TABLE_ARGS: dict[str, Any] = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4", "sqlite_autoincrement": True}


def _enum(name: str, *values: str) -> sa.Enum:
    return sa.Enum(*values, name=name, native_enum=True, create_constraint=True)


def upgrade() -> None:
    op.create_table(
        "stash_engine_identifiers",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("identifier", sa.String(191), nullable=False, unique=True),
        sa.Column("identifier_type", sa.String(32), nullable=False, server_default="DOI"),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("updated_at", Timestamp, nullable=False),
        **TABLE_ARGS,
    )
    op.create_table(
        "stash_engine_resources",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("identifier_id", sa.BigInteger, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("metadata", MediumText, nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("updated_at", Timestamp, nullable=False),
        sa.UniqueConstraint("identifier_id", "version", name="resources_identifier_version"),
        **TABLE_ARGS,
    )
    op.create_table(
        "stash_engine_generic_files",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("resource_id", sa.BigInteger, nullable=False),
        sa.Column("upload_file_name", sa.String(1000), nullable=False),
        sa.Column("upload_file_size", sa.BigInteger, nullable=False),
        sa.Column("digest", sa.String(191), nullable=True),
        sa.Column("digest_type", sa.String(16), nullable=True),
        sa.Column("kind", _enum("file_kind", "data", "software", "supp"), nullable=False),
        sa.Column("file_state", _enum("file_state", "created", "copied", "deleted"), nullable=False),
        sa.Column("source", sa.String(4000), nullable=True),
        sa.Column("md5", sa.String(32), nullable=True),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("updated_at", Timestamp, nullable=False),
        **TABLE_ARGS,
    )
    op.create_index("generic_files_resource", "stash_engine_generic_files", ["resource_id"])
    op.create_table(
        "stash_engine_zenodo_copies",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("state", _enum("copy_state", "enqueued", "replicating", "finished", "error", "deferred"),
                  nullable=False, server_default="enqueued"),
        sa.Column("copy_type", _enum("copy_type", "data", "software", "software_publish", "supp",
                                     "supp_publish"), nullable=False, server_default="data"),
        sa.Column("deposition_id", sa.BigInteger, nullable=True),
        sa.Column("identifier_id", sa.BigInteger, nullable=False),
        sa.Column("resource_id", sa.BigInteger, nullable=False),
        sa.Column("retries", sa.Integer, nullable=False, server_default="0"),
        sa.Column("error_info", MediumText, nullable=True),
        sa.Column("note", sa.Text, nullable=True),
        sa.Column("software_doi", sa.String(191), nullable=True),
        sa.Column("conceptrecid", sa.String(191), nullable=True),
        sa.Column("job_id", sa.BigInteger, nullable=True),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("updated_at", Timestamp, nullable=False),
        sa.UniqueConstraint("resource_id", "copy_type", name="zenodo_copies_resource_type"),
        **TABLE_ARGS,
    )
    op.create_index("zenodo_copies_identifier", "stash_engine_zenodo_copies", ["identifier_id", "copy_type"])
    op.create_index("zenodo_copies_state", "stash_engine_zenodo_copies", ["state"])
    op.create_index("zenodo_copies_deposition", "stash_engine_zenodo_copies", ["deposition_id"])
    op.create_index("zenodo_copies_retries", "stash_engine_zenodo_copies", ["retries"])
    op.create_table(
        "dqueue_pacing",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("next_at", Timestamp, nullable=False),
        mysql_engine="InnoDB", mysql_charset="utf8mb4",
    )


def downgrade() -> None:
    for table in ("dqueue_pacing", "stash_engine_zenodo_copies", "stash_engine_generic_files",
                  "stash_engine_resources", "stash_engine_identifiers"):
        op.drop_table(table)
