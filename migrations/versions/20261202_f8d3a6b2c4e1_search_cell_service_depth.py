# ruff: noqa: S608  (the statements are built from the constants below, no input)
"""search_cell: a cell per service and 网上办理深度 level too

Grouped search reads its (service, term, cell) rows from the cells instead of reading and
de-duplicating every matching entry (catalog.search.grouping). The cells are rebuilt from
search_entry with the rule frozen here (a migration does not import the live catalog.search).

Revision ID: f8d3a6b2c4e1
Revises: e4b7c2d9a1f6
Create Date: 2026-12-02 00:50:00

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'f8d3a6b2c4e1'
down_revision: str | Sequence[str] | None = 'e4b7c2d9a1f6'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copies of catalog.search.facet_keys at this revision: the facet division (town for levels 5
# and 6 with a 12-digit code, else county), the facet department (0 for village committees), the
# service (the basic item, or minus the entry id) and the depth (0 for none).
_DIVISION = ("CASE WHEN level IN ('5', '6') AND length(division_code) = 12 "
             "THEN substr(division_code, 1, 9) || '000' ELSE substr(division_code, 1, 6) || '000000' END")
_DEPARTMENT = "CASE WHEN level = '6' THEN 0 ELSE department_id END"


def _create(with_service: bool) -> None:
    extra = [sa.Column('service', sa.Integer(), nullable=False)] if with_service else []
    depth = [sa.Column('depth', sa.Integer(), nullable=False)] if with_service else []
    keys = ['term_id', *(['service'] if with_service else []), 'level', 'div_key', 'department_id',
            'task_type', 'no_contact', *(['depth'] if with_service else [])]
    op.create_table(
        'search_cell',
        sa.Column('term_id', sa.Integer(), nullable=False),
        *extra,
        sa.Column('level', sa.String(length=1), nullable=False),
        sa.Column('div_key', sa.String(length=12), nullable=False),
        sa.Column('department_id', sa.Integer(), nullable=False),
        sa.Column('task_type', sa.String(length=2), nullable=False),
        sa.Column('no_contact', sa.Boolean(), nullable=False),
        *depth,
        sa.Column('n', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['term_id'], ['search_term.id']),
        sa.PrimaryKeyConstraint(*keys),
    )


def upgrade() -> None:
    op.drop_table('search_cell')
    _create(with_service=True)
    op.execute(
        "INSERT INTO search_cell (term_id, service, level, div_key, department_id, task_type, no_contact, "
        f"depth, n) SELECT name_term_id, coalesce(item_id, -entry_id), level, {_DIVISION}, {_DEPARTMENT}, "
        "task_type, no_contact, coalesce(depth_level, 0), count(*) FROM search_entry "
        "GROUP BY 1, 2, 3, 4, 5, 6, 7, 8"
    )


def downgrade() -> None:
    op.drop_table('search_cell')
    _create(with_service=False)
    op.execute(
        "INSERT INTO search_cell (term_id, level, div_key, department_id, task_type, no_contact, n) "
        f"SELECT name_term_id, level, {_DIVISION}, {_DEPARTMENT}, task_type, no_contact, count(*) "
        "FROM search_entry GROUP BY 1, 2, 3, 4, 5, 6"
    )
