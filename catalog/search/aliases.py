"""Search aliases (俗称): the shipped table, the administrators' edits, the parsed active set."""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from sqlmodel import Session

from catalog.search.sql import _q, _t
from catalog.search.text import normalize_query, pinyin_of
from catalog.search_models import (
    SearchAlias,
)
from core.config import PROJECT_ROOT
from core.errors import Invalid
from core.types import utcnow

ALIASES_CSV = PROJECT_ROOT / "data" / "search_aliases.csv"


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
