"""outbox backoff: when a pending row may be tried again, and the kind of its last failure

Revision ID: c41d7e2a9f10
Revises: b02311bfa7a4
Create Date: 2026-11-30 15:30:00

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import core.types

revision: str = 'c41d7e2a9f10'
down_revision: str | Sequence[str] | None = 'b02311bfa7a4'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A failed row waits until next_attempt_at (backoff by attempts), so a drain per commit does not
    # re-send it at once; error_kind (unavailable / protocol / clock_skew) feeds alerts and /readyz.
    with op.batch_alter_table("licence_outbox") as batch:
        batch.add_column(sa.Column("next_attempt_at", core.types.UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("error_kind", sa.String(length=20), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("licence_outbox") as batch:
        batch.drop_column("error_kind")
        batch.drop_column("next_attempt_at")
