"""licence verification log

Revision ID: ea5efdd8c8ee
Revises: 4c6b8a3ca65e
Create Date: 2026-11-27 00:32:18.972155

"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel  # noqa: F401  (autogenerate references sqlmodel.sql.sqltypes)
from alembic import op

import core.types  # noqa: F401

revision: str = 'ea5efdd8c8ee'
down_revision: str | Sequence[str] | None = '4c6b8a3ca65e'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('licence_verification',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('at', core.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('licence_id', sa.Integer(), nullable=True),
    sa.Column('valid', sa.Boolean(), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=True),
    sa.Column('reason', sqlmodel.sql.sqltypes.AutoString(length=300), nullable=True),
    sa.Column('kid', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
    sa.Column('channel', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('licence_verification', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_licence_verification_at'), ['at'], unique=False)
        batch_op.create_index(batch_op.f('ix_licence_verification_licence_id'), ['licence_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('licence_verification', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_licence_verification_licence_id'))
        batch_op.drop_index(batch_op.f('ix_licence_verification_at'))
    op.drop_table('licence_verification')
