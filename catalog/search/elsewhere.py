"""Services handled elsewhere (本区不办理): the administrators' list, its audited writes, and the
lookup the portal runs beside every search so that "公积金" or "gongjijin" says where to go instead
of finding nothing."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa
from sqlmodel import Session

from catalog.search.aliases import clean_targets
from catalog.search.cache import memoised
from catalog.search.sql import _t
from catalog.search.state import mark_changed
from catalog.search.text import _LATIN, normalize_query, pinyin_of
from catalog.search_models import ElsewhereService
from core import audit
from core.auth import Principal
from core.db import flush_unique
from core.errors import Invalid, NotFound
from core.text_rules import FIELD_MESSAGE, IN_TEXT
from core.types import utcnow

ELSEWHERE_SAVED, ELSEWHERE_DELETED = "search.elsewhere_saved", "search.elsewhere_deleted"
FIELDS = ("name", "words", "body", "address", "phone", "url", "note", "verified")
_URL = re.compile(r"^https?://[^\s]+$")
MIN_WORD = 2  # characters of a search word (the shipped list's shortest is 2: 驾照)
# The longest a list of matches on the results page gets: it is a pointer, not a second result list.
MAX_SHOWN = 3


def _url_problem(url: str) -> str | None:
    """Why ``url`` cannot be the link citizens follow from the results page; None when it can.

    Only an absolute http(s) address naming a host; never one with a user name or password in it
    (``https://www.gov.cn@example.com/`` reads as a government site and goes elsewhere)."""
    if len(url) > 500 or not _URL.match(url):
        return "网址应以 http:// 或 https:// 开头，不超过 500 个字符"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (raises ValueError on a port that is not a number in range)
    except ValueError:
        return "网址格式不正确，请从浏览器地址栏复制完整网址"
    if "@" in parts.netloc:
        return "网址不能包含用户名、密码或“@”（如 https://www.gov.cn@example.com 实际指向 example.com）"
    if not parts.hostname:
        return "网址缺少网站域名，如 https://www.example.gov.cn/"
    return None


def _values(row: ElsewhereService) -> dict[str, Any]:
    return {f: getattr(row, f) for f in FIELDS}


def list_elsewhere(session: Session) -> list[ElsewhereService]:
    return list(session.execute(sa.select(ElsewhereService).order_by(_t(ElsewhereService).c.name)).scalars())


def _clean(form: dict[str, Any]) -> dict[str, Any]:
    """The form's values, trimmed and checked; Invalid names each bad field in Chinese."""

    def text(key: str, limit: int) -> str | None:
        value = " ".join(str(form.get(key) or "").split())
        return value[:limit] if value else None

    values: dict[str, Any] = {
        "name": text("name", 101),
        "words": "|".join(clean_targets(str(form.get("words") or ""))),
        "body": text("body", 101),
        "address": text("address", 301),
        "phone": text("phone", 41),
        "url": text("url", 501),
        "note": text("note", 501) or "",
        "verified": str(form.get("verified") or "").lower() in ("1", "true", "on", "yes"),
    }
    errors: dict[str, list[str]] = {}
    for key in FIELDS:
        if IN_TEXT.search(str(form.get(key) or "")):
            errors[key] = [FIELD_MESSAGE]
    if errors:  # the web boundary refuses these already; the service holds every caller to it
        raise Invalid("外部办理服务填写有误", errors)
    if not values["name"] or len(values["name"]) > 100:
        errors["name"] = ["请填写服务名称，不超过 100 个字符"]
    elif len(normalize_query(values["name"]).replace(" ", "")) < MIN_WORD:  # the name is searched as a word
        errors["name"] = [f"服务名称至少 {MIN_WORD} 个字（不计标点）"]
    if not values["body"] or len(values["body"]) > 100:
        errors["body"] = ["请填写办理机构，不超过 100 个字符"]
    if len(values["words"]) > 500:
        errors["words"] = ["检索词总长不超过 500 个字符"]
    elif short := [w for w in values["words"].split("|") if w and len(w.replace(" ", "")) < MIN_WORD]:
        # A word is looked for inside every query: "证" would send every licence search elsewhere.
        errors["words"] = [f"每个检索词至少 {MIN_WORD} 个字（{'、'.join(short)} 太短，几乎每次搜索都含有它）"]
    if values["address"] and len(values["address"]) > 300:
        errors["address"] = ["地址不超过 300 个字符"]
    if values["phone"] and (
        len(values["phone"]) > 40
        or not re.fullmatch(r"[0-9\-+() 转]+", values["phone"])
        or len(re.findall("[0-9]", values["phone"])) < 3
    ):
        errors["phone"] = ["电话只能包含数字、空格和 - + ( ) 转，至少 3 位数字，不超过 40 个字符"]
    if values["url"] and (problem := _url_problem(values["url"])):
        errors["url"] = [problem]
    if len(values["note"]) > 500:
        errors["note"] = ["备注不超过 500 个字符"]
    if errors:
        raise Invalid("外部办理服务填写有误", errors)
    return values


def save_elsewhere(
    session: Session, actor: Principal, form: dict[str, Any], service_id: int | None = None
) -> ElsewhereService:
    """Create (``service_id`` None) or change one entry of the list, with its audit row; unchanged
    values write nothing."""
    values = _clean(form)
    clash = (
        session.execute(sa.select(ElsewhereService).where(_t(ElsewhereService).c.name == values["name"]))
        .scalars()
        .first()
    )
    if clash is not None and clash.id != service_id:
        raise Invalid("该服务已存在", {"name": ["已有同名服务，请直接修改它"]})
    row: ElsewhereService | None = None
    old = None
    if service_id is not None:
        row = session.get(ElsewhereService, service_id)
        if row is None:
            raise NotFound("该外部办理服务不存在")
        old = _values(row)
        if old == values:
            return row
    if row is None:
        row = ElsewhereService(name=values["name"], body=values["body"])
        session.add(row)
    for key, value in values.items():
        setattr(row, key, value)
    row.updated_at = utcnow()
    # The same name saved by another administrator since the check above meets the unique index.
    flush_unique(session, Invalid("该服务已存在", {"name": ["已有同名服务，请直接修改它"]}))
    mark_changed(session)
    audit.record(
        session,
        actor=actor,
        action=ELSEWHERE_SAVED,
        entity_type="elsewhere_service",
        entity_id=row.id,
        old=old,
        new=values,
    )
    return row


def delete_elsewhere(session: Session, actor: Principal, service_id: int) -> ElsewhereService:
    row = session.get(ElsewhereService, service_id)
    if row is None:
        raise NotFound("该外部办理服务不存在")
    old = _values(row)
    session.delete(row)
    session.flush()
    mark_changed(session)
    audit.record(
        session,
        actor=actor,
        action=ELSEWHERE_DELETED,
        entity_type="elsewhere_service",
        entity_id=service_id,
        old=old,
    )
    return row


@dataclass(frozen=True)
class ElsewhereInfo:
    """What the results page shows of a list entry (read as plain columns: no ORM objects per search)."""

    name: str
    body: str
    address: str | None
    phone: str | None
    url: str | None
    note: str
    verified: bool


@dataclass(frozen=True)
class ElsewhereHit:
    """A match for the results page: the entry and the word that matched."""

    service: ElsewhereInfo
    word: str


def find_elsewhere(session: Session, q: str | None) -> list[ElsewhereHit]:
    """Entries of the list the query asks about: a search word (or the name) inside the query, the
    query inside a word of at least two characters, or the query typed as a word's full pinyin or
    initials ("gongjijin", "gjj"). The list is short (tens of rows), so it is matched in Python."""
    query = normalize_query(q)
    compact = query.replace(" ", "")
    if not compact:
        return []
    latin = _LATIN.match(compact) is not None
    hits: list[ElsewhereHit] = []
    e = _t(ElsewhereService)
    stmt = sa.select(
        e.c.words, e.c.name, e.c.body, e.c.address, e.c.phone, e.c.url, e.c.note, e.c.verified
    ).order_by(e.c.name)
    # The whole list, once per search state token (the list's writers change the token).
    rows = memoised("elsewhere", lambda: tuple(tuple(r) for r in session.connection().execute(stmt)))
    for raw_words, name, body, address, phone, url, note, verified in rows:
        info = ElsewhereInfo(name, body, address, phone, url, note or "", bool(verified))
        words = [w for w in [normalize_query(info.name), *(raw_words or "").split("|")] if w]
        for word in words:
            w = word.replace(" ", "")
            matched = w in compact or (len(compact) >= 2 and compact in w)
            if not matched and latin and len(compact) >= 3:
                pinyin, initials = pinyin_of(w)
                matched = compact in (pinyin.replace(" ", ""), initials)
            if matched:
                hits.append(ElsewhereHit(info, word))
                break
    return hits[:MAX_SHOWN]
