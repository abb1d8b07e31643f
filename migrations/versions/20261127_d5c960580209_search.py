"""search: gram index over distinct texts, postings, searchable entries, aliases, misses

Revision ID: d5c960580209
Revises: d9b462b60a49
Create Date: 2026-11-27

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import core.types

revision: str = "d5c960580209"
down_revision: str | Sequence[str] | None = "d9b462b60a49"
branch_labels: str | Sequence[str] | None = ("search",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "search_term",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("text", sa.String(length=300), nullable=False),
        sa.Column("pinyin", sa.String(length=1500), nullable=False),
        sa.Column("initials", sa.String(length=300), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("text"),
    )
    op.create_table(
        "search_gram",
        sa.Column("gram", sa.String(length=8), nullable=False),
        sa.Column("term_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["term_id"], ["search_term.id"]),
        sa.PrimaryKeyConstraint("gram", "term_id"),
    )
    op.create_table(
        "search_entry",
        sa.Column("entry_id", sa.Integer(), nullable=False),
        sa.Column("task_code", sa.String(length=31), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("name_len", sa.Integer(), nullable=False),
        sa.Column("name_term_id", sa.Integer(), nullable=False),
        sa.Column("department_id", sa.Integer(), nullable=False),
        sa.Column("department_name", sa.String(length=100), nullable=False),
        sa.Column("level", sa.String(length=1), nullable=False),
        sa.Column("division_code", sa.String(length=12), nullable=False),
        sa.Column("task_type", sa.String(length=2), nullable=False),
        sa.Column("no_contact", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["entry_id"], ["implementation_entry.id"]),
        sa.ForeignKeyConstraint(["name_term_id"], ["search_term.id"]),
        sa.PrimaryKeyConstraint("entry_id"),
    )
    op.create_index("ix_search_entry_department_id", "search_entry", ["department_id"])
    op.create_index(
        "ix_search_entry_facets",
        "search_entry",
        ["name_term_id", "level", "division_code", "department_id", "task_type", "no_contact", "entry_id"],
    )
    op.create_table(
        "search_posting",
        sa.Column("term_id", sa.Integer(), nullable=False),
        sa.Column("field", sa.Integer(), nullable=False),
        sa.Column("entry_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["entry_id"], ["search_entry.entry_id"]),
        sa.ForeignKeyConstraint(["term_id"], ["search_term.id"]),
        sa.PrimaryKeyConstraint("term_id", "field", "entry_id"),
    )
    op.create_index("ix_search_posting_entry_id", "search_posting", ["entry_id"])
    op.create_table(
        "search_alias",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("alias", sa.String(length=50), nullable=False),
        sa.Column("targets", sa.String(length=500), nullable=False),
        sa.Column("note", sa.String(length=300), nullable=False),
        sa.Column("updated_at", core.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("alias"),
    )
    op.create_table(
        "search_miss",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("query", sa.String(length=100), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("first_seen", core.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_seen", core.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("query"),
    )
    op.create_index("ix_search_miss_count", "search_miss", ["count"])

    # Seed the curated alias table shipped in data/ (administrators edit the live copy afterwards).
    from catalog.search import read_aliases_csv

    alias_table = sa.table(
        "search_alias",
        sa.column("alias", sa.String),
        sa.column("targets", sa.String),
        sa.column("note", sa.String),
        sa.column("updated_at", core.types.UTCDateTime(timezone=True)),
    )
    now = core.types.utcnow()
    op.bulk_insert(alias_table, [{**row, "updated_at": now} for row in read_aliases_csv()])


def downgrade() -> None:
    op.drop_table("search_miss")
    op.drop_table("search_alias")
    op.drop_index("ix_search_posting_entry_id", table_name="search_posting")
    op.drop_table("search_posting")
    op.drop_index("ix_search_entry_facets", table_name="search_entry")
    op.drop_index("ix_search_entry_department_id", table_name="search_entry")
    op.drop_table("search_entry")
    op.drop_table("search_gram")
    op.drop_table("search_term")
