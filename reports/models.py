"""Report tables: case statistics, scenario bundles, template-table figures and year-end snapshots.

``reports`` reads the catalogue and the licence registry and writes neither; everything it keeps of
its own lives here.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import JSON, Field, SQLModel

from core.types import UTCDateTime, utcnow


class CaseStat(SQLModel, table=True):
    """办件统计: one month of case counts for one implementation entry, from a department's approval system.

    ``received`` 收件数, ``online`` 网上申报数 (subset of received), ``finished`` 办结数,
    ``on_time`` 按时办结数 (subset of finished).
    """

    __tablename__ = "report_case_stat"

    id: int | None = Field(default=None, primary_key=True)
    entry_id: int = Field(foreign_key="implementation_entry.id", index=True)
    year: int = Field(index=True)
    month: int
    received: int = Field(ge=0)
    online: int = Field(ge=0)
    finished: int = Field(ge=0)
    on_time: int = Field(ge=0)
    source: str = Field(default="csv", max_length=20)  # csv / api
    imported_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)

    __table_args__ = (
        sa.UniqueConstraint("entry_id", "year", "month", name="uq_report_case_stat_month"),
        sa.CheckConstraint("month BETWEEN 1 AND 12", name="ck_report_case_stat_month"),
        sa.CheckConstraint(
            "received >= 0 AND online >= 0 AND finished >= 0 AND on_time >= 0 "
            "AND online <= received AND on_time <= finished",
            name="ck_report_case_stat_counts",
        ),
    )


class Bundle(SQLModel, table=True):
    """套餐式场景服务 (“一件事”): several implementation entries a citizen needs for one life event."""

    __tablename__ = "report_bundle"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=100, unique=True)
    description: str = Field(default="", sa_type=sa.Text)
    published: bool = Field(default=False)
    published_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)


class BundleEntry(SQLModel, table=True):
    """One implementation entry inside a bundle, in the order a citizen handles them."""

    __tablename__ = "report_bundle_entry"

    id: int | None = Field(default=None, primary_key=True)
    bundle_id: int = Field(foreign_key="report_bundle.id", index=True)
    entry_id: int = Field(foreign_key="implementation_entry.id", index=True)
    position: int = Field(default=0)

    __table_args__ = (sa.UniqueConstraint("bundle_id", "entry_id", name="uq_report_bundle_entry"),)


class TemplateTable(SQLModel, table=True):
    """Figures of one statistical table (二, 三 or 四) of 国办公开办函〔2021〕30号 for one year.

    The platform has no source for them; administrators enter them and the service enforces the
    template's invariants before anything is stored.
    """

    __tablename__ = "report_template_table"

    id: int | None = Field(default=None, primary_key=True)
    year: int = Field(index=True)
    table: str = Field(max_length=2)  # "2", "3", "4"
    values: dict[str, Any] = Field(sa_type=JSON)
    updated_by: str = Field(default="system", max_length=100)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)

    __table_args__ = (sa.UniqueConstraint("year", "table", name="uq_report_template_table"),)


class Snapshot(SQLModel, table=True):
    """年末快照: every figure of a year frozen at year end, with the definitions version and a hash.

    The annual report is built from the latest snapshot of its year; later changes in the live data
    are shown as differences against it, never silently replace it.
    """

    __tablename__ = "report_snapshot"

    id: int | None = Field(default=None, primary_key=True)
    year: int = Field(index=True)
    as_of: datetime = Field(sa_type=UTCDateTime)
    definitions_version: str = Field(max_length=20)
    payload: dict[str, Any] = Field(sa_type=JSON)
    hash: str = Field(max_length=64)
    created_by: str = Field(default="system", max_length=100)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)


class CaseRecord(SQLModel, table=True):
    """办件: one application handled under one 实施编码, after the national 办件 tables.

    Acceptance (up_pro_accept): ``project_no`` 办件编号, ``apply_date`` 申请日期, ``accept_date`` 受理日期,
    ``promise_date`` 承诺办结日期 (given, or computed from the entry's 承诺时限 with the working-day
    calendar), ``applicant_type`` 申请人类型, ``channel`` 申报渠道 (online 网上 / window 窗口).
    Result (up_pro_result): ``result_date`` 办结日期, ``result_type`` 办结结果.

    The 电子监察 columns are derived by reports.supervision and kept here so that warnings and rates
    over a year's cases are one indexed query: ``suspended_days`` (working days inside special
    procedures, excluded from the time limit), ``deadline`` (promise date moved by those days),
    ``on_time`` (NULL until finished) and ``warning`` (yellow/red, NULL for none).
    """

    __tablename__ = "report_case"

    id: int | None = Field(default=None, primary_key=True)
    project_no: str = Field(max_length=64, unique=True)
    entry_id: int = Field(foreign_key="implementation_entry.id", index=True)
    department_id: int = Field(foreign_key="department.id", index=True)
    apply_date: date | None = Field(default=None)
    accept_date: date = Field(index=True)
    promise_days: int | None = Field(default=None)  # 承诺时限 in force at acceptance
    promise_unit: str | None = Field(default=None, max_length=10)  # working / calendar
    anticipate_days: int | None = Field(default=None)  # 法定时限 in force at acceptance
    anticipate_unit: str | None = Field(default=None, max_length=10)
    promise_date: date
    promise_computed: bool = Field(default=False)
    applicant_type: str | None = Field(default=None, max_length=10)
    channel: str = Field(max_length=10)
    result_date: date | None = Field(default=None, index=True)
    result_type: str | None = Field(default=None, max_length=20)
    suspended_days: int = Field(default=0)
    deadline: date
    on_time: bool | None = Field(default=None)
    warning: str | None = Field(default=None, max_length=6)
    warning_since: date | None = Field(default=None)
    source: str = Field(default="api", max_length=10)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)

    __table_args__ = (
        sa.CheckConstraint("channel IN ('online', 'window')", name="ck_report_case_channel"),
        sa.CheckConstraint("warning IS NULL OR warning IN ('yellow', 'red')", name="ck_report_case_warning"),
        sa.CheckConstraint("result_date IS NULL OR result_date >= accept_date", name="ck_report_case_dates"),
        # The warnings page reads the few warned cases by deadline; a partial index costs the import
        # nothing for the many cases without a warning.
        sa.Index(
            "ix_report_case_warned",
            "deadline",
            postgresql_where=sa.text("warning IS NOT NULL"),
            sqlite_where=sa.text("warning IS NOT NULL"),
        ),
    )


class CaseStep(SQLModel, table=True):
    """办理环节 (up_pro_process): one step of a case, ``action`` 环节名称/办理动作, start and end dates."""

    __tablename__ = "report_case_step"

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="report_case.id", index=True)
    seq: int
    action: str = Field(max_length=100)
    start_date: date
    end_date: date | None = Field(default=None)

    __table_args__ = (sa.UniqueConstraint("case_id", "seq", name="uq_report_case_step"),)


class CaseSpecialProcedure(SQLModel, table=True):
    """特别程序 (up_pro_special_procedure): 听证, 检验检测, 专家评审…; its days are not counted in the
    time limit. An open procedure (no ``end_date``) stops the clock until it ends."""

    __tablename__ = "report_case_special"

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="report_case.id", index=True)
    seq: int
    kind: str | None = Field(default=None, max_length=40)
    start_date: date
    end_date: date | None = Field(default=None)

    __table_args__ = (sa.UniqueConstraint("case_id", "seq", name="uq_report_case_special"),)


class NarrativeBlock(SQLModel, table=True):
    """报告文字段落: the prose of one part of one year's annual report, edited by administrators.

    ``key`` names the part of the report form in force for the year (reports.narratives); the text may
    hold placeholders like ``{不见面率}`` that are filled from the year's frozen snapshot when the
    report is built. A part without a row reads its default text.
    """

    __tablename__ = "report_narrative"

    id: int | None = Field(default=None, primary_key=True)
    year: int = Field(index=True)
    key: str = Field(max_length=40)
    text: str = Field(sa_type=sa.Text)
    updated_by: str = Field(default="system", max_length=100)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)

    __table_args__ = (sa.UniqueConstraint("year", "key", name="uq_report_narrative"),)


class EnteredFigure(SQLModel, table=True):
    """人工填报数字: a figure of one year's report that the platform has no source for (12345 hotline
    requests, items on the portal, 信息处理费, the contact line), entered by an administrator.

    ``value`` is kept as text (a count, an amount, a date or a name, by the figure's definition in
    reports.entered_figures); ``unit`` is the unit printed after it; ``lower_bound`` marks a value
    the report states as “余/多” (more than), so 70000 prints as “7万余”.
    """

    __tablename__ = "report_entered_figure"

    id: int | None = Field(default=None, primary_key=True)
    year: int = Field(index=True)
    key: str = Field(max_length=60)
    value: str = Field(max_length=200)
    unit: str = Field(default="", max_length=20)
    lower_bound: bool = Field(default=False)
    note: str = Field(default="", max_length=200)
    updated_by: str = Field(default="system", max_length=100)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)

    __table_args__ = (sa.UniqueConstraint("year", "key", name="uq_report_entered_figure"),)
