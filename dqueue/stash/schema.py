"""The part of Dryad's model that every repository capability reads, under the names Dryad's
operators already type.

``stash_engine_identifiers`` (datasets), ``stash_engine_resources`` (their versions) and
``stash_engine_generic_files`` (each version's files).  Zenodo copies and repository submissions
keep their own tables in their own packages (dqueue/zenodo/schema.py, dqueue/repository/).
"""
from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Enum,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from ..store.schema import Id, MediumText, Timestamp, metadata

TABLE_ARGS: dict[str, Any] = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4", "sqlite_autoincrement": True}

FILE_KINDS = ("data", "software", "supp")
FILE_STATES = ("created", "copied", "deleted")

identifiers = Table(
    "stash_engine_identifiers", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("identifier", String(191), nullable=False, unique=True),  # e.g. 10.5061/dryad.abc123
    Column("identifier_type", String(32), nullable=False, server_default="DOI"),
    Column("created_at", Timestamp, nullable=False),
    Column("updated_at", Timestamp, nullable=False),
    **TABLE_ARGS,
)

resources = Table(
    "stash_engine_resources", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("identifier_id", BigInteger, nullable=False),
    Column("version", Integer, nullable=False),  # 1, 2, … within the dataset: the copy order
    Column("title", Text, nullable=False),
    Column("metadata", MediumText, nullable=False),  # the manifest's descriptive fields, JSON
    # Where Merritt serves the deposited version, {base}/d/<url-encoded ark> (Dryad's column);
    # written by the repository capability, which reads the ARK of a new version's update from it.
    Column("download_uri", String(1000), nullable=True),
    Column("created_at", Timestamp, nullable=False),
    Column("updated_at", Timestamp, nullable=False),
    UniqueConstraint("identifier_id", "version", name="resources_identifier_version"),
    **TABLE_ARGS,
)

generic_files = Table(
    "stash_engine_generic_files", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("resource_id", BigInteger, nullable=False),
    Column("upload_file_name", String(1000), nullable=False),
    Column("upload_file_size", BigInteger, nullable=False),
    Column("digest", String(191), nullable=True),
    Column("digest_type", String(16), nullable=True),  # md5, sha-1, sha-256
    Column("kind", Enum(*FILE_KINDS, name="file_kind", native_enum=True, create_constraint=True),
           nullable=False),
    Column("file_state", Enum(*FILE_STATES, name="file_state", native_enum=True, create_constraint=True),
           nullable=False),
    Column("source", String(4000), nullable=True),  # http(s) URL or local path; none when deleted
    Column("md5", String(32), nullable=True),  # as streamed to Zenodo: lets a retry skip the file
    Column("created_at", Timestamp, nullable=False),
    Column("updated_at", Timestamp, nullable=False),
    Index("generic_files_resource", "resource_id"),
    **TABLE_ARGS,
)
