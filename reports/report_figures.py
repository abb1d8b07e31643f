"""Figures the annual report adds to a snapshot besides the metrics: the 行政许可 decisions counted from
the case records (to prefill 表二) and the year's entered figures, frozen with the rest.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col

from catalog.models import ImplementationEntry
from core.types import CHINA_TZ
from reports import entered_figures
from reports.models import CaseRecord

LICENSING = "01"  # 事项类型 行政许可
# 处理决定 of the template: a decision to grant or to refuse; 转报, 撤回 and 其他 end a case without one.
DECISIONS = ("approved", "refused")


def licensing_decisions(session: Session, year: int, as_of: datetime) -> dict[str, Any]:
    """行政许可 处理决定数量: cases of 行政许可 entries with a grant or refusal dated in the year up to
    ``as_of`` (China time). ``missing`` when the year has no case record at all (unknown, not zero)."""
    first, last = date(year, 1, 1), min(as_of.astimezone(CHINA_TZ).date(), date(year, 12, 31))
    any_case = session.execute(
        sa.select(sa.func.count())
        .select_from(CaseRecord)
        .where(
            col(CaseRecord.accept_date) <= last, sa.func.coalesce(col(CaseRecord.result_date), last) >= first
        )
    ).scalar_one()
    count = session.execute(
        sa.select(sa.func.count())
        .select_from(CaseRecord)
        .join(ImplementationEntry, col(ImplementationEntry.id) == col(CaseRecord.entry_id))
        .where(
            col(ImplementationEntry.task_type) == LICENSING,
            col(CaseRecord.result_type).in_(DECISIONS),
            col(CaseRecord.result_date).between(first, last),
        )
    ).scalar_one()
    if not any_case:
        return {"value": None, "missing": f"{year} 年没有办件记录"}
    return {"value": int(count), "missing": None}


def report_payload(session: Session, year: int, as_of: datetime) -> dict[str, Any]:
    """The report's own part of a snapshot payload (merged into it by reports.snapshot)."""
    return {
        "computed": {"licensing_decisions": licensing_decisions(session, year, as_of)},
        "entered_figures": entered_figures.entered_figures(session, year),
    }
