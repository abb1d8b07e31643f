"""licence grants: licence rights per user, department and licence type

Revision ID: 7a1e5c3b9d21
Revises: c41d7e2a9f10
Create Date: 2026-11-30 16:10:00

No grant is carried over from existing data: until now every department editor could issue, and
turning that into grants would hand catalogue editors the rights this table exists to separate.
Administrators grant them with `flask licences grant` (docs/licences.md).
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import core.types

revision: str = '7a1e5c3b9d21'
down_revision: str | Sequence[str] | None = 'c41d7e2a9f10'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'licence_grant',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('department_id', sa.Integer(), nullable=False),
        sa.Column('type_code', sa.String(length=21), nullable=False),
        sa.Column('granted_by', sa.Integer(), nullable=True),
        sa.Column('granted_at', core.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column('revoked_at', core.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['department_id'], ['department.id']),
        sa.ForeignKeyConstraint(['user_id'], ['app_user.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('user_id', 'department_id', 'type_code', name='uq_licence_grant'),
    )
    with op.batch_alter_table('licence_grant', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_licence_grant_user_id'), ['user_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_licence_grant_department_id'), ['department_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('licence_grant', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_licence_grant_department_id'))
        batch_op.drop_index(batch_op.f('ix_licence_grant_user_id'))
    op.drop_table('licence_grant')
