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
    ('独生子女补贴', '计划生育家庭', '独生子女父母的奖励扶助（tuning half, batch 14: 独生子女补贴父母多大年龄可以领）；只对补贴：补办独生子女证本目录无此事项（batch 15 no-answer）'),
    ('滴滴', '网络预约出租汽车', '网约车平台的俗称（tuning half, batch 14: 滴滴营运证办理要求条件是什么）'),
    ('转学', '学籍异动', '转学属于学籍异动（tuning half, batch 14: 小学转学需要什么流程）'),
    ('住院费', '医疗费', '住院费用的报销即医疗费支付（tuning half, batch 14: 异地生育住院费怎么报销）'),
    ('叉车', '特种设备作业人员', '叉车司机证是特种设备作业人员证（tuning half, batch 14: 叉车正在哪考）'),
    ('ktv', '歌舞娱乐场所', 'KTV 即歌舞娱乐场所（tuning half, batch 15: 我要开KTV）'),
    ('宠物医院', '动物诊疗', '开宠物医院需动物诊疗许可（tuning half, batch 15: 开宠物医院需要哪些条件）'),
    ('门头', '户外招牌', '店铺门头即户外招牌（tuning half, batch 15: 店铺门头审批需要什么手续）'),
    ('地摊', '摊点', '地摊即临时便民服务摊点（tuning half, batch 15: 地摊证怎么办理）'),
    ('老年金', '城乡居民基本养老保险', '农村老年金即城乡居民基本养老保险（tuning half, batch 15: 农村老年金怎么交）'),
    ('城乡居民医疗保险', '城乡居民参保|城乡居民基本医疗保险', '（tuning half, batch 15: 城乡居民医疗保险怎么交）'),
    ('居民医保', '城乡居民参保|城乡居民基本医疗保险', '城乡居民医疗保险的简称'),
    ('4050', '就业困难人员', '4050 人员（女 40、男 50 岁以上）按就业困难人员扶持（tuning half, batch 15: 4050补贴怎么申请）'),
    ('辞职', '个人账户储存额一次性申领|养老保险关系转移|失业保险金', '辞职后问养老保险个人账户、转移和失业金（tuning half, batch 15: 辞职了养老保险怎么取）'),
    ('年检', '年度审验|年审', '车辆年检即年度审验（tuning half, batch 15: 年检道路运输证要多少钱）'),
    ('自建房', '乡村建设规划许可|宅基地', '农村自建房先办乡村建设规划许可（tuning half, batch 15: 农村自建房需要办理哪些手续）'),
    ('护士资格证', '护士执业', '群众常把护士执业证书叫护士资格证（tuning half, batch 15: 护士资格证补办）'),
    ('乞讨', '流浪乞讨人员', '乞讨者、乞讨人员（tuning half, batch 15: 遇到流浪乞讨者怎么办）'),
    ('流浪汉', '流浪乞讨人员', '流浪乞讨人员的俗称'),
    ('休学', '休学', '因病休学即延缓入学或者休学审批（tuning half, batch 15: 孩子生病休学都需要什么手续）'),
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
