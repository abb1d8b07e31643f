"""authorisation withdrawal (who withdrew it) and the status-list signing keys' history

Revision ID: f3a9c1d7e5b2
Revises: 6f1e2d3c4b5a
Create Date: 2026-11-30 18:10:00

Online-safe: two nullable columns on licence_authorisation (no rewrite) and a new table.
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'f3a9c1d7e5b2'
down_revision: str | Sequence[str] | None = '6f1e2d3c4b5a'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('licence_authorisation', schema=None) as batch_op:
        # "holder" or "department"; NULL while the authorisation stands.
        batch_op.add_column(sa.Column('revoked_via', sa.String(length=20), nullable=True))
        # The staff user who withdrew it; NULL when the holder did (or it stands).
        batch_op.add_column(sa.Column('revoked_by', sa.Integer(), nullable=True))
    op.create_table(
        'licence_status_list_key',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('kid', sa.String(length=32), nullable=False),
        sa.Column('algorithm', sa.String(length=20), nullable=False),
        sa.Column('public_key', sa.String(length=400), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('retired_at', sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('kid'),
    )


def downgrade() -> None:
    op.drop_table('licence_status_list_key')
    with op.batch_alter_table('licence_authorisation', schema=None) as batch_op:
        batch_op.drop_column('revoked_by')
        batch_op.drop_column('revoked_via')
