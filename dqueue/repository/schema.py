"""The repository capability's tables, under Dryad's names and columns (dryad.md 3.1, 7).

``stash_engine_repo_queue_states``: an append-only log of each resource's submission states; the
current state is the latest row by id.  ``stash_engine_submission_logs``: one row per deposit
attempt, the request sent and the response or error received (credentials masked).  The ARK of a
deposited version is kept where Dryad keeps it, ``stash_engine_resources.download_uri``
(``{base}/d/<url-encoded ark>``; the column is declared in dqueue/stash/schema.py).
"""
from __future__ import annotations

from sqlalchemy import BigInteger, Column, Enum, Index, String, Table

from ..stash.schema import TABLE_ARGS
from ..store.schema import Id, MediumText, Timestamp, metadata
from .states import REPO_STATES

repo_queue_states = Table(
    "stash_engine_repo_queue_states", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("resource_id", BigInteger, nullable=False),
    Column("state", Enum(*REPO_STATES, name="repo_state", native_enum=True, create_constraint=True),
           nullable=True, server_default="enqueued"),  # nullable as Dryad's column; we always set it
    Column("hostname", String(191), nullable=True),
    Column("job_id", BigInteger, nullable=True),  # the job enqueued with an enqueued row (not in Dryad)
    Column("created_at", Timestamp, nullable=False),
    Column("updated_at", Timestamp, nullable=False),
    Index("repo_queue_states_resource", "resource_id"),
    Index("repo_queue_states_state", "state"),
    **TABLE_ARGS,
)

submission_logs = Table(
    "stash_engine_submission_logs", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("resource_id", BigInteger, nullable=False),
    Column("archive_submission_request", MediumText, nullable=True),
    Column("archive_response", MediumText, nullable=True),
    Column("created_at", Timestamp, nullable=False),
    Column("updated_at", Timestamp, nullable=False),
    Index("submission_logs_resource", "resource_id"),
    **TABLE_ARGS,
)
