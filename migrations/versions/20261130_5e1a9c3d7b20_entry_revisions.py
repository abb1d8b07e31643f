"""entry revisions, review settings and the last rejection reason of a draft

Revision ID: 5e1a9c3d7b20
Revises: f3a9c1d7e5b2
Create Date: 2026-11-30 18:10:00

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import core.types

revision: str = '5e1a9c3d7b20'
down_revision: str | Sequence[str] | None = 'f3a9c1d7e5b2'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OPEN = "status IN ('draft', 'submitted', 'rejected')"


def upgrade() -> None:
    # New tables and one nullable column: no rewrite of implementation_entry, safe online.
    op.create_table(
        "entry_revision",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("entry_id", sa.Integer(), nullable=False),
        sa.Column("base_version", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("reject_reason", sa.String(length=500), nullable=True),
        sa.Column("applied_version", sa.Integer(), nullable=True),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("created_by_name", sa.String(length=100), nullable=False),
        sa.Column("created_at", core.types.UTCDateTime(), nullable=False),
        sa.Column("updated_at", core.types.UTCDateTime(), nullable=False),
        sa.Column("submitted_by", sa.Integer(), nullable=True),
        sa.Column("submitted_by_name", sa.String(length=100), nullable=True),
        sa.Column("submitted_at", core.types.UTCDateTime(), nullable=True),
        sa.Column("decided_by", sa.Integer(), nullable=True),
        sa.Column("decided_by_name", sa.String(length=100), nullable=True),
        sa.Column("decided_at", core.types.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["entry_id"], ["implementation_entry.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_entry_revision_entry_id", "entry_revision", ["entry_id"], unique=False)
    op.create_index(
        "uq_entry_revision_open",
        "entry_revision",
        ["entry_id"],
        unique=True,
        postgresql_where=sa.text(OPEN),
        sqlite_where=sa.text(OPEN),
    )
    op.create_table(
        "review_setting",
        sa.Column("key", sa.String(length=60), nullable=False),
        sa.Column("value", sa.JSON(), nullable=False),
        sa.Column("updated_by", sa.Integer(), nullable=True),
        sa.Column("updated_at", core.types.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    with op.batch_alter_table("implementation_entry") as batch:
        batch.add_column(sa.Column("reject_reason", sa.String(length=500), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("implementation_entry") as batch:
        batch.drop_column("reject_reason")
    op.drop_table("review_setting")
    op.drop_index("uq_entry_revision_open", table_name="entry_revision")
    op.drop_index("ix_entry_revision_entry_id", table_name="entry_revision")
    op.drop_table("entry_revision")
