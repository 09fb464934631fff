"""The application tables of the Zenodo copies, under the names Dryad's operators already type.

``stash_engine_identifiers`` (datasets), ``stash_engine_resources`` (their versions) and
``stash_engine_generic_files`` (each version's files) are the part of Dryad's model the copy
jobs read; ``stash_engine_zenodo_copies`` keeps Dryad's columns and values (reference: dryad.md
1.1-1.2) plus ``job_id``, the delayed_jobs row that owns a copy, which is how two jobs for one
copy can never run it at once.  ``dqueue_pacing`` spaces requests to an external service across
every worker and host.
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

from .schema import Id, MediumText, Timestamp, metadata

TABLE_ARGS: dict[str, Any] = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4", "sqlite_autoincrement": True}

COPY_TYPES = ("data", "software", "software_publish", "supp", "supp_publish")
COPY_STATES = ("enqueued", "replicating", "finished", "error", "deferred")
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

zenodo_copies = Table(
    "stash_engine_zenodo_copies", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("state", Enum(*COPY_STATES, name="copy_state", native_enum=True, create_constraint=True),
           nullable=False, server_default="enqueued"),
    Column("copy_type", Enum(*COPY_TYPES, name="copy_type", native_enum=True, create_constraint=True),
           nullable=False, server_default="data"),
    Column("deposition_id", BigInteger, nullable=True),
    Column("identifier_id", BigInteger, nullable=False),
    Column("resource_id", BigInteger, nullable=False),
    Column("retries", Integer, nullable=False, server_default="0"),
    Column("error_info", MediumText, nullable=True),
    Column("note", Text, nullable=True),
    Column("software_doi", String(191), nullable=True),
    Column("conceptrecid", String(191), nullable=True),
    Column("job_id", BigInteger, nullable=True),
    Column("created_at", Timestamp, nullable=False),
    Column("updated_at", Timestamp, nullable=False),
    UniqueConstraint("resource_id", "copy_type", name="zenodo_copies_resource_type"),
    Index("zenodo_copies_identifier", "identifier_id", "copy_type"),
    Index("zenodo_copies_state", "state"),
    Index("zenodo_copies_deposition", "deposition_id"),
    Index("zenodo_copies_retries", "retries"),
    **TABLE_ARGS,
)

pacing = Table(
    "dqueue_pacing", metadata,
    Column("name", String(64), primary_key=True),
    Column("next_at", Timestamp, nullable=False),  # the earliest time the next request may go
    mysql_engine="InnoDB",
    mysql_charset="utf8mb4",
)
