"""reports: case records (办件) with steps and special procedures, and their 电子监察 columns

New tables only (online-safe); nothing is backfilled: the monthly aggregates stay in report_case_stat.

Revision ID: 6f1e2d3c4b5a
Revises: 5c0be7a1d4f3
Create Date: 2026-11-30 17:58:03.827665

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import core.types

revision: str = '6f1e2d3c4b5a'
down_revision: str | Sequence[str] | None = '5c0be7a1d4f3'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('report_case',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('project_no', sa.String(length=64), nullable=False),
    sa.Column('entry_id', sa.Integer(), nullable=False),
    sa.Column('department_id', sa.Integer(), nullable=False),
    sa.Column('apply_date', sa.Date(), nullable=True),
    sa.Column('accept_date', sa.Date(), nullable=False),
    sa.Column('promise_days', sa.Integer(), nullable=True),
    sa.Column('promise_unit', sa.String(length=10), nullable=True),
    sa.Column('anticipate_days', sa.Integer(), nullable=True),
    sa.Column('anticipate_unit', sa.String(length=10), nullable=True),
    sa.Column('promise_date', sa.Date(), nullable=False),
    sa.Column('promise_computed', sa.Boolean(), nullable=False),
    sa.Column('applicant_type', sa.String(length=10), nullable=True),
    sa.Column('channel', sa.String(length=10), nullable=False),
    sa.Column('result_date', sa.Date(), nullable=True),
    sa.Column('result_type', sa.String(length=20), nullable=True),
    sa.Column('suspended_days', sa.Integer(), nullable=False),
    sa.Column('deadline', sa.Date(), nullable=False),
    sa.Column('on_time', sa.Boolean(), nullable=True),
    sa.Column('warning', sa.String(length=6), nullable=True),
    sa.Column('warning_since', sa.Date(), nullable=True),
    sa.Column('source', sa.String(length=10), nullable=False),
    sa.Column('created_at', core.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', core.types.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint("channel IN ('online', 'window')", name='ck_report_case_channel'),
    sa.CheckConstraint("warning IS NULL OR warning IN ('yellow', 'red')", name='ck_report_case_warning'),
    sa.CheckConstraint('result_date IS NULL OR result_date >= accept_date', name='ck_report_case_dates'),
    sa.ForeignKeyConstraint(['department_id'], ['department.id'], ),
    sa.ForeignKeyConstraint(['entry_id'], ['implementation_entry.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('project_no')
    )
    op.create_index(op.f('ix_report_case_accept_date'), 'report_case', ['accept_date'], unique=False)
    op.create_index(op.f('ix_report_case_department_id'), 'report_case', ['department_id'], unique=False)
    op.create_index(op.f('ix_report_case_entry_id'), 'report_case', ['entry_id'], unique=False)
    op.create_index(op.f('ix_report_case_result_date'), 'report_case', ['result_date'], unique=False)
    op.create_index(
        'ix_report_case_warned', 'report_case', ['deadline'], unique=False,
        postgresql_where=sa.text('warning IS NOT NULL'), sqlite_where=sa.text('warning IS NOT NULL'),
    )
    op.create_table('report_case_special',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('case_id', sa.Integer(), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=40), nullable=True),
    sa.Column('start_date', sa.Date(), nullable=False),
    sa.Column('end_date', sa.Date(), nullable=True),
    sa.ForeignKeyConstraint(['case_id'], ['report_case.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('case_id', 'seq', name='uq_report_case_special')
    )
    op.create_index(op.f('ix_report_case_special_case_id'), 'report_case_special', ['case_id'], unique=False)
    op.create_table('report_case_step',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('case_id', sa.Integer(), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('action', sa.String(length=100), nullable=False),
    sa.Column('start_date', sa.Date(), nullable=False),
    sa.Column('end_date', sa.Date(), nullable=True),
    sa.ForeignKeyConstraint(['case_id'], ['report_case.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('case_id', 'seq', name='uq_report_case_step')
    )
    op.create_index(op.f('ix_report_case_step_case_id'), 'report_case_step', ['case_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_report_case_step_case_id'), table_name='report_case_step')
    op.drop_table('report_case_step')
    op.drop_index(op.f('ix_report_case_special_case_id'), table_name='report_case_special')
    op.drop_table('report_case_special')
    op.drop_index('ix_report_case_warned', table_name='report_case')
    op.drop_index(op.f('ix_report_case_result_date'), table_name='report_case')
    op.drop_index(op.f('ix_report_case_entry_id'), table_name='report_case')
    op.drop_index(op.f('ix_report_case_department_id'), table_name='report_case')
    op.drop_index(op.f('ix_report_case_accept_date'), table_name='report_case')
    op.drop_table('report_case')
