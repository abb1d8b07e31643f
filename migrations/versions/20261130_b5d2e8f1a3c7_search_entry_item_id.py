"""search_entry.item_id: the basic item each searchable entry implements (grouped search's service key)

Grouped search (one result per service) read every matched entry's item id through a join of
search_entry with implementation_entry; carrying it in search_entry lets grouping read the index
table alone, as flat search does. Adds a nullable column with an index, then backfills it from
implementation_entry in batches (one executemany per batch).

Revision ID: b5d2e8f1a3c7
Revises: 7b3e51d9a2c4
Create Date: 2026-11-30 22:05:00

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'b5d2e8f1a3c7'
down_revision: str | Sequence[str] | None = '7b3e51d9a2c4'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH = 5000


def upgrade() -> None:
    op.add_column('search_entry', sa.Column('item_id', sa.Integer(), nullable=True))
    op.create_index(op.f('ix_search_entry_item_id'), 'search_entry', ['item_id'])
    conn = op.get_bind()
    entry = sa.table('implementation_entry', sa.column('id', sa.Integer), sa.column('item_id', sa.Integer))
    search = sa.table('search_entry', sa.column('entry_id', sa.Integer), sa.column('item_id', sa.Integer))
    last = 0
    while True:
        rows = conn.execute(
            sa.select(search.c.entry_id, entry.c.item_id)
            .join(entry, entry.c.id == search.c.entry_id)
            .where(search.c.entry_id > last)
            .order_by(search.c.entry_id)
            .limit(BATCH)
        ).all()
        if not rows:
            break
        conn.execute(
            search.update().where(search.c.entry_id == sa.bindparam("b_id"))
            .values(item_id=sa.bindparam("b_item")),
            [{"b_id": r.entry_id, "b_item": r.item_id} for r in rows],
        )
        last = rows[-1].entry_id


def downgrade() -> None:
    # Plain DROP COLUMN (SQLite has it since 3.35), as the depth_level migration does.
    op.drop_index(op.f('ix_search_entry_item_id'), table_name='search_entry')
    op.drop_column('search_entry', 'item_id')
