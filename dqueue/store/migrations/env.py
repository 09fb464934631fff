"""Alembic environment: dqueue runs migrations on a connection it passes in (see store/migrate.py)."""
from alembic import context

from dqueue.store.schema import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata,
                  version_table="dqueue_alembic_version")
with context.begin_transaction():
    context.run_migrations()
