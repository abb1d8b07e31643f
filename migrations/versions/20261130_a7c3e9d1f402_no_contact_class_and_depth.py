"""不见面 elements (办理形式, 需见面的环节, 容缺受理), the derived 不见面 class and 网上办理深度 level

Adds nullable columns only (online-safe) and backfills the two derived columns in batches with this
file's own copy of the rules (catalog/norules.py at the time of writing: migrations never import
live modules). No 办理形式 is recorded yet, so the rule finds no existing entry 不见面 until a person
records how it is handled: that is the point (unknown is never a pass).

Revision ID: a7c3e9d1f402
Revises: 0974e69fbf2d
Create Date: 2026-11-30 18:20:00

"""
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = 'a7c3e9d1f402'
down_revision: str | Sequence[str] | None = '0974e69fbf2d'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH = 2000
SCOPE_TYPES = frozenset({"01", "07", "08", "05", "04", "10"})
NO_MEETING_FORMS = ("online", "kiosk", "post", "proxy")


def _codes(value: Any) -> set[str]:
    return {p.strip() for p in (value or "").split(",") if p.strip()}


def _class(row: Any, materials: list[Any], produces: bool) -> str:
    """Copy of catalog.norules.evaluate_no_contact (its class only)."""
    if row.applicable is False or row.task_type not in SCOPE_TYPES:
        return "none"
    forms, depth = _codes(row.handle_forms), _codes(row.online_depth)
    means = [f for f in NO_MEETING_FORMS if f in forms]
    apply_ok = bool(means) and not (means == ["online"] and "4" not in depth)
    paper_ok = bool(forms & {"post", "proxy"})
    for m in materials:
        if m.required is False:
            continue
        if not (m.form in ("electronic", "both") or m.licence_type_code or (paper_ok and m.form)):
            apply_ok = False
    delivery = _codes(row.result_delivery)
    result_ok = bool(delivery) and bool(
        delivery & {"online", "post"} or "proxy" in forms or ("elicence" in delivery and produces)
    )
    implied = (0 if apply_ok else 1) + (0 if result_ok else 1)
    if row.visits == 0 and implied == 0:
        return "full"
    if row.visits == 1 and (row.meeting_step or "").strip() and implied <= 1:
        return "partial"
    return "none"


def _depth(online_depth: Any, visits: Any) -> int | None:
    """Copy of catalog.norules.derive_depth_level."""
    codes = _codes(online_depth)
    if not codes:
        return None
    if {"4", "5"} <= codes and codes & {"6", "7"} and visits == 0:
        return 4
    if codes & {"3", "4", "5"}:
        return 3
    return 2 if "2" in codes else 1


def upgrade() -> None:
    with op.batch_alter_table('implementation_entry', schema=None) as batch_op:
        batch_op.add_column(sa.Column('handle_forms', sa.String(length=60), nullable=True))
        batch_op.add_column(sa.Column('meeting_step', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('tolerant_acceptance', sa.Boolean(), nullable=True))
        batch_op.add_column(sa.Column('no_contact_class', sa.String(length=10), nullable=True))
        batch_op.add_column(sa.Column('depth_level', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_implementation_entry_depth_level'), ['depth_level'])
    with op.batch_alter_table('search_entry', schema=None) as batch_op:
        batch_op.add_column(sa.Column('depth_level', sa.Integer(), nullable=True))

    conn = op.get_bind()
    entry = sa.table(
        'implementation_entry', sa.column('id', sa.Integer), sa.column('task_code', sa.String),
        sa.column('applicable', sa.Boolean), sa.column('task_type', sa.String),
        sa.column('handle_forms', sa.String), sa.column('online_depth', sa.String),
        sa.column('result_delivery', sa.String), sa.column('visits', sa.Integer),
        sa.column('meeting_step', sa.String), sa.column('no_contact_class', sa.String),
        sa.column('depth_level', sa.Integer),
    )
    material = sa.table(
        'entry_material', sa.column('entry_id', sa.Integer), sa.column('required', sa.Boolean),
        sa.column('form', sa.String), sa.column('licence_type_code', sa.String),
    )
    link = sa.table('licence_type_entry', sa.column('task_code', sa.String), sa.column('role', sa.String))
    search = sa.table('search_entry', sa.column('entry_id', sa.Integer), sa.column('depth_level', sa.Integer))
    last = 0
    while True:
        rows = conn.execute(
            sa.select(entry).where(entry.c.id > last).order_by(entry.c.id).limit(BATCH)
        ).all()
        if not rows:
            break
        ids = [r.id for r in rows]
        by_entry: dict[int, list[Any]] = {}
        for m in conn.execute(sa.select(material).where(material.c.entry_id.in_(ids))):
            by_entry.setdefault(m.entry_id, []).append(m)
        producing = set(conn.execute(
            sa.select(link.c.task_code).where(
                link.c.role == 'produces', link.c.task_code.in_([r.task_code for r in rows])
            )
        ).scalars())
        values = [
            {"b_id": r.id, "b_class": _class(r, by_entry.get(r.id, []), r.task_code in producing),
             "b_depth": _depth(r.online_depth, r.visits)}
            for r in rows
        ]
        # One executemany per batch, not a statement per row.
        conn.execute(
            entry.update().where(entry.c.id == sa.bindparam("b_id"))
            .values(no_contact_class=sa.bindparam("b_class"), depth_level=sa.bindparam("b_depth")),
            values,
        )
        known = [v for v in values if v["b_depth"] is not None]
        if known:
            conn.execute(
                search.update().where(search.c.entry_id == sa.bindparam("b_id"))
                .values(depth_level=sa.bindparam("b_depth")),
                known,
            )
        last = ids[-1]


def downgrade() -> None:
    # Plain DROP COLUMN (SQLite has it since 3.35): a batch table copy of implementation_entry would
    # break the foreign keys that point at it.
    op.drop_column('search_entry', 'depth_level')
    op.drop_index(op.f('ix_implementation_entry_depth_level'), table_name='implementation_entry')
    for column in ('depth_level', 'no_contact_class', 'tolerant_acceptance', 'meeting_step', 'handle_forms'):
        op.drop_column('implementation_entry', column)
