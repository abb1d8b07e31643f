"""licence statuses as the law has them: 注销, 吊销, 撤销, 挂失/作废 apart; status date and public category

Revision ID: 3b8f0d6e2c45
Revises: 7a1e5c3b9d21
Create Date: 2026-11-30 16:20:00

Existing rows: 'revoked' used to mean "吊销 or 注销". A row whose internal reason says 吊销 becomes
吊销 (category penalty); every other one becomes 注销, conservatively (注销 is no penalty: calling a
holder's cancelled licence "revoked" would be the worse error), with category holder_request when the
reason says 申请, else legacy_unclassified, which the public page reads as "原为吊销/注销，未区分原因".
The status date of a changed row is the China-time day of status_changed_at (else of updated_at).
"""
from collections.abc import Sequence
from datetime import datetime, timedelta

import sqlalchemy as sa
from alembic import op

revision: str = '3b8f0d6e2c45'
down_revision: str | Sequence[str] | None = '7a1e5c3b9d21'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CHINA_OFFSET = timedelta(hours=8)  # Asia/Shanghai has had no daylight saving since 1991


def upgrade() -> None:
    with op.batch_alter_table('licence', schema=None) as batch_op:
        batch_op.add_column(sa.Column('status_date', sa.Date(), nullable=True))
        batch_op.add_column(sa.Column('status_category', sa.String(length=30), nullable=True))
    conn = op.get_bind()
    rows = conn.execute(sa.text(
        "SELECT id, status, status_reason, status_changed_at, updated_at FROM licence WHERE status <> 'valid'"
    )).all()
    for lid, status, reason, changed, updated in rows:
        when = changed or updated
        if isinstance(when, str):  # SQLite hands back text
            when = datetime.fromisoformat(when)
        day = (when + CHINA_OFFSET).date() if when is not None else None
        category = None
        if status == 'revoked':
            text = reason or ''
            if '吊销' in text:
                category = 'penalty'
            else:
                status = 'cancelled'
                category = 'holder_request' if '申请' in text else 'legacy_unclassified'
        conn.execute(
            sa.text("UPDATE licence SET status = :s, status_date = :d, status_category = :c WHERE id = :i"),
            {"s": status, "d": day, "c": category, "i": lid},
        )


def downgrade() -> None:
    op.execute("UPDATE licence SET status = 'revoked' WHERE status IN ('cancelled', 'withdrawn', 'void')")
    with op.batch_alter_table('licence', schema=None) as batch_op:
        batch_op.drop_column('status_category')
        batch_op.drop_column('status_date')
