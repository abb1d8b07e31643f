"""Facet filters from a request, and the SQL conditions they select."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from catalog.models import (
    TASK_TYPES,
    USE_LEVELS,
)
from core.errors import Invalid


@dataclass
class SearchFilters:
    level: str | None = None
    division: str | None = None
    department: int | None = None
    task_type: str | None = None
    no_contact: bool = False

    def division_prefix(self) -> str | None:
        return division_prefix(self.division) if self.division else None


def division_prefix(code: str) -> str:
    """The code prefix every division under ``code`` shares (12-digit 统计用区划代码)."""
    code = code.strip()
    if len(code) == 6 and code.isdigit():
        code = code + "000000"
    if code.endswith("0000000000"):
        return code[:2]
    if code.endswith("00000000"):
        return code[:4]
    if code.endswith("000000"):
        return code[:6]
    if code.endswith("000"):
        return code[:9]
    return code


def validate_filters(
    level: str | None, division: str | None, department: Any, task_type: str | None, no_contact: Any
) -> SearchFilters:
    """Facet values from a request; unknown values are Invalid naming the field (400/422, never 500)."""
    errors: dict[str, list[str]] = {}
    lv = (level or "").strip() or None
    if lv is not None and lv not in USE_LEVELS:
        errors["level"] = ["层级取值应为 1–6"]
    div = (division or "").strip() or None
    if div is not None and not (div.isdigit() and len(div) in (6, 12)):
        errors["division"] = ["区划代码应为 6 位或 12 位数字"]
    dept: int | None = None
    if department not in (None, ""):
        try:
            dept = int(department)
            if not 0 < dept < 2**31:
                raise ValueError
        except (TypeError, ValueError):
            errors["department"] = ["部门编号应为正整数"]
    tt = (task_type or "").strip() or None
    if tt is not None and tt not in TASK_TYPES:
        errors["type"] = ["事项类型取值无效"]
    nc = (
        str(no_contact).strip().lower() in ("1", "true", "yes", "on")
        if no_contact not in (None, "")
        else False
    )
    if no_contact not in (None, "") and str(no_contact).strip().lower() not in (
        "1",
        "0",
        "true",
        "false",
        "yes",
        "no",
        "on",
        "off",
    ):
        errors["no_contact"] = ["应为 true 或 false"]
    if errors:
        raise Invalid("查询参数有误", errors)
    return SearchFilters(level=lv, division=div, department=dept, task_type=tt, no_contact=nc)


def _sql_filters(f: SearchFilters, e: sa.Table, skip: str | None = None) -> list[Any]:
    """SQL conditions for the filters, leaving out ``skip`` (a facet counts under the other filters)."""
    conds: list[Any] = []
    if f.level and skip != "level":
        conds.append(e.c.level == f.level)
    if f.division and skip != "division":
        prefix = f.division_prefix() or ""
        conds.append(
            e.c.division_code.like(prefix + "%") if len(prefix) < 12 else e.c.division_code == prefix
        )
    if f.department and skip != "department":
        conds.append(e.c.department_id == f.department)
    if f.task_type and skip != "type":
        conds.append(e.c.task_type == f.task_type)
    if f.no_contact and skip != "no_contact":
        conds.append(e.c.no_contact.is_(True))
    return conds
