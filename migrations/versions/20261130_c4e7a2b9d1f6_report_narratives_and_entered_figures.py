"""reports: narrative blocks per year and entered figures (annual report, issue #13 items 3 and 5)

Revision ID: c4e7a2b9d1f6
Revises: a7c3e9d1f402
Create Date: 2026-11-30 20:45:00

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import core.types

revision: str = "c4e7a2b9d1f6"
down_revision: str | Sequence[str] | None = "a7c3e9d1f402"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "report_narrative",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=40), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("updated_by", sa.String(length=100), nullable=False),
        sa.Column("updated_at", core.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("year", "key", name="uq_report_narrative"),
    )
    op.create_index("ix_report_narrative_year", "report_narrative", ["year"])
    op.create_table(
        "report_entered_figure",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=60), nullable=False),
        sa.Column("value", sa.String(length=200), nullable=False),
        sa.Column("unit", sa.String(length=20), nullable=False),
        sa.Column("lower_bound", sa.Boolean(), nullable=False),
        sa.Column("note", sa.String(length=200), nullable=False),
        sa.Column("updated_by", sa.String(length=100), nullable=False),
        sa.Column("updated_at", core.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("year", "key", name="uq_report_entered_figure"),
    )
    op.create_index("ix_report_entered_figure_year", "report_entered_figure", ["year"])


def downgrade() -> None:
    op.drop_index("ix_report_entered_figure_year", table_name="report_entered_figure")
    op.drop_table("report_entered_figure")
    op.drop_index("ix_report_narrative_year", table_name="report_narrative")
    op.drop_table("report_narrative")
