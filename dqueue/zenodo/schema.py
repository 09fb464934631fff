"""``stash_engine_zenodo_copies``: Dryad's columns and values (reference: dryad.md 1.1-1.2) plus
``job_id``, the delayed_jobs row that owns a copy, which is how two jobs for one copy can never
run it at once."""
from __future__ import annotations

from enum import StrEnum

from sqlalchemy import BigInteger, Column, Enum, Index, Integer, String, Table, Text, UniqueConstraint

from ..stash.schema import TABLE_ARGS
from ..store.schema import Id, MediumText, Timestamp, metadata

COPY_TYPES = ("data", "software", "software_publish", "supp", "supp_publish")


class CopyState(StrEnum):
    """A copy's ``state``, Dryad's values (a typo fails at import, not mid-job)."""
    ENQUEUED = "enqueued"
    REPLICATING = "replicating"
    FINISHED = "finished"
    ERROR = "error"
    DEFERRED = "deferred"


COPY_STATES = tuple(state.value for state in CopyState)

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
