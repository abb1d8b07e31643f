"""licence types: one type per name (duplicates merged); the 实施编码 a licence was issued under

Revision ID: 5d2a9c7e1f08
Revises: 3b8f0d6e2c45
Create Date: 2026-11-30 16:40:00

Duplicates (same name, e.g. 结婚证 loaded once from the national codes and once from the local list)
are merged into the oldest row (lowest id: the demo and `flask licences load-types` load the national
types first). Its licences move to the surviving type but keep the type code they were issued under
(it is part of their identifier); the services match licences to types by id, so grants and lookups
of the surviving type cover them. Entry links and grants move over unless the survivor already has
them; materials naming the old code name the survivor's. Then the name becomes unique.
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '5d2a9c7e1f08'
down_revision: str | Sequence[str] | None = '3b8f0d6e2c45'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _merge_duplicates(conn: sa.Connection) -> None:
    groups = conn.execute(sa.text(
        "SELECT name FROM licence_type GROUP BY name HAVING count(*) > 1"
    )).scalars().all()
    for name in groups:
        rows = conn.execute(
            sa.text("SELECT id, code FROM licence_type WHERE name = :n ORDER BY id"), {"n": name}
        ).all()
        keep_id, keep_code = rows[0]
        for dup_id, dup_code in rows[1:]:
            p = {"keep": keep_id, "dup": dup_id, "keep_code": keep_code, "dup_code": dup_code}
            conn.execute(sa.text("UPDATE licence SET type_id = :keep WHERE type_id = :dup"), p)
            conn.execute(sa.text(
                "DELETE FROM licence_type_entry WHERE licence_type_id = :dup AND EXISTS ("
                " SELECT 1 FROM licence_type_entry k WHERE k.licence_type_id = :keep"
                " AND k.task_code = licence_type_entry.task_code AND k.role = licence_type_entry.role)"
            ), p)
            conn.execute(sa.text(
                "UPDATE licence_type_entry SET licence_type_id = :keep WHERE licence_type_id = :dup"
            ), p)
            conn.execute(sa.text(
                "DELETE FROM licence_grant WHERE type_code = :dup_code AND EXISTS ("
                " SELECT 1 FROM licence_grant k WHERE k.type_code = :keep_code"
                " AND k.user_id = licence_grant.user_id AND k.department_id = licence_grant.department_id)"
            ), p)
            conn.execute(sa.text(
                "UPDATE licence_grant SET type_code = :keep_code WHERE type_code = :dup_code"
            ), p)
            conn.execute(sa.text(
                "UPDATE entry_material SET licence_type_code = :keep_code WHERE licence_type_code = :dup_code"
            ), p)
            conn.execute(sa.text("DELETE FROM licence_type WHERE id = :dup"), p)


def upgrade() -> None:
    with op.batch_alter_table('licence', schema=None) as batch_op:
        batch_op.add_column(sa.Column('task_code', sa.String(length=31), nullable=True))
    _merge_duplicates(op.get_bind())
    # A unique index, not a constraint: SQLite would rebuild the table, which licences reference.
    op.drop_index('ix_licence_type_name', table_name='licence_type')
    op.create_index('ix_licence_type_name', 'licence_type', ['name'], unique=True)


def downgrade() -> None:
    op.drop_index('ix_licence_type_name', table_name='licence_type')
    op.create_index('ix_licence_type_name', 'licence_type', ['name'], unique=False)
    with op.batch_alter_table('licence', schema=None) as batch_op:
        batch_op.drop_column('task_code')
