"""The search index is kept in step by the catalogue services themselves, not by a listener on
SQLAlchemy's global Session class: it is current whichever session factory made the session (web
app, CLI, worker, test fixture), and a write around the services does not reach it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session as OrmSession
from sqlmodel import Session

from catalog import entries as entry_services
from catalog.importer import import_items_csv
from catalog.models import ImplementationEntry
from catalog.search import index, rebuild_index, reindex_entry, search
from catalog.search.facet_keys import facet_department_sql, facet_division_sql
from catalog.search.sql import _q, _t
from catalog.search_models import SearchEntry
from core.auth import SYSTEM
from tests.factories.catalog import (
    COMPLETE_FIELDS,
    NO_CONTACT_FIELDS,
    OTHER_TOWN,
    TOWN,
    VILLAGE,
    make_department,
    make_item,
)
from tests.factories.search import publish

HEADER = (
    "seq,item_name,item_type,task_type_code,department,item_group,basic_code,implementation_code,"
    "area_code,area_name,dept_code\n"
)


def _names(session: Any, q: str) -> set[str]:
    return {hit.name for hit in search(session, q, limit=100).items}


def test_entry_lifecycle_through_the_services_keeps_the_index_current_in_any_session(
    any_session: Any,
) -> None:
    # A session made by no Database at all (as a worker or a script might): nothing to register on.
    session = Session(bind=any_session.connection(), expire_on_commit=False)
    dept = make_department(session, "区林业站")
    item = make_item(session, name="林木采伐许可证核发")
    entry = entry_services.claim_item(session, SYSTEM, item_id=item.id, department_id=dept.id)
    entry_services.update_entry(session, SYSTEM, entry.id, fields=COMPLETE_FIELDS)
    assert "林木采伐许可证核发" not in _names(session, "林木采伐")  # a draft is not searchable
    entry_services.submit_entry(session, SYSTEM, entry.id)
    entry_services.approve_entry(session, SYSTEM, entry.id)
    assert "林木采伐许可证核发" in _names(session, "林木采伐")
    entry_services.retire_entry(session, SYSTEM, entry.id, reason="职能调整")
    assert "林木采伐许可证核发" not in _names(session, "林木采伐")


def test_a_write_around_the_services_does_not_reach_the_index_until_reindexed(any_session: Any) -> None:
    dept = make_department(any_session, "区渔政站")
    item = make_item(any_session, name="水产苗种生产许可")
    entry = entry_services.claim_item(any_session, SYSTEM, item_id=item.id, department_id=dept.id)
    entry_services.update_entry(any_session, SYSTEM, entry.id, fields=COMPLETE_FIELDS)
    entry_services.submit_entry(any_session, SYSTEM, entry.id)
    entry_services.approve_entry(any_session, SYSTEM, entry.id)
    row = any_session.get(ImplementationEntry, entry.id)
    row.name = "水产苗种经营许可"
    any_session.flush()
    assert "水产苗种经营许可" not in _names(any_session, "水产苗种")
    reindex_entry(any_session, entry.id)
    assert "水产苗种经营许可" in _names(any_session, "水产苗种")


def test_no_catalogue_listener_on_the_global_session_class() -> None:
    import catalog.entries
    import catalog.search.index  # noqa: F401

    fresh = OrmSession()  # any session in the process carries the class-level listeners
    for name in ("before_flush", "after_flush", "after_flush_postexec"):
        owners = {getattr(fn, "__module__", "") for fn in getattr(fresh.dispatch, name)}
        assert not {m for m in owners if m.startswith("catalog")}, (name, owners)


def test_imported_entries_are_searchable_in_the_same_transaction(any_session: Any, tmp_path: Path) -> None:
    make_department(any_session, "区甲局")  # loads the divisions
    path = tmp_path / "items.csv"
    path.write_text(
        HEADER + "1,船舶登记证书核发,行政许可,1,区甲局,,SRC-1,x,511602000000,广安区,1\n", encoding="utf-8"
    )
    report = import_items_csv(any_session, path, "321203", progress=False)
    assert report.created == 1, report.errors
    assert "船舶登记证书核发" in _names(any_session, "船舶登记")


def _indexed_items(session: Any) -> dict[int, int | None]:
    from catalog.search_models import SearchEntry
    from core.db import table_of

    e = table_of(SearchEntry)
    return {int(r[0]): r[1] for r in session.connection().execute(sa.select(e.c.entry_id, e.c.item_id))}


def test_search_rows_carry_the_basic_item_on_write_and_on_rebuild(any_session: Any) -> None:
    # Grouped search keys services by search_entry.item_id (it never joins implementation_entry):
    # the services' reindex and the full rebuild must both fill it.
    dept = make_department(any_session, "区海事处")
    item = make_item(any_session, name="船舶进出港报告")
    entry = entry_services.claim_item(any_session, SYSTEM, item_id=item.id, department_id=dept.id)
    entry_services.update_entry(any_session, SYSTEM, entry.id, fields=COMPLETE_FIELDS)
    entry_services.submit_entry(any_session, SYSTEM, entry.id)
    entry_services.approve_entry(any_session, SYSTEM, entry.id)
    assert _indexed_items(any_session)[entry.id] == item.id
    rebuild_index(any_session)
    assert _indexed_items(any_session)[entry.id] == item.id
    grouped = search(any_session, "船舶进出港", group=True)
    assert [s.item_id for s in grouped.services] == [item.id]


def _cells(session: Any) -> list[tuple[Any, ...]]:
    return sorted(tuple(r) for r in session.execute(sa.text(
        "SELECT term_id, service, level, div_key, department_id, task_type, no_contact, depth, n "
        "FROM search_cell")))


def test_cells_kept_on_write_are_the_cells_rebuilt_and_the_entries_grouped(any_session: Any) -> None:
    """search_cell is kept by the services (publish, retire) per term, service, facet cell and depth;
    it must equal a recount from search_entry, and a grouped search's rows read from it must be the
    distinct (service, term, cell) rows of the matching entries."""
    bodies = [make_department(any_session, "区民政局"),
              make_department(any_session, "口岸街道办事处", level="5", division_code=TOWN),
              make_department(any_session, "刁铺街道办事处", level="5", division_code=OTHER_TOWN),
              make_department(any_session, "柴墟社区居民委员会", level="6", division_code=VILLAGE)]
    items = [make_item(any_session, name=name, task_type="20", use_levels="4,5,6")
             for name in ("困难残疾人生活补贴", "重度残疾人护理补贴", "残疾人证办理")]
    entries = []
    for i, item in enumerate(items):
        for j, body in enumerate(bodies):
            # Depth Ⅳ (no-contact fields) for some, none for the others: both kinds of cell.
            fields = NO_CONTACT_FIELDS if (i + j) % 2 else {}
            entries.append(publish(any_session, body, item, **fields))
    entry_services.retire_entry(any_session, SYSTEM, entries[1].id, reason="职能调整")
    entry_services.retire_entry(any_session, SYSTEM, entries[6].id, reason="职能调整")
    kept = _cells(any_session)
    assert {c[7] for c in kept} == {0, 4}
    assert {c[1] for c in kept} == {item.id for item in items}

    conn = any_session.connection()
    ids = sorted({c[0] for c in kept})
    e = _t(SearchEntry)
    oracle = sa.select(
        sa.func.coalesce(e.c.item_id, -e.c.entry_id), e.c.name_term_id, e.c.level,
        facet_division_sql(e.c.division_code, e.c.level), facet_department_sql(e.c.department_id, e.c.level),
        e.c.task_type, e.c.no_contact, e.c.depth_level,
    ).where(e.c.name_term_id.in_(ids)).distinct()
    from_cells = sorted(tuple(r) for r in conn.execute(_q(conn).grouped_names[True], {"ids": ids}))
    assert from_cells == sorted(tuple(r) for r in conn.execute(oracle))

    index._rebuild_cells(conn)
    assert _cells(any_session) == kept
