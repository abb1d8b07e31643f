"""The search index: terms and their grams, one row per searchable entry, postings, facet cells.

The catalogue services keep it in step explicitly: every entry write calls ``reindex_entry`` (through
``catalog.entries._save_version``) and the importer reindexes the entries it created, in the caller's
transaction. Nothing listens on SQLAlchemy's global Session class, so the index does not depend on
which session factory (web app, CLI, worker, test fixture) made the session, or on import order.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col

from catalog.models import (
    Department,
    EntryStatus,
    ImplementationEntry,
    Material,
)
from catalog.search.facet_keys import (
    depth_key,
    depth_key_sql,
    facet_department,
    facet_department_sql,
    facet_division,
    facet_division_sql,
    service_key,
    service_key_sql,
)
from catalog.search.sql import _chunks, _t
from catalog.search.state import mark_changed
from catalog.search.text import grams, normalize_text, pinyin_grams, pinyin_of
from catalog.search_models import (
    FIELD_DEPARTMENT,
    FIELD_KEYWORD,
    FIELD_MATERIAL,
    SearchCell,
    SearchEntry,
    SearchGram,
    SearchPosting,
    SearchTerm,
)


def entry_texts(entry: Any, department_name: str, materials: Sequence[str]) -> dict[int, set[str]]:
    """The normalised texts of an entry by field."""
    texts: dict[int, set[str]] = {FIELD_KEYWORD: set(), FIELD_DEPARTMENT: set(), FIELD_MATERIAL: set()}
    for word in re.split(r"[,，、;；|\s]+", entry.keywords or ""):
        t = normalize_text(word).strip()
        if t:
            texts[FIELD_KEYWORD].add(t[:300])
    dept = normalize_text(department_name).strip()
    if dept:
        texts[FIELD_DEPARTMENT].add(dept[:300])
    for name in materials:
        t = normalize_text(name).strip()
        if t:
            texts[FIELD_MATERIAL].add(t[:300])
    return texts


class TermCache:
    """Finds or creates SearchTerm rows (with their grams) for texts; ids are kept per run."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.ids: dict[str, int] = {}

    def ensure(self, texts: Iterable[str]) -> dict[str, int]:
        texts = list(texts)
        self.ensure_groups([texts])
        return {t: self.ids[t] for t in texts}

    def ensure_groups(self, groups: Sequence[Sequence[str]]) -> None:
        """Find or create the terms of several entries' texts with a few statements for all of them.

        New terms get their ids in the order one ``ensure`` call per group would have given them (each
        group's new texts in sorted order, groups in order), with one SELECT per 500 texts and one
        INSERT of the terms and one of their grams for the batch instead of statements per entry and
        per term (an import of a thousand entries made several thousand round trips).
        """
        wanted = {t for group in groups for t in group if t not in self.ids}
        if not wanted:
            return
        conn = self.session.connection()
        tbl = _t(SearchTerm)
        for chunk in _chunks(sorted(wanted), 500):
            for tid, text in conn.execute(sa.select(tbl.c.id, tbl.c.text).where(tbl.c.text.in_(chunk))):
                self.ids[text] = tid
        missing: dict[str, tuple[str, str]] = {}
        for group in groups:
            for text in sorted(t for t in group if t not in self.ids and t not in missing):
                missing[text] = pinyin_of(text)
        if not missing:
            return
        rows = [{"text": t, "pinyin": py[:1500], "initials": ini[:300]} for t, (py, ini) in missing.items()]
        gram_rows: list[dict[str, Any]] = []
        for chunk in _chunks(rows, 500):
            inserted = conn.execute(
                sa.insert(tbl).returning(tbl.c.id, tbl.c.text, sort_by_parameter_order=True), list(chunk)
            ).all()
            for tid, text in inserted:
                self.ids[text] = tid
                py, ini = missing[text]
                term_grams = sorted(grams(text) | pinyin_grams(py, ini))
                gram_rows.extend({"gram": g, "term_id": tid} for g in term_grams)
        for gram_chunk in _chunks(gram_rows, 5000):
            conn.execute(sa.insert(_t(SearchGram)), list(gram_chunk))


# A SearchCell's key: term, service, level, division, department, type, 不见面审批, depth.
CellKey = tuple[int, int, str, str, int, str, bool, int]
CELL_COLUMNS = ("term_id", "service", "level", "div_key", "department_id", "task_type", "no_contact", "depth")


def _cell_key(
    term_id: int, item_id: int | None, entry_id: int, level: str, division_code: str, department_id: int,
    task_type: str, no_contact: Any, depth_level: int | None,
) -> CellKey:
    """The SearchCell an entry counts in (see its docstring)."""
    return (
        term_id,
        service_key(item_id, entry_id),
        level,
        facet_division(division_code, level),
        facet_department(department_id, level),
        task_type,
        bool(no_contact),
        depth_key(depth_level),
    )


def _bump_cells(conn: sa.Connection, deltas: dict[CellKey, int]) -> None:
    """Add the count changes to the cells (an upsert, safe under concurrent writers), drop empty cells."""
    changes = [(k, d) for k, d in sorted(deltas.items()) if d]
    if not changes:
        return
    cell = _t(SearchCell)
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert  # type: ignore[assignment]  # same upsert API as PostgreSQL's, another class
    for chunk in _chunks(changes, 500):
        stmt = insert(cell).values([{**dict(zip(CELL_COLUMNS, k, strict=True)), "n": d} for k, d in chunk])
        stmt = stmt.on_conflict_do_update(
            index_elements=list(CELL_COLUMNS), set_={"n": cell.c.n + stmt.excluded.n})
        conn.execute(stmt)
    if any(d < 0 for _k, d in changes):
        conn.execute(sa.delete(cell).where(cell.c.n <= 0))


def _cell_source_columns(e: sa.Table) -> tuple[Any, ...]:
    """The entry columns ``_cell_key`` reads, in its order."""
    return (e.c.name_term_id, e.c.item_id, e.c.entry_id, e.c.level, e.c.division_code, e.c.department_id,
            e.c.task_type, e.c.no_contact, e.c.depth_level)


def _rebuild_cells(conn: sa.Connection) -> None:
    """Recompute every cell from search_entry (after bulk changes)."""
    cell = _t(SearchCell)
    e = _t(SearchEntry)
    div = facet_division_sql(e.c.division_code, e.c.level)
    dept = facet_department_sql(e.c.department_id, e.c.level)
    svc = service_key_sql(e.c.item_id, e.c.entry_id)
    depth = depth_key_sql(e.c.depth_level)
    cols = (e.c.name_term_id, svc, e.c.level, div, dept, e.c.task_type, e.c.no_contact, depth)
    conn.execute(sa.delete(cell))
    conn.execute(
        sa.insert(cell).from_select([*CELL_COLUMNS, "n"], sa.select(*cols, sa.func.count()).group_by(*cols))
    )


def _delete_entry_rows(conn: sa.Connection, entry_ids: Sequence[int]) -> None:
    se = _t(SearchEntry)
    deltas: dict[CellKey, int] = defaultdict(int)
    for chunk in _chunks(list(entry_ids), 500):
        for r in conn.execute(sa.select(*_cell_source_columns(se)).where(se.c.entry_id.in_(chunk))):
            deltas[_cell_key(*r)] -= 1
    _bump_cells(conn, deltas)
    for chunk in _chunks(list(entry_ids), 500):
        conn.execute(sa.delete(_t(SearchPosting)).where(col(SearchPosting.entry_id).in_(chunk)))
        conn.execute(sa.delete(_t(SearchEntry)).where(col(SearchEntry.entry_id).in_(chunk)))


def is_searchable(entry: Any) -> bool:
    return entry.status == EntryStatus.PUBLISHED.value and bool(entry.applicable)


def reindex_entry(session: Session, entry_id: int) -> bool:
    """Bring one entry's search rows in line with the entry; returns whether it is now searchable.

    Runs in the caller's transaction (flush-level writes only), so a rolled-back change leaves the
    index as it was.
    """
    return reindex_entries(session, [entry_id]) > 0


def reindex_entries(session: Session, entry_ids: Iterable[int], cache: TermCache | None = None) -> int:
    ids = sorted({int(i) for i in entry_ids if i is not None})
    if not ids:
        return 0
    conn = session.connection()
    cache = cache or TermCache(session)
    ent = _t(ImplementationEntry)
    dep = _t(Department)
    mat = _t(Material)
    se = _t(SearchEntry)
    written = 0
    removed = False
    for chunk in _chunks(ids, 500):
        indexed = [r[0] for r in conn.execute(sa.select(se.c.entry_id).where(se.c.entry_id.in_(chunk)))]
        if indexed:
            _delete_entry_rows(conn, indexed)
            removed = True
        rows = conn.execute(
            sa.select(ent, dep.c.name.label("department_name"))
            .join(dep, dep.c.id == ent.c.department_id)
            .where(
                ent.c.id.in_(chunk), ent.c.status == EntryStatus.PUBLISHED.value, ent.c.applicable.is_(True)
            )
        ).all()
        if not rows:
            continue
        materials: dict[int, list[str]] = defaultdict(list)
        for entry_id, name in conn.execute(
            sa.select(mat.c.entry_id, mat.c.name)
            .where(mat.c.entry_id.in_(chunk))
            .order_by(mat.c.entry_id, mat.c.position)
        ):
            materials[entry_id].append(name)
        entry_rows, posting_rows = [], []
        searchable = []
        for entry in rows:
            if not is_searchable(entry):
                continue
            name_text = normalize_text(entry.name).strip()
            by_field = entry_texts(entry, entry.department_name, materials.get(entry.id, []))
            searchable.append((entry, name_text, by_field))
        cache.ensure_groups([sorted({name}.union(*by_field.values())) for _e, name, by_field in searchable])
        term_ids = cache.ids
        for entry, name_text, by_field in searchable:
            entry_rows.append(_entry_row(entry, entry.department_name, term_ids[name_text]))
            for fld, texts in by_field.items():
                for text in sorted(texts):
                    posting_rows.append({"term_id": term_ids[text], "field": fld, "entry_id": entry.id})
        if entry_rows:
            conn.execute(sa.insert(_t(SearchEntry)), entry_rows)
            deltas: dict[CellKey, int] = defaultdict(int)
            names = [c.name for c in _cell_source_columns(_t(SearchEntry))]
            for r in entry_rows:
                deltas[_cell_key(*(r[name] for name in names))] += 1
            _bump_cells(conn, deltas)
        if posting_rows:
            conn.execute(sa.insert(_t(SearchPosting)), posting_rows)
        written += len(entry_rows)
    if written or removed:  # (a draft's edit reaches no search: no new token)
        mark_changed(session)  # last: the token row stays locked until the commit
    return written


def _entry_row(entry: Any, department_name: str, name_term_id: int) -> dict[str, Any]:
    return {
        "entry_id": entry.id,
        "task_code": entry.task_code,
        "name": entry.name,
        "name_len": len(entry.name),
        "name_term_id": name_term_id,
        "department_id": entry.department_id,
        "department_name": department_name[:100],
        "level": entry.level,
        "division_code": entry.division_code,
        "task_type": entry.task_type,
        "no_contact": bool(entry.no_contact),
        "depth_level": entry.depth_level,
        "item_id": entry.item_id,
    }


def rebuild_index(session: Session, progress: bool = False, batch: int = 5000) -> int:
    """Rebuild the whole index from the published entries; returns the number of entries indexed.

    On PostgreSQL the rows go in with COPY; elsewhere with executemany. Terms are kept (they are
    only a dictionary) and orphaned ones are dropped at the end.
    """
    conn = session.connection()
    conn.execute(sa.delete(_t(SearchCell)))
    conn.execute(sa.delete(_t(SearchPosting)))
    conn.execute(sa.delete(_t(SearchEntry)))
    cache = TermCache(session)
    ent = _t(ImplementationEntry)
    dep = _t(Department)
    mat = _t(Material)
    dept_names: dict[int, str] = {r[0]: r[1] for r in conn.execute(sa.select(dep.c.id, dep.c.name))}
    total = conn.execute(
        sa.select(sa.func.count())
        .select_from(ent)
        .where(ent.c.status == EntryStatus.PUBLISHED.value, ent.c.applicable.is_(True))
    ).scalar_one()
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=total, desc="索引", unit="条")
    cols = [
        ent.c.id,
        ent.c.task_code,
        ent.c.name,
        ent.c.department_id,
        ent.c.level,
        ent.c.division_code,
        ent.c.task_type,
        ent.c.no_contact,
        ent.c.depth_level,
        ent.c.keywords,
        ent.c.item_id,
    ]
    last_id, written = 0, 0
    pg = conn.dialect.name == "postgresql"
    while True:
        rows = conn.execute(
            sa.select(*cols)
            .where(
                ent.c.status == EntryStatus.PUBLISHED.value, ent.c.applicable.is_(True), ent.c.id > last_id
            )
            .order_by(ent.c.id)
            .limit(batch)
        ).all()
        if not rows:
            break
        last_id = rows[-1].id
        materials: dict[int, list[str]] = defaultdict(list)
        for entry_id, name in conn.execute(
            sa.select(mat.c.entry_id, mat.c.name)
            .where(mat.c.entry_id >= rows[0].id, mat.c.entry_id <= last_id)
            .order_by(mat.c.entry_id, mat.c.position)
        ):
            materials[entry_id].append(name)
        entry_rows, posting_rows = [], []
        texts_of = []
        for r in rows:
            dname = dept_names.get(r.department_id, "")
            name_text = normalize_text(r.name).strip()
            texts_of.append((r, dname, name_text, entry_texts(r, dname, materials.get(r.id, []))))
        cache.ensure_groups([sorted({name}.union(*by_field.values())) for *_r, name, by_field in texts_of])
        term_ids = cache.ids
        for r, dname, name_text, by_field in texts_of:
            entry_rows.append(_entry_row(r, dname, term_ids[name_text]))
            for fld, texts in by_field.items():
                for text in texts:
                    posting_rows.append({"term_id": term_ids[text], "field": fld, "entry_id": r.id})
        if pg:
            _copy_rows(conn, "search_entry", entry_rows)
            _copy_rows(conn, "search_posting", posting_rows)
        else:
            conn.execute(sa.insert(_t(SearchEntry)), entry_rows)
            if posting_rows:
                conn.execute(sa.insert(_t(SearchPosting)), posting_rows)
        written += len(rows)
        if bar is not None:
            bar.update(len(rows))
    if bar is not None:
        bar.close()
    _rebuild_cells(conn)
    _drop_orphan_terms(conn)
    mark_changed(session)  # last: the token row stays locked until the commit
    return written


def _copy_rows(conn: sa.Connection, table: str, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    columns = list(rows[0])
    raw = conn.connection.driver_connection
    if raw is None:  # only once the pool has invalidated the connection
        raise RuntimeError("the database connection is closed")
    with raw.cursor() as cur, cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row([row[c] for c in columns])


def _drop_orphan_terms(conn: sa.Connection) -> None:
    term = _t(SearchTerm)
    se = _t(SearchEntry)
    sp = _t(SearchPosting)
    orphan = sa.select(term.c.id).where(
        ~sa.exists().where(se.c.name_term_id == term.c.id),
        ~sa.exists().where(sp.c.term_id == term.c.id),
    )
    conn.execute(sa.delete(_t(SearchGram)).where(col(SearchGram.term_id).in_(orphan)))
    conn.execute(sa.delete(term).where(term.c.id.in_(orphan)))
