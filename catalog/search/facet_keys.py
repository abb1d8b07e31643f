"""The facet values an entry counts under, defined once: in Python (index maintenance, cells) and as
the SQL expressions that compute the same values (rebuilds, grouped counts).

* Division: entries of towns and villages (levels 5 and 6) count under their town, every other entry
  under its county; the value is a 12-digit 统计用区划代码.
* Department: village committees (level 6) are not listed as departments (see SearchCell), so their
  entries count under department 0, which the department facet leaves out.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

TOWN_LEVELS = ("5", "6")
VILLAGE_LEVEL = "6"
CODE_LENGTH = 12
TOWN_DIGITS, COUNTY_DIGITS = 9, 6
NO_DEPARTMENT = 0
# search_cell.depth of an entry without a 网上办理深度 level (levels are 1-4; a key column cannot be NULL).
NO_DEPTH = 0


def service_key(item_id: int | None, entry_id: int) -> int:
    """The service an entry belongs to (grouped results, SearchCell): its basic item's id, or minus the
    entry id for an entry without one (none today: implementation_entry.item_id is NOT NULL)."""
    return int(item_id) if item_id is not None else -int(entry_id)


def service_key_sql(item_id: Any, entry_id: Any) -> Any:
    """``service_key`` over columns."""
    return sa.func.coalesce(item_id, -entry_id)


def depth_key(depth_level: int | None) -> int:
    """search_cell.depth of an entry: its 网上办理深度 level, ``NO_DEPTH`` for none."""
    return depth_level or NO_DEPTH


def depth_key_sql(depth_level: Any) -> Any:
    """``depth_key`` over a column."""
    return sa.func.coalesce(depth_level, NO_DEPTH)


def depth_of_key_sql(depth: Any) -> Any:
    """The depth level a search_cell.depth stands for (NULL for ``NO_DEPTH``), as search_entry holds it."""
    return sa.func.nullif(depth, NO_DEPTH)


def facet_division(code: str, level: str) -> str:
    """The facet value an entry's division falls under: its town, or its county for county entries."""
    if level in TOWN_LEVELS and len(code) == CODE_LENGTH:
        return code[:TOWN_DIGITS].ljust(CODE_LENGTH, "0")
    return code[:COUNTY_DIGITS].ljust(CODE_LENGTH, "0")


def facet_department(department_id: int, level: str) -> int:
    return NO_DEPARTMENT if level == VILLAGE_LEVEL else department_id


def facet_division_sql(division_code: Any, level: Any) -> Any:
    """``facet_division`` over columns."""
    town = sa.func.substr(division_code, 1, TOWN_DIGITS) + "0" * (CODE_LENGTH - TOWN_DIGITS)
    county = sa.func.substr(division_code, 1, COUNTY_DIGITS) + "0" * (CODE_LENGTH - COUNTY_DIGITS)
    return sa.case(
        (sa.and_(level.in_(TOWN_LEVELS), sa.func.length(division_code) == CODE_LENGTH), town),
        else_=county,
    )


def facet_department_sql(department_id: Any, level: Any) -> Any:
    """``facet_department`` over columns."""
    return sa.case((level == VILLAGE_LEVEL, NO_DEPARTMENT), else_=department_id)
