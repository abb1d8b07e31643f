"""search_entry: the index a grouped page reads its services' places from

``(item_id, level, division_code, entry_id)`` replaces the index on ``item_id`` alone (its prefix
serves every query that one did): catalog.search.grouping.page_places reads each service's first
places and its count from it instead of sorting every claim of the page's services.

Revision ID: e4b7c2d9a1f6
Revises: a7c3e9f2b815
Create Date: 2026-12-02 00:40:00

"""
from collections.abc import Sequence

from alembic import op

revision: str = 'e4b7c2d9a1f6'
down_revision: str | Sequence[str] | None = 'a7c3e9f2b815'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index('ix_search_entry_item_places', 'search_entry',
                    ['item_id', 'level', 'division_code', 'entry_id'])
    op.drop_index('ix_search_entry_item_id', table_name='search_entry')


def downgrade() -> None:
    op.create_index('ix_search_entry_item_id', 'search_entry', ['item_id'])
    op.drop_index('ix_search_entry_item_places', table_name='search_entry')
