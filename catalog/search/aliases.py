"""Search aliases (俗称): the shipped table, the administrators' edits, the parsed active set."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from catalog.search.cache import memoised
from catalog.search.sql import _q, _t
from catalog.search.state import mark_changed
from catalog.search.text import normalize_query, pinyin_of
from catalog.search_models import (
    SearchAlias,
)
from core import audit
from core.auth import Principal
from core.config import PROJECT_ROOT
from core.csv_input import header_problems, read_header, records, utf8_lines
from core.errors import Invalid, NotFound
from core.input_guard import FIELD_MESSAGE, IN_TEXT  # the API's own rule, not a copy
from core.types import utcnow

ALIASES_CSV = PROJECT_ROOT / "data" / "search_aliases.csv"
ALIAS_COLUMNS = ("alias", "targets", "note")
# The columns of search_alias (catalog.search_models.SearchAlias).
MAX_ALIAS, MAX_TARGETS, MAX_NOTE = 50, 500, 300
# An alias is looked for inside every query, so one character ("证") would rewrite most searches; each
# target is one more phrase matched per search (the shipped table's longest list has 4).
MIN_ALIAS, MAX_TARGET_COUNT = 2, 20


@dataclass(frozen=True)
class Alias:
    alias: str
    targets: tuple[str, ...]
    pinyin: str
    initials: str


def read_aliases_csv(path: Path = ALIASES_CSV) -> list[dict[str, str]]:
    """Rows of an alias table (UTF-8 CSV, columns alias, targets ("|"-separated), note; lines starting
    with # are comments), each held to the admin page's rules (``alias_values``) and named once.

    Invalid at the first problem, naming the file and the file's own line (comment lines counted),
    so that ``flask search load-aliases`` writes nothing from a file it refuses."""
    rows: list[dict[str, str]] = []
    lines: dict[str, int] = {}  # alias -> the line it is on
    in_file = records(utf8_lines(path), comments=True)
    header_line, header = read_header(in_file, path.name)
    problems = header_problems(header, ("alias", "targets"), ALIAS_COLUMNS)
    if problems:
        raise Invalid(
            f"{path.name} 第 {header_line} 行：{'；'.join(problems)}（列应为 {','.join(ALIAS_COLUMNS)}）"
        )
    for line_no, values, problem in in_file:
        at = f"{path.name} 第 {line_no} 行："
        if problem:
            raise Invalid(at + problem)
        if len(values) > len(header):
            raise Invalid(f"{at}有 {len(values)} 列，多于表头的 {len(header)} 列（含逗号的说明请加引号）")
        row = dict(zip(header, values, strict=False))
        try:
            stored = alias_values(row.get("alias") or "", row.get("targets") or "", row.get("note") or "")
        except Invalid as exc:
            raise Invalid(at + _describe(exc), exc.details) from None
        first = lines.setdefault(stored["alias"], line_no)
        if first != line_no:
            raise Invalid(f"{at}别名“{stored['alias']}”与第 {first} 行重复")
        rows.append(stored)
    return rows


def clean_targets(raw: str) -> list[str]:
    seen: list[str] = []
    for part in re.split(r"[|｜,，、;；\n]", raw):
        t = normalize_query(part)
        if t and t not in seen:
            seen.append(t)
    return seen


# Audit actions of the alias writes (the admin page, the API and `flask search load-aliases`).
ALIAS_SAVED, ALIAS_DELETED = "search.alias_saved", "search.alias_deleted"


def _values(row: SearchAlias) -> dict[str, Any]:
    return {"alias": row.alias, "targets": row.targets, "note": row.note}


def _by_word(session: Session, word: str) -> SearchAlias | None:
    return session.execute(sa.select(SearchAlias).where(_t(SearchAlias).c.alias == word)).scalars().first()


def _write(
    session: Session, actor: Principal, row: SearchAlias | None, values: dict[str, str]
) -> SearchAlias:
    """Create ``values`` (row None) or change ``row`` to them, with the audit row; unchanged: no write."""
    old = _values(row) if row is not None else None
    if row is None:
        row = SearchAlias(alias=values["alias"], targets="", note="")
        session.add(row)
    elif old == values:
        return row
    mark_changed(session)
    row.alias, row.targets, row.note, row.updated_at = (
        values["alias"],
        values["targets"],
        values["note"],
        utcnow(),
    )
    session.flush()
    audit.record(
        session,
        actor=actor,
        action=ALIAS_SAVED,
        entity_type="search_alias",
        entity_id=row.id,
        old=old,
        new=values,
    )
    return row


def load_aliases(session: Session, actor: Principal, rows: Iterable[dict[str, str]]) -> int:
    """Upsert aliases by their word (rows as ``read_aliases_csv`` returns them, held again to
    ``alias_values``), one audit row per alias created or changed; returns how many were."""
    n = 0
    for row in rows:
        values = alias_values(row["alias"], row["targets"], row.get("note") or "")
        existing = _by_word(session, values["alias"])
        if existing is None or _values(existing) != values:
            _write(session, actor, existing, values)
            n += 1
    session.flush()
    return n


def alias_values(alias: str, targets: str, note: str = "") -> dict[str, str]:
    """An alias as it is stored: the word and targets normalised, the note cut to its column. Invalid
    with field details on what the admin page refuses (the file and the API are held to the same)."""
    word = normalize_query(alias)
    target_list = clean_targets(targets)
    errors: dict[str, list[str]] = {}
    if not alias.strip():
        errors["alias"] = ["别名不能为空"]
    elif not word:
        errors["alias"] = [f"别名“{alias.strip()}”只有标点、符号或表情，规范化后为空"]
    elif len(word) > MAX_ALIAS:
        errors["alias"] = [f"别名最多 {MAX_ALIAS} 个字符"]
    elif len(word.replace(" ", "")) < MIN_ALIAS:
        errors["alias"] = [f"别名至少 {MIN_ALIAS} 个字（不计标点）：单个字几乎出现在每次搜索里"]
    if not target_list or len("|".join(target_list)) > MAX_TARGETS:
        errors["targets"] = [f"请至少填写一个目标词（用 | 或逗号分隔），总长不超过 {MAX_TARGETS} 个字符"]
    elif len(target_list) > MAX_TARGET_COUNT:
        errors["targets"] = [f"目标词最多 {MAX_TARGET_COUNT} 个（现有 {len(target_list)} 个）"]

    if IN_TEXT.search(note):
        errors["note"] = [FIELD_MESSAGE]
    if errors:
        raise Invalid("别名填写有误", errors)
    return {"alias": word, "targets": "|".join(target_list), "note": note[:MAX_NOTE]}


def _describe(exc: Invalid) -> str:
    return "；".join(f"{field}：{'；'.join(problems)}" for field, problems in exc.details.items())


def save_alias(
    session: Session, actor: Principal, alias: str, targets: str, note: str = "", alias_id: int | None = None
) -> SearchAlias:
    """Create or change one alias (administrators); Invalid with field details on bad input."""
    values = alias_values(alias, targets, note or "")
    clash = _by_word(session, values["alias"])
    if clash is not None and clash.id != alias_id:
        raise Invalid("该别名已存在", {"alias": ["该别名已存在，请直接修改它"]})
    row = None
    if alias_id is not None:
        row = session.get(SearchAlias, alias_id)
        if row is None:
            raise NotFound("别名不存在")
    return _write(session, actor, row, values)


def delete_alias(session: Session, actor: Principal, alias_id: int) -> SearchAlias:
    """Delete one alias, with the audit row holding what it was."""
    row = session.get(SearchAlias, alias_id)
    if row is None:
        raise NotFound("别名不存在")
    old = _values(row)
    session.delete(row)
    session.flush()
    mark_changed(session)
    audit.record(
        session, actor=actor, action=ALIAS_DELETED, entity_type="search_alias", entity_id=alias_id, old=old
    )
    return row


_ALIAS_CACHE: dict[tuple[tuple[str, str], ...], list[Alias]] = {}


def active_aliases(session: Session) -> list[Alias]:
    """The alias table as read in this transaction (parsed once per distinct content)."""
    conn = session.connection()
    # Read once per search state token within a search request (the alias writers change the token).
    rows = memoised("aliases", lambda: tuple((a, t) for a, t in conn.execute(_q(conn).aliases)))
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
