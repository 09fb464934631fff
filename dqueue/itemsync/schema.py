"""The item sync's tables: the stored items, the per-item lock, and the waiting update of each item.

``items``: one row per GitLab project of the item bank, with the default branch's head commit it
was last ingested at.  A sync writes a row only when that head changed, so a sync of an unchanged
item bank writes nothing (``synced_at`` is when the row last changed).

``project_lock``: the per-item lease (IIS's ``project_lock``, reference A.3): a row per item being
updated, taken by one conditional write that succeeds only if no row exists or its lease expired
(store.acquire), so two updates of one item never interleave and a holder that died loses it at
``expires_at``.

``item_update_pending``: the ``itemsync.update`` job a webhook enqueued for an item and that has
not yet read GitLab; a second push while it waits enqueues nothing (webhook.py).
"""
from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger, Column, String, Table

from ..store.schema import Timestamp, metadata

TABLE_ARGS: dict[str, Any] = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4"}

items = Table(
    "items", metadata,
    Column("project_id", BigInteger, primary_key=True, autoincrement=False),  # GitLab's project id
    Column("path", String(255), nullable=False),  # the project's path in its group
    Column("default_branch", String(255), nullable=True),  # NULL: an empty repository
    Column("head_commit", String(64), nullable=True),  # the default branch's head when ingested
    Column("synced_at", Timestamp, nullable=False),  # when the row last changed (database clock)
    **TABLE_ARGS,
)

project_lock = Table(
    "project_lock", metadata,
    Column("project_id", BigInteger, primary_key=True, autoincrement=False),
    Column("owner", String(255), nullable=False),  # "<host>:<pid>:<random>", unique per acquisition
    Column("locked_at", Timestamp, nullable=False),
    Column("expires_at", Timestamp, nullable=False),  # the lease: anyone may take it after this
    **TABLE_ARGS,
)

item_update_pending = Table(
    "item_update_pending", metadata,
    Column("project_id", BigInteger, primary_key=True, autoincrement=False),
    Column("job_id", BigInteger, nullable=False),  # the waiting itemsync.update job
    Column("created_at", Timestamp, nullable=False),
    **TABLE_ARGS,
)
