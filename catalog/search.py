"""Citizen search over published implementation entries, identical on SQLite and PostgreSQL.

How it works (see docs/search.md):

* Every distinct text (entry name, keyword, department name, material name) is a ``SearchTerm``
  indexed by its character unigrams and overlapping bigrams, and by letter bigrams of its pinyin
  (``#``-prefixed). A query phrase of n >= 2 characters selects the terms holding all its bigrams,
  then keeps those that really contain it, so a query finds every name that contains it (the
  ``LIKE '%q%'`` oracle), including 1- and 2-character queries.
* Everything that decides the answer (matching, scoring, ordering, facets) runs in Python over rows
  the database returns for plain equality/IN queries, so both databases give the same answer.
* Aliases (data/search_aliases.csv, editable by administrators), pinyin (full, aligned on syllables,
  and initials), filler words (办/怎么/需要什么材料 ...) and, when nothing else matched, one wrong,
  missing or extra character widen the query.
* Ranking: exact name > name prefix > name contains > all words in the name > alias/pinyin
  variants of those > one-typo match > keyword > department > material; ties by shorter name,
  then the name, then the entry id.
"""

from __future__ import annotations

import csv
import functools
import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from pypinyin import lazy_pinyin
from sqlalchemy import event
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session as OrmSession
from sqlmodel import Session

from catalog.models import (
    TASK_TYPES,
    USE_LEVELS,
    Department,
    Division,
    EntryStatus,
    ImplementationEntry,
    Material,
)
from catalog.search_models import (
    FIELD_DEPARTMENT,
    FIELD_KEYWORD,
    FIELD_MATERIAL,
    FIELD_NAME,
    SearchAlias,
    SearchCell,
    SearchEntry,
    SearchGram,
    SearchMiss,
    SearchPosting,
    SearchTerm,
)
from core.config import PROJECT_ROOT
from core.errors import Invalid
from core.pii import mask_personal_data
from core.types import utcnow

ALIASES_CSV = PROJECT_ROOT / "data" / "search_aliases.csv"
MAX_QUERY_CHARS = 100
MAX_WORDS = 5
MAX_PAGE = 1000
MAX_LIMIT = 100

# Scores. Name tiers leave room for the -3 given to a variant (alias, pinyin, filler-stripped).
EXACT, PREFIX, CONTAINS, ALL_WORDS = 100, 80, 60, 50
FUZZY = 32
FIELD_SCORES = {FIELD_KEYWORD: 25, FIELD_DEPARTMENT: 20, FIELD_MATERIAL: 12}
VARIANT_PENALTY = 3

# Everyday filler around what people want; stripped in a second variant of the query.
FILLERS = sorted(
    [
        "需要什么材料",
        "需要哪些材料",
        "要什么材料",
        "要办什么证",
        "办什么证",
        "需要什么",
        "怎么办理",
        "怎么办",
        "如何办理",
        "如何",
        "怎么",
        "怎样",
        "在哪里办",
        "在哪里",
        "在哪办",
        "去哪里",
        "哪里",
        "在哪",
        "我要",
        "我想",
        "想要",
        "办理",
        "申请",
        "手续",
        "流程",
        "多少钱",
        "要多久",
        "的",
        "办",
        "了",
        "吗",
        "呢",
    ],
    key=len,
    reverse=True,
)

_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_LATIN = re.compile(r"^[a-z]+$")
_TASK_CODE = re.compile(r"^[0-9a-z]{31}$")


# ----------------------------------------------------------------------------- text helpers


def normalize_text(text: str) -> str:
    """NFKC, lower case, control characters dropped: what both index and queries are compared in."""
    text = unicodedata.normalize("NFKC", text or "").lower()
    return "".join(ch for ch in text if not unicodedata.category(ch).startswith("C"))


def normalize_query(raw: str | None) -> str:
    """The query as matched: normalised, punctuation to spaces, whitespace collapsed, bounded."""
    text = normalize_text(raw or "")[: MAX_QUERY_CHARS * 2]
    text = "".join(ch if (ch.isalnum() or ch.isspace()) else " " for ch in text)
    return " ".join(text.split())[:MAX_QUERY_CHARS].strip()


def has_cjk(text: str) -> bool:
    return bool(_CJK.search(text))


def grams(text: str) -> set[str]:
    """Character unigrams and overlapping bigrams of a normalised text."""
    chars = [c for c in text if not c.isspace()]
    out = set(chars)
    out.update(
        text[i : i + 2] for i in range(len(text) - 1) if not text[i].isspace() and not text[i + 1].isspace()
    )
    return out


def query_grams(phrase: str) -> set[str]:
    """The grams every text containing ``phrase`` must hold (bigrams, or the unigram)."""
    if len(phrase) == 1:
        return {phrase}
    return {phrase[i : i + 2] for i in range(len(phrase) - 1)}


def syllables(text: str) -> list[tuple[str, int, int]]:
    """Pinyin syllables of a normalised text with their [start, end) character spans.

    CJK characters give one syllable each (read in context by pypinyin); runs of latin letters and
    digits give one syllable; other characters give none.
    """
    out: list[tuple[str, int, int]] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if _CJK.match(ch):
            j = i
            while j < n and _CJK.match(text[j]):
                j += 1
            run = text[i:j]
            # errors= returning a list keeps one reading per unknown character (pypinyin accepts it).
            readings = lazy_pinyin(run, errors=lambda s: list(s))  # type: ignore[arg-type, return-value]
            if len(readings) != len(run):  # never expected; keep spans aligned regardless
                readings = [lazy_pinyin(c, errors=lambda s: list(s))[0] for c in run]  # type: ignore[arg-type, return-value]
            for k, syl in enumerate(readings):
                out.append((syl.lower(), i + k, i + k + 1))
            i = j
        elif ch.isascii() and ch.isalnum():
            j = i
            while j < n and text[j].isascii() and text[j].isalnum():
                j += 1
            out.append((text[i:j].lower(), i, j))
            i = j
        else:
            i += 1
    return out


@functools.lru_cache(maxsize=8192)
def pinyin_of(text: str) -> tuple[str, str]:
    """(space-separated full pinyin, initials) of a normalised text."""
    syl = syllables(text)
    return " ".join(s for s, _, _ in syl), "".join(s[0] for s, _, _ in syl if s)


def pinyin_grams(pinyin: str, initials: str) -> set[str]:
    joined = pinyin.replace(" ", "")
    out = {"#" + joined[i : i + 2] for i in range(len(joined) - 1)}
    out.update("#" + initials[i : i + 2] for i in range(len(initials) - 1))
    return out


def pinyin_match(word: str, pinyin: str, initials: str) -> int:
    """Score of a latin ``word`` against a term's pinyin: syllable-aligned full pinyin, or initials."""
    syl = pinyin.split(" ") if pinyin else []
    best = 0
    for i in range(len(syl)):
        if "".join(syl[i:]).startswith(word):
            best = max(best, (EXACT if "".join(syl) == word else PREFIX) if i == 0 else CONTAINS)
            break
    if len(word) >= 2 and word in initials:
        best = max(best, EXACT if initials == word else PREFIX if initials.startswith(word) else CONTAINS)
    return best


def within_one_edit(phrase: str, text: str) -> bool:
    """True when some substring of ``text`` is at most one edit (substitute, drop, add) from ``phrase``.

    Sellers' approximate substring matching, stopped as soon as the phrase fits.
    """
    m = len(phrase)
    prev = list(range(m + 1))
    for ch in text:
        cur = [0] * (m + 1)
        for i in range(1, m + 1):
            cost = 0 if phrase[i - 1] == ch else 1
            cur[i] = min(prev[i - 1] + cost, prev[i] + 1, cur[i - 1] + 1)
        if cur[m] <= 1:
            return True
        prev = cur
    return prev[m] <= 1


def strip_fillers(query: str) -> str:
    out = query
    for word in FILLERS:
        out = out.replace(word, " ")
    return " ".join(out.split())


# ----------------------------------------------------------------------------- aliases


@dataclass(frozen=True)
class Alias:
    alias: str
    targets: tuple[str, ...]
    pinyin: str
    initials: str


def read_aliases_csv(path: Path = ALIASES_CSV) -> list[dict[str, str]]:
    """Rows of the shipped alias table: alias, targets ("|"-separated), note. Lines starting # skipped."""
    rows: list[dict[str, str]] = []
    with path.open(encoding="utf-8", newline="") as fh:
        lines = (line for line in fh if not line.startswith("#"))
        for line_no, row in enumerate(csv.DictReader(lines), start=2):
            alias = normalize_query(row.get("alias"))
            targets = clean_targets(row.get("targets") or "")
            if not alias or not targets:
                raise Invalid(f"{path.name} 第 {line_no} 行：别名和目标词都不能为空")
            rows.append({"alias": alias, "targets": "|".join(targets), "note": (row.get("note") or "")[:300]})
    return rows


def clean_targets(raw: str) -> list[str]:
    seen: list[str] = []
    for part in re.split(r"[|｜,，、;；\n]", raw):
        t = normalize_query(part)
        if t and t not in seen:
            seen.append(t)
    return seen


def load_aliases(session: Session, rows: Iterable[dict[str, str]]) -> int:
    """Upsert aliases by their word; returns how many rows were written."""
    n = 0
    for row in rows:
        alias = (
            session.execute(sa.select(SearchAlias).where(_t(SearchAlias).c.alias == row["alias"]))
            .scalars()
            .first()
        )
        if alias is not None:
            alias.targets, alias.note, alias.updated_at = row["targets"], row.get("note", ""), utcnow()
        else:
            session.add(SearchAlias(alias=row["alias"], targets=row["targets"], note=row.get("note", "")))
        n += 1
    session.flush()
    return n


def save_alias(
    session: Session, alias: str, targets: str, note: str = "", alias_id: int | None = None
) -> SearchAlias:
    """Create or change one alias (administrators); Invalid with field details on bad input."""
    word = normalize_query(alias)
    target_list = clean_targets(targets)
    errors: dict[str, list[str]] = {}
    if not word or len(word) > 50:
        errors["alias"] = ["别名不能为空，且不超过 50 个字符"]
    if not target_list or len("|".join(target_list)) > 500:
        errors["targets"] = ["请至少填写一个目标词（用 | 或逗号分隔），总长不超过 500 个字符"]
    if errors:
        raise Invalid("别名填写有误", errors)
    clash = session.execute(sa.select(SearchAlias).where(_t(SearchAlias).c.alias == word)).scalars().first()
    if clash is not None and clash.id != alias_id:
        raise Invalid("该别名已存在", {"alias": ["该别名已存在，请直接修改它"]})
    if alias_id is not None:
        row = session.get(SearchAlias, alias_id)
        if row is None:
            from core.errors import NotFound

            raise NotFound("别名不存在")
    else:
        row = SearchAlias(alias=word, targets="", note="")
        session.add(row)
    row.alias, row.targets, row.note, row.updated_at = (
        word,
        "|".join(target_list),
        (note or "")[:300],
        utcnow(),
    )
    session.flush()
    return row


def delete_alias(session: Session, alias_id: int) -> SearchAlias:
    row = session.get(SearchAlias, alias_id)
    if row is None:
        from core.errors import NotFound

        raise NotFound("别名不存在")
    session.delete(row)
    session.flush()
    return row


_ALIAS_CACHE: dict[tuple[tuple[str, str], ...], list[Alias]] = {}


def active_aliases(session: Session) -> list[Alias]:
    """The alias table as read in this transaction (parsed once per distinct content)."""
    rows = tuple((a, t) for a, t in session.connection().execute(_q(session.connection()).aliases))
    cached = _ALIAS_CACHE.get(rows)
    if cached is not None:
        return cached
    out = []
    for alias, targets in rows:
        py, ini = pinyin_of(alias)
        out.append(Alias(alias, tuple(t for t in targets.split("|") if t), py.replace(" ", ""), ini))
    _ALIAS_CACHE.clear()  # only the current table is worth keeping
    _ALIAS_CACHE[rows] = out
    return out


# ----------------------------------------------------------------------------- indexing


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
        wanted = {t for t in texts if t not in self.ids}
        if wanted:
            conn = self.session.connection()
            tbl = SearchTerm.__table__  # type: ignore[attr-defined]
            for chunk in _chunks(sorted(wanted), 500):
                for tid, text in conn.execute(sa.select(tbl.c.id, tbl.c.text).where(tbl.c.text.in_(chunk))):
                    self.ids[text] = tid
            missing = sorted(t for t in wanted if t not in self.ids)
            for text in missing:
                py, ini = pinyin_of(text)
                tid = conn.execute(
                    sa.insert(tbl).values(text=text, pinyin=py[:1500], initials=ini[:300]).returning(tbl.c.id)
                ).scalar_one()
                gram_rows = [{"gram": g, "term_id": tid} for g in sorted(grams(text) | pinyin_grams(py, ini))]
                if gram_rows:
                    conn.execute(sa.insert(SearchGram.__table__), gram_rows)  # type: ignore[attr-defined]
                self.ids[text] = tid
        return {t: self.ids[t] for t in texts}


def _t(model: Any) -> sa.Table:
    """The Core table of a SQLModel class (typed access to ``.c`` columns)."""
    table: sa.Table = model.__table__
    return table


def _chunks(seq: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for i in range(0, len(seq), size):
        yield seq[i : i + size]


def _cell_key(
    term_id: int, level: str, division_code: str, department_id: int, task_type: str, no_contact: Any
) -> tuple[int, str, str, int, str, bool]:
    """The SearchCell an entry counts in (see its docstring)."""
    return (
        term_id,
        level,
        facet_division(division_code, level),
        0 if level == "6" else department_id,
        task_type,
        bool(no_contact),
    )


def _bump_cells(conn: sa.Connection, deltas: dict[tuple[int, str, str, int, str, bool], int]) -> None:
    """Add the count changes to the cells (an upsert, safe under concurrent writers), drop empty cells."""
    changes = [(k, d) for k, d in sorted(deltas.items()) if d]
    if not changes:
        return
    cell = _t(SearchCell)
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert  # type: ignore[assignment]
    cols = ("term_id", "level", "div_key", "department_id", "task_type", "no_contact")
    for chunk in _chunks(changes, 500):
        stmt = insert(cell).values([{**dict(zip(cols, k, strict=True)), "n": d} for k, d in chunk])
        stmt = stmt.on_conflict_do_update(index_elements=list(cols), set_={"n": cell.c.n + stmt.excluded.n})
        conn.execute(stmt)
    if any(d < 0 for _k, d in changes):
        conn.execute(sa.delete(cell).where(cell.c.n <= 0))


def _rebuild_cells(conn: sa.Connection) -> None:
    """Recompute every cell from search_entry (after bulk changes)."""
    cell = _t(SearchCell)
    e = _t(SearchEntry)
    div = sa.case(
        (e.c.level.in_(("5", "6")), sa.func.substr(e.c.division_code, 1, 9) + "000"),
        else_=sa.func.substr(e.c.division_code, 1, 6) + "000000",
    )
    dept = sa.case((e.c.level == "6", 0), else_=e.c.department_id)
    cols = (e.c.name_term_id, e.c.level, div, dept, e.c.task_type, e.c.no_contact)
    conn.execute(sa.delete(cell))
    conn.execute(
        sa.insert(cell).from_select(
            ["term_id", "level", "div_key", "department_id", "task_type", "no_contact", "n"],
            sa.select(*cols, sa.func.count()).group_by(*cols),
        )
    )


def _delete_entry_rows(conn: sa.Connection, entry_ids: Sequence[int]) -> None:
    se = _t(SearchEntry)
    deltas: dict[tuple[int, str, str, int, str, bool], int] = defaultdict(int)
    for chunk in _chunks(list(entry_ids), 500):
        for r in conn.execute(
            sa.select(
                se.c.name_term_id,
                se.c.level,
                se.c.division_code,
                se.c.department_id,
                se.c.task_type,
                se.c.no_contact,
            ).where(se.c.entry_id.in_(chunk))
        ):
            deltas[_cell_key(*r)] -= 1
    _bump_cells(conn, deltas)
    for chunk in _chunks(list(entry_ids), 500):
        conn.execute(sa.delete(SearchPosting.__table__).where(SearchPosting.entry_id.in_(chunk)))  # type: ignore[attr-defined]
        conn.execute(sa.delete(SearchEntry.__table__).where(SearchEntry.entry_id.in_(chunk)))  # type: ignore[attr-defined]


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
    ent = ImplementationEntry.__table__  # type: ignore[attr-defined]
    dep = Department.__table__  # type: ignore[attr-defined]
    mat = Material.__table__  # type: ignore[attr-defined]
    se = SearchEntry.__table__  # type: ignore[attr-defined]
    written = 0
    for chunk in _chunks(ids, 500):
        indexed = [r[0] for r in conn.execute(sa.select(se.c.entry_id).where(se.c.entry_id.in_(chunk)))]
        if indexed:
            _delete_entry_rows(conn, indexed)
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
        for entry in rows:
            if not is_searchable(entry):
                continue
            name_text = normalize_text(entry.name).strip()
            by_field = entry_texts(entry, entry.department_name, materials.get(entry.id, []))
            all_texts = {name_text}.union(*by_field.values())
            term_ids = cache.ensure(sorted(all_texts))
            entry_rows.append(_entry_row(entry, entry.department_name, term_ids[name_text]))
            for fld, texts in by_field.items():
                for text in sorted(texts):
                    posting_rows.append({"term_id": term_ids[text], "field": fld, "entry_id": entry.id})
        if entry_rows:
            conn.execute(sa.insert(SearchEntry.__table__), entry_rows)  # type: ignore[attr-defined]
            deltas: dict[tuple[int, str, str, int, str, bool], int] = defaultdict(int)
            for r in entry_rows:
                deltas[
                    _cell_key(
                        r["name_term_id"],
                        r["level"],
                        r["division_code"],
                        r["department_id"],
                        r["task_type"],
                        r["no_contact"],
                    )
                ] += 1
            _bump_cells(conn, deltas)
        if posting_rows:
            conn.execute(sa.insert(SearchPosting.__table__), posting_rows)  # type: ignore[attr-defined]
        written += len(entry_rows)
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
    }


def rebuild_index(session: Session, progress: bool = False, batch: int = 5000) -> int:
    """Rebuild the whole index from the published entries; returns the number of entries indexed.

    On PostgreSQL the rows go in with COPY; elsewhere with executemany. Terms are kept (they are
    only a dictionary) and orphaned ones are dropped at the end.
    """
    conn = session.connection()
    conn.execute(sa.delete(SearchCell.__table__))  # type: ignore[attr-defined]
    conn.execute(sa.delete(SearchPosting.__table__))  # type: ignore[attr-defined]
    conn.execute(sa.delete(SearchEntry.__table__))  # type: ignore[attr-defined]
    cache = TermCache(session)
    ent = ImplementationEntry.__table__  # type: ignore[attr-defined]
    dep = Department.__table__  # type: ignore[attr-defined]
    mat = Material.__table__  # type: ignore[attr-defined]
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
        ent.c.keywords,
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
        for r in rows:
            dname = dept_names.get(r.department_id, "")
            name_text = normalize_text(r.name).strip()
            by_field = entry_texts(r, dname, materials.get(r.id, []))
            term_ids = cache.ensure(sorted({name_text}.union(*by_field.values())))
            entry_rows.append(_entry_row(r, dname, term_ids[name_text]))
            for fld, texts in by_field.items():
                for text in texts:
                    posting_rows.append({"term_id": term_ids[text], "field": fld, "entry_id": r.id})
        if pg:
            _copy_rows(conn, "search_entry", entry_rows)
            _copy_rows(conn, "search_posting", posting_rows)
        else:
            conn.execute(sa.insert(SearchEntry.__table__), entry_rows)  # type: ignore[attr-defined]
            if posting_rows:
                conn.execute(sa.insert(SearchPosting.__table__), posting_rows)  # type: ignore[attr-defined]
        written += len(rows)
        if bar is not None:
            bar.update(len(rows))
    if bar is not None:
        bar.close()
    _rebuild_cells(conn)
    _drop_orphan_terms(conn)
    return written


def _copy_rows(conn: sa.Connection, table: str, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    columns = list(rows[0])
    raw = conn.connection.driver_connection
    with raw.cursor() as cur, cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:  # type: ignore[union-attr]
        for row in rows:
            copy.write_row([row[c] for c in columns])


def _drop_orphan_terms(conn: sa.Connection) -> None:
    term = SearchTerm.__table__  # type: ignore[attr-defined]
    se = SearchEntry.__table__  # type: ignore[attr-defined]
    sp = SearchPosting.__table__  # type: ignore[attr-defined]
    orphan = sa.select(term.c.id).where(
        ~sa.exists().where(se.c.name_term_id == term.c.id),
        ~sa.exists().where(sp.c.term_id == term.c.id),
    )
    conn.execute(sa.delete(SearchGram.__table__).where(SearchGram.term_id.in_(orphan)))  # type: ignore[attr-defined]
    conn.execute(sa.delete(term).where(term.c.id.in_(orphan)))


# Keep the index in step with entry changes made through any Session (services only flush).
_DIRTY_KEY = "search_dirty_entries"


def _collect(session: OrmSession) -> set[int]:
    ids: set[int] = set()
    for obj in list(session.new) + list(session.dirty):
        if isinstance(obj, ImplementationEntry) and obj.id is not None:
            ids.add(obj.id)
        elif isinstance(obj, Material):
            ids.add(obj.entry_id)
    for obj in session.deleted:
        if isinstance(obj, Material):
            ids.add(obj.entry_id)
    return ids


@event.listens_for(OrmSession, "before_flush")
def _before_flush(session: OrmSession, _ctx: Any, _instances: Any) -> None:
    gone = [obj.id for obj in session.deleted if isinstance(obj, ImplementationEntry) and obj.id is not None]
    if gone:
        _delete_entry_rows(session.connection(), gone)


@event.listens_for(OrmSession, "after_flush")
def _after_flush(session: OrmSession, _ctx: Any) -> None:
    ids = _collect(session)
    ids.update(obj.id for obj in session.new if isinstance(obj, ImplementationEntry) and obj.id is not None)
    ids.difference_update(obj.id for obj in session.deleted if isinstance(obj, ImplementationEntry))
    if ids:
        session.info.setdefault(_DIRTY_KEY, set()).update(ids)


@event.listens_for(OrmSession, "after_flush_postexec")
def _after_flush_postexec(session: OrmSession, _ctx: Any) -> None:
    ids = session.info.pop(_DIRTY_KEY, None)
    if not ids:
        return
    # Only touch the index when it exists in this database (other packages' tests may run without it).
    with session.no_autoflush:
        reindex_entries(session, sorted(ids))  # type: ignore[arg-type]


def _in_list(column: Any, name: str, item_type: Any, postgresql: bool) -> Any:
    """``column IN (...)`` for a list parameter: one array parameter on PostgreSQL (``= ANY``), so the
    statement text and plan do not change with the list length; expanding parameters elsewhere."""
    if postgresql:
        from sqlalchemy.dialects.postgresql import ARRAY

        return column == sa.any_(sa.bindparam(name, type_=ARRAY(item_type)))
    return column.in_(sa.bindparam(name, expanding=True))


class _Statements:
    """The hot-path statements, built once per dialect: only parameters change between searches."""

    def __init__(self, postgresql: bool) -> None:
        g = SearchGram.__table__  # type: ignore[attr-defined]
        t = SearchTerm.__table__  # type: ignore[attr-defined]
        e = SearchEntry.__table__  # type: ignore[attr-defined]
        p = SearchPosting.__table__  # type: ignore[attr-defined]
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
        self.has_other = (
            sa.select(p.c.term_id)
            .where(_in_list(p.c.term_id, "ids", sa.Integer, pg), p.c.field != FIELD_NAME)
            .limit(1)
        )
        div = sa.case(
            (e.c.level.in_(("5", "6")), sa.func.substr(e.c.division_code, 1, 9)),
            else_=sa.func.substr(e.c.division_code, 1, 6),
        )
        facet_cols = (
            e.c.level,
            div,
            sa.case((e.c.level == "6", 0), else_=e.c.department_id),
            e.c.task_type,
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
        self.department_level = sa.select(_t(Department).c.level).where(
            _t(Department).c.id == sa.bindparam("id")
        )
        dv, dp = _t(Division), _t(Department)
        self.division_names = sa.select(dv.c.code, dv.c.name).where(
            _in_list(dv.c.code, "keys", sa.String, pg)
        )
        self.department_names = sa.select(dp.c.id, dp.c.name).where(_in_list(dp.c.id, "keys", sa.Integer, pg))


_STATEMENTS = {False: _Statements(postgresql=False), True: _Statements(postgresql=True)}


def _q(conn: sa.Connection) -> _Statements:
    return _STATEMENTS[conn.dialect.name == "postgresql"]


# ----------------------------------------------------------------------------- querying


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


@dataclass
class Hit:
    entry_id: int
    task_code: str
    name: str
    department_id: int
    department: str
    level: str
    division_code: str
    task_type: str
    no_contact: bool
    score: int
    matched_field: str
    highlights: list[tuple[int, int]] = field(default_factory=list)

    def name_segments(self) -> list[tuple[str, bool]]:
        """The name cut into (text, highlighted) pieces for templates (which escape the text)."""
        out: list[tuple[str, bool]] = []
        pos = 0
        for start, end in self.highlights:
            if start > pos:
                out.append((self.name[pos:start], False))
            out.append((self.name[start:end], True))
            pos = end
        if pos < len(self.name):
            out.append((self.name[pos:], False))
        return out


@dataclass
class SearchResult:
    query: str
    items: list[Hit]
    total: int
    page: int
    limit: int
    facets: dict[str, list[dict[str, Any]]]
    variants: list[str]
    fuzzy: bool = False


@dataclass
class _Phrase:
    words: tuple[str, ...]
    penalty: int  # subtracted from name scores (variants rank below the query as typed)


FIELD_LABELS = {
    FIELD_NAME: "name",
    FIELD_KEYWORD: "keyword",
    FIELD_DEPARTMENT: "department",
    FIELD_MATERIAL: "material",
}


def _phrases(query: str, aliases: list[Alias]) -> list[_Phrase]:
    words = tuple(query.split()[:MAX_WORDS])
    out = [_Phrase(words, 0)]
    if len(words) > 1:
        out.append(_Phrase(("".join(words),), 1))
    stripped = strip_fillers(query)
    if stripped and stripped != query:
        out.append(_Phrase(tuple(stripped.split()[:MAX_WORDS]), VARIANT_PENALTY))
    compact = query.replace(" ", "")
    for alias in aliases:
        hit = alias.alias in compact or (
            _LATIN.match(compact) is not None
            and compact in (alias.pinyin, alias.initials)
            and len(compact) >= 2
        )
        if hit:
            for target in alias.targets:
                out.append(_Phrase(tuple(target.split()), VARIANT_PENALTY))
            if alias.alias != compact:
                out.append(_Phrase((alias.alias,), VARIANT_PENALTY))
    unique: dict[tuple[str, ...], _Phrase] = {}
    for p in out:
        if p.words and (p.words not in unique or unique[p.words].penalty > p.penalty):
            unique[p.words] = p
    return list(unique.values())


def _candidate_terms(conn: sa.Connection, gram_set: set[str], need: int) -> list[tuple[int, str, str, str]]:
    if not gram_set:
        return []
    rows = conn.execute(_q(conn).candidates, {"grams": sorted(gram_set), "need": need})
    return [tuple(r) for r in rows]  # type: ignore[misc]


def _word_score(word: str, text: str, pinyin: str, initials: str) -> int:
    if word in text:
        return EXACT if text == word else PREFIX if text.startswith(word) else CONTAINS
    if _LATIN.match(word):
        return pinyin_match(word, pinyin, initials) - VARIANT_PENALTY if len(word) >= 2 else 0
    return 0


def _match_phrase(conn: sa.Connection, phrase: _Phrase) -> dict[int, tuple[int, str]]:
    """Terms matching every word of the phrase -> (score, text)."""
    per_word: list[dict[int, tuple[int, str]]] = []
    for word in phrase.words:
        found: dict[int, tuple[int, str]] = {}
        candidates = _candidate_terms(conn, query_grams(word), len(query_grams(word)))
        if _LATIN.match(word) and len(word) >= 2:
            pg = {"#" + word[i : i + 2] for i in range(len(word) - 1)}
            candidates += _candidate_terms(conn, pg, len(pg))
        for tid, text, py, ini in candidates:
            s = _word_score(word, text, py, ini)
            if s > 0 and s > found.get(tid, (0, ""))[0]:
                found[tid] = (s, text)
        per_word.append(found)
        if not found:
            return {}
    common = set(per_word[0]).intersection(*per_word[1:])
    out = {}
    for tid in common:
        score = per_word[0][tid][0] if len(per_word) == 1 else min(ALL_WORDS, *(w[tid][0] for w in per_word))
        out[tid] = (score - phrase.penalty, per_word[0][tid][1])
    return out


def _match_fuzzy(conn: sa.Connection, phrase: str) -> dict[int, tuple[int, str]]:
    chars = set(phrase)
    if len(phrase) < 3 or not has_cjk(phrase):
        return {}
    out = {}
    for tid, text, _py, _ini in _candidate_terms(conn, chars, max(1, len(chars) - 1)):
        if within_one_edit(phrase, text):
            out[tid] = (FUZZY, text)
    return out


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


def facet_division(code: str, level: str) -> str:
    """The facet value an entry's division falls under: its town, or its county for county entries."""
    if level in ("5", "6") and len(code) == 12:
        return code[:9] + "000"
    return code[:6] + "000000"


def search(
    session: Session,
    q: str | None,
    filters: SearchFilters | None = None,
    page: int = 1,
    limit: int = 10,
    log_miss: bool = False,
) -> SearchResult:
    """Search published entries. Never raises on odd text: it is normalised and bounded first."""
    filters = filters or SearchFilters()
    page = min(max(int(page), 1), MAX_PAGE)
    limit = min(max(int(limit), 1), MAX_LIMIT)
    query = normalize_query(q)
    if not query:
        return browse(session, filters, page, limit)
    conn = session.connection()
    e = SearchEntry.__table__  # type: ignore[attr-defined]

    term_scores: dict[int, int] = {}
    term_texts: dict[int, str] = {}
    phrases = _phrases(query, active_aliases(session))
    matched_words: set[str] = set()
    for phrase in phrases:
        found = _match_phrase(conn, phrase)
        if found:
            matched_words.update(phrase.words)
        for tid, (score, text) in found.items():
            term_scores[tid] = max(term_scores.get(tid, 0), score)
            term_texts[tid] = text
    fuzzy = False
    if not term_scores and _TASK_CODE.match(query.replace(" ", "")):
        t = SearchTerm.__table__  # type: ignore[attr-defined]
        code_hit = conn.execute(
            sa.select(t.c.id, t.c.text)
            .join(e, e.c.name_term_id == t.c.id)
            .where(e.c.task_code == query.upper())
        ).first()
        if code_hit:
            term_scores[code_hit[0]] = EXACT
            term_texts[code_hit[0]] = code_hit[1]
    if not term_scores:
        for phrase in phrases:
            if len(phrase.words) == 1:
                for tid, (score, text) in _match_fuzzy(conn, phrase.words[0]).items():
                    term_scores[tid] = max(term_scores.get(tid, 0), score)
                    term_texts[tid] = text
                    fuzzy = True
                if term_scores:
                    matched_words.add(phrase.words[0])
                    break

    scope, with_other = _scope(conn, e, term_scores)
    per_term: dict[int, int] | None = None
    if term_scores and not with_other and _cells_serve(conn, filters):
        total, facets, per_term = _cell_facets(session, sorted(term_scores), filters)
    else:
        name_ids = None if with_other or not term_scores else sorted(term_scores)
        total, facets = _facets(session, e, scope, filters, name_ids)
    items = (
        _page(conn, e, term_scores, term_texts, filters, page, limit, with_other, per_term) if total else []
    )
    _highlight(items, matched_words, fuzzy)
    if total == 0 and log_miss:
        log_zero_result(session, query)
    return SearchResult(query, items, total, page, limit, facets, sorted(matched_words), fuzzy)


def _ordered_facets(facets: dict[str, list[dict[str, Any]]]) -> dict[str, list[dict[str, Any]]]:
    """Each facet by count, then label, then value: ids differ between databases, labels do not."""
    return {
        k: sorted(v, key=lambda x: (-x["count"], str(x["label"]), str(x["value"]))) for k, v in facets.items()
    }


def _cells_serve(conn: sa.Connection, f: SearchFilters) -> bool:
    """Whether the filters can be applied to SearchCell rows (not a village, not a village committee)."""
    if f.division and len(f.division_prefix() or "") > 9:
        return False
    if f.department:
        level = conn.execute(_q(conn).department_level, {"id": f.department}).scalar()
        if level is None or level == "6":
            return False
    return True


def _cell_ok(
    f: SearchFilters, level: str, div_key: str, dept: int, ttype: str, nc: bool, skip: str | None = None
) -> bool:
    if f.level and skip != "level" and level != f.level:
        return False
    if f.division and skip != "division" and not div_key.startswith(f.division_prefix() or ""):
        return False
    if f.department and skip != "department" and dept != f.department:
        return False
    if f.task_type and skip != "type" and ttype != f.task_type:
        return False
    return not (f.no_contact and skip != "no_contact" and not nc)


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
    if total == 0 and not any((f.level, f.division, f.department, f.task_type, f.no_contact)):
        return 0, _empty_facets(), {}
    c = _t(SearchCell)
    conds: list[Any] = []
    if f.level:
        conds.append(c.c.level == f.level)
    if f.division:
        conds.append(c.c.div_key.like((f.division_prefix() or "") + "%"))
    if f.department:
        conds.append(c.c.department_id == f.department)
    if f.task_type:
        conds.append(c.c.task_type == f.task_type)
    if f.no_contact:
        conds.append(c.c.no_contact.is_(True))
    per_term: dict[int, int] = {}
    if total:
        stmt = _q(conn).cell_per_term.where(*conds).group_by(c.c.term_id)
        per_term = {int(t): int(n) for t, n in conn.execute(stmt, {"ids": ids}) if n}

    def ordered(d: dict[Any, int]) -> list[tuple[Any, int]]:
        return sorted(d.items(), key=lambda kv: (-kv[1], str(kv[0])))

    divisions, departments = ordered(counts["division"]), ordered(counts["department"])
    div_names = (
        dict(conn.execute(_q(conn).division_names, {"keys": [k for k, _ in divisions]}).all())
        if divisions
        else {}
    )
    dept_names = (
        dict(conn.execute(_q(conn).department_names, {"keys": [k for k, _ in departments]}).all())
        if departments
        else {}
    )
    facets = {
        "level": [
            {"value": k, "label": USE_LEVELS.get(k, k), "count": n} for k, n in ordered(counts["level"])
        ],
        "division": [{"value": k, "label": div_names.get(k, k), "count": n} for k, n in divisions],
        "department": [{"value": k, "label": dept_names.get(k, str(k)), "count": n} for k, n in departments],
        "type": [{"value": k, "label": TASK_TYPES.get(k, k), "count": n} for k, n in ordered(counts["type"])],
        "no_contact": [
            {"value": True, "label": "不见面审批", "count": n} for n in counts["no_contact"].values()
        ],
    }
    return total, _ordered_facets(facets), per_term


def _scope(conn: sa.Connection, e: sa.Table, term_scores: dict[int, int]) -> tuple[list[Any], bool]:
    """SQL conditions selecting every entry the matched terms reach (by name, or by another field),
    and whether any entry is reached through another field than its name."""
    if not term_scores:
        return [sa.false()], False
    ids = sorted(term_scores)
    p = SearchPosting.__table__  # type: ignore[attr-defined]
    has_other = conn.execute(_q(conn).has_other, {"ids": ids}).first()
    by_name = e.c.name_term_id.in_(ids)
    if has_other is None:
        return [by_name], False
    others = sa.select(p.c.entry_id).where(p.c.term_id.in_(ids), p.c.field != FIELD_NAME)
    return [sa.or_(by_name, e.c.entry_id.in_(others))], True


def _empty_facets() -> dict[str, list[dict[str, Any]]]:
    return {"level": [], "division": [], "department": [], "type": [], "no_contact": []}


def _division_facet_expr(e: sa.Table) -> Any:
    """An entry's town (9-digit prefix), or its county (6) for county entries: facet_division in SQL."""
    return sa.case(
        (e.c.level.in_(("5", "6")), sa.func.substr(e.c.division_code, 1, 9)),
        else_=sa.func.substr(e.c.division_code, 1, 6),
    )


def _facets(
    session: Session, e: sa.Table, scope: list[Any], f: SearchFilters, name_ids: list[int] | None = None
) -> tuple[int, dict[str, list[dict[str, Any]]]]:
    """Total under all filters, and each facet's counts under the other facets' filters (in SQL).

    ``name_ids``, when given, says the scope is exactly "name term in name_ids" (the common case,
    served by prebuilt statements).
    """
    conn = session.connection()
    filtered = any((f.level, f.division, f.department, f.task_type, f.no_contact))
    total = -1
    if filtered or name_ids is None:
        total = conn.execute(
            sa.select(sa.func.count()).select_from(e).where(*scope, *_sql_filters(f, e))
        ).scalar_one()
        if total == 0 and not filtered:
            return 0, _empty_facets()

    div_expr = _division_facet_expr(e)
    dept_expr = sa.case((e.c.level == "6", 0), else_=e.c.department_id)
    exprs = {"level": e.c.level, "division": div_expr, "department": dept_expr, "type": e.c.task_type}
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
    divisions = [(code.ljust(12, "0"), n) for code, n in grouped("division")]
    departments = [(k, n) for k, n in grouped("department") if k]  # village committees: see SearchCell
    if not filtered:
        nc = sum(int(cell[-1]) for cell in cells if cell[-2])
    else:
        nc = conn.execute(
            sa.select(sa.func.count())
            .select_from(e)
            .where(*scope, *_sql_filters(f, e, "no_contact"), e.c.no_contact.is_(True))
        ).scalar_one()
    div_names = (
        dict(conn.execute(_q(conn).division_names, {"keys": [k for k, _ in divisions]}).all())
        if divisions
        else {}
    )
    dept_names = (
        dict(conn.execute(_q(conn).department_names, {"keys": [k for k, _ in departments]}).all())
        if departments
        else {}
    )
    facets = {
        "level": [{"value": k, "label": USE_LEVELS.get(k, k), "count": n} for k, n in grouped("level")],
        "division": [{"value": k, "label": div_names.get(k, k), "count": n} for k, n in divisions],
        "department": [{"value": k, "label": dept_names.get(k, str(k)), "count": n} for k, n in departments],
        "type": [{"value": k, "label": TASK_TYPES.get(k, k), "count": n} for k, n in grouped("type")],
        "no_contact": [{"value": True, "label": "不见面审批", "count": int(nc)}] if nc else [],
    }
    return int(total), _ordered_facets(facets)


def _names(session: Session, model: Any, key: Any, label: Any, values: list[Any]) -> dict[Any, str]:
    if not values:
        return {}
    out: dict[Any, str] = {}
    for chunk in _chunks(sorted(values), 500):
        out.update(dict(session.execute(sa.select(key, label).where(key.in_(chunk))).all()))  # type: ignore[arg-type]
    return out


def _page(
    conn: sa.Connection,
    e: sa.Table,
    term_scores: dict[int, int],
    term_texts: dict[int, str],
    f: SearchFilters,
    page: int,
    limit: int,
    with_other: bool = True,
    known_per_term: dict[int, int] | None = None,
) -> list[Hit]:
    """The hits of one page, in ranking order, fetching only the rows that page needs."""
    offset = (page - 1) * limit
    # Name matches: terms ordered by (score, length, text), then a term's entries by id.
    per_term: dict[int, int] = {}
    conds = _sql_filters(f, e)
    if known_per_term is not None:
        per_term = known_per_term
    elif conds:
        stmt = (
            sa.select(e.c.name_term_id, sa.func.count())
            .where(e.c.name_term_id.in_(sa.bindparam("ids", expanding=True)), *conds)
            .group_by(e.c.name_term_id)
        )
    else:
        stmt = _q(conn).per_term
    if known_per_term is None:
        for tid, n in conn.execute(stmt, {"ids": sorted(term_scores)}):
            per_term[tid] = int(n)
    name_total = sum(per_term.values())
    hits: list[Hit] = []
    if offset < name_total:
        order = sorted(
            per_term, key=lambda tid: (-term_scores[tid], len(term_texts[tid]), term_texts[tid], tid)
        )
        need_terms, skipped, seen = [], 0, 0
        for tid in order:
            n = per_term[tid]
            if seen + n <= offset:
                seen += n
                skipped += n
                continue
            need_terms.append(tid)
            seen += n
            if seen >= offset + limit:
                break
        rank = {tid: i for i, tid in enumerate(need_terms)}
        # Only the first (offset - skipped + limit) rows in (term rank, entry id) order are needed.
        want = offset - skipped + limit
        rows: list[Any] = []
        for tid in need_terms:
            if conds:
                rows += conn.execute(
                    sa.select(e)
                    .where(e.c.name_term_id == tid, *conds)
                    .order_by(e.c.entry_id)
                    .limit(want - len(rows))
                ).all()
            else:
                rows += conn.execute(_q(conn).term_rows, {"tid": tid, "lim": want - len(rows)}).all()
            if len(rows) >= want:
                break
        rows.sort(key=lambda r: (rank[r.name_term_id], r.entry_id))
        start = offset - skipped
        for r in rows[start : start + limit]:
            hits.append(_hit(r, term_scores[r.name_term_id], FIELD_NAME))
    if len(hits) < limit and with_other:
        other_offset = max(0, offset - name_total)
        hits += _other_rows(conn, e, term_scores, f, other_offset, limit - len(hits))
    return hits


def _other_rows(
    conn: sa.Connection, e: sa.Table, term_scores: dict[int, int], f: SearchFilters, offset: int, limit: int
) -> list[Hit]:
    ids = sorted(term_scores)
    p = SearchPosting.__table__  # type: ignore[attr-defined]
    best = (
        sa.select(p.c.entry_id, sa.func.min(p.c.field).label("fld"))
        .where(p.c.term_id.in_(ids), p.c.field != FIELD_NAME)
        .group_by(p.c.entry_id)
        .subquery()
    )
    rows = conn.execute(
        sa.select(e, best.c.fld)
        .join(best, best.c.entry_id == e.c.entry_id)
        .where(e.c.name_term_id.not_in(ids), *_sql_filters(f, e))
        .order_by(best.c.fld, e.c.name_len, e.c.entry_id)
        .offset(offset)
        .limit(limit)
    ).all()
    return [_hit(r, FIELD_SCORES[r.fld], r.fld) for r in rows]


def _hit(r: Any, score: int, fld: int) -> Hit:
    return Hit(
        entry_id=r.entry_id,
        task_code=r.task_code,
        name=r.name,
        department_id=r.department_id,
        department=r.department_name,
        level=r.level,
        division_code=r.division_code,
        task_type=r.task_type,
        no_contact=bool(r.no_contact),
        score=score,
        matched_field=FIELD_LABELS[fld],
    )


def _highlight(items: list[Hit], words: set[str], fuzzy: bool) -> None:
    latin = [w for w in words if _LATIN.match(w) and len(w) >= 2]
    plain = [w for w in words if not _LATIN.match(w) or len(w) < 2]
    for hit in items:
        norm = [normalize_text(c) for c in hit.name]
        marks = [False] * len(hit.name)
        flat, owner = "", []
        for i, piece in enumerate(norm):
            flat += piece
            owner += [i] * len(piece)
        for w in plain:
            start = flat.find(w)
            while start >= 0 and w:
                for k in range(start, start + len(w)):
                    marks[owner[k]] = True
                start = flat.find(w, start + len(w))
        if latin:
            syl = syllables(flat)
            for w in latin:
                for i in range(len(syl)):
                    joined = "".join(s for s, _, _ in syl[i:])
                    if joined.startswith(w):
                        used, j = 0, i
                        while used < len(w) and j < len(syl):
                            used += len(syl[j][0])
                            for k in range(syl[j][1], syl[j][2]):
                                marks[owner[k]] = True
                            j += 1
                        break
                ini = "".join(s[0] for s, _, _ in syl)
                pos = ini.find(w)
                if pos >= 0:
                    for j in range(pos, pos + len(w)):
                        for k in range(syl[j][1], syl[j][2]):
                            marks[owner[k]] = True
        spans: list[tuple[int, int]] = []
        for i, m in enumerate(marks):
            if m:
                if spans and spans[-1][1] == i:
                    spans[-1] = (spans[-1][0], i + 1)
                else:
                    spans.append((i, i + 1))
        hit.highlights = spans


def log_zero_result(session: Session, query: str) -> None:
    """Count a query that found nothing (a deliberate write on a GET: administrators add aliases from it)."""
    query = mask_personal_data(query)[:100]  # people search for their own ID numbers and names
    try:
        with session.begin_nested():
            row = (
                session.execute(sa.select(SearchMiss).where(_t(SearchMiss).c.query == query))
                .scalars()
                .first()
            )
            if row is None:
                session.add(SearchMiss(query=query))
            else:
                row.count += 1
                row.last_seen = utcnow()
            session.flush()
    except (IntegrityError, OperationalError):
        # Best effort: a concurrent request logged the same miss first, or (SQLite) another writer
        # holds the lock. A lost count must never turn a search into an error.
        pass


def top_misses(session: Session, limit: int = 50) -> list[SearchMiss]:
    stmt = sa.select(SearchMiss).order_by(SearchMiss.count.desc(), SearchMiss.last_seen.desc())  # type: ignore[attr-defined]
    return list(session.execute(stmt.limit(limit)).scalars())


def like_oracle(session: Session, phrase: str) -> set[str]:
    """Task codes of published entries whose name contains ``phrase`` (test oracle, benchmark baseline)."""
    ent = ImplementationEntry.__table__  # type: ignore[attr-defined]
    escaped = phrase.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    rows = session.execute(
        sa.select(ent.c.task_code).where(
            ent.c.status == EntryStatus.PUBLISHED.value,
            ent.c.applicable.is_(True),
            ent.c.name.like(f"%{escaped}%", escape="\\"),
        )
    )
    return {r[0] for r in rows}


def browse(session: Session, filters: SearchFilters, page: int = 1, limit: int = 10) -> SearchResult:
    """No query: the entries under the filters (browse by town/village, department, type), by name.

    With no filter at all the answer is empty: the portal shows its home page instead of a full list.
    """
    if not any((filters.level, filters.division, filters.department, filters.task_type, filters.no_contact)):
        return SearchResult("", [], 0, page, limit, _empty_facets(), [])
    conn = session.connection()
    e = SearchEntry.__table__  # type: ignore[attr-defined]
    total, facets = _facets(session, e, [], filters)
    rows = conn.execute(
        sa.select(e)
        .where(*_sql_filters(filters, e))
        .order_by(e.c.name_len, e.c.entry_id)
        .offset((page - 1) * limit)
        .limit(limit)
    ).all()
    items = [_hit(r, 0, FIELD_NAME) for r in rows]
    return SearchResult("", items, total, page, limit, facets, [])
