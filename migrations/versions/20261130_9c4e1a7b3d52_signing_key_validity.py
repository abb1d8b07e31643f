"""signing key validity: verify_until of a retired key

Revision ID: 9c4e1a7b3d52
Revises: 5d2a9c7e1f08
Create Date: 2026-11-30 17:00:00

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '9c4e1a7b3d52'
down_revision: str | Sequence[str] | None = '5d2a9c7e1f08'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('licence_signing_key', schema=None) as batch_op:
        batch_op.add_column(sa.Column('verify_until', sa.Date(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('licence_signing_key', schema=None) as batch_op:
        batch_op.drop_column('verify_until')
