"""outbox: marking a row sent is a HOT update (no plain index on status; a partial index on dead letters)

Revision ID: 7b3e51d9a2c4
Revises: c4e7a2b9d1f6
Create Date: 2026-11-30 20:50:00

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '7b3e51d9a2c4'
down_revision: str | Sequence[str] | None = 'c4e7a2b9d1f6'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_FAILED = sa.text("status = 'failed'")


def upgrade() -> None:
    # The drain marks every row it sends: with status in a plain index that update touched every index
    # of the table (not HOT). Pending rows are found through ix_licence_outbox_pending and dead letters
    # through the partial index below; nothing else reads the outbox by status (issue #16 item 3).
    op.drop_index("ix_licence_outbox_status", table_name="licence_outbox")
    op.create_index("ix_licence_outbox_failed", "licence_outbox", ["id"],
                    postgresql_where=_FAILED, sqlite_where=_FAILED)


def downgrade() -> None:
    op.drop_index("ix_licence_outbox_failed", table_name="licence_outbox")
    op.create_index("ix_licence_outbox_status", "licence_outbox", ["status"], unique=False)
