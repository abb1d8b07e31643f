"""search_state: the token search-result caches are keyed by

One row whose ``version`` (a random 62-bit number) changes in every transaction that changes what a
search can answer (catalog.search.state). Without it a cache of results could not know when the
index changed.

Revision ID: c6e1f0a9d2b4
Revises: b5d2e8f1a3c7
Create Date: 2026-12-01 00:45:00

"""
import secrets
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'c6e1f0a9d2b4'
down_revision: str | Sequence[str] | None = 'b5d2e8f1a3c7'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    state = op.create_table(
        'search_state',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('version', sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    op.bulk_insert(state, [{'id': 1, 'version': secrets.randbits(62)}])


def downgrade() -> None:
    op.drop_table('search_state')
