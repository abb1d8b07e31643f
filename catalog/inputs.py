"""Field coercion and checks shared by the catalogue services (departments, items, entries).

Each coercer appends Chinese messages to ``errors`` by field instead of raising, so one request
reports every bad field at once; ``_raise_if`` turns them into one Invalid.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from catalog.norules import split_codes
from core.db import MAX_DB_ID, flush_unique
from core.errors import Conflict, Forbidden, Invalid, NotFound


def _check_id(value: Any, what: str) -> int:
    """Ids outside the INTEGER range cannot exist: NotFound instead of a database error."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_DB_ID:
        raise NotFound(f"{what} {value} 不存在")
    return value


def _pk(row: Any) -> int:
    """The primary key of a flushed row (typed as int for the checker)."""
    pk: int = row.id
    return pk


def _insert(session: Session, row: Any, message: str) -> None:
    """Add and flush ``row`` in a savepoint: a concurrent duplicate (unique constraint) is a Conflict."""
    session.add(row)
    flush_unique(session, Conflict(message))


def _require(condition: bool, message: str = "无权执行此操作") -> None:
    if not condition:
        raise Forbidden(message)


def _columns(obj: Any) -> dict[str, Any]:
    return {c.key: getattr(obj, c.key) for c in sa.inspect(type(obj)).mapper.column_attrs}


def _jsonable(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def _diff(old: Mapping[str, Any], new: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    keys = [k for k in new if old.get(k) != new.get(k)]
    return {k: _jsonable(old.get(k)) for k in keys}, {k: _jsonable(new.get(k)) for k in keys}


def _norm_codes(value: Any, allowed: Mapping[str, str], fieldname: str, errors: dict[str, list[str]]) -> str:
    if isinstance(value, list | tuple):
        parts = [str(v).strip() for v in value]
    elif isinstance(value, str):
        parts = split_codes(value)
    else:
        errors.setdefault(fieldname, []).append("应为以逗号分隔的代码")
        return ""
    bad = [p for p in parts if p not in allowed]
    if bad:
        errors.setdefault(fieldname, []).append(
            f"无效代码：{'、'.join(bad)}；可选：{'、'.join(f'{k} {v}' for k, v in allowed.items())}"
        )
        return ""
    unique = sorted(set(parts), key=list(allowed).index)
    return ",".join(unique)


def _as_int(
    value: Any, fieldname: str, low: int, high: int, errors: dict[str, list[str]], nullable: bool = False
) -> int | None:
    if value is None or (isinstance(value, str) and value.strip() == ""):
        if nullable:
            return None
        errors.setdefault(fieldname, []).append("必填")
        return None
    if isinstance(value, bool):
        errors.setdefault(fieldname, []).append("应为整数")
        return None
    if isinstance(value, str):
        try:
            value = int(value.strip())
        except ValueError:
            errors.setdefault(fieldname, []).append("应为整数")
            return None
    if not isinstance(value, int):
        errors.setdefault(fieldname, []).append("应为整数")
        return None
    if not low <= value <= high:
        errors.setdefault(fieldname, []).append(f"应在 {low} 到 {high} 之间")
        return None
    return value


def _as_text(
    value: Any,
    fieldname: str,
    max_len: int,
    errors: dict[str, list[str]],
    nullable: bool = True,
    required: bool = False,
) -> str | None:
    if value is None:
        if required:
            errors.setdefault(fieldname, []).append("必填")
        return None if nullable else ""
    if not isinstance(value, str):
        errors.setdefault(fieldname, []).append("应为文本")
        return None
    text = value.strip()
    if required and not text:
        errors.setdefault(fieldname, []).append("必填")
    if len(text) > max_len:
        errors.setdefault(fieldname, []).append(f"不能超过 {max_len} 个字符")
    if not text and nullable:
        return None
    return text


def _as_bool(value: Any, fieldname: str, errors: dict[str, list[str]]) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in {"true", "1", "on", "yes", "false", "0", "off", "no", ""}:
        return value.lower() in {"true", "1", "on", "yes"}
    errors.setdefault(fieldname, []).append("应为是/否")
    return False


def _raise_if(errors: dict[str, list[str]], message: str = "输入有误，请按提示修改") -> None:
    if errors:
        first = next(iter(errors.items()))
        raise Invalid(f"{message}：{first[0]} {first[1][0]}", errors)
