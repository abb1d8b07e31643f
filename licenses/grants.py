"""Licence rights (证照管理权限): who may issue, change and read a licence whole.

Users holding a licence grant (LicenceGrant: department x type) issue and change those licences of their
department and are the only ones who read their holder data whole (each such read audited); catalogue
roles give no licence rights; administrators grant and revoke the rights (audited) and see every licence
masked. The checks here are used by issuing and by the reads.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, col, select

from catalog.models import Department
from core.audit import record
from core.auth import SYSTEM, Principal, User
from core.errors import Forbidden, Invalid, NotFound
from core.types import utcnow
from licenses.models import Licence, LicenceGrant, LicenceType
from licenses.types import type_of

# Licence rights (issue, amend, change status, read holder data whole) come only from LicenceGrant rows:
# per user, department and licence type. The catalogue roles (部门编辑/部门审核) give none of them,
# and a grant gives no catalogue rights; a 证照经办 (Role.LICENCE_CLERK) has grants and nothing else.

NO_RIGHTS = (
    "您没有办理该类电子证照的权限：证照管理权限由区级管理员按部门和证照类型授予，实施清单编辑权限不含证照权限"
)


def licence_rights(session: Session, actor: Principal) -> frozenset[str]:
    """Type codes the actor may issue and change in the name of its own department (live grants)."""
    if actor.user_id is None or actor.department_id is None:
        return frozenset()
    return frozenset(
        session.exec(
            select(LicenceGrant.type_code).where(
                LicenceGrant.user_id == actor.user_id,
                LicenceGrant.department_id == actor.department_id,
                col(LicenceGrant.revoked_at).is_(None),
            )
        ).all()
    )


def has_licence_rights(session: Session, actor: Principal) -> bool:
    return bool(licence_rights(session, actor))


def require_rights(session: Session, actor: Principal, type_code: str) -> int:
    """The actor's department when it holds a live grant for ``type_code`` there, else Forbidden."""
    if actor.department_id is None or type_code not in licence_rights(session, actor):
        raise Forbidden(NO_RIGHTS, {"type_code": [f"没有证照类型 {type_code} 的管理权限"]})
    return actor.department_id


def require_bulk_rights(session: Session, actor: Principal, department_id: int, type_code: str) -> None:
    """Bulk import: the system principal (the CLI) or a grant holder of that department and type."""
    if actor == SYSTEM:
        return
    if actor.department_id != department_id:
        raise Forbidden("只能为本部门导入证照")
    require_rights(session, actor, type_code)


def can_view(session: Session, actor: Principal, licence: Licence) -> bool:
    return actor.is_admin or (
        actor.department_id == licence.issuer_department_id
        and type_of(session, licence) in licence_rights(session, actor)
    )


def require_own(session: Session, actor: Principal, licence: Licence) -> None:
    if actor.department_id != licence.issuer_department_id:
        raise Forbidden("只有颁发该证照的部门可以执行此操作")
    require_rights(session, actor, type_of(session, licence))


def grant_licence_rights(
    session: Session, actor: Principal, *, user_id: int, type_codes: Iterable[str]
) -> list[LicenceGrant]:
    """Give a user the licence rights for these types in its department (区级管理员); audited.

    Idempotent: a live grant stays as it is, a revoked one is revived.
    """
    if not actor.is_admin:
        raise Forbidden("仅区级管理员可授予证照管理权限")
    user = session.get(User, user_id)
    if user is None:
        raise NotFound("用户不存在")
    if user.department_id is None:
        raise Invalid("该用户不属于任何部门，不能授予证照管理权限", {"user": ["没有所属部门"]})
    codes = sorted({str(c).strip().upper() for c in type_codes})
    if not codes:
        raise Invalid("请至少指定一个证照类型", {"type_codes": ["必填"]})
    known = set(session.exec(select(LicenceType.code).where(col(LicenceType.code).in_(codes))).all())
    unknown = [c for c in codes if c not in known]
    if unknown:
        raise Invalid("证照类型不存在", {"type_codes": [f"未知的证照类型代码 {c}" for c in unknown]})
    existing = {
        g.type_code: g
        for g in session.exec(
            select(LicenceGrant).where(
                LicenceGrant.user_id == user_id,
                LicenceGrant.department_id == user.department_id,
                col(LicenceGrant.type_code).in_(codes),
            )
        ).all()
    }
    out, added = [], []
    for code in codes:
        grant = existing.get(code)
        if grant is None:
            grant = LicenceGrant(
                user_id=user_id, department_id=user.department_id, type_code=code, granted_by=actor.user_id
            )
            added.append(code)
        elif grant.revoked_at is not None:
            grant.revoked_at = None
            grant.granted_at = utcnow()
            grant.granted_by = actor.user_id
            added.append(code)
        session.add(grant)
        out.append(grant)
    session.flush()
    if added:
        record(
            session,
            actor=actor,
            action="licence_grant.grant",
            entity_type="user",
            entity_id=user_id,
            new={"department_id": user.department_id, "type_codes": added},
        )
    return out


def revoke_licence_rights(
    session: Session, actor: Principal, *, user_id: int, type_codes: Iterable[str] | None = None
) -> int:
    """End a user's licence rights (all of them when ``type_codes`` is None); audited; returns how many."""
    if not actor.is_admin:
        raise Forbidden("仅区级管理员可收回证照管理权限")
    query = select(LicenceGrant).where(
        LicenceGrant.user_id == user_id, col(LicenceGrant.revoked_at).is_(None)
    )
    if type_codes is not None:
        query = query.where(col(LicenceGrant.type_code).in_([str(c).strip().upper() for c in type_codes]))
    now = utcnow()
    ended = []
    for grant in session.exec(query).all():
        grant.revoked_at = now
        session.add(grant)
        ended.append(grant.type_code)
    session.flush()
    if ended:
        record(
            session,
            actor=actor,
            action="licence_grant.revoke",
            entity_type="user",
            entity_id=user_id,
            old={"type_codes": sorted(ended)},
        )
    return len(ended)


def get_department(session: Session, department_id: int) -> Department:
    dept = session.get(Department, department_id)
    if dept is None:
        raise NotFound("颁发部门不存在")
    return dept


@dataclass(frozen=True)
class GrantView:
    """One live licence grant as the administrators' page lists it."""

    user_id: int
    username: str
    display_name: str
    department_id: int
    department: str
    type_code: str
    type_name: str
    granted_at: datetime
    granted_by: str | None  # the granting administrator's username; None for the system (CLI)


def list_grants(session: Session, actor: Principal, *, department_id: int | None = None) -> list[GrantView]:
    """The live licence grants (all departments, or one), for administrators."""
    if not actor.is_admin:
        raise Forbidden("仅区级管理员可查看和维护证照管理权限")
    query = (
        select(LicenceGrant, User, Department.name, LicenceType.name)
        .join(User, col(User.id) == col(LicenceGrant.user_id))
        .join(Department, col(Department.id) == col(LicenceGrant.department_id))
        .join(LicenceType, col(LicenceType.code) == col(LicenceGrant.type_code), isouter=True)
        .where(col(LicenceGrant.revoked_at).is_(None))
        .order_by(col(Department.name), col(User.username), col(LicenceGrant.type_code))
    )
    if department_id is not None:
        query = query.where(LicenceGrant.department_id == department_id)
    rows = session.exec(query).all()
    granter_ids = sorted({g.granted_by for g, *_ in rows if g.granted_by is not None})
    granters = dict(session.exec(select(User.id, User.username).where(col(User.id).in_(granter_ids))).all())
    return [
        GrantView(
            user.id or 0,
            user.username,
            user.display_name,
            grant.department_id,
            dept_name,
            grant.type_code,
            type_name or grant.type_code,
            grant.granted_at,
            granters.get(grant.granted_by) if grant.granted_by is not None else None,
        )
        for grant, user, dept_name, type_name in rows
    ]
