"""merge package branches

Revision ID: b16a2d09e97b
Revises: 2bf428d1c188, 347a88750b93, 5e7a9c1b2d40, ea5efdd8c8ee
Create Date: 2026-11-27 01:10:44.278602

"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel  # noqa: F401  (autogenerate references sqlmodel.sql.sqltypes)
from alembic import op

import core.types  # noqa: F401


revision: str = 'b16a2d09e97b'
down_revision: str | Sequence[str] | None = ('2bf428d1c188', '347a88750b93', '5e7a9c1b2d40', 'ea5efdd8c8ee')
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
