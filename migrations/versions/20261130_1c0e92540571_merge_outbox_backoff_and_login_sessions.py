"""merge outbox backoff and login sessions

Revision ID: 1c0e92540571
Revises: c41d7e2a9f10, d0d8ce8f3bdd
Create Date: 2026-11-30 16:08:03.328409

"""
from collections.abc import Sequence

from alembic import op



revision: str = '1c0e92540571'
down_revision: str | Sequence[str] | None = ('c41d7e2a9f10', 'd0d8ce8f3bdd')
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
