"""login failures per attempted name, session epoch per user

Failed logins move from app_user to login_failure, keyed by the SHA-256 of the name typed, so that
unknown names are throttled and answered exactly like real accounts, and the count is one atomic
upsert.
app_user.session_epoch ends every session of a user when it moves (logout, password, deactivation).

Revision ID: d0d8ce8f3bdd
Revises: b02311bfa7a4
Create Date: 2026-11-30 15:30:00

"""
import hashlib
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import core.types

revision: str = 'd0d8ce8f3bdd'
down_revision: str | Sequence[str] | None = 'b02311bfa7a4'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'login_failure',
        sa.Column('name_digest', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column('failed_count', sa.Integer(), nullable=False),
        sa.Column('locked_until', core.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column('last_failed_at', core.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('name_digest'),
    )
    with op.batch_alter_table('login_failure', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_login_failure_last_failed_at'), ['last_failed_at'], unique=False)
    with op.batch_alter_table('app_user', schema=None) as batch_op:
        batch_op.add_column(sa.Column('session_epoch', sa.Integer(), nullable=False, server_default='0'))
    # Current counts and locks are carried over: a lock must not end because of an upgrade.
    users = sa.table(
        'app_user',
        sa.column('username', sa.String), sa.column('failed_logins', sa.Integer),
        sa.column('locked_until', core.types.UTCDateTime(timezone=True)),
        sa.column('created_at', core.types.UTCDateTime(timezone=True)),
    )
    rows = op.get_bind().execute(
        sa.select(users.c.username, users.c.failed_logins, users.c.locked_until, users.c.created_at)
        .where(sa.or_(users.c.failed_logins > 0, users.c.locked_until.is_not(None)))
    ).all()
    failures = sa.table(
        'login_failure',
        sa.column('name_digest', sa.String), sa.column('failed_count', sa.Integer),
        sa.column('locked_until', core.types.UTCDateTime(timezone=True)),
        sa.column('last_failed_at', core.types.UTCDateTime(timezone=True)),
    )
    for username, count, locked_until, created_at in rows:
        op.execute(failures.insert().values(
            name_digest=hashlib.sha256(username.encode()).hexdigest(), failed_count=count,
            locked_until=locked_until, last_failed_at=locked_until or created_at,
        ))
    with op.batch_alter_table('app_user', schema=None) as batch_op:
        batch_op.drop_column('failed_logins')
        batch_op.drop_column('locked_until')


def downgrade() -> None:
    with op.batch_alter_table('app_user', schema=None) as batch_op:
        batch_op.add_column(sa.Column('failed_logins', sa.Integer(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('locked_until', core.types.UTCDateTime(timezone=True), nullable=True))
        batch_op.drop_column('session_epoch')
    # Counts and locks are not carried back (names are stored as digests only).
    with op.batch_alter_table('login_failure', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_login_failure_last_failed_at'))
    op.drop_table('login_failure')
