"""Catalogue tables: divisions, implementing bodies, the basic catalogue and implementation entries."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import JSON, Field, SQLModel

from core.types import UTCDateTime, utcnow

# 事项类型 (standards §1.3). Local systems add 30+ codes; the table is data, not an enum.
TASK_TYPES: dict[str, str] = {
    "01": "行政许可",
    "02": "行政处罚",
    "03": "行政强制",
    "04": "行政征收",
    "05": "行政给付",
    "06": "行政检查",
    "07": "行政确认",
    "08": "行政奖励",
    "09": "行政裁决",
    "10": "其他行政权力",
    "20": "公共服务",
}
# 依申请 types: the denominators of the online-service rates.
ON_APPLICATION_TYPES = frozenset({"01", "05", "07", "08", "09", "10", "20"})
# The six 审批-like types the Jiangsu 不见面审批 scope covers (standards §2), in the order the
# annual report lists them.
NO_CONTACT_SCOPE_TYPES: tuple[str, ...] = ("01", "07", "08", "05", "04", "10")

# 行使层级 (standards §1.3).
USE_LEVELS: dict[str, str] = {
    "1": "国家级",
    "2": "省级",
    "3": "市级",
    "4": "县级",
    "5": "镇(乡、街道)级",
    "6": "村(社区)级",
}
# Which division level an implementing body at each use level sits in.
LEVEL_DIVISION = {"4": "county", "5": "town", "6": "village"}

# 网上办理深度 codes (standards §1.3).
ONLINE_DEPTH: dict[str, str] = {
    "1": "互联网咨询",
    "2": "互联网收件",
    "3": "互联网预审",
    "4": "互联网受理",
    "5": "互联网办理",
    "6": "互联网办理结果信息反馈",
    "7": "互联网电子证照反馈",
    "8": "其他",
}

# How the result reaches the applicant.
RESULT_DELIVERY: dict[str, str] = {
    "window": "窗口领取",
    "post": "快递送达",
    "online": "网上下载",
    "elicence": "电子证照",
}

TIME_UNITS = {"working": "工作日", "calendar": "自然日"}
PROJECT_TYPES = {"1": "即办件", "2": "承诺件"}
MATERIAL_FORMS = {"paper": "纸质", "electronic": "电子", "both": "纸质或电子"}


class EntryStatus(enum.StrEnum):
    DRAFT = "draft"
    SUBMITTED = "submitted"
    PUBLISHED = "published"
    RETIRED = "retired"


ENTRY_STATUS_LABELS = {
    EntryStatus.DRAFT: "草稿",
    EntryStatus.SUBMITTED: "待审核",
    EntryStatus.PUBLISHED: "已发布",
    EntryStatus.RETIRED: "已停用",
}


class Division(SQLModel, table=True):
    """行政区划: a 12-digit 统计用区划代码 unit (county, town/street 乡级, village/community 村级)."""

    __tablename__ = "division"

    code: str = Field(primary_key=True, max_length=12)
    name: str = Field(max_length=100)
    level: str = Field(max_length=10, index=True)  # province/city/county/town/village, derived from code
    kind: str | None = Field(default=None, max_length=20)  # 街道/镇/乡/居委会/村委会 ...
    parent_code: str | None = Field(default=None, max_length=12, foreign_key="division.code", index=True)


class Department(SQLModel, table=True):
    """实施主体 (implementing body): a district department, a town/street government or a village body."""

    __tablename__ = "department"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=100, index=True)
    uscc: str = Field(max_length=18, unique=True)  # 统一社会信用代码
    uscc_warning: str | None = Field(default=None, max_length=200)  # failed check on a pre-2016 code
    level: str = Field(max_length=1)  # 行使层级 digit: 4 county, 5 town, 6 village
    division_code: str = Field(max_length=12, foreign_key="division.code", index=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)


class CatalogItem(SQLModel, table=True):
    """基本目录 item: what power or service exists, independent of who implements it."""

    __tablename__ = "catalog_item"

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=12, unique=True)  # 基本编码 (or 地方基本编码)
    source_code: str | None = Field(default=None, max_length=60, unique=True)  # code in an imported file
    name: str = Field(max_length=200, index=True)
    task_type: str = Field(max_length=2)  # 事项类型
    legal_basis: str = Field(default="", sa_type=sa.Text)  # 设定依据
    use_levels: str = Field(max_length=11)  # 行使层级, comma-separated digits, e.g. "4,5,6"
    county_only: bool = Field(default=False)  # 仅县级实施
    # 主管部门: the district department competent for the item; only it claims the item at county
    # level (catalog.scope). None = not recorded.
    competent_department_id: int | None = Field(default=None, foreign_key="department.id", index=True)
    # The province or city item this district item implements (三级四同 is checked against it).
    upper_item_id: int | None = Field(default=None, foreign_key="upper_catalog_item.id", index=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)


# 行使层级 of an upper-level basic catalogue (上级基本目录) the district imports.
UPPER_LEVELS: dict[str, str] = {"2": "省级", "3": "市级"}


class UpperCatalogItem(SQLModel, table=True):
    """上级基本目录 item: a province (省级) or city (市级) basic item as the upper level published it.

    Imported by ``flask catalog import-basic`` and never edited in the app, so the 三级四同 report
    compares district entries with what the upper level says, not with a local copy. ``code`` is the
    基本编码 exactly as given; ``provenance`` says where the file came from (shown on the report).
    """

    __tablename__ = "upper_catalog_item"

    id: int | None = Field(default=None, primary_key=True)
    level: str = Field(max_length=1)  # UPPER_LEVELS
    code: str = Field(max_length=60, index=True)  # 基本编码, as given
    name: str = Field(max_length=200)
    task_type: str = Field(max_length=2)
    legal_basis: str | None = Field(default=None, sa_type=sa.Text)  # None = the file gives none
    use_levels: str | None = Field(default=None, max_length=11)
    competent_department: str | None = Field(default=None, max_length=100)  # 主管部门 as named upstream
    source_file: str = Field(max_length=200)
    source_line: int
    provenance: str | None = Field(default=None, max_length=1000)
    imported_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)

    __table_args__ = (sa.UniqueConstraint("level", "code", name="uq_upper_item_level_code"),)


class NoContactStandardItem(SQLModel, table=True):
    """An item of the province's 不见面审批 standard list (省级不见面审批标准化清单), as given.

    Entries whose 基本编码 (or whose upper-level item's code) is on the list should be 不见面 here;
    ``catalog.upper.no_contact_gaps`` lists those that are not.
    """

    __tablename__ = "no_contact_standard_item"

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=60, unique=True)  # 基本编码, as given
    name: str = Field(max_length=200)
    task_type: str | None = Field(default=None, max_length=2)
    source_file: str = Field(max_length=200)
    source_line: int
    provenance: str | None = Field(default=None, max_length=1000)
    imported_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)


class ImplementationEntry(SQLModel, table=True):
    """实施清单 entry: one basic item claimed (认领) by one implementing body at one level.

    name, task_type, legal_basis and catalog_code are copied from the basic item at claim time and
    locked (三级四同); the consistency report compares them with the item to detect drift.
    An entry with ``applicable`` False records a claim of "not applicable here" with its reason.
    """

    __tablename__ = "implementation_entry"

    id: int | None = Field(default=None, primary_key=True)
    task_code: str = Field(max_length=31, unique=True)  # 实施编码
    item_id: int = Field(foreign_key="catalog_item.id", index=True)
    department_id: int = Field(foreign_key="department.id", index=True)
    level: str = Field(max_length=1, index=True)
    division_code: str = Field(max_length=12, foreign_key="division.code", index=True)

    # Inherited and locked (三级四同).
    name: str = Field(max_length=200)
    task_type: str = Field(max_length=2, index=True)
    legal_basis: str = Field(default="", sa_type=sa.Text)
    catalog_code: str = Field(max_length=12)

    applicable: bool = Field(default=True)
    not_applicable_reason: str | None = Field(default=None, max_length=500)
    status: str = Field(default=EntryStatus.DRAFT.value, max_length=12, index=True)
    version: int = Field(default=1)
    # Why the reviewer last sent this draft back (退回理由), shown to its editor until it is resubmitted.
    reject_reason: str | None = Field(default=None, max_length=500)

    # Local elements (要素). None means nobody recorded it (未填报): never a default (catalog/elements.py).
    accept_conditions: str | None = Field(default=None, sa_type=sa.Text)  # 受理条件
    anticipate_days: int | None = Field(default=None)  # 法定办结时限
    anticipate_unit: str | None = Field(default=None, max_length=10)
    promise_days: int | None = Field(default=None)  # 承诺办结时限
    promise_unit: str | None = Field(default=None, max_length=10)
    project_type: str | None = Field(default=None, max_length=1)  # 办件类型
    visits: int | None = Field(default=None)  # 到办事现场次数
    visits_reason: str | None = Field(default=None, max_length=500)
    online_depth: str = Field(default="", max_length=20)  # 网上办理深度 codes, comma-separated
    online_url: str | None = Field(default=None, max_length=500)
    result_delivery: str | None = Field(default=None, max_length=40)  # RESULT_DELIVERY keys, comma-separated
    window_address: str | None = Field(default=None, max_length=300)
    opening_hours: str | None = Field(default=None, max_length=200)
    phone: str | None = Field(default=None, max_length=40)
    keywords: str = Field(default="", max_length=500)  # extra search words chosen by the department
    no_contact: bool = Field(default=False, index=True)  # 不见面审批, set only through the rule
    # 办理形式: comma-separated catalog.elements.HANDLE_FORMS codes; None = 未填报.
    handle_forms: str | None = Field(default=None, max_length=60)
    meeting_step: str | None = Field(default=None, max_length=200)  # the step of 部分不见面's one meeting
    tolerant_acceptance: bool | None = Field(default=None)  # 容缺受理; None = 未填报
    # Derived on every save by catalog.norules (never entered): full / partial / none, and Ⅰ–Ⅳ.
    no_contact_class: str | None = Field(default=None, max_length=10)
    depth_level: int | None = Field(default=None, index=True)

    # The national element set (standards §1.4; names, labels and code lists in catalog/elements.py).
    subject_nature: str | None = Field(default=None, max_length=20)  # 实施主体性质
    entrusted_department: str | None = Field(default=None, max_length=200)  # 委托部门
    joint_bodies: str | None = Field(default=None, max_length=500)  # 联办机构
    power_source: str | None = Field(default=None, max_length=20)  # 权力来源
    handle_item: str | None = Field(default=None, max_length=20)  # 业务办理项
    service_objects: str | None = Field(default=None, max_length=40)  # 服务对象 codes, comma-separated
    special_procedure: str | None = Field(default=None, sa_type=sa.Text)  # 特别程序
    anticipate_explain: str | None = Field(default=None, max_length=500)  # 法定时限说明
    promise_explain: str | None = Field(default=None, max_length=500)  # 承诺时限说明
    charges: bool | None = Field(default=None)  # 是否收费; the items are the entry_fee rows
    in_hall: bool | None = Field(default=None)  # 是否进驻政务大厅
    handle_area: str | None = Field(default=None, max_length=20)  # 通办范围
    quantity_limit: str | None = Field(default=None, max_length=500)  # 数量限制
    result_type: str | None = Field(default=None, max_length=20)  # 审批结果类型
    result_name: str | None = Field(default=None, max_length=200)  # 审批结果名称
    result_sample: int | None = Field(default=None)  # 审批结果样本: an entry_attachment id
    complaint_phone: str | None = Field(default=None, max_length=40)  # 监督投诉电话
    review_channel: str | None = Field(default=None, max_length=500)  # 行政复议途径
    litigation_channel: str | None = Field(default=None, max_length=500)  # 行政诉讼途径
    mobile_url: str | None = Field(default=None, max_length=500)  # 移动端办理地址
    pay_online: bool | None = Field(default=None)  # 是否支持网上支付
    # 示例内容: the elements were written by the demo loader, not by the department. Shown to staff
    # and citizens so nobody takes invented content for the department's guide.
    demo_content: bool = Field(default=False, sa_column_kwargs={"server_default": sa.false()})

    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    published_at: datetime | None = Field(default=None, sa_type=UTCDateTime)

    __table_args__ = (
        sa.UniqueConstraint("item_id", "department_id", "division_code", name="uq_entry_claim"),
        sa.Index("ix_entry_status_level", "status", "level"),
    )


class Material(SQLModel, table=True):
    """申请材料 of an entry; ``licence_type_code`` names an e-licence type (证照类型代码) that replaces it."""

    __tablename__ = "entry_material"

    id: int | None = Field(default=None, primary_key=True)
    entry_id: int = Field(foreign_key="implementation_entry.id", index=True)
    position: int = Field(default=0)
    name: str = Field(max_length=200)
    form: str = Field(default="paper", max_length=10)  # MATERIAL_FORMS
    required: bool = Field(default=True)
    copies: int | None = Field(default=None)  # 份数: None = 未填报, recorded ≥ 1
    licence_type_code: str | None = Field(default=None, max_length=21)
    notes: str | None = Field(default=None, max_length=500)
    source_channel: str | None = Field(default=None, max_length=20)  # 来源渠道 (MATERIAL_SOURCES)
    original: str | None = Field(default=None, max_length=10)  # 原件/复印件 (MATERIAL_ORIGINALS)
    accept_standard: str | None = Field(default=None, max_length=500)  # 受理标准
    basis: str | None = Field(default=None, max_length=500)  # 填报依据
    blank_form: int | None = Field(default=None)  # 空白表格: an entry_attachment id
    sample: int | None = Field(default=None)  # 示例样表: an entry_attachment id


class Fee(SQLModel, table=True):
    """收费项目 of an entry; amounts in integer fen."""

    __tablename__ = "entry_fee"

    id: int | None = Field(default=None, primary_key=True)
    entry_id: int = Field(foreign_key="implementation_entry.id", index=True)
    name: str = Field(max_length=200)
    amount_fen: int = Field(ge=0)
    basis: str = Field(default="", max_length=500)
    reducible: bool = Field(default=False)


class EntryVersion(SQLModel, table=True):
    """Every saved state of an entry, as a JSON snapshot (entry, materials, fees)."""

    __tablename__ = "entry_version"

    id: int | None = Field(default=None, primary_key=True)
    entry_id: int = Field(foreign_key="implementation_entry.id", index=True)
    version: int
    status: str = Field(max_length=12)
    snapshot: dict[str, Any] = Field(sa_type=JSON)
    actor_id: int | None = Field(default=None)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)

    __table_args__ = (sa.UniqueConstraint("entry_id", "version", "status", name="uq_entry_version"),)
