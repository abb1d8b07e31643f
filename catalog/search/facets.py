"""Facet counts (level, division, department, type, 不见面审批, 网上办理深度) under the other facets'
filters.

The cells carry the depth level too, so on the cell path the depth facet is counted over the cells
like the others; a depth filter makes the search count over search_entry rows.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from catalog.elements import DEPTH_LEVELS
from catalog.models import (
    TASK_TYPES,
    USE_LEVELS,
)
from catalog.search.cache import memoised_names
from catalog.search.facet_keys import TOWN_DIGITS, VILLAGE_LEVEL, facet_department_sql, facet_division_sql
from catalog.search.filters import SearchFilters, _sql_filters, filter_matches, sql_conditions
from catalog.search.sql import _q, _t
from catalog.search_models import (
    SearchCell,
)


def _ordered_facets(facets: dict[str, list[dict[str, Any]]]) -> dict[str, list[dict[str, Any]]]:
    """Each facet by count, then label, then value: ids differ between databases, labels do not."""
    return {
        k: sorted(v, key=lambda x: (-x["count"], str(x["label"]), str(x["value"]))) for k, v in facets.items()
    }


def _cells_serve(conn: sa.Connection, f: SearchFilters) -> bool:
    """Whether the filters can be applied to SearchCell rows (not a village, not a village committee,
    no depth filter)."""
    if f.depth:
        return False
    if f.division and len(f.division_prefix() or "") > TOWN_DIGITS:
        return False
    if f.department:
        level = conn.execute(_q(conn).department_level, {"id": f.department}).scalar()
        if level is None or level == VILLAGE_LEVEL:
            return False
    return True


def _cell_ok(
    f: SearchFilters, level: str, div_key: str, dept: int, ttype: str, nc: bool, skip: str | None = None
) -> bool:
    values = {"level": level, "division": div_key, "department": dept, "type": ttype, "no_contact": nc}
    return filter_matches(f, values, skip)


def _cell_facets(
    session: Session, ids: list[int], f: SearchFilters
) -> tuple[int, dict[str, list[dict[str, Any]]], dict[int, int]]:
    """Total, facets (each under the other facets' filters) and per-term counts from SearchCell rows."""
    conn = session.connection()
    cells = [
        (r[0], r[1], int(r[2]), r[3], bool(r[4]), int(r[5]))
        for r in conn.execute(_q(conn).cell_facets, {"ids": ids})
    ]
    total = 0
    counts: dict[str, dict[Any, int]] = {k: defaultdict(int) for k in _empty_facets()}
    for level, div_key, dept, ttype, nc, n in cells:
        if _cell_ok(f, level, div_key, dept, ttype, nc):
            total += n
        if _cell_ok(f, level, div_key, dept, ttype, nc, "level"):
            counts["level"][level] += n
        if _cell_ok(f, level, div_key, dept, ttype, nc, "division"):
            counts["division"][div_key] += n
        if dept and _cell_ok(f, level, div_key, dept, ttype, nc, "department"):
            counts["department"][dept] += n
        if _cell_ok(f, level, div_key, dept, ttype, nc, "type"):
            counts["type"][ttype] += n
        if nc and _cell_ok(f, level, div_key, dept, ttype, nc, "no_contact"):
            counts["no_contact"][True] += n
    if total == 0 and not f.active():
        return 0, _empty_facets(), {}
    c = _t(SearchCell)
    conds = sql_conditions(
        f,
        {
            "level": c.c.level,
            "division": c.c.div_key,
            "department": c.c.department_id,
            "type": c.c.task_type,
            "no_contact": c.c.no_contact,
        },
    )
    per_term: dict[int, int] = {}
    if total:
        stmt = _q(conn).cell_per_term.where(*conds).group_by(c.c.term_id)
        per_term = {int(t): int(n) for t, n in conn.execute(stmt, {"ids": ids}) if n}

    def ordered(d: dict[Any, int]) -> list[tuple[Any, int]]:
        return sorted(d.items(), key=lambda kv: (-kv[1], str(kv[0])))

    depth: list[tuple[Any, int]] = []
    if total:
        stmt = _q(conn).cell_depth.where(*conds).group_by(c.c.depth)
        depth = ordered({k: int(n) for k, n in conn.execute(stmt, {"ids": ids}) if k is not None and n})
    facets = _labelled_facets(
        conn,
        ordered(counts["level"]),
        ordered(counts["division"]),
        ordered(counts["department"]),
        ordered(counts["type"]),
        sum(counts["no_contact"].values()),
        depth,
    )
    return total, facets, per_term


def _labelled_facets(
    conn: Any,
    levels: list[tuple[Any, int]],
    divisions: list[tuple[Any, int]],
    departments: list[tuple[Any, int]],
    types: list[tuple[Any, int]],
    no_contact: int,
    depth: list[tuple[Any, int]],
) -> dict[str, list[dict[str, Any]]]:
    """The facet lists as the API returns them: counted values with their labels (division and
    department names looked up once each), in display order."""
    div_names = (
        memoised_names(
            "division",
            [k for k, _ in divisions],
            lambda keys: dict(conn.execute(_q(conn).division_names, {"keys": keys}).all()),
        )
        if divisions
        else {}
    )
    dept_names = (
        memoised_names(
            "department",
            [k for k, _ in departments],
            lambda keys: dict(conn.execute(_q(conn).department_names, {"keys": keys}).all()),
        )
        if departments
        else {}
    )
    facets = {
        "level": [{"value": k, "label": USE_LEVELS.get(k, k), "count": n} for k, n in levels],
        "division": [{"value": k, "label": div_names.get(k, k), "count": n} for k, n in divisions],
        "department": [{"value": k, "label": dept_names.get(k, str(k)), "count": n} for k, n in departments],
        "type": [{"value": k, "label": TASK_TYPES.get(k, k), "count": n} for k, n in types],
        "no_contact": [{"value": True, "label": "不见面审批", "count": no_contact}] if no_contact else [],
        "depth": [{"value": k, "label": DEPTH_LEVELS.get(k, str(k)), "count": n} for k, n in depth],
    }
    return _ordered_facets(facets)


def _empty_facets() -> dict[str, list[dict[str, Any]]]:
    return {"level": [], "division": [], "department": [], "type": [], "no_contact": [], "depth": []}


def _facets(
    session: Session, e: sa.Table, scope: list[Any], f: SearchFilters, name_ids: list[int] | None = None
) -> tuple[int, dict[str, list[dict[str, Any]]]]:
    """Total under all filters, and each facet's counts under the other facets' filters (in SQL).

    ``name_ids``, when given, says the scope is exactly "name term in name_ids" (the common case,
    served by prebuilt statements).
    """
    conn = session.connection()
    filtered = f.active()
    total = -1
    if filtered or name_ids is None:
        total = conn.execute(
            sa.select(sa.func.count()).select_from(e).where(*scope, *_sql_filters(f, e))
        ).scalar_one()
        if total == 0 and not filtered:
            return 0, _empty_facets()

    div_expr = facet_division_sql(e.c.division_code, e.c.level)
    dept_expr = facet_department_sql(e.c.department_id, e.c.level)
    exprs = {
        "level": e.c.level,
        "division": div_expr,
        "department": dept_expr,
        "type": e.c.task_type,
        "depth": e.c.depth_level,
    }
    cells: Sequence[Any] = []
    if not filtered and name_ids is not None:
        cells = conn.execute(_q(conn).cells, {"ids": name_ids}).all()
    elif not filtered:
        # Every facet shares one WHERE clause: one grouped scan serves them all.
        cells = conn.execute(
            sa.select(*exprs.values(), e.c.no_contact, sa.func.count())
            .select_from(e)
            .where(*scope)
            .group_by(*exprs.values(), e.c.no_contact)
        ).all()

    def grouped(key: str) -> list[tuple[Any, int]]:
        counts: dict[Any, int] = defaultdict(int)
        if not filtered:
            pos = list(exprs).index(key)
            for cell in cells:
                counts[cell[pos]] += int(cell[-1])
        else:
            expr = exprs[key]
            for value, n in conn.execute(
                sa.select(expr, sa.func.count())
                .select_from(e)
                .where(*scope, *_sql_filters(f, e, key))
                .group_by(expr)
            ):
                counts[value] += int(n)
        return sorted(counts.items(), key=lambda kv: (-kv[1], str(kv[0])))

    if total < 0:
        total = sum(int(cell[-1]) for cell in cells)
        if total == 0:
            return 0, _empty_facets()
    divisions = grouped("division")
    departments = [(k, n) for k, n in grouped("department") if k]  # village committees: see SearchCell
    if not filtered:
        nc = sum(int(cell[-1]) for cell in cells if cell[-2])
    else:
        nc = conn.execute(
            sa.select(sa.func.count())
            .select_from(e)
            .where(*scope, *_sql_filters(f, e, "no_contact"), e.c.no_contact.is_(True))
        ).scalar_one()
    depth = [(k, n) for k, n in grouped("depth") if k is not None]
    facets = _labelled_facets(
        conn, grouped("level"), divisions, departments, grouped("type"), int(nc or 0), depth
    )
    return int(total), facets
