"""Alembic environment: dqueue passes in a connection (online) or a dialect name (offline DDL)."""
from alembic import context

from dqueue import capabilities

# The one migration chain covers the core's tables and every capability's: the registry loads
# them all onto the shared metadata (the core itself never names a capability).
metadata = capabilities.load()

VERSION_TABLE = "dqueue_alembic_version"
attributes = context.config.attributes

if context.is_offline_mode():
    # Renders the DDL the migrations run, for sql/*.sql (see migrate.render_ddl).
    context.configure(dialect_name=attributes["dialect"], target_metadata=metadata,
                      version_table=VERSION_TABLE, literal_binds=True,
                      output_buffer=attributes["buffer"])
    with context.begin_transaction():
        context.run_migrations()
else:
    context.configure(connection=attributes["connection"], target_metadata=metadata,
                      version_table=VERSION_TABLE)
    with context.begin_transaction():
        context.run_migrations()
