"""用证授权 and 用证记录: licence_authorisation, licence_use

Revision ID: b7d3f9a1c6e4
Revises: 9c4e1a7b3d52
Create Date: 2026-11-30 17:10:00

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import core.types

revision: str = 'b7d3f9a1c6e4'
down_revision: str | Sequence[str] | None = '9c4e1a7b3d52'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'licence_authorisation',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('holder_code', sa.String(length=18), nullable=False),
        sa.Column('department_id', sa.Integer(), nullable=False),
        sa.Column('type_codes', sa.JSON(), nullable=False),
        sa.Column('case_number', sa.String(length=64), nullable=False),
        sa.Column('task_code', sa.String(length=31), nullable=False),
        sa.Column('valid_until', core.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column('method', sa.String(length=20), nullable=False),
        sa.Column('recorded_by', sa.Integer(), nullable=True),
        sa.Column('created_at', core.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column('revoked_at', core.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['department_id'], ['department.id']),
        sa.PrimaryKeyConstraint('id'),
    )
    with op.batch_alter_table('licence_authorisation', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_licence_authorisation_holder_code'), ['holder_code'])
        batch_op.create_index(batch_op.f('ix_licence_authorisation_department_id'), ['department_id'])
    op.create_table(
        'licence_use',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('at', core.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column('licence_id', sa.Integer(), nullable=False),
        sa.Column('holder_code', sa.String(length=18), nullable=False),
        sa.Column('department_id', sa.Integer(), nullable=False),
        sa.Column('authorisation_id', sa.Integer(), nullable=False),
        sa.Column('action', sa.String(length=20), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(['authorisation_id'], ['licence_authorisation.id']),
        sa.ForeignKeyConstraint(['department_id'], ['department.id']),
        sa.ForeignKeyConstraint(['licence_id'], ['licence.id']),
        sa.PrimaryKeyConstraint('id'),
    )
    with op.batch_alter_table('licence_use', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_licence_use_licence_id'), ['licence_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_licence_use_holder_code'), ['holder_code'], unique=False)
        batch_op.create_index(batch_op.f('ix_licence_use_authorisation_id'), ['authorisation_id'])


def downgrade() -> None:
    op.drop_table('licence_use')
    op.drop_table('licence_authorisation')
