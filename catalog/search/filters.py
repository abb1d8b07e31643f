"""Facet filters from a request, and the SQL conditions they select."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from catalog.elements import DEPTH_LEVELS
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
    depth: int | None = None  # 网上办理深度 Ⅰ–Ⅳ

    def active(self) -> bool:
        """Whether any filter is set."""
        return any((self.level, self.division, self.department, self.task_type, self.no_contact, self.depth))

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
    level: str | None,
    division: str | None,
    department: Any,
    task_type: str | None,
    no_contact: Any,
    depth: Any = None,
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
    dl: int | None = None
    if depth not in (None, ""):
        text = str(depth).strip()
        if text.isdigit() and int(text) in DEPTH_LEVELS:
            dl = int(text)
        else:
            errors["depth"] = ["网上办理深度等级应为 1–4（Ⅰ–Ⅳ）"]
    if errors:
        raise Invalid("查询参数有误", errors)
    return SearchFilters(level=lv, division=div, department=dept, task_type=tt, no_contact=nc, depth=dl)


# The filters, defined once as (facet, test, value) triples; ``sql_conditions`` and ``filter_matches``
# only translate them, for entry rows, SearchCell rows (SQL) and cell tuples (Python).
EQUALS, PREFIX, IS_TRUE = "equals", "prefix", "is_true"
FACETS = ("level", "division", "department", "type", "no_contact", "depth")


def filter_tests(f: SearchFilters, skip: str | None = None) -> list[tuple[str, str, Any]]:
    """What the filters require, leaving out ``skip`` (a facet counts under the other filters)."""
    tests: list[tuple[str, str, Any]] = []
    if f.level:
        tests.append(("level", EQUALS, f.level))
    if f.division:
        tests.append(("division", PREFIX, f.division_prefix() or ""))
    if f.department:
        tests.append(("department", EQUALS, f.department))
    if f.task_type:
        tests.append(("type", EQUALS, f.task_type))
    if f.no_contact:
        tests.append(("no_contact", IS_TRUE, True))
    if f.depth:
        tests.append(("depth", EQUALS, f.depth))
    return [t for t in tests if t[0] != skip]


def sql_conditions(f: SearchFilters, columns: Mapping[str, Any], skip: str | None = None) -> list[Any]:
    """The filters as SQL conditions over ``columns`` (facet -> column)."""
    conds: list[Any] = []
    for facet, test, value in filter_tests(f, skip):
        column = columns[facet]
        if test == EQUALS:
            conds.append(column == value)
        elif test == PREFIX:
            # A full 12-digit code is one division: equality lets the index serve it directly.
            conds.append(column.like(value + "%") if len(value) < 12 else column == value)
        else:
            conds.append(column.is_(True))
    return conds


def filter_matches(f: SearchFilters, values: Mapping[str, Any], skip: str | None = None) -> bool:
    """Whether one row's facet values (facet -> value) pass the filters."""
    for facet, test, value in filter_tests(f, skip):
        actual = values[facet]
        if test == EQUALS and actual != value:
            return False
        if test == PREFIX and not str(actual).startswith(value):
            return False
        if test == IS_TRUE and not actual:
            return False
    return True


def entry_columns(e: sa.FromClause) -> dict[str, Any]:
    """The filterable columns of search_entry rows."""
    return {
        "level": e.c.level,
        "division": e.c.division_code,
        "department": e.c.department_id,
        "type": e.c.task_type,
        "no_contact": e.c.no_contact,
        "depth": e.c.depth_level,
    }


def _sql_filters(f: SearchFilters, e: sa.FromClause, skip: str | None = None) -> list[Any]:
    """SQL conditions for the filters over search_entry rows, leaving out ``skip``."""
    return sql_conditions(f, entry_columns(e), skip)
