"""upper-level basic catalogue, the province's 不见面 standard list, and 主管部门 on basic items

Revision ID: 5c0be7a1d4f3
Revises: 6e1f2a9c4b73
Create Date: 2026-11-30 18:00:00

Online-safe: two new tables and two nullable columns on catalog_item (no rewrite, no backfill:
a 主管部门 nobody recorded stays NULL, and no district item points to an upper item until one is
imported).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import core.types

revision: str = "5c0be7a1d4f3"
down_revision: str | Sequence[str] | None = "6e1f2a9c4b73"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "upper_catalog_item",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("level", sa.String(length=1), nullable=False),
        sa.Column("code", sa.String(length=60), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("task_type", sa.String(length=2), nullable=False),
        sa.Column("legal_basis", sa.Text(), nullable=True),
        sa.Column("use_levels", sa.String(length=11), nullable=True),
        sa.Column("competent_department", sa.String(length=100), nullable=True),
        sa.Column("source_file", sa.String(length=200), nullable=False),
        sa.Column("source_line", sa.Integer(), nullable=False),
        sa.Column("provenance", sa.String(length=1000), nullable=True),
        sa.Column("imported_at", core.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("level", "code", name="uq_upper_item_level_code"),
    )
    with op.batch_alter_table("upper_catalog_item", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_upper_catalog_item_code"), ["code"])
    op.create_table(
        "no_contact_standard_item",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=60), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("task_type", sa.String(length=2), nullable=True),
        sa.Column("source_file", sa.String(length=200), nullable=False),
        sa.Column("source_line", sa.Integer(), nullable=False),
        sa.Column("provenance", sa.String(length=1000), nullable=True),
        sa.Column("imported_at", core.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("code"),
    )
    with op.batch_alter_table("catalog_item", schema=None) as batch_op:
        batch_op.add_column(sa.Column("competent_department_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("upper_item_id", sa.Integer(), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_catalog_item_competent_department_id"), ["competent_department_id"]
        )
        batch_op.create_index(batch_op.f("ix_catalog_item_upper_item_id"), ["upper_item_id"])
        batch_op.create_foreign_key(
            "fk_catalog_item_competent_department_id_department",
            "department",
            ["competent_department_id"],
            ["id"],
        )
        batch_op.create_foreign_key(
            "fk_catalog_item_upper_item_id_upper_catalog_item",
            "upper_catalog_item",
            ["upper_item_id"],
            ["id"],
        )


def downgrade() -> None:
    with op.batch_alter_table("catalog_item", schema=None) as batch_op:
        batch_op.drop_constraint("fk_catalog_item_upper_item_id_upper_catalog_item", type_="foreignkey")
        batch_op.drop_constraint("fk_catalog_item_competent_department_id_department", type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_catalog_item_upper_item_id"))
        batch_op.drop_index(batch_op.f("ix_catalog_item_competent_department_id"))
        batch_op.drop_column("upper_item_id")
        batch_op.drop_column("competent_department_id")
    op.drop_table("no_contact_standard_item")
    op.drop_table("upper_catalog_item")
