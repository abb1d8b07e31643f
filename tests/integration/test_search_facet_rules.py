"""The facet rules of the search are defined once: the SQL forms give the Python forms' answers on
both databases (the division an entry counts under; the filters over entry and cell values)."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from catalog.search.facet_keys import (
    facet_department,
    facet_department_sql,
    facet_division,
    facet_division_sql,
)
from catalog.search.filters import SearchFilters, filter_matches, sql_conditions

# (division code, level, expected facet division)
DIVISION_TABLE = [
    ("321203000000", "4", "321203000000"),
    ("321203001000", "4", "321203000000"),
    ("321203001000", "5", "321203001000"),
    ("321203001201", "6", "321203001000"),
    ("321203102205", "5", "321203102000"),
    ("321203", "5", "321203000000"),  # not a full code: no town to count under
]


@pytest.mark.parametrize(("code", "level", "expected"), DIVISION_TABLE)
def test_division_facet_is_the_same_in_python_and_sql(
    any_session: Any, code: str, level: str, expected: str
) -> None:
    assert facet_division(code, level) == expected
    sql = facet_division_sql(sa.literal(code, sa.String), sa.literal(level, sa.String))
    assert any_session.execute(sa.select(sql)).scalar_one() == expected


@pytest.mark.parametrize(("level", "expected"), [("4", 7), ("5", 7), ("6", 0)])
def test_department_facet_leaves_out_village_committees(any_session: Any, level: str, expected: int) -> None:
    assert facet_department(7, level) == expected
    sql = facet_department_sql(sa.literal(7, sa.Integer), sa.literal(level, sa.String))
    assert any_session.execute(sa.select(sql)).scalar_one() == expected


ROWS = [
    {"level": "4", "division": "321203000000", "department": 3, "type": "01", "no_contact": True},
    {"level": "5", "division": "321203001000", "department": 4, "type": "20", "no_contact": False},
    {"level": "6", "division": "321203001201", "department": 0, "type": "20", "no_contact": True},
]
FILTERS = [
    SearchFilters(),
    SearchFilters(level="5"),
    SearchFilters(division="321203"),
    SearchFilters(division="321203001000"),
    SearchFilters(division="321203001201"),
    SearchFilters(department=4),
    SearchFilters(task_type="20", no_contact=True),
    SearchFilters(level="6", division="321203001000", task_type="20"),
]


@pytest.mark.parametrize("skip", [None, "level", "division", "department", "type", "no_contact"])
def test_filters_select_the_same_rows_in_python_and_sql(any_session: Any, skip: str | None) -> None:
    for row in ROWS:
        columns = {
            "level": sa.literal(row["level"], sa.String),
            "division": sa.literal(row["division"], sa.String),
            "department": sa.literal(row["department"], sa.Integer),
            "type": sa.literal(row["type"], sa.String),
            "no_contact": sa.literal(row["no_contact"], sa.Boolean),
        }
        for f in FILTERS:
            conds = sql_conditions(f, columns, skip)
            in_sql = any_session.execute(sa.select(sa.and_(sa.true(), *conds))).scalar_one()
            assert bool(in_sql) is filter_matches(f, row, skip), (row, f, skip)
