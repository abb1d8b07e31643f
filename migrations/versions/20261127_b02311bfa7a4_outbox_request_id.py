"""outbox request id

Revision ID: b02311bfa7a4
Revises: b16a2d09e97b
Create Date: 2026-11-27 01:14:36.058621

"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel  # noqa: F401  (autogenerate references sqlmodel.sql.sqltypes)
from alembic import op

import core.types  # noqa: F401

revision: str = 'b02311bfa7a4'
down_revision: str | Sequence[str] | None = 'b16a2d09e97b'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # The request id of the web request that made the change (structured logs follow it to the registry).
    op.add_column("licence_outbox", sa.Column("request_id", sa.String(length=64), nullable=True))


def downgrade() -> None:
    op.drop_column("licence_outbox", "request_id")
