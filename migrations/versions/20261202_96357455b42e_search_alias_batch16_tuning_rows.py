"""search_alias: aliases written from batch 16's tuning rows (issue 14)

As b9e2d4f7a315: each alias is added only where no alias with that word exists (an administrator's own
row for the word is kept as it is); the rows are frozen here as data/search_aliases.csv holds them at
this revision, and the search state token changes so no running process answers from its cache with
the old table.

Revision ID: 96357455b42e
Revises: b9e2d4f7a315
Create Date: 2026-12-02 14:30:00

"""
import secrets
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import core.types

revision: str = '96357455b42e'
down_revision: str | Sequence[str] | None = 'b9e2d4f7a315'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (alias, "|"-separated targets, note) as data/search_aliases.csv holds them at this revision.
ALIASES: list[tuple[str, str, str]] = [
    ('五保', '特困人员', '五保户即特困人员救助供养对象的旧称（tuning half, batch 16: 五保户的申请过程是什么）'),
    ('大病救助', '医疗救助', '大病救助属医疗救助（tuning half, batch 16: 大病救助金的申请条件是什么）'),
    ('转业', '军人退役', '军人转业的养老保险即军人退役养老保险关系转移接续（tuning half, batch 16: 转业基本养老保险）'),
    ('新农合', '城乡居民参保|城乡居民基本医疗保险', '新型农村合作医疗已并入城乡居民基本医疗保险（tuning half, batch 16: 低保户怎么交新农合）'),
    ('保障性住房', '公共租赁住房|住房保障', '租保障性住房即公共租赁住房（tuning half, batch 16: 保障性住房怎么租）'),
    ('餐饮店', '食品 含保健食品 经营许可|食品小经营店', '开餐饮店需食品经营许可（tuning half, batch 16: 开餐饮店需要办哪些证照）'),
    ('环评', '环境影响', '环评即环境影响评价（tuning half, batch 16: 哪些建设项目需要办理环评手续）'),
    ('卖酒', '仅销售预包装食品|食品 含保健食品 经营许可', '酒类属食品，卖酒办食品经营许可或备案（tuning half, batch 16: 卖酒需要办理什么证件）'),
    ('负数发票', '红字增值税专用发票', '负数发票即红字发票（tuning half, batch 16: 负数发票如何开）'),
    ('拖欠工资', '劳动人事争议仲裁', '欠薪可申请劳动人事争议仲裁（tuning half, batch 16: 单位拖欠工资应找哪个部门投素）'),
    ('汽车维修', '机动车维修', '（tuning half, batch 16: 汽车维修业备按是什么意思）'),
    ('个人档案', '档案查|到档查询', '查询个人档案即档案查阅、到档查询（tuning half, batch 16: 如何查询个人档案）'),
    ('天然气', '供气报装', '居民装管道天然气即供气报装（tuning half, batch 16: 用户想装管道天然气怎么申报）'),
    ('二胎', '生育', '生二胎的津贴、登记即生育的事项（tuning half, batch 16: 生二胎津贴能领几个月）'),
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
