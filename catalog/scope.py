"""Scope and competence (事项认领的职责范围): who may claim which basic item, withdrawing a claim
that was never published, and the division filter of a town operator.

- A district (county-level) department claims only the items whose 主管部门 (competent department,
  ``CatalogItem.competent_department_id``) is itself. An item whose 主管部门 nobody recorded is not
  any department's: only the district administrator claims it. An administrator may claim an item for
  a department other than its 主管部门 with a reason, which the audit row keeps.
- Towns and villages claim by 行使层级 (use level), as ``catalog.entries.claim_item`` checks.
- A claim draft that was never published can be withdrawn by its editor: the entry and its own
  child rows are deleted (the audit row keeps the last snapshot), so the claim slot is free again.

Every function takes a Session (and the acting Principal), flushes and never commits.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, SQLModel, col, select

from catalog import permissions
from catalog.inputs import _as_text, _raise_if, _require
from catalog.models import CatalogItem, Department, EntryStatus, EntryVersion, ImplementationEntry
from core import audit
from core.auth import Principal
from core.db import table_of
from core.errors import Conflict, Forbidden, Invalid

COUNTY_LEVEL = "4"


def competence_problem(item: CatalogItem, department: Department, department_name: str | None) -> str | None:
    """Why ``department`` may not claim ``item`` by competence, or None when it may.

    ``department_name`` is the name of the item's 主管部门 (None when not recorded). Town- and
    village-level bodies are not limited by 主管部门 (they claim by use level).
    """
    if department.level != COUNTY_LEVEL:
        return None
    if item.competent_department_id is not None and item.competent_department_id == department.id:
        return None
    if item.competent_department_id is None:
        return f"事项“{item.name}”尚未登记主管部门，区级部门不能认领；请区级管理员先登记主管部门"
    return f"事项“{item.name}”的主管部门为{department_name or '其他部门'}，{department.name}不能认领"


def check_competence(
    session: Session,
    actor: Principal,
    item: CatalogItem,
    department: Department,
    override_reason: Any = None,
) -> str | None:
    """Enforce the competence rule for a claim (or a "not applicable" record) of ``item`` by
    ``department``. Returns the override reason to audit, or None when no override was needed.

    Forbidden for a non-administrator claiming outside its competence; Invalid on
    ``override_reason`` when an administrator claims an item whose recorded 主管部门 is another
    department without giving a reason. An administrator claiming an item with no recorded 主管部门
    needs no reason: deciding who implements it is the administrator's job.
    """
    competent = (
        session.get(Department, item.competent_department_id) if item.competent_department_id else None
    )
    problem = competence_problem(item, department, competent.name if competent else None)
    if problem is None:
        return None
    if not actor.is_admin:
        raise Forbidden(problem, {"item_id": [problem]})
    if item.competent_department_id is None:
        return None
    errors: dict[str, list[str]] = {}
    reason = _as_text(override_reason, "override_reason", 500, errors)
    if not reason and "override_reason" not in errors:
        errors["override_reason"] = ["为非主管部门认领须填写理由（将记入审计）"]
    _raise_if(errors, problem + "；管理员代为认领须填写理由")
    return reason


def _owned_child_tables(entry_table: sa.Table) -> list[sa.Table]:
    """The tables that belong to one entry (``entry_*`` with an ``entry_id`` foreign key to it), in an
    order safe for deleting (dependants first). Other tables that point to an entry (licence types,
    statistics, bundles) are not the entry's own: their rows make a withdrawal a Conflict."""
    owned = []
    for table in reversed(SQLModel.metadata.sorted_tables):
        if not table.name.startswith("entry_") or "entry_id" not in table.c:
            continue
        if any(fk.column.table is entry_table for fk in table.c.entry_id.foreign_keys):
            owned.append(table)
    return owned


def withdraw_claim(
    session: Session, actor: Principal, entry_id: int, reason: str | None = None
) -> dict[str, Any]:
    """撤回认领: delete a claim draft that was never published, so the item can be claimed again.

    Allowed to the entry's editors (``permissions.can_edit_entry``). Conflict unless the entry is a
    draft that was never published (no published or retired version); Conflict when other records
    (a licence type, statistics, a bundle) point to it. The audit row keeps the draft's last state.
    Returns what was withdrawn (task code, item, department).
    """
    from catalog.entries import _snapshot, get_entry

    entry = get_entry(session, entry_id)
    _require(permissions.can_edit_entry(actor, entry), "只能撤回本部门或本辖区的认领")
    errors: dict[str, list[str]] = {}
    reason_v = _as_text(reason, "reason", 500, errors)
    _raise_if(errors)
    if entry.status != EntryStatus.DRAFT.value:
        raise Conflict("只有草稿状态的认领可以撤回", {"status": [entry.status]})
    was_published = session.exec(
        select(EntryVersion.id).where(
            EntryVersion.entry_id == entry.id,
            col(EntryVersion.status).in_([EntryStatus.PUBLISHED.value, EntryStatus.RETIRED.value]),
        )
    ).first()
    if entry.published_at is not None or was_published is not None:
        raise Conflict("该实施清单曾经发布，不能撤回认领；如不再实施请停用", {"status": ["曾发布"]})
    snapshot = _snapshot(session, entry)
    summary = {"task_code": entry.task_code, "item_id": entry.item_id, "department_id": entry.department_id}
    entry_table = table_of(ImplementationEntry)
    try:
        with session.begin_nested():
            conn = session.connection()
            for table in _owned_child_tables(entry_table):
                conn.execute(sa.delete(table).where(table.c.entry_id == entry.id))
            session.delete(entry)
            session.flush()
    except sa.exc.IntegrityError:
        raise Conflict("该认领已被其他记录引用（如证照类型、统计或“一件事”），不能撤回") from None
    audit.record(
        session,
        actor=actor,
        action="entry.withdraw_claim",
        entity_type="implementation_entry",
        entity_id=entry_id,
        old=snapshot,
        new={"withdrawn": True, **summary},
        reason=reason_v,
    )
    return summary


def division_prefix(code: str | None) -> str | None:
    """The code prefix of a division and everything under it: a county its 6 digits, a town its 9,
    a village its full 12. None for a code that is not a 12-digit division code."""
    if not code or len(code) != 12 or not code.isdigit():
        return None
    if code[6:] == "000000":
        return code[:6]
    if code[9:] == "000":
        return code[:9]
    return code


def set_item_competence(
    session: Session, actor: Principal, item_id: int, department_id: int | None
) -> CatalogItem:
    """Record (or, with None, clear) a basic item's 主管部门. Administrators only; the department
    must be a district (county-level) department. Audited with the old and new value."""
    from catalog.services import get_department, get_item

    _require(permissions.can_manage_catalogue(actor), "仅区级管理员可以登记主管部门")
    item = get_item(session, item_id)
    if department_id is not None:
        dept = get_department(session, department_id)
        if dept.level != COUNTY_LEVEL:
            raise Invalid("主管部门应为区级部门", {"department_id": ["应为区级（县级）部门"]})
    old = item.competent_department_id
    if old == department_id:
        return item
    item.competent_department_id = department_id
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="item.competence",
        entity_type="catalog_item",
        entity_id=item.id,
        old={"competent_department_id": old},
        new={"competent_department_id": department_id},
    )
    return item
