"""search cells: per-term facet counts, so broad queries count facets without scanning entries

Revision ID: 347a88750b93
Revises: d5c960580209
Create Date: 2026-11-27

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "347a88750b93"
down_revision: str | Sequence[str] | None = "d5c960580209"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "search_cell",
        sa.Column("term_id", sa.Integer(), nullable=False),
        sa.Column("level", sa.String(length=1), nullable=False),
        sa.Column("div_key", sa.String(length=12), nullable=False),
        sa.Column("department_id", sa.Integer(), nullable=False),
        sa.Column("task_type", sa.String(length=2), nullable=False),
        sa.Column("no_contact", sa.Boolean(), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["term_id"], ["search_term.id"]),
        sa.PrimaryKeyConstraint("term_id", "level", "div_key", "department_id", "task_type", "no_contact"),
    )
    # Facet counts now come from the cells: the wide covering index gives way to the one that serves
    # "a term's entries in id order" (the result page).
    op.drop_index("ix_search_entry_facets", table_name="search_entry")
    op.create_index("ix_search_entry_term_entry", "search_entry", ["name_term_id", "entry_id"])
    # Entries indexed before this revision: fill the cells from them.
    op.execute(
        "INSERT INTO search_cell (term_id, level, div_key, department_id, task_type, no_contact, n) "
        "SELECT name_term_id, level, "
        "CASE WHEN level IN ('5', '6') THEN substr(division_code, 1, 9) || '000' "
        "ELSE substr(division_code, 1, 6) || '000000' END, "
        "CASE WHEN level = '6' THEN 0 ELSE department_id END, task_type, no_contact, count(*) "
        "FROM search_entry GROUP BY 1, 2, 3, 4, 5, 6"
    )


def downgrade() -> None:
    op.drop_table("search_cell")
    op.drop_index("ix_search_entry_term_entry", table_name="search_entry")
    op.create_index(
        "ix_search_entry_facets",
        "search_entry",
        ["name_term_id", "level", "division_code", "department_id", "task_type", "no_contact", "entry_id"],
    )
