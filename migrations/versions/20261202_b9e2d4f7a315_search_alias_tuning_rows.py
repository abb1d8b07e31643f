"""search_alias: aliases written from the tuning half of the labelled set (issue 14)

New installations and existing ones get the same table: each alias is added only where no alias with
that word exists (an administrator's own row for the word is kept as it is). The rows are frozen here,
as data/search_aliases.csv held them at this revision; the search state token changes so that no
running process keeps answering from its cache with the old table.

Revision ID: b9e2d4f7a315
Revises: f8d3a6b2c4e1
Create Date: 2026-12-02 08:00:00

"""
import secrets
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import core.types

revision: str = 'b9e2d4f7a315'
down_revision: str | Sequence[str] | None = 'f8d3a6b2c4e1'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (alias, "|"-separated targets, note) as data/search_aliases.csv holds them at this revision.
ALIASES: list[tuple[str, str, str]] = [
    ("独生子女", "计划生育家庭", "独生子女父母的奖励扶助（tuning half, batch 14: 独生子女补贴父母多大年龄可以领）"),
    ("滴滴", "网络预约出租汽车", "网约车平台的俗称（tuning half, batch 14: 滴滴营运证办理要求条件是什么）"),
    ("转学", "学籍异动", "转学属于学籍异动（tuning half, batch 14: 小学转学需要什么流程）"),
    ("住院费", "医疗费", "住院费用的报销即医疗费支付（tuning half, batch 14: 异地生育住院费怎么报销）"),
    ("叉车", "特种设备作业人员", "叉车司机证是特种设备作业人员证（tuning half, batch 14: 叉车正在哪考）"),
]

_alias = sa.table(
    "search_alias",
    sa.column("alias", sa.String),
    sa.column("targets", sa.String),
    sa.column("note", sa.String),
    sa.column("updated_at", core.types.UTCDateTime(timezone=True)),
)
_state = sa.table("search_state", sa.column("id", sa.Integer), sa.column("version", sa.BigInteger))


def _changed() -> None:
    op.execute(sa.update(_state).where(_state.c.id == 1).values(version=secrets.randbits(62)))


def upgrade() -> None:
    conn = op.get_bind()
    present = set(conn.execute(sa.select(_alias.c.alias)).scalars())
    now = core.types.utcnow()
    rows = [
        {"alias": alias, "targets": targets, "note": note, "updated_at": now}
        for alias, targets, note in ALIASES
        if alias not in present
    ]
    if rows:
        op.bulk_insert(_alias, rows)
        _changed()


def downgrade() -> None:
    # Only the rows this revision added, and only while they still say what it wrote (an
    # administrator's later change to one of them is kept).
    for alias, targets, _note in ALIASES:
        op.execute(sa.delete(_alias).where(_alias.c.alias == alias, _alias.c.targets == targets))
    _changed()
