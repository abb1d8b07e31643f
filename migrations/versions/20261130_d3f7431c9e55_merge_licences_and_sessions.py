"""merge licences and sessions

Revision ID: d3f7431c9e55
Revises: 1c0e92540571, e2c8a4f6b1d9
Create Date: 2026-11-30 16:37:00.805812

"""
from collections.abc import Sequence

revision: str = 'd3f7431c9e55'
down_revision: str | Sequence[str] | None = ('1c0e92540571', 'e2c8a4f6b1d9')
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
