"""Implementation entries (实施清单): claims, reading, editing, the no-contact flag, alignment with
the basic item, and the review lifecycle.

Every function takes a Session (and the acting Principal where a permission applies), flushes and
never commits. Every write appends an audit row with old and new values and an EntryVersion
snapshot, so each saved state is kept.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from catalog import permissions, quality, scope, upper
from catalog.codes import make_task_code
from catalog.elements import HANDLE_FORMS
from catalog.entry_elements import (
    ELEMENT_FIELDS,
    MATERIAL_ELEMENT_KEYS,
    check_attachment_refs,
    children_snapshot,
    coerce_copies,
    coerce_element_fields,
    coerce_faqs,
    coerce_material_elements,
    coerce_steps,
    replace_children,
)
from catalog.inputs import (
    _as_bool,
    _as_int,
    _as_text,
    _check_id,
    _columns,
    _diff,
    _insert,
    _jsonable,
    _norm_codes,
    _pk,
    _raise_if,
    _require,
)
from catalog.models import (
    MATERIAL_FORMS,
    ONLINE_DEPTH,
    PROJECT_TYPES,
    RESULT_DELIVERY,
    TIME_UNITS,
    USE_LEVELS,
    CatalogItem,
    Department,
    EntryStatus,
    EntryVersion,
    Fee,
    ImplementationEntry,
    Material,
)
from catalog.norules import NoContactResult, derive_depth_level, evaluate_no_contact, split_codes
from catalog.review_settings import four_eyes_enabled
from catalog.revision_models import OPEN_REVISION_STATUSES, EntryRevision, RevisionStatus
from catalog.search.index import reindex_entry
from catalog.services import get_department, get_item
from core import audit
from core.audit import AuditLog
from core.auth import Principal
from core.db import compare_and_set
from core.errors import Conflict, Forbidden, Invalid, NotFound
from core.types import utcnow

MAX_DAYS = 3650
MAX_VISITS = 10
MAX_FEE_FEN = 2_000_000_000  # fits INTEGER; 2 千万元
MAX_MATERIALS = 100
MAX_FEES = 50
LOCKED_FIELDS = frozenset({"name", "task_type", "legal_basis", "catalog_code"})
STRUCTURAL_FIELDS = frozenset(
    {
        "id",
        "task_code",
        "item_id",
        "department_id",
        "level",
        "division_code",
        "status",
        "version",
        "no_contact",
        "no_contact_class",
        "depth_level",
        "applicable",
        "created_at",
        "updated_at",
        "published_at",
    }
)
PHONE_RE = re.compile(r"^[0-9+\-() 、,，/转]{3,40}$")
URL_RE = re.compile(r"^https?://[^\s/$.?#][^\s]*$", re.IGNORECASE)
LICENCE_TYPE_RE = re.compile(r"^[0-9A-HJ-NP-RTUW-Y]{18}[0-9]{3}$")


def _snapshot(session: Session, entry: ImplementationEntry) -> dict[str, Any]:
    data = {k: _jsonable(v) for k, v in _columns(entry).items()}
    skip = ("id", "entry_id")
    data["materials"] = [
        {k: v for k, v in _columns(m).items() if k not in skip} for m in entry_materials(session, entry.id)
    ]
    data["fees"] = [
        {k: v for k, v in _columns(f).items() if k not in skip} for f in entry_fees(session, entry.id)
    ]
    data |= children_snapshot(session, entry.id)
    return data


# licence_type_entry belongs to the licences package, which catalog never imports: the catalogue reads
# only the 关联事项 link (实施编码, role) through a table clause of its own.
_LICENCE_LINK = sa.table(
    "licence_type_entry", sa.column("task_code", sa.String), sa.column("role", sa.String)
)


def produces_licence(session: Session, task_code: str) -> bool:
    """Whether the licence catalogue names the entry ``task_code`` as producing a licence type."""
    stmt = (
        sa.select(sa.literal(1))
        .select_from(_LICENCE_LINK)
        .where(_LICENCE_LINK.c.task_code == task_code, _LICENCE_LINK.c.role == "produces")
        .limit(1)
    )
    return session.execute(stmt).first() is not None


def _derive(session: Session, entry: ImplementationEntry) -> None:
    """Store what the rules derive (不见面 class, 网上办理深度 level): never entered, kept in step on
    every save."""
    result = evaluate_no_contact(
        entry, entry_materials(session, entry.id), produces_licence(session, entry.task_code)
    )
    entry.no_contact_class = result.klass
    entry.depth_level = derive_depth_level(entry.online_depth, entry.visits)


CHANGED_MEANWHILE = "该实施清单刚被其他人修改或处理（状态或内容已变化），请刷新后重试"


def _take_next_version(session: Session, entry: ImplementationEntry, from_status: str | None) -> None:
    """Move the stored entry from the version this request read (and, for a change of state, from the
    status ``from_status``) to the next version (core.db.compare_and_set), or Conflict.

    Every write of an entry moves its version, so a request that read the entry before another one
    wrote it (an edit, an approval, a rejection) writes nothing: two approvals, or an approval and a
    rejection, of one submitted entry cannot both succeed."""
    expected: dict[str, Any] = {"version": entry.version}
    if from_status is not None:
        expected["status"] = from_status
    if not compare_and_set(session, ImplementationEntry, entry.id, expected, version=entry.version + 1):
        raise Conflict(CHANGED_MEANWHILE, {"version": [f"您读取的是第 {entry.version} 版，已不是最新"]})


def _save_version(
    session: Session,
    entry: ImplementationEntry,
    actor: Principal,
    *,
    bump: bool = True,
    from_status: str | None = None,
) -> None:
    """Store the entry's state as a new version (``bump``; a new entry keeps version 1), guarded by
    ``_take_next_version``; ``from_status`` is the status the entry left in this change, if it did."""
    if bump:
        _take_next_version(session, entry, from_status)
        entry.version += 1
    entry.updated_at = utcnow()
    session.flush()
    _derive(session, entry)
    session.flush()
    # (entry_id, version, status) is unique: a concurrent writer that took the same number is a 409.
    _insert(
        session,
        EntryVersion(
            entry_id=_pk(entry),
            version=entry.version,
            status=entry.status,
            snapshot=_snapshot(session, entry),
            actor_id=actor.user_id,
        ),
        CHANGED_MEANWHILE,
    )
    # Every write of an entry passes here: keep its search rows in step, in the same transaction.
    reindex_entry(session, _pk(entry))


def _claim_target(
    session: Session,
    actor: Principal,
    item_id: int,
    department_id: int,
    division_code: str | None,
    override_reason: Any = None,
) -> tuple[CatalogItem, Department, str, str | None]:
    item = get_item(session, item_id)
    dept = get_department(session, department_id)
    _require(permissions.can_claim_for(actor, dept), "只能为本部门或本辖区的实施主体认领事项")
    override = scope.check_competence(session, actor, item, dept, override_reason)
    division = division_code or dept.division_code
    if division != dept.division_code:
        raise Invalid("认领区划必须是该实施主体所在区划", {"division_code": [f"应为 {dept.division_code}"]})
    existing = session.exec(
        select(ImplementationEntry).where(
            ImplementationEntry.item_id == item.id, ImplementationEntry.department_id == dept.id
        )
    ).first()
    if existing is not None:
        raise Conflict(
            f"{dept.name} 已认领（或已登记不适用）事项“{item.name}”",
            {"item_id": ["已认领"], "entry_id": [str(existing.id)]},
        )
    return item, dept, division, override


def _new_entry(
    session: Session, item: CatalogItem, dept: Department, division: str, **extra: Any
) -> ImplementationEntry:
    # The 四同 values come from the upper-level item when the district item points to one.
    inherited = upper.inherited_values(session, item)
    return ImplementationEntry(
        task_code=make_task_code(dept.uscc, dept.level, inherited["catalog_code"]),
        item_id=_pk(item),
        department_id=_pk(dept),
        level=dept.level,
        division_code=division,
        **inherited,
        **extra,
    )


def claim_item(
    session: Session,
    actor: Principal,
    *,
    item_id: int,
    department_id: int,
    division_code: str | None = None,
    override_reason: str | None = None,
) -> ImplementationEntry:
    """认领: create a draft implementation entry of ``item`` for ``department``.

    实施编码 = department USCC + department level + 基本编码. Name, type, legal basis and basic code
    are copied and locked. The department's level must be one of the item's 行使层级 (county-only
    items only at level 4). Conflict if that department already claimed or declined the item. A
    district department claims only the items whose 主管部门 it is (``catalog.scope.check_competence``;
    an administrator may override with ``override_reason``, which the audit row keeps).
    """
    item, dept, division, override = _claim_target(
        session, actor, item_id, department_id, division_code, override_reason
    )
    if dept.level not in split_codes(item.use_levels):
        raise Invalid(
            f"事项“{item.name}”的行使层级为 {item.use_levels}，"
            f"{USE_LEVELS.get(dept.level, dept.level)}实施主体不能认领",
            {"department_id": ["实施主体层级不在该事项的行使层级内"]},
        )
    if item.county_only and dept.level != "4":
        raise Invalid(f"事项“{item.name}”仅由县级实施", {"department_id": ["仅县级实施"]})
    entry = _new_entry(session, item, dept, division)
    _insert(session, entry, f"{dept.name} 已认领事项“{item.name}”")
    _save_version(session, entry, actor, bump=False)
    audit.record(
        session,
        actor=actor,
        action="entry.claim",
        entity_type="implementation_entry",
        entity_id=entry.id,
        new={
            "task_code": entry.task_code,
            "item_id": item.id,
            "department_id": dept.id,
            "status": entry.status,
        }
        | ({"competence_override": True} if override else {}),
        reason=override,
    )
    return entry


def decline_item(
    session: Session,
    actor: Principal,
    *,
    item_id: int,
    department_id: int,
    reason: str,
    division_code: str | None = None,
    override_reason: str | None = None,
) -> ImplementationEntry:
    """Record that ``item`` is not applicable for ``department`` here (本地不适用), with a reason.

    Stored as an entry with ``applicable`` False so every body's answer to every item is one row;
    it follows the same lifecycle but is never shown to the public.
    """
    errors: dict[str, list[str]] = {}
    reason_v = _as_text(reason, "reason", 500, errors, required=True)
    _raise_if(errors)
    item, dept, division, override = _claim_target(
        session, actor, item_id, department_id, division_code, override_reason
    )
    entry = _new_entry(session, item, dept, division, applicable=False, not_applicable_reason=reason_v)
    _insert(session, entry, f"{dept.name} 已认领或已登记不适用事项“{item.name}”")
    _save_version(session, entry, actor, bump=False)
    audit.record(
        session,
        actor=actor,
        action="entry.decline",
        entity_type="implementation_entry",
        entity_id=entry.id,
        new={"task_code": entry.task_code, "applicable": False}
        | ({"competence_override": override} if override else {}),
        reason=reason_v,
    )
    return entry


def get_entry(session: Session, entry_id: int, *, for_update: bool = False) -> ImplementationEntry:
    """No permission check: callers showing it use ``get_visible_entry`` or permissions.can_view_entry.

    ``for_update``: the services that change the entry read it with a row lock on PostgreSQL (SELECT
    ... FOR UPDATE, read afresh even if the session holds it): concurrent changes of one entry and of
    its revision then run one after the other, each checking the state the previous one left, and
    always take the entry's lock first (no deadlock with the revision's row). SQLite has no row locks;
    there, and as a second guard, the write itself is a compare-and-set (``_take_next_version``)."""
    entry_id = _check_id(entry_id, "实施清单")
    if for_update:
        entry = session.exec(
            select(ImplementationEntry)
            .where(ImplementationEntry.id == entry_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        ).first()
    else:
        entry = session.get(ImplementationEntry, entry_id)
    if entry is None:
        raise NotFound(f"实施清单 {entry_id} 不存在")
    return entry


def get_visible_entry(session: Session, actor: Principal, entry_id: int) -> ImplementationEntry:
    """The entry if ``actor`` may read it; NotFound otherwise (drafts are not disclosed)."""
    entry = get_entry(session, entry_id)
    if not permissions.can_view_entry(actor, entry):
        raise NotFound(f"实施清单 {entry_id} 不存在")
    return entry


def get_entry_in_work(session: Session, actor: Principal, entry_id: int) -> ImplementationEntry:
    """The entry if ``actor`` may see its drafts, revision and history (permissions.can_view_working_state);
    NotFound otherwise, as for a draft (nothing about the work in progress is disclosed)."""
    entry = get_entry(session, entry_id)
    if not permissions.can_view_working_state(actor, entry):
        raise NotFound(f"实施清单 {entry_id} 不存在")
    return entry


def get_entry_by_task_code(session: Session, task_code: str) -> ImplementationEntry:
    stmt = select(ImplementationEntry).where(ImplementationEntry.task_code == task_code)
    entry = session.exec(stmt).first()
    if entry is None:
        raise NotFound(f"实施编码 {task_code} 不存在")
    return entry


def get_visible_entry_by_task_code(session: Session, actor: Principal, task_code: str) -> ImplementationEntry:
    """The entry with ``task_code`` if ``actor`` may read it. A draft answers as an unknown code does
    (not with its internal id, which told a draft from a code that does not exist)."""
    entry = get_entry_by_task_code(session, task_code)
    if not permissions.can_view_entry(actor, entry):
        raise NotFound(f"实施编码 {task_code} 不存在")
    return entry


def _visibility(actor: Principal) -> Any:
    public = sa.and_(
        col(ImplementationEntry.status) == EntryStatus.PUBLISHED.value,
        col(ImplementationEntry.applicable).is_(True),
    )
    if actor.is_admin:
        return sa.true()
    if not actor.is_authenticated:
        return public
    own: list[Any] = []
    if actor.department_id is not None:
        own.append(ImplementationEntry.department_id == actor.department_id)
    prefix = permissions.division_scope_prefix(actor.division_code)
    if actor.role == "division_operator" and prefix:
        own.append(col(ImplementationEntry.division_code).startswith(prefix))
    return sa.or_(public, *own)


def list_entries(
    session: Session,
    actor: Principal,
    *,
    status: str | None = None,
    department_id: int | None = None,
    division_code: str | None = None,
    level: str | None = None,
    q: str | None = None,
    page: int = 1,
    limit: int = 20,
    task_type: str | None = None,
    no_contact: bool | None = None,
    item_id: int | None = None,
    applicable: bool | None = None,
    under_division: str | None = None,
    depth_level: int | None = None,
) -> tuple[list[ImplementationEntry], int]:
    """Entries ``actor`` may see, filtered, newest claim last; returns (page rows, total).

    ``division_code`` keeps one division's entries; ``under_division`` a division's and those of every
    division under it (a town and all its villages: "全部" in a town operator's filter).
    """
    stmt = select(ImplementationEntry).where(_visibility(actor))
    if under_division:
        prefix = scope.division_prefix(under_division)
        if prefix is None:
            raise Invalid("区划代码应为 12 位数字", {"under_division": ["应为 12 位数字"]})
        stmt = stmt.where(col(ImplementationEntry.division_code).startswith(prefix))
    if status:
        stmt = stmt.where(ImplementationEntry.status == status)
    if department_id is not None:
        stmt = stmt.where(ImplementationEntry.department_id == department_id)
    if division_code:
        stmt = stmt.where(ImplementationEntry.division_code == division_code)
    if level:
        stmt = stmt.where(ImplementationEntry.level == level)
    if task_type:
        stmt = stmt.where(ImplementationEntry.task_type == task_type)
    if no_contact is not None:
        stmt = stmt.where(ImplementationEntry.no_contact == no_contact)
    if item_id is not None:
        stmt = stmt.where(ImplementationEntry.item_id == item_id)
    if applicable is not None:
        stmt = stmt.where(ImplementationEntry.applicable == applicable)
    if depth_level is not None:
        stmt = stmt.where(ImplementationEntry.depth_level == depth_level)
    if q:
        # autoescape: % and _ typed by a user are literal characters, not LIKE wildcards.
        stmt = stmt.where(
            sa.or_(
                col(ImplementationEntry.name).icontains(q, autoescape=True),
                col(ImplementationEntry.task_code).icontains(q, autoescape=True),
                col(ImplementationEntry.keywords).icontains(q, autoescape=True),
            )
        )
    page = max(1, page)
    limit = min(max(1, limit), 500)
    total = session.exec(select(sa.func.count()).select_from(stmt.subquery())).one()
    rows = session.exec(
        stmt.order_by(col(ImplementationEntry.id)).offset((page - 1) * limit).limit(limit)
    ).all()
    return list(rows), int(total)


def entry_materials(session: Session, entry_id: int | None) -> list[Material]:
    return list(
        session.exec(
            select(Material)
            .where(Material.entry_id == entry_id)
            .order_by(col(Material.position), col(Material.id))
        ).all()
    )


def entry_fees(session: Session, entry_id: int | None) -> list[Fee]:
    return list(session.exec(select(Fee).where(Fee.entry_id == entry_id).order_by(col(Fee.id))).all())


def entry_history(session: Session, entry_id: int) -> list[EntryVersion]:
    return list(
        session.exec(
            select(EntryVersion).where(EntryVersion.entry_id == entry_id).order_by(col(EntryVersion.id))
        ).all()
    )


ENTRY_EDITABLE = (
    "accept_conditions",
    "anticipate_days",
    "anticipate_unit",
    "promise_days",
    "promise_unit",
    "project_type",
    "visits",
    "visits_reason",
    "online_depth",
    "online_url",
    "result_delivery",
    "window_address",
    "opening_hours",
    "phone",
    "keywords",
    "not_applicable_reason",
    *ELEMENT_FIELDS,
    "handle_forms",
    "meeting_step",
    "tolerant_acceptance",
)


def _coerce_entry_fields(fields: Mapping[str, Any], errors: dict[str, list[str]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in fields.items():
        if key == "accept_conditions":
            out[key] = _as_text(value, key, 5000, errors)
        elif key in ("anticipate_days", "promise_days"):
            out[key] = _as_int(value, key, 0, MAX_DAYS, errors, nullable=True)
        elif key in ("anticipate_unit", "promise_unit"):
            value = value or None  # 未填报
            if value is not None and value not in TIME_UNITS:
                errors.setdefault(key, []).append("时限单位应为 working（工作日）或 calendar（自然日）")
            out[key] = value
        elif key == "project_type":
            value = value or None  # 未填报
            if value is not None and value not in PROJECT_TYPES:
                errors.setdefault(key, []).append("办件类型应为 1（即办件）或 2（承诺件）")
            out[key] = value
        elif key == "visits":
            out[key] = _as_int(value, key, 0, MAX_VISITS, errors, nullable=True)
        elif key in ("visits_reason", "not_applicable_reason"):
            out[key] = _as_text(value, key, 500, errors)
        elif key == "online_depth":
            out[key] = _norm_codes(value if value is not None else "", ONLINE_DEPTH, key, errors)
        elif key == "result_delivery":
            out[key] = _norm_codes(value if value is not None else "", RESULT_DELIVERY, key, errors) or None
        elif key == "online_url":
            url = _as_text(value, key, 500, errors)
            if url and not URL_RE.match(url):
                errors.setdefault(key, []).append("网上办理地址应为 http:// 或 https:// 开头的网址")
            out[key] = url
        elif key == "window_address":
            out[key] = _as_text(value, key, 300, errors)
        elif key == "opening_hours":
            out[key] = _as_text(value, key, 200, errors)
        elif key == "phone":
            phone = _as_text(value, key, 40, errors)
            if phone and not PHONE_RE.match(phone):
                errors.setdefault(key, []).append("咨询电话只能包含数字、空格、+、-、括号")
            out[key] = phone
        elif key == "keywords":
            out[key] = _as_text(value, key, 500, errors, nullable=False) or ""
        elif key == "handle_forms":
            # None or an empty choice is "not recorded", never "window only".
            empty = value is None or value == "" or value == []
            out[key] = None if empty else (_norm_codes(value, HANDLE_FORMS, key, errors) or None)
        elif key == "meeting_step":
            out[key] = _as_text(value, key, 200, errors)
        elif key == "tolerant_acceptance":
            out[key] = None if value is None or value == "" else _as_bool(value, key, errors)
    out.update(coerce_element_fields(fields, errors))
    return out


MATERIAL_KEYS = {"name", "form", "required", "copies", "licence_type_code", "notes"} | MATERIAL_ELEMENT_KEYS
FEE_KEYS = {"name", "amount_fen", "basis", "reducible"}
# What the audit row compares of a material: every recorded element (a change of 份数 or of a file
# is a change of the entry).
MATERIAL_AUDIT_KEYS = (
    "name",
    "form",
    "required",
    "copies",
    "licence_type_code",
    "notes",
    *sorted(MATERIAL_ELEMENT_KEYS),
)


def _coerce_materials(rows: Any, errors: dict[str, list[str]]) -> list[dict[str, Any]]:
    if not isinstance(rows, list):
        errors.setdefault("materials", []).append("应为列表")
        return []
    if len(rows) > MAX_MATERIALS:
        errors.setdefault("materials", []).append(f"最多 {MAX_MATERIALS} 项材料")
        return []
    out = []
    for i, row in enumerate(rows):
        prefix = f"materials[{i}]"
        if not isinstance(row, Mapping):
            errors.setdefault(prefix, []).append("应为对象")
            continue
        for key in sorted(set(row) - MATERIAL_KEYS):
            errors.setdefault(f"{prefix}.{key}", []).append("未知字段")
        form = row.get("form", "paper")
        if form not in MATERIAL_FORMS:
            errors.setdefault(f"{prefix}.form", []).append("材料形式应为 paper、electronic 或 both")
        code = _as_text(row.get("licence_type_code"), f"{prefix}.licence_type_code", 21, errors)
        if code and not LICENCE_TYPE_RE.match(code):
            errors.setdefault(f"{prefix}.licence_type_code", []).append(
                "证照类型代码应为 18 位统一社会信用代码加 3 位数字"
            )
        out.append(
            {
                "position": i,
                "name": _as_text(row.get("name"), f"{prefix}.name", 200, errors, required=True) or "",
                "form": form,
                "required": _as_bool(row.get("required", True), f"{prefix}.required", errors),
                "copies": coerce_copies(row.get("copies"), f"{prefix}.copies", errors),
                "licence_type_code": code,
                "notes": _as_text(row.get("notes"), f"{prefix}.notes", 500, errors),
                **coerce_material_elements(row, prefix, errors),
            }
        )
    return out


def _coerce_fees(rows: Any, errors: dict[str, list[str]]) -> list[dict[str, Any]]:
    if not isinstance(rows, list):
        errors.setdefault("fees", []).append("应为列表")
        return []
    if len(rows) > MAX_FEES:
        errors.setdefault("fees", []).append(f"最多 {MAX_FEES} 个收费项目")
        return []
    out = []
    for i, row in enumerate(rows):
        prefix = f"fees[{i}]"
        if not isinstance(row, Mapping):
            errors.setdefault(prefix, []).append("应为对象")
            continue
        for key in sorted(set(row) - FEE_KEYS):
            errors.setdefault(f"{prefix}.{key}", []).append("未知字段")
        out.append(
            {
                "name": _as_text(row.get("name"), f"{prefix}.name", 200, errors, required=True) or "",
                "amount_fen": _as_int(row.get("amount_fen"), f"{prefix}.amount_fen", 0, MAX_FEE_FEN, errors)
                or 0,
                "basis": _as_text(row.get("basis"), f"{prefix}.basis", 500, errors, nullable=False) or "",
                "reducible": _as_bool(row.get("reducible", False), f"{prefix}.reducible", errors),
            }
        )
    return out


def update_entry(
    session: Session,
    actor: Principal,
    entry_id: int,
    *,
    fields: Mapping[str, Any],
    materials: list[dict[str, Any]] | None = None,
    fees: list[dict[str, Any]] | None = None,
    steps: list[dict[str, Any]] | None = None,
    faqs: list[dict[str, Any]] | None = None,
    known_errors: Mapping[str, list[str]] | None = None,
) -> ImplementationEntry:
    """Edit the local elements of a draft entry; ``materials`` / ``fees`` / ``steps`` / ``faqs``
    replace the lists when given.

    ``known_errors``: errors the caller already found in the same request (a form's or a schema's
    field errors, keyed as the caller names them). Validation goes on regardless and one Invalid
    carries them all with the service's own field errors and the quality rules' cross-field errors
    (catalog.quality), so an editor gets every error of a form in one round.

    Inherited fields (name, type, legal basis, basic code) are locked: Invalid. Structural and
    state fields go through their own services: Invalid. Every error names its field; nothing is
    written unless everything is valid. If the entry is flagged 不见面 and the new data fails the
    rule, Invalid naming each failing condition. Only drafts are edited in place (Conflict
    otherwise): a published entry changes through a revision (catalog/revisions.py), so it stays
    online while the change is reviewed.
    """
    entry = get_entry(session, entry_id, for_update=True)
    _require(permissions.can_edit_entry(actor, entry), "只能修改本部门或本辖区的实施清单")
    if entry.status != EntryStatus.DRAFT.value:
        raise Conflict(
            "只有草稿状态的实施清单可以直接修改；已发布的请发起修订，审核通过后替换发布版本",
            {"status": [entry.status]},
        )
    return apply_entry_change(session, actor, entry, fields=fields, materials=materials, fees=fees,
                              steps=steps, faqs=faqs, known_errors=known_errors)


def _check_change_keys(
    entry: ImplementationEntry, fields: Mapping[str, Any], errors: dict[str, list[str]] | None = None
) -> None:
    """Keys that may not be changed here. With ``errors`` the findings are added to it (one round with
    the other errors); without, Invalid at once."""
    collect = errors is not None
    errors = errors if errors is not None else {}
    for key in fields:
        if key in LOCKED_FIELDS:
            errors.setdefault(key, []).append("继承自基本目录（三级四同），不可修改")
        elif key in STRUCTURAL_FIELDS:
            errors.setdefault(key, []).append("不能直接修改，请使用相应操作")
        elif key not in ENTRY_EDITABLE:
            errors.setdefault(key, []).append("未知字段")
        elif key == "not_applicable_reason" and entry.applicable:
            errors.setdefault(key, []).append("只有登记为“本地不适用”的认领才有不适用原因")
    if not collect:
        _raise_if(errors, "有字段不能修改")


# The child lists of an entry that a change replaces as a whole: the keyword arguments of
# ``update_entry`` / ``prepare_entry_change`` besides ``fields`` and the keys of the entry snapshot.
ENTRY_CHILD_LISTS = ("materials", "fees", "steps", "faqs")


@dataclass
class EntryChange:
    """A validated change of an entry: coerced field values and the child lists it replaces.

    ``lists`` maps a child list's name ("materials", "fees", ...) to its new rows, in the row shape
    of the entry snapshot; a list that is not replaced is absent.
    """

    fields: dict[str, Any]
    lists: dict[str, list[dict[str, Any]]]

    def payload(self) -> dict[str, Any]:
        """The change in the entry change payload shape ``{"fields": {...}, "materials": [...], ...}``."""
        return {"fields": dict(self.fields), **{k: list(v) for k, v in self.lists.items()}}


def prepare_entry_change(
    session: Session,
    entry: ImplementationEntry,
    *,
    fields: Mapping[str, Any],
    materials: list[dict[str, Any]] | None = None,
    fees: list[dict[str, Any]] | None = None,
    steps: list[dict[str, Any]] | None = None,
    faqs: list[dict[str, Any]] | None = None,
    known_errors: Mapping[str, list[str]] | None = None,
) -> EntryChange:
    """Validate a change of ``entry`` without writing anything: Invalid naming every bad field.

    No permission or status check (the callers do those). Used by ``apply_entry_change`` and to
    validate a revision when it is saved and submitted. ``known_errors`` (a form's or schema's own
    findings in the same request) come back in the same Invalid with the key errors, the field
    errors and the quality rules' cross-field errors (catalog.quality): one round.
    """
    errors: dict[str, list[str]] = {k: list(v) for k, v in (known_errors or {}).items()}
    _check_change_keys(entry, fields, errors)
    changes = _coerce_entry_fields(fields, errors)
    lists: dict[str, list[dict[str, Any]]] = {}
    if materials is not None:
        lists["materials"] = _coerce_materials(materials, errors)
    if fees is not None:
        lists["fees"] = _coerce_fees(fees, errors)
    if steps is not None:
        lists["steps"] = coerce_steps(steps, errors)
    if faqs is not None:
        lists["faqs"] = coerce_faqs(faqs, errors)
    check_attachment_refs(session, _pk(entry), changes, lists.get("materials"), errors)
    before = {k: getattr(entry, k) for k in ENTRY_EDITABLE}
    merged = {**before, **changes}
    snapshot = _snapshot(session, entry) | merged | lists
    changed = set(changes) | set(lists)
    for key, messages in quality.errors_by_field(
        quality.check_entry(snapshot, on_save=True, changed=changed)
    ).items():
        errors.setdefault(key, []).extend(m for m in messages if m not in errors.get(key, []))

    if entry.no_contact:
        check = evaluate_no_contact(
            snapshot, snapshot["materials"], produces_licence(session, entry.task_code)
        )
        if not check.ok:
            errors.setdefault("no_contact", []).extend(
                f"已标记不见面审批，修改后不再满足：{failure}" for failure in check.partial_failures
            )
    _raise_if(errors)
    return EntryChange(fields=changes, lists=lists)


def apply_entry_change(
    session: Session,
    actor: Principal,
    entry: ImplementationEntry,
    *,
    fields: Mapping[str, Any],
    materials: list[dict[str, Any]] | None = None,
    fees: list[dict[str, Any]] | None = None,
    steps: list[dict[str, Any]] | None = None,
    faqs: list[dict[str, Any]] | None = None,
    action: str = "entry.update",
    reason: str | None = None,
    known_errors: Mapping[str, list[str]] | None = None,
) -> ImplementationEntry:
    """The core of ``update_entry``, shared with the approval of a revision: validate
    (``prepare_entry_change``), write, save a version (the version number goes up), reindex and
    audit under ``action``. No permission or status check: the callers do those. A change that
    changes nothing writes nothing."""
    change = prepare_entry_change(session, entry, fields=fields, materials=materials, fees=fees, steps=steps,
                                  faqs=faqs, known_errors=known_errors)
    changes = change.fields
    before = {k: getattr(entry, k) for k in ENTRY_EDITABLE}
    old_d, new_d = _diff(before, {**before, **changes})
    old_materials = [_columns(m) for m in entry_materials(session, entry.id)]
    old_fees = [_columns(f) for f in entry_fees(session, entry.id)]
    for key, value in changes.items():
        setattr(entry, key, value)
    new_materials = change.lists.get("materials")
    if new_materials is not None:
        for m in entry_materials(session, entry.id):
            session.delete(m)
        session.flush()
        for row in new_materials:
            session.add(Material(entry_id=_pk(entry), **row))
        old_d["materials"] = [
            {k: m.get(k) for k in MATERIAL_AUDIT_KEYS} for m in old_materials
        ]
        new_d["materials"] = [
            {k: m.get(k) for k in MATERIAL_AUDIT_KEYS} for m in new_materials
        ]
    new_fees = change.lists.get("fees")
    if new_fees is not None:
        for f in entry_fees(session, entry.id):
            session.delete(f)
        session.flush()
        for row in new_fees:
            session.add(Fee(entry_id=_pk(entry), **row))
        old_d["fees"] = [{k: f[k] for k in sorted(FEE_KEYS)} for f in old_fees]
        new_d["fees"] = [{k: f[k] for k in sorted(FEE_KEYS)} for f in new_fees]
    if old_d.get("materials") == new_d.get("materials"):
        old_d.pop("materials", None)
        new_d.pop("materials", None)
    if old_d.get("fees") == new_d.get("fees"):
        old_d.pop("fees", None)
        new_d.pop("fees", None)
    old_children, new_children = replace_children(
        session, _pk(entry), change.lists.get("steps"), change.lists.get("faqs"))
    old_d |= old_children
    new_d |= new_children
    if not new_d:
        return entry
    _save_version(session, entry, actor)
    audit.record(
        session,
        actor=actor,
        action=action,
        entity_type="implementation_entry",
        entity_id=entry.id,
        old=old_d,
        new=new_d,
        reason=reason,
    )
    return entry


def check_no_contact(session: Session, entry: ImplementationEntry) -> NoContactResult:
    """The rule's verdict on the stored entry (for showing it next to the flag)."""
    return evaluate_no_contact(
        entry, entry_materials(session, entry.id), produces_licence(session, entry.task_code)
    )


def entry_findings(session: Session, entry: ImplementationEntry) -> list[quality.Finding]:
    """Every quality finding (errors and warnings) on the stored entry."""
    return quality.check_entry(_snapshot(session, entry))


def set_no_contact(session: Session, actor: Principal, entry_id: int, value: bool) -> ImplementationEntry:
    """Set or clear the 不见面审批 flag. Setting it is refused (Invalid naming each failing
    condition) unless the entry passes ``catalog.norules.evaluate_no_contact``. Allowed on drafts
    only, like every other edit."""
    entry = get_entry(session, entry_id, for_update=True)
    _require(permissions.can_edit_entry(actor, entry), "只能修改本部门或本辖区的实施清单")
    if not isinstance(value, bool):
        raise Invalid("不见面审批标记应为是/否", {"value": ["应为 true 或 false"]})
    if entry.status != EntryStatus.DRAFT.value:
        raise Conflict(
            "只有草稿状态的实施清单可以直接修改；已发布的请在修订中设置不见面审批", {"status": [entry.status]}
        )
    if value:
        result = check_no_contact(session, entry)
        if not result.ok:
            raise Invalid(
                "不满足不见面审批条件：" + "；".join(result.partial_failures),
                {"no_contact": result.partial_failures},
            )
    if entry.no_contact == value:
        return entry
    old = entry.no_contact
    entry.no_contact = value
    _save_version(session, entry, actor)
    audit.record(
        session,
        actor=actor,
        action="entry.no_contact",
        entity_type="implementation_entry",
        entity_id=entry.id,
        old={"no_contact": old},
        new={"no_contact": value},
    )
    return entry


def align_entry(session: Session, actor: Principal, entry_id: int) -> ImplementationEntry:
    """Copy the upper-level item's name, type, basis and code (or, for an item with no upper item,
    the basic item's) into an unpublished entry again (fixes 三级四同 drift).

    The 实施编码 follows the new 基本编码. Conflict on a published entry: its 四同 fields change only
    through a revision that is reviewed (catalog/revisions.py, ``align``), never directly.
    """
    entry = get_entry(session, entry_id, for_update=True)
    _require(permissions.can_edit_entry(actor, entry), "只能修改本部门或本辖区的实施清单")
    if entry.status == EntryStatus.PUBLISHED.value:
        raise Conflict(
            "已发布的实施清单不能直接改写名称、事项类型、设定依据和编码（三级四同字段）："
            "请提交修订，经审核通过后生效",
            {"status": [entry.status]},
        )
    return apply_alignment(session, actor, entry)


def alignment_target(session: Session, entry: ImplementationEntry) -> dict[str, Any]:
    """The 四同 values (and the 实施编码 that follows the code) the entry would carry if aligned."""
    item = get_item(session, entry.item_id)
    dept = get_department(session, entry.department_id)
    target = upper.inherited_values(session, item)
    target["task_code"] = make_task_code(dept.uscc, entry.level, target["catalog_code"])
    return target


def apply_alignment(
    session: Session, actor: Principal, entry: ImplementationEntry, reason: str | None = None
) -> ImplementationEntry:
    """The core of ``align_entry``, shared with the approval of a revision that asks for it: no
    permission or status check (the callers do those)."""
    target = alignment_target(session, entry)
    old_d, new_d = _diff({k: getattr(entry, k) for k in target}, target)
    if not new_d:
        return entry
    if (
        "task_code" in new_d
        and session.exec(
            select(ImplementationEntry).where(ImplementationEntry.task_code == target["task_code"])
        ).first()
    ):
        raise Conflict(f"实施编码 {target['task_code']} 已被占用")
    for key, value in target.items():
        setattr(entry, key, value)
    if entry.no_contact and not check_no_contact(session, entry).ok:
        entry.no_contact = False
        new_d["no_contact"] = False
    _save_version(session, entry, actor)
    audit.record(
        session,
        actor=actor,
        action="entry.align",
        entity_type="implementation_entry",
        entity_id=entry.id,
        old=old_d,
        new=new_d,
        reason=reason,
    )
    return entry


def _transition(
    session: Session,
    actor: Principal,
    entry: ImplementationEntry,
    *,
    allowed_from: Iterable[str],
    to: str,
    action: str,
    reason: str | None = None,
) -> ImplementationEntry:
    allowed = tuple(allowed_from)
    if entry.status not in allowed:
        labels = {"draft": "草稿", "submitted": "待审核", "published": "已发布", "retired": "已停用"}
        raise Conflict(
            f"当前状态为“{labels.get(entry.status, entry.status)}”，不能执行此操作"
            f"（需为：{'、'.join(labels[s] for s in allowed)}）",
            {"status": [entry.status]},
        )
    old = entry.status
    entry.status = to
    if to == EntryStatus.PUBLISHED.value:
        entry.published_at = utcnow()
    _save_version(session, entry, actor, from_status=old)
    audit.record(
        session,
        actor=actor,
        action=action,
        entity_type="implementation_entry",
        entity_id=entry.id,
        old={"status": old},
        new={"status": to, "version": entry.version},
        reason=reason,
    )
    return entry


def _reason(reason: Any) -> str:
    errors: dict[str, list[str]] = {}
    text = _as_text(reason, "reason", 500, errors, required=True)
    _raise_if(errors)
    return text or ""


def _ready_for_review(session: Session, entry: ImplementationEntry) -> None:
    """Every error of the quality rules (catalog.quality) blocks submit and approve, all in one
    Invalid; warnings do not. The 不见面 flag's failing conditions are listed one by one."""
    if not entry.applicable:
        return
    errors = quality.errors_by_field(entry_findings(session, entry))
    if entry.no_contact:
        result = check_no_contact(session, entry)
        if not result.ok:
            errors["no_contact"] = result.partial_failures
    _raise_if(errors, "实施清单尚不完整")


def submit_entry(session: Session, actor: Principal, entry_id: int) -> ImplementationEntry:
    """draft → submitted (editor). The entry must be complete (time limits, where to apply).
    The reason of an earlier rejection is cleared: the reviewer reads the resubmission afresh."""
    entry = get_entry(session, entry_id, for_update=True)
    _require(permissions.can_edit_entry(actor, entry), "只能提交本部门或本辖区的实施清单")
    if entry.status == EntryStatus.DRAFT.value:
        _ready_for_review(session, entry)
    _transition(
        session,
        actor,
        entry,
        allowed_from=[EntryStatus.DRAFT.value],
        to=EntryStatus.SUBMITTED.value,
        action="entry.submit",
    )
    entry.reject_reason = None
    session.flush()
    return entry


def submitter_of(session: Session, entry: ImplementationEntry) -> int | None:
    """Who submitted the entry's current submission: the actor of its latest "submitted" version."""
    return session.exec(
        select(EntryVersion.actor_id)
        .where(EntryVersion.entry_id == entry.id, EntryVersion.status == EntryStatus.SUBMITTED.value)
        .order_by(col(EntryVersion.id).desc())
        .limit(1)
    ).first()


# Audit actions that write a draft's content (update_entry, the no-contact flag, adopting the upper
# level's 四同 values) and the one that writes a revision's proposal.
DRAFT_EDIT_ACTIONS = frozenset({"entry.update", "entry.no_contact", "entry.align"})
REVISION_EDIT_ACTION = "entry.revision.update"


def authors_of(session: Session, entry: ImplementationEntry, revision: Any = None) -> set[int]:
    """The people who wrote what is about to be approved: for ``revision`` (catalog.revisions), whoever
    opened, edited or submitted it; for the entry's draft, whoever edited it since it was last
    published (or claimed) and whoever submitted it. From the audit log, which records every such
    write with its actor; the system principal (no user) is nobody."""
    rows = session.exec(
        select(AuditLog.id, AuditLog.actor_id, AuditLog.action, AuditLog.new)
        .where(
            AuditLog.entity_type == "implementation_entry",
            AuditLog.entity_id == str(entry.id),
            col(AuditLog.action).in_([*DRAFT_EDIT_ACTIONS, REVISION_EDIT_ACTION, "entry.approve"]),
        )
        .order_by(col(AuditLog.id))
    ).all()
    if revision is not None:
        people = {revision.created_by, revision.submitted_by}
        people |= {
            actor for _id, actor, action, new in rows
            if action == REVISION_EDIT_ACTION and (new or {}).get("revision_id") == revision.id
        }
    else:
        approvals = [row_id or 0 for row_id, _a, action, _n in rows if action == "entry.approve"]
        since = max(approvals, default=0)
        people = {submitter_of(session, entry)}
        people |= {
            actor for row_id, actor, action, _n in rows
            if (row_id or 0) > since and action in DRAFT_EDIT_ACTIONS
        }
    return {p for p in people if p is not None}


def check_four_eyes(session: Session, actor: Principal, authors: set[int]) -> None:
    """Forbidden when four-eyes review is on and ``actor`` wrote or submitted what it is about to
    approve (``authors_of``): checking the submitter alone let a town operator edit a draft, have a
    village operator submit it and approve their own content. The system principal (the importer, the
    demo) has no user and is not a person to check."""
    if actor.user_id is not None and actor.user_id in authors and four_eyes_enabled(session):
        raise Forbidden("双人审核：编辑或提交该内容的人员不能审核通过，请由其他审核人员审核")


def approve_entry(session: Session, actor: Principal, entry_id: int) -> ImplementationEntry:
    """submitted → published (reviewer). Under four-eyes review (on by default) the submitter may not
    approve their own submission (Forbidden)."""
    entry = get_entry(session, entry_id, for_update=True)
    _require(permissions.can_review_entry(actor, entry), "只能审核本部门或本辖区的实施清单")
    if entry.status == EntryStatus.SUBMITTED.value:
        check_four_eyes(session, actor, authors_of(session, entry))
        _ready_for_review(session, entry)
    return _transition(
        session,
        actor,
        entry,
        allowed_from=[EntryStatus.SUBMITTED.value],
        to=EntryStatus.PUBLISHED.value,
        action="entry.approve",
    )


def reject_entry(session: Session, actor: Principal, entry_id: int, reason: str) -> ImplementationEntry:
    """submitted → draft with a reason (reviewer); the reason stays on the entry for its editor
    (shown as 已退回) until it is submitted again."""
    entry = get_entry(session, entry_id, for_update=True)
    _require(permissions.can_review_entry(actor, entry), "只能审核本部门或本辖区的实施清单")
    text = _reason(reason)
    _transition(
        session,
        actor,
        entry,
        allowed_from=[EntryStatus.SUBMITTED.value],
        to=EntryStatus.DRAFT.value,
        action="entry.reject",
        reason=text,
    )
    entry.reject_reason = text
    session.flush()
    return entry


def retire_entry(session: Session, actor: Principal, entry_id: int, reason: str) -> ImplementationEntry:
    """published → retired with a reason (reviewer)."""
    entry = get_entry(session, entry_id, for_update=True)
    _require(permissions.can_review_entry(actor, entry), "只能停用本部门或本辖区的实施清单")
    text = _reason(reason)
    _transition(
        session,
        actor,
        entry,
        allowed_from=[EntryStatus.PUBLISHED.value],
        to=EntryStatus.RETIRED.value,
        action="entry.retire",
        reason=text,
    )
    _withdraw_open_revision(session, actor, entry)
    return entry


def _withdraw_open_revision(session: Session, actor: Principal, entry: ImplementationEntry) -> None:
    """A retired entry has nothing left to revise: its open revision (if any) is withdrawn with the
    retirement, audited, and its content kept; otherwise the editor's and the reviewer's queues would
    show a revision that can never be approved (approval needs a published entry), and reopening the
    entry would find a stale revision of an older version still open."""
    revision = session.exec(
        select(EntryRevision).where(
            EntryRevision.entry_id == entry.id, col(EntryRevision.status).in_(OPEN_REVISION_STATUSES)
        )
    ).first()
    if revision is None:
        return
    old = revision.status
    revision.status = RevisionStatus.WITHDRAWN.value
    revision.updated_at = utcnow()
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="entry.revision.withdraw",
        entity_type="implementation_entry",
        entity_id=entry.id,
        old={"status": old},
        new={"revision_id": revision.id, "status": revision.status},
        reason="实施清单已停用，进行中的修订随之撤回",
    )


def reopen_entry(
    session: Session, actor: Principal, entry_id: int, reason: str | None = None
) -> ImplementationEntry:
    """retired → draft, to bring a retired entry back (editor or reviewer). A published entry is not
    taken offline to be revised: Conflict pointing to revisions (catalog/revisions.py)."""
    entry = get_entry(session, entry_id, for_update=True)
    _require(permissions.can_reopen_entry(actor, entry), "只能重新打开本部门或本辖区的实施清单")
    if entry.status == EntryStatus.PUBLISHED.value:
        raise Conflict(
            "已发布的实施清单不再转为草稿：请发起修订，修订审核通过前继续按已发布版本对外服务",
            {"status": [entry.status]},
        )
    return _transition(
        session,
        actor,
        entry,
        allowed_from=[EntryStatus.RETIRED.value],
        to=EntryStatus.DRAFT.value,
        action="entry.reopen",
        reason=reason or None,
    )
