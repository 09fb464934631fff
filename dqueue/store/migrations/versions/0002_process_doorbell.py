"""Each worker's network doorbell in the process registry.

Revision ID: 0002
Revises: 0001
"""
import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # "udp <ip> <port> <secret>", or NULL for a process that listens on no network doorbell.
    op.add_column("dqueue_processes", sa.Column("doorbell", sa.String(200), nullable=True))


def downgrade() -> None:
    op.drop_column("dqueue_processes", "doorbell")
