"""What a reaper needs to judge a process without trusting heartbeat age alone (issue 7).

``process_start``: ``<boot id>/<pid namespace>/<start time>`` of the registered process, so a
reaper on the same host tells a dead process (pid gone or recycled, host rebooted) from a live
one at once.  ``up_since``: when the process's heartbeats last became continuous again, so a
reaper that was itself cut off from the database does not judge others by heartbeat age until
it has been back for ``stale_after``.

Revision ID: 0004
Revises: 0003
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

Timestamp = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


def upgrade() -> None:
    op.add_column("dqueue_processes", sa.Column("process_start", sa.String(100), nullable=True))
    op.add_column("dqueue_processes", sa.Column("up_since", Timestamp, nullable=True))


def downgrade() -> None:
    op.drop_column("dqueue_processes", "up_since")
    op.drop_column("dqueue_processes", "process_start")
