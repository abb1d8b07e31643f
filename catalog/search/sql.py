"""Table access helpers and the hot-path statements, built once per dialect."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import sqlalchemy as sa
from sqlmodel import SQLModel

from catalog.models import (
    Department,
    Division,
)
from catalog.search.facet_keys import (
    depth_of_key_sql,
    facet_department_sql,
    facet_division_sql,
    service_key_sql,
)
from catalog.search_models import (
    FIELD_DEPARTMENT,
    FIELD_NAME,
    SearchAlias,
    SearchCell,
    SearchEntry,
    SearchGram,
    SearchPosting,
    SearchTerm,
)
from core.db import table_of


def _t(model: type[SQLModel]) -> sa.Table:
    """The Core table of a SQLModel class (typed access to ``.c`` columns)."""
    return table_of(model)


def _chunks(seq: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for i in range(0, len(seq), size):
        yield seq[i : i + size]


def _in_list(column: Any, name: str, item_type: Any, postgresql: bool) -> Any:
    """``column IN (...)`` for a list parameter, with one parameter whatever the list's length, so the
    statement text (and its plan) never changes: an array on PostgreSQL (``= ANY``), a JSON array read by
    ``json_each`` on SQLite. (SQLite formerly took an expanding parameter: SQLAlchemy then rewrote the
    statement text on every execution and SQLite prepared each length anew, about a tenth of an
    uncached search's CPU, issue 14 item 10.)"""
    if postgresql:
        from sqlalchemy.dialects.postgresql import ARRAY

        return column == sa.any_(sa.bindparam(name, type_=ARRAY(item_type)))
    values = sa.func.json_each(sa.bindparam(name, type_=sa.JSON)).table_valued("value")
    return column.in_(sa.select(values.c.value))


class _Statements:
    """The hot-path statements, built once per dialect: only parameters change between searches."""

    def __init__(self, postgresql: bool) -> None:
        g = _t(SearchGram)
        t = _t(SearchTerm)
        e = _t(SearchEntry)
        p = _t(SearchPosting)
        pg = postgresql
        matched = (
            sa.select(g.c.term_id)
            .where(_in_list(g.c.gram, "grams", sa.String, pg))
            .group_by(g.c.term_id)
            .having(sa.func.count() >= sa.bindparam("need"))
            .subquery()
        )
        a = _t(SearchAlias)
        self.aliases = sa.select(a.c.alias, a.c.targets).order_by(a.c.alias)
        self.candidates = sa.select(t.c.id, t.c.text, t.c.pinyin, t.c.initials).join(
            matched, matched.c.term_id == t.c.id
        )
        # The same, among terms already matched by the query's other words: a common word (许可, 证)
        # then costs a lookup bounded by the rarer words' matches, not by every term holding it.
        self.candidates_within = self.candidates.where(_in_list(t.c.id, "within", sa.Integer, pg))
        self.has_other = (
            sa.select(p.c.term_id)
            .where(_in_list(p.c.term_id, "ids", sa.Integer, pg), p.c.field != FIELD_NAME)
            .limit(1)
        )
        # Closest matches (query._department_cover): the name terms of entries whose department text a
        # query word reached.
        self.department_cover = (
            sa.select(p.c.term_id, e.c.name_term_id)
            .distinct()
            .join(e, e.c.entry_id == p.c.entry_id)
            .where(
                p.c.field == FIELD_DEPARTMENT,
                _in_list(p.c.term_id, "reached", sa.Integer, pg),
                _in_list(e.c.name_term_id, "names", sa.Integer, pg),
            )
        )
        div = facet_division_sql(e.c.division_code, e.c.level)
        facet_cols = (
            e.c.level,
            div,
            facet_department_sql(e.c.department_id, e.c.level),
            e.c.task_type,
            e.c.depth_level,
            e.c.no_contact,
        )
        self.cells = (
            sa.select(*facet_cols, sa.func.count())
            .where(_in_list(e.c.name_term_id, "ids", sa.Integer, pg))
            .group_by(*facet_cols)
        )
        self.per_term = (
            sa.select(e.c.name_term_id, sa.func.count())
            .where(_in_list(e.c.name_term_id, "ids", sa.Integer, pg))
            .group_by(e.c.name_term_id)
        )
        self.term_rows = (
            sa.select(e)
            .where(e.c.name_term_id == sa.bindparam("tid"))
            .order_by(e.c.entry_id)
            .limit(sa.bindparam("lim"))
        )
        c = _t(SearchCell)
        cell_cols = (c.c.level, c.c.div_key, c.c.department_id, c.c.task_type, c.c.no_contact)
        self.cell_facets = (
            sa.select(*cell_cols, sa.func.sum(c.c.n))
            .where(_in_list(c.c.term_id, "ids", sa.Integer, pg))
            .group_by(*cell_cols)
        )
        self.cell_per_term = sa.select(c.c.term_id, sa.func.sum(c.c.n)).where(
            _in_list(c.c.term_id, "ids", sa.Integer, pg)
        )
        # The depth facet on the cell path (the cells carry the depth level since f8d3a6b2c4e1; it was
        # counted over the matching entries, 325,000 rows for 证 at province scale).
        self.cell_depth = sa.select(depth_of_key_sql(c.c.depth), sa.func.sum(c.c.n)).where(
            _in_list(c.c.term_id, "ids", sa.Integer, pg)
        )
        self.department_level = sa.select(_t(Department).c.level).where(
            _t(Department).c.id == sa.bindparam("id")
        )
        dv, dp = _t(Division), _t(Department)
        self.division_names = sa.select(dv.c.code, dv.c.name).where(
            _in_list(dv.c.code, "keys", sa.String, pg)
        )
        self.department_names = sa.select(dp.c.id, dp.c.name).where(_in_list(dp.c.id, "keys", sa.Integer, pg))

        # Grouped search (catalog.search.grouping): the matched entries' (service, facet values), with
        # the facet columns read as the cells read them (``serve``: a village as its town) or as stored.
        svc = service_key_sql(e.c.item_id, e.c.entry_id)
        raw_cols = (e.c.level, e.c.division_code, e.c.department_id, e.c.task_type, e.c.no_contact,
                    e.c.depth_level)
        cell_read = (e.c.level, div, facet_department_sql(e.c.department_id, e.c.level), e.c.task_type,
                     e.c.no_contact, e.c.depth_level)
        best = (
            sa.select(p.c.entry_id, sa.func.min(p.c.field).label("fld"))
            .where(_in_list(p.c.term_id, "ids", sa.Integer, pg), p.c.field != FIELD_NAME)
            .group_by(p.c.entry_id)
            .subquery()
        )
        self.grouped_names: dict[bool, Any] = {
            # Read as the cells read them: the cells are these rows, kept on write (no entry is read).
            True: sa.select(
                c.c.service, c.c.term_id, c.c.level, c.c.div_key, c.c.department_id, c.c.task_type,
                c.c.no_contact, depth_of_key_sql(c.c.depth),
            ).where(_in_list(c.c.term_id, "ids", sa.Integer, pg)),
            False: sa.select(svc, e.c.name_term_id, *raw_cols)
            .where(_in_list(e.c.name_term_id, "ids", sa.Integer, pg))
            .distinct(),
        }
        self.grouped_other: dict[bool, Any] = {}
        for serve, cols in ((True, cell_read), (False, raw_cols)):
            self.grouped_other[serve] = (
                sa.select(svc, best.c.fld, e.c.name_len, e.c.name, *cols)
                .join(best, best.c.entry_id == e.c.entry_id)
                .where(sa.not_(_in_list(e.c.name_term_id, "ids", sa.Integer, pg)))
                .distinct()
            )


_STATEMENTS = {False: _Statements(postgresql=False), True: _Statements(postgresql=True)}


def _q(conn: sa.Connection) -> _Statements:
    return _STATEMENTS[conn.dialect.name == "postgresql"]
