"""Report tables: case statistics, scenario bundles, template-table figures and year-end snapshots.

``reports`` reads the catalogue and the licence registry and writes neither; everything it keeps of
its own lives here.
"""

from __future__ import annotations

from datetime import datetime
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
