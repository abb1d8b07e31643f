"""search: gram index over distinct texts, postings, searchable entries, aliases, misses

Revision ID: d5c960580209
Revises: d9b462b60a49
Create Date: 2026-11-27

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import core.types

revision: str = "d5c960580209"
down_revision: str | Sequence[str] | None = "d9b462b60a49"
branch_labels: str | Sequence[str] | None = ("search",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "search_term",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("text", sa.String(length=300), nullable=False),
        sa.Column("pinyin", sa.String(length=1500), nullable=False),
        sa.Column("initials", sa.String(length=300), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("text"),
    )
    op.create_table(
        "search_gram",
        sa.Column("gram", sa.String(length=8), nullable=False),
        sa.Column("term_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["term_id"], ["search_term.id"]),
        sa.PrimaryKeyConstraint("gram", "term_id"),
    )
    op.create_table(
        "search_entry",
        sa.Column("entry_id", sa.Integer(), nullable=False),
        sa.Column("task_code", sa.String(length=31), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("name_len", sa.Integer(), nullable=False),
        sa.Column("name_term_id", sa.Integer(), nullable=False),
        sa.Column("department_id", sa.Integer(), nullable=False),
        sa.Column("department_name", sa.String(length=100), nullable=False),
        sa.Column("level", sa.String(length=1), nullable=False),
        sa.Column("division_code", sa.String(length=12), nullable=False),
        sa.Column("task_type", sa.String(length=2), nullable=False),
        sa.Column("no_contact", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["entry_id"], ["implementation_entry.id"]),
        sa.ForeignKeyConstraint(["name_term_id"], ["search_term.id"]),
        sa.PrimaryKeyConstraint("entry_id"),
    )
    op.create_index("ix_search_entry_department_id", "search_entry", ["department_id"])
    op.create_index(
        "ix_search_entry_facets",
        "search_entry",
        ["name_term_id", "level", "division_code", "department_id", "task_type", "no_contact", "entry_id"],
    )
    op.create_table(
        "search_posting",
        sa.Column("term_id", sa.Integer(), nullable=False),
        sa.Column("field", sa.Integer(), nullable=False),
        sa.Column("entry_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["entry_id"], ["search_entry.entry_id"]),
        sa.ForeignKeyConstraint(["term_id"], ["search_term.id"]),
        sa.PrimaryKeyConstraint("term_id", "field", "entry_id"),
    )
    op.create_index("ix_search_posting_entry_id", "search_posting", ["entry_id"])
    op.create_table(
        "search_alias",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("alias", sa.String(length=50), nullable=False),
        sa.Column("targets", sa.String(length=500), nullable=False),
        sa.Column("note", sa.String(length=300), nullable=False),
        sa.Column("updated_at", core.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("alias"),
    )
    op.create_table(
        "search_miss",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("query", sa.String(length=100), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("first_seen", core.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_seen", core.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("query"),
    )
    op.create_index("ix_search_miss_count", "search_miss", ["count"])

    # Seed the curated alias table as it was shipped with this revision. The rows are frozen here
    # (not read through catalog.search from data/), so replaying this migration later gives the same
    # table whatever the live code and the live CSV have become; administrators edit the live copy.
    alias_table = sa.table(
        "search_alias",
        sa.column("alias", sa.String),
        sa.column("targets", sa.String),
        sa.column("note", sa.String),
        sa.column("updated_at", core.types.UTCDateTime(timezone=True)),
    )
    now = core.types.utcnow()
    op.bulk_insert(
        alias_table,
        [
            {"alias": alias, "targets": targets, "note": note, "updated_at": now}
            for alias, targets, note in ALIASES
        ],
    )


def downgrade() -> None:
    op.drop_table("search_miss")
    op.drop_table("search_alias")
    op.drop_index("ix_search_posting_entry_id", table_name="search_posting")
    op.drop_table("search_posting")
    op.drop_index("ix_search_entry_facets", table_name="search_entry")
    op.drop_index("ix_search_entry_department_id", table_name="search_entry")
    op.drop_table("search_entry")
    op.drop_table("search_gram")
    op.drop_table("search_term")


# data/search_aliases.csv as normalised by catalog.search.read_aliases_csv at this revision
# (alias, "|"-separated targets, note).
ALIASES: list[tuple[str, str, str]] = [
    ("社保", "社会保险|社保|社会保障卡|养老保险", "社会保险的通称"),
    ("社保卡", "社会保障卡", ""),
    ("医保", "医疗保险|医保", "基本医疗保险"),
    ("医保卡", "社会保障卡|医疗保险", "社保卡兼作医保卡"),
    ("养老金", "养老保险待遇|养老保险", ""),
    ("退休金", "养老保险待遇|退休", ""),
    ("退休", "退休", ""),
    ("低保", "最低生活保障", ""),
    ("失业金", "失业保险金", ""),
    ("失业救济", "失业保险金", ""),
    ("身份证", "居民身份证|身份证明", ""),
    ("办身份证", "居民身份证办理", ""),
    ("临时身份证", "居民身份证办理|临时身份证明", ""),
    ("驾照", "驾驶证", "机动车/拖拉机驾驶证"),
    ("驾驶执照", "驾驶证", ""),
    ("护照", "普通护照", ""),
    ("出国", "普通护照", ""),
    ("户口", "户口", ""),
    ("落户", "户口登记|户口迁移", ""),
    ("迁户口", "户口迁移", ""),
    ("结婚", "结婚登记|婚姻登记|结婚证", ""),
    ("领证", "结婚登记|婚姻登记", ""),
    ("离婚", "离婚登记|婚姻登记", ""),
    ("结婚证", "结婚证|婚姻登记", ""),
    ("出生证", "出生医学证明", ""),
    ("出生证明", "出生医学证明", ""),
    ("准生证", "计划生育|生育", ""),
    ("生孩子", "生育|出生医学证明", ""),
    ("残疾证", "残疾人证", ""),
    ("残疾补贴", "残疾人生活补贴|残疾人护理补贴", ""),
    ("开饭店", "食品 含保健食品 经营许可|食品小经营店|公共场所卫生许可", "开餐馆需要的许可"),
    ("开餐馆", "食品 含保健食品 经营许可|食品小经营店", ""),
    ("开餐厅", "食品 含保健食品 经营许可|食品小经营店", ""),
    ("开小吃店", "食品小经营店|食品 含保健食品 经营许可", ""),
    ("开超市", "仅销售预包装食品经营者备案|食品 含保健食品 经营许可|烟草专卖零售许可证", ""),
    ("卖烟", "烟草专卖零售许可证", ""),
    ("烟草证", "烟草专卖零售许可证", ""),
    ("烟草许可证", "烟草专卖零售许可证", ""),
    ("开网吧", "互联网上网服务营业场所", ""),
    ("网吧", "互联网上网服务营业场所", ""),
    ("开公司", "公司设立登记|设立登记", ""),
    ("注册公司", "公司设立登记|设立登记", ""),
    ("办执照", "设立登记|个体工商户设立登记", ""),
    ("营业执照", "设立登记|个体工商户", ""),
    ("个体户", "个体工商户", ""),
    ("开店", "个体工商户设立登记|食品小经营店", ""),
    ("食品许可证", "食品 含保健食品 经营许可", ""),
    ("健康证", "食品行业从业人员预防性体检合格证", ""),
    ("体检证", "食品行业从业人员预防性体检合格证", ""),
    ("卫生许可证", "公共场所卫生许可", ""),
    ("教师证", "教师资格", ""),
    ("教师资格证", "教师资格", ""),
    ("上学", "入学", ""),
    ("入学", "入学", ""),
    ("随迁子女", "进城务工人员随迁子女", ""),
    ("公租房", "公共租赁住房|公租房", ""),
    ("廉租房", "公共租赁住房|住房保障家庭租赁补贴", ""),
    ("租房补贴", "住房保障家庭租赁补贴", ""),
    ("危房改造", "危房改造|危旧房", ""),
    ("买房", "商品房|房地产", ""),
    ("老年证", "老年人优待证", ""),
    ("老人优待证", "老年人优待证", ""),
    ("高龄补贴", "高龄", ""),
    ("养狗", "犬类准养证", ""),
    ("狗证", "犬类准养证", ""),
    ("犬证", "犬类准养证", ""),
    ("捕鱼", "渔业捕捞许可", ""),
    ("捕鱼证", "渔业捕捞许可", ""),
    ("渔船", "渔业船舶", ""),
    ("开车证", "驾驶证", ""),
    ("拖拉机证", "拖拉机 联合收割机驾驶证|拖拉机联合收割机驾驶证", ""),
    ("出租车", "巡游出租汽车", ""),
    ("的士", "巡游出租汽车", ""),
    ("网约车", "网络预约出租汽车|网约车", ""),
    ("货车", "货物运输|货运", ""),
    ("客车", "客运|旅客运输", ""),
    ("创业贷款", "创业担保贷款", ""),
    ("贷款", "贷款", ""),
    ("找工作", "就业|职业介绍", ""),
    ("就业补贴", "就业困难人员|补贴", ""),
    ("工伤", "工伤|工亡", ""),
    ("丧葬费", "丧葬补助金", ""),
    ("抚恤金", "抚恤金", ""),
    ("公积金", "住房公积金", "本目录暂无公积金事项，保留以备其他区县"),
    ("无犯罪证明", "无犯罪记录证明", ""),
    ("无犯罪记录", "无犯罪记录证明", ""),
    ("社会救助", "救助|最低生活保障|特困", ""),
    ("困难补助", "生活补贴|救助|补助", ""),
    ("建房", "建设工程|宅基地|施工许可", ""),
    ("施工证", "施工许可", ""),
    ("盖房子", "建设工程|施工许可|宅基地", ""),
    ("取水证", "取水许可", ""),
    ("排污证", "排污许可", ""),
    ("户外广告", "户外广告", ""),
    ("挖路", "城市道路|占用|挖掘", ""),
    ("砍树", "树木|林木采伐", ""),
    ("砍伐", "林木采伐|树木", ""),
    ("医生执业", "医师执业|医师", ""),
    ("护士证", "护士执业", ""),
    ("药店", "药品零售|药品经营|定点零售药店", ""),
]
