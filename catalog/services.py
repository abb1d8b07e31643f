"""Catalogue use cases: departments and basic items (entries: catalog.entries; 三级四同:
catalog.consistency).

Every function takes a Session (and the acting Principal where a permission applies), flushes and
never commits; the web request, CLI command or task around it commits once. Errors are
core.errors: Invalid (with field details), Forbidden, NotFound, Conflict. Every write appends an
audit row (core.audit.record) with old and new values.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from catalog import permissions
from catalog.codes import check_catalog_code, check_uscc
from catalog.inputs import (
    _as_bool,
    _as_text,
    _check_id,
    _columns,
    _diff,
    _insert,
    _norm_codes,
    _raise_if,
    _require,
)
from catalog.models import (
    LEVEL_DIVISION,
    TASK_TYPES,
    USE_LEVELS,
    CatalogItem,
    Department,
    Division,
)
from catalog.norules import split_codes
from catalog.search.state import mark_changed
from core import audit
from core.auth import Principal
from core.errors import Conflict, Invalid, NotFound
from core.types import utcnow

DIVISION_LABELS = {"county": "县区", "town": "镇街", "village": "村社区"}


# --------------------------------------------------------------------------- departments


def create_department(
    session: Session, actor: Principal, *, name: str, uscc: str, level: str, division_code: str
) -> Department:
    """Create an implementing body (实施主体). Admin only.

    USCC shape errors are Invalid on "uscc"; a failing check character (pre-2016 codes) is
    accepted with ``uscc_warning`` set. The division must exist and match the level (4 county,
    5 town/street, 6 village/community). Conflict on a duplicate USCC.
    """
    _require(permissions.can_manage_catalogue(actor), "仅区级管理员可以新增实施主体")
    errors: dict[str, list[str]] = {}
    name_v = _as_text(name, "name", 100, errors, required=True)
    uscc = (uscc or "").strip().upper() if isinstance(uscc, str) else uscc
    result = check_uscc(uscc)
    if not result.ok:
        errors.setdefault("uscc", []).append(result.message or "统一社会信用代码无效")
    if level not in LEVEL_DIVISION:
        errors.setdefault("level", []).append("实施主体层级应为 4（县级）、5（镇街级）或 6（村社区级）")
    division = session.get(Division, division_code) if isinstance(division_code, str) else None
    if division is None:
        errors.setdefault("division_code", []).append("行政区划不存在")
    elif level in LEVEL_DIVISION and division.level != LEVEL_DIVISION[level]:
        errors.setdefault("division_code", []).append(
            f"{USE_LEVELS[level]}实施主体应属于{DIVISION_LABELS[LEVEL_DIVISION[level]]}区划"
        )
    _raise_if(errors)
    if session.exec(select(Department).where(Department.uscc == uscc)).first():
        raise Conflict(f"统一社会信用代码 {uscc} 已被其他实施主体使用", {"uscc": ["已存在"]})
    dept = Department(
        name=name_v or "", uscc=uscc, uscc_warning=result.warning, level=level, division_code=division_code
    )
    _insert(session, dept, f"统一社会信用代码 {uscc} 已被其他实施主体使用")
    mark_changed(session)  # department names label search facets
    audit.record(
        session,
        actor=actor,
        action="department.create",
        entity_type="department",
        entity_id=dept.id,
        new=_columns(dept),
    )
    return dept


def get_department(session: Session, department_id: int) -> Department:
    dept = session.get(Department, _check_id(department_id, "实施主体"))
    if dept is None:
        raise NotFound(f"实施主体 {department_id} 不存在")
    return dept


def list_departments(
    session: Session, *, division_code: str | None = None, level: str | None = None, q: str | None = None
) -> list[Department]:
    stmt = select(Department)
    if division_code:
        stmt = stmt.where(Department.division_code == division_code)
    if level:
        stmt = stmt.where(Department.level == level)
    if q:
        stmt = stmt.where(col(Department.name).contains(q, autoescape=True))
    return list(
        session.exec(
            stmt.order_by(col(Department.level), col(Department.division_code), col(Department.id))
        ).all()
    )


# --------------------------------------------------------------------------- basic items


def _item_values(
    errors: dict[str, list[str]],
    *,
    name: Any,
    task_type: Any,
    legal_basis: Any,
    use_levels: Any,
    county_only: Any,
) -> dict[str, Any]:
    values: dict[str, Any] = {
        "name": _as_text(name, "name", 200, errors, required=True),
        "legal_basis": _as_text(legal_basis, "legal_basis", 20000, errors, nullable=False) or "",
        "county_only": _as_bool(county_only, "county_only", errors),
    }
    if task_type not in TASK_TYPES:
        errors.setdefault("task_type", []).append(
            "事项类型无效；可选：" + "、".join(f"{k} {v}" for k, v in TASK_TYPES.items())
        )
    values["task_type"] = task_type
    levels = _norm_codes(use_levels, USE_LEVELS, "use_levels", errors)
    if not levels and "use_levels" not in errors:
        errors.setdefault("use_levels", []).append("至少选择一个行使层级")
    if "6" in split_codes(levels) and task_type != "20":
        errors.setdefault("use_levels", []).append("村（社区）级只能实施公共服务事项")
    if values["county_only"] and levels and levels != "4":
        errors.setdefault("use_levels", []).append("仅县级实施的事项，行使层级只能为 4（县级）")
    values["use_levels"] = levels
    return values


def create_item(
    session: Session,
    actor: Principal,
    *,
    code: str,
    name: str,
    task_type: str,
    legal_basis: str = "",
    use_levels: str | list[str] = "4",
    county_only: bool = False,
    source_code: str | None = None,
) -> CatalogItem:
    """Add a 基本目录 item. Admin only. Conflict when the 基本编码 or source code is taken."""
    _require(permissions.can_manage_catalogue(actor), "仅区级管理员可以维护基本目录")
    errors: dict[str, list[str]] = {}
    checked = check_catalog_code(code)
    if not checked.ok:
        errors.setdefault("code", []).append(checked.message or "基本编码无效")
    values = _item_values(
        errors,
        name=name,
        task_type=task_type,
        legal_basis=legal_basis,
        use_levels=use_levels,
        county_only=county_only,
    )
    source = _as_text(source_code, "source_code", 60, errors)
    _raise_if(errors)
    if session.exec(select(CatalogItem).where(CatalogItem.code == code)).first():
        raise Conflict(f"基本编码 {code} 已存在", {"code": ["已存在"]})
    if source and session.exec(select(CatalogItem).where(CatalogItem.source_code == source)).first():
        raise Conflict(f"来源编码 {source} 已存在", {"source_code": ["已存在"]})
    item = CatalogItem(code=code, source_code=source, **values)
    _insert(session, item, f"基本编码 {code} 已存在")
    audit.record(
        session,
        actor=actor,
        action="item.create",
        entity_type="catalog_item",
        entity_id=item.id,
        new=_columns(item),
    )
    return item


ITEM_EDITABLE = ("code", "name", "task_type", "legal_basis", "use_levels", "county_only")


def update_item(session: Session, actor: Principal, item_id: int, **changes: Any) -> CatalogItem:
    """Change a basic item. Admin only. Entries keep their own copy, so a change shows as drift
    in ``consistency_report`` until each entry is aligned (``align_entry``)."""
    _require(permissions.can_manage_catalogue(actor), "仅区级管理员可以维护基本目录")
    item = get_item(session, item_id)
    unknown = sorted(set(changes) - set(ITEM_EDITABLE))
    if unknown:
        raise Invalid("不能修改这些字段：" + "、".join(unknown), {k: ["不可修改"] for k in unknown})
    errors: dict[str, list[str]] = {}
    merged = {k: changes.get(k, getattr(item, k)) for k in ITEM_EDITABLE}
    values = _item_values(
        errors,
        name=merged["name"],
        task_type=merged["task_type"],
        legal_basis=merged["legal_basis"],
        use_levels=merged["use_levels"],
        county_only=merged["county_only"],
    )
    if "code" in changes:
        checked = check_catalog_code(changes["code"])
        if not checked.ok:
            errors.setdefault("code", []).append(checked.message or "基本编码无效")
    _raise_if(errors)
    values["code"] = merged["code"]
    if (
        values["code"] != item.code
        and session.exec(select(CatalogItem).where(CatalogItem.code == values["code"])).first()
    ):
        raise Conflict(f"基本编码 {values['code']} 已存在", {"code": ["已存在"]})
    old = {k: getattr(item, k) for k in ITEM_EDITABLE}
    old_d, new_d = _diff(old, values)
    if not new_d:
        return item
    for key, value in values.items():
        setattr(item, key, value)
    item.updated_at = utcnow()
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="item.update",
        entity_type="catalog_item",
        entity_id=item.id,
        old=old_d,
        new=new_d,
    )
    return item


def get_item(session: Session, item_id: int) -> CatalogItem:
    item = session.get(CatalogItem, _check_id(item_id, "基本目录事项"))
    if item is None:
        raise NotFound(f"基本目录事项 {item_id} 不存在")
    return item


def list_items(
    session: Session,
    *,
    q: str | None = None,
    task_type: str | None = None,
    level: str | None = None,
    page: int = 1,
    limit: int = 20,
    competent_department_id: int | None = None,
) -> tuple[list[CatalogItem], int]:
    stmt = select(CatalogItem)
    if competent_department_id is not None:
        stmt = stmt.where(CatalogItem.competent_department_id == competent_department_id)
    if q:
        stmt = stmt.where(
            sa.or_(
                col(CatalogItem.name).contains(q, autoescape=True),
                col(CatalogItem.code).contains(q, autoescape=True),
                col(CatalogItem.source_code).contains(q, autoescape=True),
            )
        )
    if task_type:
        stmt = stmt.where(CatalogItem.task_type == task_type)
    if level:
        stmt = stmt.where(col(CatalogItem.use_levels).contains(level, autoescape=True))
    total = session.exec(select(sa.func.count()).select_from(stmt.subquery())).one()
    rows = session.exec(stmt.order_by(CatalogItem.code).offset((page - 1) * limit).limit(limit)).all()
    return list(rows), int(total)
