"""Licence reads: listing and export (holder data masked), a licence for display, full reads of holder
data (every one audited), the versions of a licence, its effective status (过期, 尚未生效 from its dates)
and the holder lookup for a case (证照联办) under the holder's authorisation.

Reads never write, except the audit and use rows of personal data, which are deliberate writes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Protocol

import sqlalchemy as sa
from sqlmodel import Session, col, func, select

from catalog.codes import check_id_number, check_uscc
from catalog.models import Department, EntryStatus, ImplementationEntry, Material
from core.audit import record
from core.auth import Principal
from core.db import table_of
from core.errors import Forbidden, Invalid, NotFound
from licenses.authorisations import LOOKUP_ROLES, live_authorisation, record_use
from licenses.grants import NO_RIGHTS, can_view, licence_rights, require_own
from licenses.identifiers import TYPE_CODE_RE
from licenses.masking import mask_code, mask_name
from licenses.models import (
    REASON_CATEGORIES,
    STATUS_LABELS,
    Licence,
    LicenceStatus,
    LicenceType,
    LicenceTypeEntry,
)
from licenses.types import granted_type_ids, today, type_of


@dataclass(frozen=True)
class Page:
    items: list[Licence]
    total: int
    page: int
    limit: int


class LicenceState(Protocol):
    """What the effective status is computed from: a ``Licence`` row, or the columns /verify reads
    (``licenses.verification_cache.LicenceFacts``)."""

    @property
    def status(self) -> str: ...
    @property
    def valid_from(self) -> date: ...
    @property
    def valid_to(self) -> date | None: ...
    @property
    def status_date(self) -> date | None: ...
    @property
    def status_category(self) -> str | None: ...


def effective_status(licence: LicenceState, on: date | None = None) -> str:
    """The stored status, or for a valid licence expired (过期) / not_yet_valid from its dates."""
    if licence.status != LicenceStatus.VALID:
        return licence.status
    day = on or today()
    if licence.valid_to is not None and licence.valid_to < day:
        return "expired"
    if licence.valid_from > day:
        return "not_yet_valid"
    return "valid"


def effective_status_date(licence: LicenceState, on: date | None = None) -> date | None:
    """The day the effective status took effect: expiry the day after valid_to, else the stored date
    (None for a valid licence that never changed status: it is valid since valid_from)."""
    status = effective_status(licence, on)
    if status == "expired" and licence.valid_to is not None:
        return licence.valid_to + timedelta(days=1)
    if status in ("valid", "not_yet_valid"):
        return licence.status_date or licence.valid_from
    return licence.status_date


def public_reason_category(licence: LicenceState) -> str | None:
    """The public label of the licence's reason category (never the internal free text)."""
    if licence.status_category is None:
        return None
    return REASON_CATEGORIES.get(licence.status, {}).get(licence.status_category)


EFFECTIVE_LABELS = {
    **{s.value: label for s, label in STATUS_LABELS.items()},
    "expired": "过期",
    "not_yet_valid": "尚未生效",
}


def list_licences(
    session: Session,
    actor: Principal,
    *,
    page: int = 1,
    limit: int = 20,
    type_code: str | None = None,
    status: str | None = None,
    q: str | None = None,
    current_only: bool = True,
) -> Page:
    """Licences the actor may see: own department's for staff, all for administrators (masked by callers)."""
    rights = licence_rights(session, actor)
    if not (actor.is_admin or rights):
        raise Forbidden(NO_RIGHTS)
    query = select(Licence)
    if not actor.is_admin:
        query = query.where(
            Licence.issuer_department_id == actor.department_id,
            col(Licence.type_id).in_(granted_type_ids(rights)),
        )
    if current_only:
        query = query.where(col(Licence.is_current).is_(True))
    if type_code:
        query = query.where(col(Licence.type_id).in_(granted_type_ids([type_code])))
    if status:
        query = query.where(Licence.status == status)
    if q:
        q = q.strip()
        query = query.where(
            sa.or_(col(Licence.number) == q, col(Licence.identifier) == q, col(Licence.serial) == q.upper())
        )
    total = session.exec(select(func.count()).select_from(query.subquery())).one()
    items = session.exec(
        query.order_by(sa.desc(col(Licence.id))).offset((page - 1) * limit).limit(limit)
    ).all()
    return Page(list(items), int(total), page, limit)


EXPORT_HEADER = [
    "电子证照标识",
    "证照类型代码",
    "证照名称",
    "证照编号",
    "版本",
    "持证主体",
    "持证主体代码",
    "持证主体代码类型",
    "颁发机构",
    "颁发日期",
    "有效期起",
    "有效期至",
    "管辖属地",
    "状态",
]
EXPORT_LIMIT = 500_000


def export_licences(
    session: Session, actor: Principal, *, type_code: str | None = None, status: str | None = None
) -> list[list[str]]:
    """Rows of the actor's current licences for a CSV export, holder data masked; audited."""
    rights = licence_rights(session, actor)
    if not (actor.is_admin or rights):
        raise Forbidden(NO_RIGHTS)
    query = sa.select(table_of(Licence)).where(table_of(Licence).c.is_current.is_(True))
    t = table_of(Licence).c
    if not actor.is_admin:
        query = query.where(
            t.issuer_department_id == actor.department_id, t.type_id.in_(granted_type_ids(rights))
        )
    if type_code:
        query = query.where(t.type_id.in_(granted_type_ids([type_code])))
    if status:
        query = query.where(t.status == status)
    rows = [EXPORT_HEADER]
    for r in session.execute(query.order_by(t.id).limit(EXPORT_LIMIT)):
        rows.append(
            [
                r.identifier,
                r.type_code,
                r.type_name,
                r.number,
                f"{r.version:03d}",
                mask_name(r.holder_name, r.holder_code_type),
                mask_code(r.holder_code),
                r.holder_code_type,
                r.issuer_name,
                r.issue_date.isoformat(),
                r.valid_from.isoformat(),
                r.valid_to.isoformat() if r.valid_to else "长期",
                r.area_code,
                STATUS_LABELS.get(LicenceStatus(r.status), r.status),
            ]
        )
    record(
        session,
        actor=actor,
        action="licence.export",
        entity_type="licence_export",
        entity_id="csv",
        new={"rows": len(rows) - 1, "type_code": type_code, "status": status},
    )
    return rows


def get_licence(session: Session, actor: Principal, licence_id: int) -> Licence:
    """A licence for display (callers mask holder data); issuing department or administrators only."""
    licence = session.get(Licence, licence_id)
    if licence is None:
        raise NotFound("证照不存在")
    if not can_view(session, actor, licence):
        raise Forbidden("只能查看本部门颁发的证照")
    return licence


def read_full_licence(
    session: Session,
    actor: Principal,
    licence_id: int,
    purpose: str | None = None,
    *,
    authorisation_id: int | None = None,
) -> Licence:
    """Holder data in full, every read audited: the issuing department (a grant for the type), or
    another department under a live authorisation of the holder covering the type (recorded as a use).
    """
    licence = session.get(Licence, licence_id)
    if licence is None:
        raise NotFound("证照不存在")
    auth = None
    if authorisation_id is None:
        require_own(session, actor, licence)
    else:
        # Under a holder's authorisation another department reads what the lookup would show it: a
        # type its published entries accept (or that it issues), and only the current, valid version.
        type_code = type_of(session, licence)
        if not may_look_up(session, actor, type_code):
            raise Forbidden("本部门的事项未将该证照列为申请材料，不能查询")
        if not _currently_valid(licence):
            raise Forbidden("凭用证授权只能查看现行有效的证照")
        auth = live_authorisation(session, actor, authorisation_id, licence.holder_code, type_code)
    record(
        session,
        actor=actor,
        action="licence.read_full",
        entity_type="licence",
        entity_id=licence.id,
        new={"authorisation_id": auth.id, "case_number": auth.case_number} if auth else None,
        reason=purpose or "查看完整持证信息",
    )
    if auth is not None:
        record_use(session, actor, auth, [licence], "read_full")
    return licence


def _currently_valid(licence: Licence) -> bool:
    """The current version, valid today (the licences ``lookup_licences`` selects)."""
    return bool(licence.is_current) and effective_status(licence) == "valid"


def licence_versions(session: Session, licence: Licence) -> list[Licence]:
    return list(
        session.exec(
            select(Licence)
            .where(
                Licence.type_code == licence.type_code,
                Licence.issuer_code == licence.issuer_code,
                Licence.serial == licence.serial,
            )
            .order_by(sa.desc(col(Licence.version)))
        ).all()
    )


def may_look_up(session: Session, actor: Principal, type_code: str) -> bool:
    """A department may look up a type it issues or that one of its entries accepts as a material."""
    if actor.role not in LOOKUP_ROLES or actor.department_id is None:
        return False
    dept = session.get(Department, actor.department_id)
    if dept is None:
        return False
    lt = session.exec(select(LicenceType).where(LicenceType.code == type_code)).first()
    if lt is None:
        return False
    if session.exec(
        select(LicenceTypeEntry.id)
        .where(
            LicenceTypeEntry.licence_type_id == lt.id,
            col(LicenceTypeEntry.task_code).startswith(dept.uscc),
        )
        .limit(1)
    ).first():
        return True
    if session.exec(
        select(Material.id)
        .join(ImplementationEntry, col(ImplementationEntry.id) == Material.entry_id)
        .where(
            Material.licence_type_code == type_code,
            ImplementationEntry.department_id == dept.id,
            # Published entries only: a material added to a draft would otherwise let an editor
            # grant the department lookups by editing.
            ImplementationEntry.status == EntryStatus.PUBLISHED.value,
        )
        .limit(1)
    ).first():
        return True
    return (
        session.exec(
            select(Licence.id)
            .where(Licence.issuer_department_id == dept.id, Licence.type_code == type_code)
            .limit(1)
        ).first()
        is not None
    )


def lookup_licences(
    session: Session,
    actor: Principal,
    *,
    holder_code: str,
    type_code: str,
    authorisation_id: int | None = None,
) -> list[Licence]:
    """证照联办 lookup: an applicant's currently valid licences of one type (any issuer); audited.

    Needs the holder's live authorisation (用证授权) for the actor's department covering the type, and
    the department's entries must accept the type as a material (or the department issues it). Every
    licence found is recorded as a use under that authorisation; names stay masked in the response.
    """
    if not actor.is_authenticated:
        raise Forbidden("请先登录")
    errors: dict[str, list[str]] = {}
    holder_code = (holder_code or "").strip().upper()
    if not (check_id_number(holder_code).ok or check_uscc(holder_code).ok):
        errors["holder_code"] = ["应为有效的公民身份号码或统一社会信用代码（校验位正确）"]
    if not TYPE_CODE_RE.match(type_code or ""):
        errors["type_code"] = ["证照类型代码应为 21 位"]
    if errors:
        raise Invalid("查询条件有误", errors)
    if not may_look_up(session, actor, type_code):
        raise Forbidden("本部门的事项未将该证照列为申请材料，不能查询")
    auth = live_authorisation(session, actor, authorisation_id, holder_code, type_code)
    day = today()
    rows = session.exec(
        select(Licence)
        .where(
            Licence.holder_code == holder_code,
            col(Licence.type_id).in_(granted_type_ids([type_code])),
            col(Licence.is_current).is_(True),
            Licence.status == LicenceStatus.VALID.value,
            Licence.valid_from <= day,
            sa.or_(col(Licence.valid_to).is_(None), col(Licence.valid_to) >= day),
        )
        .order_by(sa.desc(col(Licence.issue_date)))
    ).all()
    record(
        session,
        actor=actor,
        action="licence.lookup",
        entity_type="licence_lookup",
        entity_id=type_code,
        new={
            "holder_code": mask_code(holder_code),
            "found": [r.identifier for r in rows],
            "authorisation_id": auth.id,
            "case_number": auth.case_number,
        },
    )
    record_use(session, actor, auth, rows, "lookup")
    return list(rows)


def holder_code_digest(code: str) -> str:
    """Stable pseudonym of a holder code for logs and exports that need to count, not identify."""
    return hashlib.sha256(code.encode()).hexdigest()[:16]


def by_ids(session: Session, ids: Iterable[int]) -> list[Licence]:
    return list(session.exec(select(Licence).where(col(Licence.id).in_(list(ids)))).all())
