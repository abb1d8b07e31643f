"""reports: case statistics, bundles, template tables, snapshots

Revision ID: 2bf428d1c188
Revises: d9b462b60a49
Create Date: 2026-11-27 00:10:00

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import core.types

revision: str = "2bf428d1c188"
down_revision: str | Sequence[str] | None = "d9b462b60a49"
branch_labels: str | Sequence[str] | None = ("reports",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "report_case_stat",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("entry_id", sa.Integer(), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("month", sa.Integer(), nullable=False),
        sa.Column("received", sa.Integer(), nullable=False),
        sa.Column("online", sa.Integer(), nullable=False),
        sa.Column("finished", sa.Integer(), nullable=False),
        sa.Column("on_time", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=20), nullable=False),
        sa.Column("imported_at", core.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["entry_id"], ["implementation_entry.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("entry_id", "year", "month", name="uq_report_case_stat_month"),
        sa.CheckConstraint("month BETWEEN 1 AND 12", name="ck_report_case_stat_month"),
        sa.CheckConstraint(
            "received >= 0 AND online >= 0 AND finished >= 0 AND on_time >= 0 "
            "AND online <= received AND on_time <= finished",
            name="ck_report_case_stat_counts",
        ),
    )
    op.create_index("ix_report_case_stat_entry_id", "report_case_stat", ["entry_id"])
    op.create_index("ix_report_case_stat_year", "report_case_stat", ["year"])

    op.create_table(
        "report_bundle",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("published", sa.Boolean(), nullable=False),
        sa.Column("published_at", core.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", core.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", core.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "report_bundle_entry",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("bundle_id", sa.Integer(), nullable=False),
        sa.Column("entry_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["bundle_id"], ["report_bundle.id"]),
        sa.ForeignKeyConstraint(["entry_id"], ["implementation_entry.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("bundle_id", "entry_id", name="uq_report_bundle_entry"),
    )
    op.create_index("ix_report_bundle_entry_bundle_id", "report_bundle_entry", ["bundle_id"])
    op.create_index("ix_report_bundle_entry_entry_id", "report_bundle_entry", ["entry_id"])

    op.create_table(
        "report_template_table",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("table", sa.String(length=2), nullable=False),
        sa.Column("values", sa.JSON(), nullable=False),
        sa.Column("updated_by", sa.String(length=100), nullable=False),
        sa.Column("updated_at", core.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("year", "table", name="uq_report_template_table"),
    )
    op.create_index("ix_report_template_table_year", "report_template_table", ["year"])

    op.create_table(
        "report_snapshot",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("as_of", core.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("definitions_version", sa.String(length=20), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column("created_at", core.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_report_snapshot_year", "report_snapshot", ["year"])


def downgrade() -> None:
    op.drop_table("report_snapshot")
    op.drop_table("report_template_table")
    op.drop_table("report_bundle_entry")
    op.drop_table("report_bundle")
    op.drop_table("report_case_stat")
