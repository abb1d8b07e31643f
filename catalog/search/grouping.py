"""One result per service: ranked hits grouped by basic item (基本目录 item), with where each can be done.

Entries that claim the same basic item are one service (the district department's entry and the
towns' and villages' claims of it); an entry without a basic item would stand alone (its key is minus
its id; ``implementation_entry.item_id`` is NOT NULL today, so every entry has one). This module only
shapes results: it takes the term scores the matcher produced (``catalog.search.query``) and never
scores text itself.

Counts are of services: ``total`` is the number of services under all filters, each facet value the
number of services with an entry under that value and the other filters, so a facet's count is what
choosing it shows. Everything is decided in Python over rows of two plain queries (the matched terms'
(service, facet cell) rows, and the page's places), as in the rest of the engine, so SQLite and
PostgreSQL agree. The matched rows come from ``search_cell`` (kept per term, service, cell and depth)
when the filters allow, else from ``search_entry``; the page's places are read with one query (each
service's first few from an index), never a query per result. Neither joins the catalogue.
"""

from __future__ import annotations

import functools
from collections import Counter, defaultdict
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
    service_key_sql,
)
from catalog.search.facets import _cells_serve, _empty_facets, _labelled_facets
from catalog.search.filters import FACETS, SearchFilters, _sql_filters, division_prefix, filter_matches
from catalog.search.sql import _q, _t
from catalog.search_models import SearchEntry

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


_Vals = tuple[str, str, int, str, Any, Any]  # level, division, department, type, no_contact, depth


def _row_values(vals: _Vals) -> dict[str, Any]:
    level, division_code, department_id, ttype, nc, depth = vals
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


# One matched row: (service, rank tuple, facet values). Plain tuples: a broad query has thousands.
_Row = tuple[int, tuple[Any, ...], _Vals]


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
    q = _q(conn)
    serve = _cells_serve(conn, f)  # the same reading as _facet_columns
    params = {"ids": sorted(term_scores)}
    ranks = {
        tid: (0, -score, len(term_texts[tid]), term_texts[tid], tid) for tid, score in term_scores.items()
    }
    # fetchall, then unpacked: iterating the result fetched row by row (a Python call each, 70,000 rows
    # for 证 at province scale).
    rows: list[_Row] = [
        (s, ranks[tid], (level, div, dept, ttype, nc, depth))
        for s, tid, level, div, dept, ttype, nc, depth in conn.execute(q.grouped_names[serve], params).all()
    ]
    if with_other:
        rows += [
            (int(s), (1, int(fld), int(name_len), name, 0), tuple(vals))
            for s, fld, name_len, name, *vals in conn.execute(q.grouped_other[serve], params)
        ]
    return rows


def _browse_rows(conn: sa.Connection, f: SearchFilters) -> list[_Row]:
    """Entries failing at most one filter (what the total and every facet count need), by name."""
    e = _t(SearchEntry)
    svc = service_key_sql(e.c.item_id, e.c.entry_id)
    failed = [sa.case((cond, 0), else_=1) for cond in _sql_filters(f, e)]
    stmt = (
        sa.select(svc, e.c.name_len, e.c.name, *_facet_columns(conn, e, f))
        .select_from(e)
        .distinct()
    )
    if failed:
        stmt = stmt.where(sum(failed[1:], failed[0]) <= 1)
    return [
        (int(s), (2, int(n), name), tuple(vals))
        for s, n, name, *vals in conn.execute(stmt)
    ]


def _facet_value(facet: str, v: _Vals) -> Any:
    """The value a row counts under in ``facet`` (None: not counted there)."""
    level, division, department, ttype, nc, depth = v
    if facet == "division":
        return facet_division(division, level)
    if facet == "department":
        # Village committees are reached through the division (see SearchCell).
        return facet_department(department, level) or None
    if facet == "no_contact":
        return True if nc else None
    if facet == "depth":
        return depth
    return level if facet == "level" else ttype


def group_counts(conn: sa.Connection, rows: Sequence[_Row], f: SearchFilters) -> Ranked:
    """Services under all filters in ranking order (with the rank of each one's best row), and each
    facet's service counts under the other facets' filters."""
    best: dict[int, tuple[Any, ...]] = {}
    counts: dict[str, Counter[Any]] = {}
    if not f.active():
        # No filter (most searches): every row counts everywhere. A broad query has tens of thousands
        # of rows (70,000 for 证 at province scale) but fewer distinct facet tuples: the services are
        # gathered per tuple first, then each facet value takes the union of its tuples' services
        # (per row and facet in Python, this was a third of such a search).
        for service, rank, _v in rows:
            known = best.get(service)
            if known is None or rank < known:
                best[service] = rank
        services_of: dict[_Vals, set[int]] = defaultdict(set)
        for service, _r, v in rows:
            services_of[v].add(service)
        for facet in FACETS:
            under: dict[Any, set[int]] = defaultdict(set)
            for v, services in services_of.items():
                value = _facet_value(facet, v)
                if value is not None:
                    under[value] |= services  # a set union at C speed
            counts[facet] = Counter({value: len(services) for value, services in under.items()})
    else:
        counted: dict[str, dict[Any, set[int]]] = {k: defaultdict(set) for k in FACETS}
        for service, rank, v in rows:
            row_values = _row_values(v)
            if filter_matches(f, row_values) and (service not in best or rank < best[service]):
                best[service] = rank
            for facet in FACETS:
                if not filter_matches(f, row_values, facet):
                    continue
                value = _facet_value(facet, v)
                if value is not None:
                    counted[facet][value].add(service)
        counts = {facet: Counter({k: len(s) for k, s in by_value.items()})
                  for facet, by_value in counted.items()}
    order = sorted(best, key=lambda s: (best[s], s))
    if not order:
        return Ranked([], _empty_facets())

    def ordered(facet: str) -> list[tuple[Any, int]]:
        return sorted(counts[facet].items(), key=lambda kv: (-kv[1], str(kv[0])))

    facets = _labelled_facets(
        conn,
        ordered("level"),
        ordered("division"),
        ordered("department"),
        ordered("type"),
        counts["no_contact"].get(True, 0),
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
    whole page, never a query per result.

    Places are the service's entries under the filters. Order: the place itself, the town and county
    it lies in, the divisions under it, then the rest by level (district department, towns, villages)
    and code. Returns the groups and, per service, the search_entry row of its first place (the
    result's title links there).

    Per service the query reads its first ``MAX_PLACES`` entries and its count, each from the
    ``(item_id, level, division_code, entry_id)`` index: a window over all the page's entries, as
    before, read and sorted every claim of the page's services (127,000 rows for the first page of
    证 at province scale, 0.7 s on SQLite) to keep 50.
    """
    if not keys:
        return {}, {}
    chain = place_chain(place)
    items = [k for k in keys if k > 0]
    alone = [-k for k in keys if k <= 0]
    e = _t(SearchEntry)
    pg = conn.dialect.name == "postgresql"
    near = _chain_params(chain)
    rows: list[Any] = []
    if items:
        # Without filters (most searches) the statement depends only on the dialect and the chain's
        # length: built once (building it, with its aliases, cost more than running it at district scale).
        stmt = _item_places(pg, len(chain), f) if f.active() else _plain_item_places(pg, len(chain))
        rows += conn.execute(stmt, {"items": items, **near}).all()
    if alone:  # entries without a basic item (none today: implementation_entry.item_id is NOT NULL)
        rows += conn.execute(
            sa.select(e, (-e.c.entry_id).label("svc"), _near_rank(e, len(chain)).label("near_rank"),
                      sa.literal(1).label("n"))
            .where(e.c.entry_id.in_(alone), *_sql_filters(f, e)),
            near,
        ).all()
    rows.sort(key=lambda r: (r.svc, r.near_rank, r.level, r.division_code, r.entry_id))
    return _collect_places(rows, chain)


def _chain_params(chain: list[str]) -> dict[str, str]:
    """The bound values of ``_near_rank``: the chain's codes and the prefix of the divisions under it."""
    if not chain:
        return {}
    return {**{f"place{i}": code for i, code in enumerate(chain)},
            "place_prefix": division_prefix(chain[0]) + "%"}


def _near_rank(e: Any, chain_length: int) -> Any:
    """0, 1, 2 for the citizen's place and the town and county above it, then the divisions under the
    place, then the rest (0 for all when no place is chosen); the codes are bound (``_chain_params``)."""
    if not chain_length:
        return sa.literal(0)
    whens: list[Any] = [(e.c.division_code == sa.bindparam(f"place{i}"), i) for i in range(chain_length)]
    whens.append((e.c.division_code.like(sa.bindparam("place_prefix")), chain_length))
    return sa.case(*whens, else_=chain_length + 1)


@functools.lru_cache(maxsize=8)
def _plain_item_places(pg: bool, chain_length: int) -> Any:
    return _item_places(pg, chain_length, SearchFilters())


def _item_places(pg: bool, chain_length: int, f: SearchFilters) -> Any:
    """The first ``MAX_PLACES`` entries of each basic item in ``:items`` under the filters, nearest
    first, with the item's count (``n``): the count once per item (a materialised CTE), the entries by a
    bounded index read per item (a LATERAL subquery on PostgreSQL; on SQLite, which has no LATERAL,
    a correlated ``IN (... LIMIT)`` that it runs once per item)."""
    e = _t(SearchEntry)
    if pg:
        from sqlalchemy.dialects.postgresql import ARRAY

        source = sa.func.unnest(sa.bindparam("items", type_=ARRAY(sa.Integer)))
    else:
        source = sa.func.json_each(sa.bindparam("items", type_=sa.JSON))
    # PostgreSQL names unnest's column after the alias unless told: AS i(value).
    values = source.table_valued("value")
    i = values.render_derived(name="i") if pg else values.alias("i")
    c = e.alias("c")
    counted = (
        sa.select(
            i.c.value.label("item"),
            sa.select(sa.func.count()).where(c.c.item_id == i.c.value, *_sql_filters(f, c))
            .scalar_subquery().label("n"),
        )
        .cte("ic")
        .prefix_with("MATERIALIZED")
    )
    x = e.alias("x")
    nearest = [_near_rank(x, chain_length)] if chain_length else []
    first = (
        sa.select(x.c.entry_id)
        .where(x.c.item_id == counted.c.item, *_sql_filters(f, x))
        .order_by(*nearest, x.c.level, x.c.division_code, x.c.entry_id)
        .limit(MAX_PLACES)
    )
    columns = (e, counted.c.item.label("svc"), _near_rank(e, chain_length).label("near_rank"), counted.c.n)
    if pg:
        top = first.lateral("top")
        return sa.select(*columns).select_from(counted).join(top, sa.true()).join(
            e, e.c.entry_id == top.c.entry_id)
    return sa.select(*columns).select_from(counted).join(e, e.c.entry_id.in_(first))


def _collect_places(rows: Any, chain: list[str]) -> tuple[dict[int, ServiceGroup], dict[int, Any]]:
    groups: dict[int, ServiceGroup] = {}
    first: dict[int, Any] = {}
    for r in rows:
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
