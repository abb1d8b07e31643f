"""one-time codes for the holder's 用证记录 page

Revision ID: e2c8a4f6b1d9
Revises: b7d3f9a1c6e4
Create Date: 2026-11-30 17:20:00

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import core.types

revision: str = 'e2c8a4f6b1d9'
down_revision: str | Sequence[str] | None = 'b7d3f9a1c6e4'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'licence_holder_code',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('holder_digest', sa.String(length=64), nullable=False),
        sa.Column('code_hash', sa.String(length=64), nullable=False),
        sa.Column('created_at', core.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column('expires_at', core.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('used_at', core.types.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint('id'),
    )
    with op.batch_alter_table('licence_holder_code', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_licence_holder_code_holder_digest'), ['holder_digest'])


def downgrade() -> None:
    op.drop_table('licence_holder_code')
