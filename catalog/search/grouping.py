"""One result per service: ranked hits grouped by basic item (基本目录 item), with where each can be done.

Entries that claim the same basic item are one service (the district department's entry and the
towns' and villages' claims of it); an entry without a basic item would stand alone (its key is minus
its id; ``implementation_entry.item_id`` is NOT NULL today, so every entry has one). This module only
shapes results: it takes the term scores the matcher produced (``catalog.search.query``) and never
scores text itself.

Counts are of services: ``total`` is the number of services under all filters, each facet value the
number of services with an entry under that value and the other filters, so a facet's count is what
choosing it shows. Everything is decided in Python over rows of two plain queries (the matched entries'
facet values, and the page's places), as in the rest of the engine, so SQLite and PostgreSQL agree.
The page's places are read with one query (a window per service), never a query per result. Both
read ``search_entry`` alone: it carries each entry's item id, so grouping never joins the catalogue.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from catalog.search.facet_keys import (
    CODE_LENGTH,
    COUNTY_DIGITS,
    TOWN_DIGITS,
    facet_department,
    facet_department_sql,
    facet_division,
    facet_division_sql,
)
from catalog.search.facets import _cells_serve, _empty_facets, _labelled_facets
from catalog.search.filters import FACETS, SearchFilters, _sql_filters, division_prefix, filter_matches
from catalog.search.sql import _t
from catalog.search_models import FIELD_NAME, SearchEntry, SearchPosting

# Places listed under one service; the rest are counted ("共 N 处可办理").
MAX_PLACES = 5


@dataclass
class Place:
    """Where a service can be done: one published entry (its body and division)."""

    task_code: str
    department: str
    department_id: int
    level: str
    division_code: str
    no_contact: bool
    # The citizen's own place, or the town or county it lies in.
    near: bool = False


@dataclass
class ServiceGroup:
    """One service on a results page: its key, and where it can be done, the citizen's place first."""

    key: int  # the basic item's id, or minus the entry id for an entry without one
    item_id: int | None
    places: list[Place] = field(default_factory=list)
    place_count: int = 0


def service_key(item_id: int | None, entry_id: int) -> int:
    """The grouping key of an entry (see the module docstring)."""
    return int(item_id) if item_id is not None else -int(entry_id)


def _service_sql(e: sa.Table) -> Any:
    return sa.func.coalesce(e.c.item_id, -e.c.entry_id)


def place_chain(place: str | None) -> list[str]:
    """The citizen's place and the divisions above it within the county, nearest first (12 digits)."""
    if not place or not place.isdigit() or len(place) not in (6, CODE_LENGTH):
        return []
    code = place.ljust(CODE_LENGTH, "0")
    chain = [code]
    for digits in (TOWN_DIGITS, COUNTY_DIGITS):
        up = code[:digits].ljust(CODE_LENGTH, "0")
        if up not in chain:
            chain.append(up)
    return chain


def _row_values(
    level: str, division_code: str, department_id: int, ttype: str, nc: Any, depth: Any
) -> dict[str, Any]:
    return {
        "level": level,
        "division": division_code,
        "department": department_id,
        "type": ttype,
        "no_contact": bool(nc),
        "depth": depth,
    }


@dataclass
class Ranked:
    """Services in ranking order, each with the rank tuple of its best row: ``(0, -score, ...)`` for
    a name match, ``(1, field, ...)`` for a keyword/department/material match, ``(2, ...)`` when
    browsing; and the facets."""

    services: list[tuple[int, tuple[Any, ...]]]
    facets: dict[str, list[dict[str, Any]]]

    @property
    def total(self) -> int:
        return len(self.services)


@dataclass
class _Row:
    service: int
    rank: tuple[Any, ...]
    values: dict[str, Any]


def _facet_columns(conn: sa.Connection, e: sa.Table, f: SearchFilters) -> tuple[Any, ...]:
    """The columns a row's facet values and filters are read from. When no filter needs a village
    (the test ``_cells_serve`` applies), a village entry's division is read as its town and its
    committee as department 0: the filters and facets then give the same answer, and a service's
    entries in many villages collapse into one row per town."""
    if _cells_serve(conn, f):
        division = facet_division_sql(e.c.division_code, e.c.level)
        department = facet_department_sql(e.c.department_id, e.c.level)
    else:
        division, department = e.c.division_code, e.c.department_id
    return (e.c.level, division, department, e.c.task_type, e.c.no_contact, e.c.depth_level)


def _matched_rows(
    conn: sa.Connection,
    term_scores: dict[int, int],
    term_texts: dict[int, str],
    with_other: bool,
    f: SearchFilters,
) -> list[_Row]:
    """The facet values of every matched entry, one row per distinct (service, name term, cell)."""
    e, p = _t(SearchEntry), _t(SearchPosting)
    svc = _service_sql(e)
    ids = sorted(term_scores)
    facet_cols = _facet_columns(conn, e, f)
    rows: list[_Row] = []
    by_name = (
        sa.select(svc, e.c.name_term_id, *facet_cols)
        .where(e.c.name_term_id.in_(ids))
        .distinct()
    )
    for s, tid, *vals in conn.execute(by_name):
        text = term_texts[tid]
        rows.append(_Row(int(s), (0, -term_scores[tid], len(text), text, tid), _row_values(*vals)))
    if with_other:
        best = (
            sa.select(p.c.entry_id, sa.func.min(p.c.field).label("fld"))
            .where(p.c.term_id.in_(ids), p.c.field != FIELD_NAME)
            .group_by(p.c.entry_id)
            .subquery()
        )
        other = (
            sa.select(svc, best.c.fld, e.c.name_len, e.c.name, *facet_cols)
            .join(best, best.c.entry_id == e.c.entry_id)
            .where(e.c.name_term_id.not_in(ids))
            .distinct()
        )
        for s, fld, name_len, name, *vals in conn.execute(other):
            rows.append(_Row(int(s), (1, int(fld), int(name_len), name, 0), _row_values(*vals)))
    return rows


def _browse_rows(conn: sa.Connection, f: SearchFilters) -> list[_Row]:
    """Entries failing at most one filter (what the total and every facet count need), by name."""
    e = _t(SearchEntry)
    svc = _service_sql(e)
    failed = [sa.case((cond, 0), else_=1) for cond in _sql_filters(f, e)]
    stmt = (
        sa.select(svc, e.c.name_len, e.c.name, *_facet_columns(conn, e, f))
        .select_from(e)
        .distinct()
    )
    if failed:
        stmt = stmt.where(sum(failed[1:], failed[0]) <= 1)
    return [_Row(int(s), (2, int(n), name), _row_values(*vals)) for s, n, name, *vals in conn.execute(stmt)]


def group_counts(conn: sa.Connection, rows: Sequence[_Row], f: SearchFilters) -> Ranked:
    """Services under all filters in ranking order (with the rank of each one's best row), and each
    facet's service counts under the other facets' filters."""
    best: dict[int, tuple[Any, ...]] = {}
    counted: dict[str, dict[Any, set[int]]] = {k: defaultdict(set) for k in FACETS}
    filtered = f.active()
    for row in rows:
        v = row.values
        passes = not filtered or filter_matches(f, v)
        if passes and (row.service not in best or row.rank < best[row.service]):
            best[row.service] = row.rank
        for facet in FACETS:
            if filtered and not filter_matches(f, v, facet):
                continue
            if facet == "division":
                counted[facet][facet_division(v["division"], v["level"])].add(row.service)
            elif facet == "department":
                dept = facet_department(v["department"], v["level"])
                if dept:  # village committees are reached through the division (see SearchCell)
                    counted[facet][dept].add(row.service)
            elif facet == "no_contact":
                if v["no_contact"]:
                    counted[facet][True].add(row.service)
            elif facet == "depth":
                if v["depth"] is not None:
                    counted[facet][v["depth"]].add(row.service)
            else:
                counted[facet][v[facet]].add(row.service)
    order = sorted(best, key=lambda s: (best[s], s))
    if not order:
        return Ranked([], _empty_facets())

    def ordered(facet: str) -> list[tuple[Any, int]]:
        return sorted(((k, len(s)) for k, s in counted[facet].items()), key=lambda kv: (-kv[1], str(kv[0])))

    facets = _labelled_facets(
        conn,
        ordered("level"),
        ordered("division"),
        ordered("department"),
        ordered("type"),
        len(counted["no_contact"].get(True, ())),
        ordered("depth"),
    )
    return Ranked([(s, best[s]) for s in order], facets)


def matched_services(
    conn: sa.Connection,
    term_scores: dict[int, int],
    term_texts: dict[int, str],
    f: SearchFilters,
    with_other: bool,
) -> Ranked:
    """``group_counts`` over the entries the matched terms reach."""
    if not term_scores:
        return Ranked([], _empty_facets())
    return group_counts(conn, _matched_rows(conn, term_scores, term_texts, with_other, f), f)


def browsed_services(conn: sa.Connection, f: SearchFilters) -> Ranked:
    """``group_counts`` over the entries under the filters (browsing, no query)."""
    return group_counts(conn, _browse_rows(conn, f), f)


def page_places(
    conn: sa.Connection, keys: Sequence[int], f: SearchFilters, place: str | None
) -> tuple[dict[int, ServiceGroup], dict[int, Any]]:
    """Where each of the page's services can be done, the citizen's place first: one query for the
    whole page (a window per service keeps at most ``MAX_PLACES`` rows each and counts the rest).

    Places are the service's entries under the filters. Order: the place itself, the town and county
    it lies in, the divisions under it, then the rest by level (district department, towns, villages)
    and code. Returns the groups and, per service, the search_entry row of its first place (the
    result's title links there).
    """
    if not keys:
        return {}, {}
    e = _t(SearchEntry)
    svc = _service_sql(e)
    chain = place_chain(place)
    whens: list[Any] = [(e.c.division_code == code, i) for i, code in enumerate(chain)]
    if chain:
        prefix = division_prefix(chain[0])
        whens.append((e.c.division_code.like(prefix + "%"), len(chain)))
    rank = sa.case(*whens, else_=len(chain) + 1) if whens else sa.literal(0)
    items = [k for k in keys if k > 0]
    alone = [-k for k in keys if k <= 0]
    which = []
    if items:
        which.append(e.c.item_id.in_(items))
    if alone:
        which.append(e.c.entry_id.in_(alone))
    ranked = (
        sa.select(
            e,
            svc.label("svc"),
            rank.label("near_rank"),
            sa.func.row_number()
            .over(partition_by=svc, order_by=(rank, e.c.level, e.c.division_code, e.c.entry_id))
            .label("rn"),
            sa.func.count().over(partition_by=svc).label("n"),
        )
        .where(sa.or_(*which), *_sql_filters(f, e))
        .subquery()
    )
    groups: dict[int, ServiceGroup] = {}
    first: dict[int, Any] = {}
    for r in conn.execute(
        sa.select(ranked).where(ranked.c.rn <= MAX_PLACES).order_by(ranked.c.svc, ranked.c.rn)
    ):
        key = int(r.svc)
        group = groups.setdefault(
            key, ServiceGroup(key=key, item_id=key if key > 0 else None, place_count=int(r.n))
        )
        group.places.append(
            Place(
                task_code=r.task_code,
                department=r.department_name,
                department_id=r.department_id,
                level=r.level,
                division_code=r.division_code,
                no_contact=bool(r.no_contact),
                near=bool(chain) and int(r.near_rank) <= len(chain),
            )
        )
        first.setdefault(key, r)
    return groups, first
