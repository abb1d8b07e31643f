"""Licence use cases: types, issue, amend, suspend/resume/revoke, scoped reads, lookup, verification.

Every service takes a Session, flushes and never commits. Every licence change writes its audit row
and its outbox row (``record_change``) in the caller's transaction, so a change and the record the
sync sends are committed together or not at all.

Permissions (``Principal``): users holding a licence grant (LicenceGrant: department x type) issue and
change those licences of their department and are the only ones who read their holder data whole
(each such read audited); catalogue roles give no licence rights; administrators maintain licence
types and grants and see every licence masked; everyone may verify.
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, func, select

from catalog.codes import check_id_number, check_uscc, is_valid_uscc
from catalog.models import Department, ImplementationEntry, Material
from core.audit import record
from core.auth import ANONYMOUS, SYSTEM, Principal, Role, User
from core.db import table_of
from core.errors import Conflict, Forbidden, Invalid, NotFound
from core.types import CHINA_TZ, china_today, utcnow
from licenses.identifiers import (
    TYPE_CODE_RE,
    IdentifierError,
    make_identifier,
    new_serial,
)
from licenses.masking import mask_code, mask_name
from licenses.models import (
    ANY_HOLDER,
    AUTHORISATION_METHODS,
    AUTHORITY_LEVELS,
    CATEGORIES,
    ENDED_STATUSES,
    FACE_FIELD_TYPES,
    HOLDER_CODE_TYPES,
    HOLDER_KINDS,
    ORGANISATION_ONLY_FIELDS,
    REASON_CATEGORIES,
    STATUS_LABELS,
    TYPE_HOLDER_LABELS,
    HolderCode,
    Licence,
    LicenceAuthorisation,
    LicenceGrant,
    LicenceOutbox,
    LicenceSigningKey,
    LicenceStatus,
    LicenceType,
    LicenceTypeEntry,
    LicenceUse,
    LicenceVerification,
)
from licenses.signing import (
    KeyStore,
    PublicKey,
    TokenCheck,
    TokenClaims,
    Verifier,
    b64d,
    b64e,
    make_token,
    new_claims,
)
from licenses.sync import current_request_id

# Who may look up a holder's licences for a case (证照联办): department staff of any kind.
LOOKUP_ROLES = (Role.DEPT_EDITOR, Role.DEPT_REVIEWER, Role.LICENCE_CLERK)
FACE_KEY_RE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
AREA_RE = re.compile(r"^\d{6}$")
MAX_YEARS = 100
EARLIEST_YEAR = 1900


def today() -> date:
    """Licence dates are calendar days in China Standard Time."""
    return china_today()


# ---------------------------------------------------------------- permissions
#
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


def _require_rights(session: Session, actor: Principal, type_code: str) -> int:
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
    _require_rights(session, actor, type_code)


def _require_admin(actor: Principal) -> None:
    if not actor.is_admin:
        raise Forbidden("仅区级管理员可维护证照目录")


def _type_of(session: Session, licence: Licence) -> str:
    """The code of the licence's type now. Usually licence.type_code; after two duplicate types were
    merged the licence keeps the code it was issued under (it is in its identifier) but belongs to
    the surviving type, whose grants then apply."""
    lt = session.get(LicenceType, licence.type_id)
    return lt.code if lt is not None else licence.type_code


def _granted_type_ids(rights: Iterable[str]) -> Any:
    """Ids of the types with these codes (a subquery): licences are matched by type id, see _type_of."""
    return select(LicenceType.id).where(col(LicenceType.code).in_(sorted(rights)))


def _can_view(session: Session, actor: Principal, licence: Licence) -> bool:
    return actor.is_admin or (
        actor.department_id == licence.issuer_department_id
        and _type_of(session, licence) in licence_rights(session, actor)
    )


def _own(session: Session, actor: Principal, licence: Licence) -> None:
    if actor.department_id != licence.issuer_department_id:
        raise Forbidden("只有颁发该证照的部门可以执行此操作")
    _require_rights(session, actor, _type_of(session, licence))


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


# ---------------------------------------------------------------- licence types


def validate_face_schema(schema: Any, holder_kind: str | None = None) -> list[dict[str, Any]]:
    """Normalise a face-field schema: a list of {key, label, type, required, max_length, choices, for}.

    ``for`` ("111" or "001") limits a field to holders of that kind; 法定代表人 is for organisations
    only, so a natural-person type may not carry it and an either-kind type gets it as ``for: 001``.
    """
    if schema is None:
        return []
    if not isinstance(schema, list):
        raise Invalid("照面字段定义应为列表", {"face_schema": ["应为列表"]})
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    errors: dict[str, list[str]] = {}
    for i, raw in enumerate(schema):
        where = f"face_schema.{i}"
        if not isinstance(raw, dict):
            errors[where] = ["每个字段定义应为对象"]
            continue
        unknown = set(raw) - {"key", "label", "type", "required", "max_length", "choices", "for"}
        key = raw.get("key")
        kind = raw.get("type", "string")
        if unknown:
            errors[where] = [f"未知属性：{', '.join(sorted(unknown))}"]
        elif not isinstance(key, str) or not FACE_KEY_RE.match(key):
            errors[where] = ["key 应为小写字母开头的字母、数字、下划线（最多 40 位）"]
        elif key in seen:
            errors[where] = [f"字段 {key} 重复"]
        elif not isinstance(raw.get("label"), str) or not raw["label"].strip():
            errors[where] = ["label（字段名称）必填"]
        elif kind not in FACE_FIELD_TYPES:
            errors[where] = [f"type 应为 {'/'.join(FACE_FIELD_TYPES)} 之一"]
        elif kind == "enum" and not (
            isinstance(raw.get("choices"), list)
            and raw["choices"]
            and all(isinstance(c, str) for c in raw["choices"])
        ):
            errors[where] = ["enum 字段需要非空的 choices 列表"]
        elif "max_length" in raw and not (
            isinstance(raw["max_length"], int) and 1 <= raw["max_length"] <= 5000
        ):
            errors[where] = ["max_length 应为 1-5000 的整数"]
        elif raw.get("for") not in (None, "111", "001"):
            errors[where] = ["for 应为 111（仅自然人）或 001（仅法人和其他组织）"]
        elif key in ORGANISATION_ONLY_FIELDS and (holder_kind == "111" or raw.get("for") == "111"):
            errors[where] = [f"{ORGANISATION_ONLY_FIELDS[key]}只适用于法人和其他组织，自然人证照不能有此字段"]
        else:
            seen.add(key)
            item: dict[str, Any] = {
                "key": key,
                "label": raw["label"].strip(),
                "type": kind,
                "required": bool(raw.get("required", False)),
            }
            if kind == "enum":
                item["choices"] = list(raw["choices"])
            if kind in ("string", "text"):
                item["max_length"] = raw.get("max_length", 200 if kind == "string" else 2000)
            applies = raw.get("for") or ("001" if key in ORGANISATION_ONLY_FIELDS else None)
            if applies and holder_kind != applies:
                item["for"] = applies
            out.append(item)
    if errors:
        raise Invalid("照面字段定义有误", errors)
    return out


def _type_fields(data: Mapping[str, Any], partial: bool) -> dict[str, Any]:
    errors: dict[str, list[str]] = {}
    out: dict[str, Any] = {}
    if "code" in data or not partial:
        code = str(data.get("code") or "").strip().upper()
        if not TYPE_CODE_RE.match(code):
            errors["code"] = ["证照类型代码应为定义机构的 18 位统一社会信用代码加 3 位数字"]
        else:
            check = check_uscc(code[:18])
            if not check.ok:
                errors["code"] = [f"证照类型代码前 18 位：{check.message}"]
            out["code"] = code
            out["authority_code"] = code[:18]
    if "name" in data or not partial:
        name = str(data.get("name") or "").strip()
        if not name or len(name) > 200:
            errors["name"] = ["证照类型名称必填，最多 200 字"]
        out["name"] = name
    if "holder_code_type" in data or not partial:
        hct = str(data.get("holder_code_type") or "")
        if hct not in TYPE_HOLDER_LABELS:
            errors["holder_code_type"] = [
                "持证主体应为 111（自然人，公民身份号码）、001（法人和其他组织，统一社会信用代码）"
                "或 any（二者皆可）"
            ]
        out["holder_code_type"] = hct
    if "authority_name" in data:
        out["authority_name"] = str(data.get("authority_name") or "").strip()[:200]
    if "authority_level" in data:
        if data["authority_level"] not in AUTHORITY_LEVELS:
            errors["authority_level"] = [f"应为 {'/'.join(AUTHORITY_LEVELS)} 之一"]
        out["authority_level"] = data["authority_level"]
    if "category" in data:
        if data["category"] not in CATEGORIES:
            errors["category"] = [f"应为 {'/'.join(CATEGORIES)} 之一"]
        out["category"] = data["category"]
    if "validity_years" in data:
        years = data["validity_years"]
        if years is not None and not (
            isinstance(years, int) and not isinstance(years, bool) and 1 <= years <= MAX_YEARS
        ):
            errors["validity_years"] = ["有效年限应为 1-100 的整数，长期有效留空"]
        out["validity_years"] = years
    if "face_schema" in data:
        try:
            out["face_schema"] = validate_face_schema(data["face_schema"], out.get("holder_code_type"))
        except Invalid as exc:
            errors.update(exc.details)
    if "is_active" in data:
        out["is_active"] = bool(data["is_active"])
    if errors:
        raise Invalid("证照类型信息有误", errors)
    return out


def create_licence_type(session: Session, actor: Principal, data: Mapping[str, Any]) -> LicenceType:
    """Add a 证照目录 entry (administrators). The code must be new."""
    _require_admin(actor)
    fields = _type_fields(data, partial=False)
    if session.exec(select(LicenceType).where(LicenceType.code == fields["code"])).first():
        raise Conflict(f"证照类型代码 {fields['code']} 已存在", {"code": ["已存在"]})
    if session.exec(select(LicenceType).where(LicenceType.name == fields["name"])).first():
        raise Conflict(f"证照类型“{fields['name']}”已存在（名称不能重复）", {"name": ["已存在"]})
    lt = LicenceType(**fields)
    session.add(lt)
    session.flush()
    record(
        session,
        actor=actor,
        action="licence_type.create",
        entity_type="licence_type",
        entity_id=lt.code,
        new=fields,
    )
    return lt


def update_licence_type(
    session: Session, actor: Principal, code: str, data: Mapping[str, Any]
) -> LicenceType:
    """Change a type's name, authority, validity rule or face schema (administrators); the code is fixed."""
    _require_admin(actor)
    lt = get_licence_type(session, code)
    if "code" in data and data["code"] != lt.code:
        raise Invalid("证照类型代码不可修改", {"code": ["不可修改"]})
    changes = {k: v for k, v in data.items() if k != "code"}
    if "face_schema" in changes or "holder_code_type" in changes:
        # The face fields are checked against the holder kind the type will have.
        changes.setdefault("holder_code_type", lt.holder_code_type)
        changes.setdefault("face_schema", lt.face_schema)
    fields = _type_fields(changes, partial=True)
    if (
        "name" in fields
        and fields["name"] != lt.name
        and session.exec(select(LicenceType).where(LicenceType.name == fields["name"])).first()
    ):
        raise Conflict(f"证照类型“{fields['name']}”已存在（名称不能重复）", {"name": ["已存在"]})
    old = {k: getattr(lt, k) for k in fields}
    for k, v in fields.items():
        setattr(lt, k, v)
    lt.updated_at = utcnow()
    session.add(lt)
    session.flush()
    record(
        session,
        actor=actor,
        action="licence_type.update",
        entity_type="licence_type",
        entity_id=lt.code,
        old=old,
        new=fields,
    )
    return lt


def get_licence_type(session: Session, code: str) -> LicenceType:
    lt = session.exec(select(LicenceType).where(LicenceType.code == code)).first()
    if lt is None:
        raise NotFound(f"证照类型 {code} 不存在")
    return lt


def list_licence_types(session: Session, *, active_only: bool = False) -> Sequence[LicenceType]:
    query = select(LicenceType).order_by(LicenceType.name)
    if active_only:
        query = query.where(col(LicenceType.is_active).is_(True))
    return session.exec(query).all()


def link_type_entry(
    session: Session,
    actor: Principal,
    code: str,
    *,
    task_code: str,
    role: str,
    material_name: str | None = None,
) -> LicenceTypeEntry:
    """Record that an implementation entry (实施编码) produces or accepts a licence type (administrators)."""
    _require_admin(actor)
    lt = get_licence_type(session, code)
    errors: dict[str, list[str]] = {}
    if role not in ("produces", "accepts"):
        errors["role"] = ["应为 produces（产生该证照）或 accepts（可替代申请材料）"]
    if not (isinstance(task_code, str) and len(task_code) == 31 and check_uscc(task_code[:18]).ok):
        errors["task_code"] = ["实施编码应为 31 位：实施主体统一社会信用代码 + 行使层级 + 基本编码"]
    if errors:
        raise Invalid("关联事项信息有误", errors)
    if session.exec(
        select(LicenceTypeEntry).where(
            LicenceTypeEntry.licence_type_id == lt.id,
            LicenceTypeEntry.task_code == task_code,
            LicenceTypeEntry.role == role,
        )
    ).first():
        raise Conflict("该事项已关联", {"task_code": ["已关联"]})
    entry = session.exec(
        select(ImplementationEntry).where(ImplementationEntry.task_code == task_code)
    ).first()
    link = LicenceTypeEntry(
        licence_type_id=lt.id or 0,
        task_code=task_code,
        role=role,
        entry_id=entry.id if entry else None,
        material_name=material_name,
    )
    session.add(link)
    session.flush()
    record(
        session,
        actor=actor,
        action="licence_type.link_entry",
        entity_type="licence_type",
        entity_id=lt.code,
        new={"task_code": task_code, "role": role, "material_name": material_name},
    )
    return link


@dataclass(frozen=True)
class TypeEntryView:
    task_code: str
    role: str
    entry_id: int | None
    entry_name: str | None
    material_name: str | None


def type_entries(session: Session, lt: LicenceType) -> list[TypeEntryView]:
    """Entries producing or accepting a type: explicit links plus materials naming the type code."""
    rows = session.exec(
        select(LicenceTypeEntry, ImplementationEntry.name)
        .join(ImplementationEntry, col(ImplementationEntry.id) == LicenceTypeEntry.entry_id, isouter=True)
        .where(LicenceTypeEntry.licence_type_id == lt.id)
    ).all()
    out = [
        TypeEntryView(link.task_code, link.role, link.entry_id, name, link.material_name)
        for link, name in rows
    ]
    seen = {(v.task_code, v.role) for v in out}
    for entry, material in session.exec(
        select(ImplementationEntry, Material)
        .join(Material, col(Material.entry_id) == ImplementationEntry.id)
        .where(Material.licence_type_code == lt.code)
    ).all():
        if (entry.task_code, "accepts") not in seen:
            seen.add((entry.task_code, "accepts"))
            out.append(TypeEntryView(entry.task_code, "accepts", entry.id, entry.name, material.name))
    return out


# ---------------------------------------------------------------- licence input


def _date(value: Any, field_name: str, errors: dict[str, list[str]]) -> date | None:
    if value is None or value == "":
        return None
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        errors[field_name] = ["日期格式应为 YYYY-MM-DD"]
        return None


def add_years(d: date, years: int) -> date:
    """Same day ``years`` later (28 February for 29 February); date.max when past the calendar's end."""
    if d.year + years > date.max.year:
        return date.max
    try:
        return d.replace(year=d.year + years)
    except ValueError:  # 29 February
        return d.replace(year=d.year + years, day=28)


def validate_face(lt: LicenceType, face: Any, holder_kind: str | None = None) -> dict[str, Any]:
    """Check 照面信息 against the type's schema: no unknown fields, required present, values typed;
    a field meant for the other holder kind (``for``) is refused, and not required."""
    if face is None:
        face = {}
    if not isinstance(face, dict):
        raise Invalid("照面信息应为对象", {"face": ["应为对象"]})
    schema = {f["key"]: f for f in lt.face_schema or []}
    errors: dict[str, list[str]] = {}
    out: dict[str, Any] = {}
    for key in face:
        if key not in schema:
            errors[f"face.{key}"] = [f"证照类型“{lt.name}”没有定义照面字段 {key}"]
    for key, spec in schema.items():
        value = face.get(key)
        if isinstance(value, str):
            value = value.strip()
        applies = spec.get("for")
        if applies and holder_kind and applies != holder_kind:
            if value not in (None, ""):
                errors[f"face.{key}"] = [f"{spec['label']}只适用于{HOLDER_KINDS[applies]}持证主体"]
            continue
        if value is None or value == "":
            if spec.get("required"):
                errors[f"face.{key}"] = [f"{spec['label']}必填"]
            continue
        kind = spec["type"]
        if kind in ("string", "text"):
            if not isinstance(value, str):
                errors[f"face.{key}"] = [f"{spec['label']}应为文本"]
            elif len(value) > spec.get("max_length", 200):
                errors[f"face.{key}"] = [f"{spec['label']}最多 {spec.get('max_length', 200)} 字"]
            else:
                out[key] = value
        elif kind == "integer":
            if isinstance(value, bool) or not (
                isinstance(value, int) or (isinstance(value, str) and value.isdigit())
            ):
                errors[f"face.{key}"] = [f"{spec['label']}应为整数"]
            else:
                out[key] = int(value)
        elif kind == "date":
            parsed = _date(value, f"face.{key}", errors)
            if parsed:
                out[key] = parsed.isoformat()
        elif kind == "enum":
            if value not in spec.get("choices", []):
                errors[f"face.{key}"] = [f"{spec['label']}应为 {'/'.join(spec.get('choices', []))} 之一"]
            else:
                out[key] = value
    if errors:
        raise Invalid("照面信息与证照类型的字段定义不符", errors)
    return out


def check_holder_code(lt_holder_type: str, code: str) -> str | None:
    """The reason a holder code is unacceptable for a type of this holder kind, or None."""
    code = (code or "").strip().upper()
    id_check = check_id_number(code)
    if lt_holder_type == "111":
        if id_check.ok:
            return None
        looks_like_uscc = is_valid_uscc(code) or (check_uscc(code).ok and not code[:17].isdigit())
        if looks_like_uscc:
            return "该证照的持证主体为自然人，应填写公民身份号码，而不是统一社会信用代码"
        return id_check.message
    if id_check.ok:
        return "该证照的持证主体为法人或其他组织，应填写统一社会信用代码，而不是公民身份号码"
    result = check_uscc(code)
    if not result.ok:
        return result.message
    if result.warning:
        return result.warning
    return None


@dataclass
class LicenceInput:
    """Validated fields of one licence version (shared by single issue, amend and bulk import)."""

    holder_name: str
    holder_code: str
    holder_code_type: str
    number: str | None
    issue_date: date
    valid_from: date
    valid_to: date | None
    area_code: str
    face: dict[str, Any] = field(default_factory=dict)
    serial: str | None = None
    task_code: str | None = None


ISSUE_FIELDS = {
    "type_code",
    "holder_name",
    "holder_code",
    "holder_code_type",
    "number",
    "issue_date",
    "valid_from",
    "valid_to",
    "area_code",
    "face",
    "serial",
    "task_code",
}


def prepare_licence(
    lt: LicenceType, data: Mapping[str, Any], *, default_area: str, on: date | None = None
) -> LicenceInput:
    """Validate one licence's fields against its type; raises Invalid with every field error at once."""
    errors: dict[str, list[str]] = {}
    unknown = set(data) - ISSUE_FIELDS
    for key in sorted(unknown):
        errors[key] = ["未知字段"]
    if not lt.is_active:
        errors["type_code"] = ["该证照类型已停用"]
    name = str(data.get("holder_name") or "").strip()
    if not name or len(name) > 200:
        errors["holder_name"] = ["持证主体名称必填，最多 200 字"]
    code = str(data.get("holder_code") or "").strip().upper()
    kind = lt.holder_code_type
    if kind == ANY_HOLDER:
        # Either kind: the one stated, else the one the code is (a valid ID number is a person).
        kind = data.get("holder_code_type") or ("111" if check_id_number(code).ok else "001")
    hct = data.get("holder_code_type") or kind
    if hct != kind or kind not in HOLDER_CODE_TYPES:
        errors["holder_code_type"] = [
            f"该证照类型的持证主体代码类型为 {lt.holder_code_type}"
            f"（{TYPE_HOLDER_LABELS.get(lt.holder_code_type, lt.holder_code_type)}）"
        ]
        kind = lt.holder_code_type if lt.holder_code_type in HOLDER_CODE_TYPES else "111"
    problem = check_holder_code(kind, code)
    if problem:
        errors["holder_code"] = [problem]
    number = data.get("number")
    number = str(number).strip() if number not in (None, "") else None
    if number is not None and len(number) > 100:
        errors["number"] = ["证照编号最多 100 字"]
    day = on or today()
    issue_date = _date(data.get("issue_date"), "issue_date", errors) or day
    if issue_date > day:
        errors["issue_date"] = ["颁发日期不能晚于今天"]
    elif issue_date.year < EARLIEST_YEAR:
        errors["issue_date"] = [f"颁发日期不能早于 {EARLIEST_YEAR} 年"]
    valid_from = _date(data.get("valid_from"), "valid_from", errors) or issue_date
    if not EARLIEST_YEAR <= valid_from.year <= day.year + 10:
        errors["valid_from"] = [f"有效期起始日期应在 {EARLIEST_YEAR} 年至 {day.year + 10} 年之间"]
    valid_to = _date(data.get("valid_to"), "valid_to", errors)
    if valid_to is None and lt.validity_years and "valid_to" not in errors:
        valid_to = add_years(valid_from, lt.validity_years) - timedelta(days=1)
    if valid_to is not None and valid_to < valid_from:
        errors["valid_to"] = ["有效期截止日期早于起始日期"]
    elif valid_to is not None and lt.validity_years and valid_to > add_years(valid_from, lt.validity_years):
        errors["valid_to"] = [f"该证照类型有效期最长 {lt.validity_years} 年"]
    area = str(data.get("area_code") or default_area)
    if not AREA_RE.match(area):
        errors["area_code"] = ["管辖属地编码应为 6 位行政区划代码"]
    serial = data.get("serial")
    if serial not in (None, ""):
        serial = str(serial).strip().upper()
        if not re.match(r"^[0-9A-Z]{1,40}$", serial):
            errors["serial"] = ["流水号应为 1-40 位数字或大写字母"]
    else:
        serial = None
    face: dict[str, Any] = {}
    try:
        face = validate_face(lt, data.get("face"), kind)
    except Invalid as exc:
        errors.update(exc.details)
    task_code = data.get("task_code")
    task_code = str(task_code).strip() if task_code not in (None, "") else None
    if task_code is not None and len(task_code) != 31:
        errors["task_code"] = ["实施编码应为 31 位"]
    if errors:
        raise Invalid("证照信息有误", errors)
    return LicenceInput(
        name, code, kind, number, issue_date, valid_from, valid_to, area, face, serial, task_code
    )


# ---------------------------------------------------------------- outbox


def outbox_payload(licence: Any, operation: str) -> dict[str, Any]:
    """The up_lic_data record (standards §3.3) of one licence version, JSON-serialisable."""
    return {
        "certificate_identifier": licence.identifier,
        "certificate_type_code": licence.type_code,
        "certificate_type_name": licence.type_name,
        "certificate_name": licence.type_name,
        "certificate_number": licence.number,
        "holder_name": licence.holder_name,
        "holder_code": licence.holder_code,
        "holder_code_type": licence.holder_code_type,
        "issuer_name": licence.issuer_name,
        "issuer_code": licence.issuer_code,
        "issue_date": licence.issue_date.isoformat(),
        "area_code": licence.area_code,
        "valid_from": licence.valid_from.isoformat(),
        "valid_to": licence.valid_to.isoformat() if licence.valid_to else None,
        "status": licence.status,
        "version": licence.revision,
        "operation": operation,
    }


def outbox_row(licence: Any, operation: str, request_id: str | None = None) -> dict[str, Any]:
    """Values of one outbox row; ``request_id`` defaults to the web request being served, if any."""
    now = utcnow()
    return {
        "licence_id": licence.id,
        "identifier": licence.identifier,
        "version": licence.revision,
        "operation": operation,
        "payload": outbox_payload(licence, operation),
        "issuer_code": licence.issuer_code,
        "issue_day": licence.issue_date,
        "status": "pending",
        "attempts": 0,
        "idem_key": f"{licence.identifier}:{licence.revision}",
        "created_at": now,
        "updated_at": now,
        "request_id": request_id or current_request_id(),
    }


def record_change(
    session: Session, licence: Licence, operation: str, *, request_id: str | None = None
) -> LicenceOutbox:
    """Write the outbox row of one licence change in the caller's transaction (flushes, never commits).

    ``version`` is the licence's ``revision`` (1 at issue, +1 per status change of the same
    identifier); an amendment is a new identifier starting again at revision 1. The idempotency key
    ``identifier:version`` is therefore unique per change.

    The row keeps the request id of the web request that made the change (``request_id``, else the
    one bound for the current request, ``licenses.sync.current_request_id``; None outside a request),
    so the worker's and the registry's log lines of this record can be found by that id.
    """
    if operation not in ("issue", "amend", "suspend", "resume", "revoke"):
        raise ValueError(f"unknown outbox operation {operation!r}")
    row = LicenceOutbox(**outbox_row(licence, operation, request_id))
    session.add(row)
    session.flush()
    return row


# ---------------------------------------------------------------- issue and change


def _department(session: Session, department_id: int) -> Department:
    dept = session.get(Department, department_id)
    if dept is None:
        raise NotFound("颁发部门不存在")
    return dept


def _snapshot(licence: Licence) -> dict[str, Any]:
    """Audit view of a licence: holder data masked (the audit log is read more widely than licences)."""
    return {
        "identifier": licence.identifier,
        "type_code": licence.type_code,
        "number": licence.number,
        "holder_name": mask_name(licence.holder_name, licence.holder_code_type),
        "holder_code": mask_code(licence.holder_code),
        "valid_from": licence.valid_from,
        "valid_to": licence.valid_to,
        "area_code": licence.area_code,
        "face": licence.face,
        "status": licence.status,
        "version": licence.version,
    }


def new_licence(
    lt: LicenceType,
    dept: Department,
    inp: LicenceInput,
    *,
    version: int = 1,
    serial: str | None = None,
    created_by: int | None = None,
) -> Licence:
    return Licence(**licence_values(lt, dept, inp, version=version, serial=serial, created_by=created_by))


def licence_values(
    lt: LicenceType,
    dept: Department,
    inp: LicenceInput,
    *,
    version: int = 1,
    serial: str | None = None,
    created_by: int | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Column values of a new licence version (bulk inserts use them without building ORM objects)."""
    serial = serial or inp.serial or new_serial(inp.issue_date.year)
    identifier = make_identifier(lt.code, dept.uscc, serial, version)
    now = now or utcnow()
    return dict(
        identifier=identifier,
        type_id=lt.id or 0,
        type_code=lt.code,
        type_name=lt.name,
        serial=serial,
        version=version,
        number=inp.number or serial,
        holder_name=inp.holder_name,
        holder_code=inp.holder_code,
        holder_code_type=inp.holder_code_type,
        issuer_department_id=dept.id or 0,
        issuer_code=dept.uscc,
        issuer_name=dept.name,
        issue_date=inp.issue_date,
        valid_from=inp.valid_from,
        valid_to=inp.valid_to,
        area_code=inp.area_code,
        face=inp.face,
        task_code=inp.task_code,
        status=LicenceStatus.VALID.value,
        revision=1,
        is_current=True,
        previous_id=None,
        status_reason=None,
        status_changed_at=None,
        created_by=created_by,
        created_at=now,
        updated_at=now,
    )


def _flush_or_conflict(session: Session, message: str) -> None:
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError:
        raise Conflict(message) from None


def issue_licence(
    session: Session,
    actor: Principal,
    data: Mapping[str, Any],
    *,
    default_area: str = "321203",
    keystore: KeyStore | None = None,
) -> Licence:
    """Issue a licence in the actor's department: validate, assign the identifier, audit, outbox.

    With ``keystore`` (every production caller passes it) the department's signing key is published
    with its first licence, so offline verifiers have it before anyone opens a QR code.
    """
    type_code = str(data.get("type_code") or "")
    if not actor.is_authenticated or actor.department_id is None:
        raise Forbidden(NO_RIGHTS)
    lt = session.exec(select(LicenceType).where(LicenceType.code == type_code)).first()
    if lt is None:
        raise Invalid("证照类型不存在", {"type_code": [f"未知的证照类型代码 {type_code}"]})
    dept = _department(session, _require_rights(session, actor, lt.code))
    inp = prepare_licence(lt, {k: v for k, v in data.items() if k != "type_code"}, default_area=default_area)
    inp.task_code = issuing_service(session, lt, dept, inp.task_code)
    try:
        licence = new_licence(lt, dept, inp, created_by=actor.user_id)
    except IdentifierError as exc:
        raise Invalid(f"无法生成电子证照标识：{exc}", {"serial": [str(exc)]}) from None
    session.add(licence)
    _flush_or_conflict(session, "相同流水号的证照已存在")
    record(
        session,
        actor=actor,
        action="licence.issue",
        entity_type="licence",
        entity_id=licence.id,
        new=_snapshot(licence),
    )
    record_change(session, licence, "issue")
    if keystore is not None:
        ensure_signing_key(session, keystore, dept.id or 0, dept.uscc)
    return licence


def producing_services(session: Session, lt: LicenceType, dept: Department) -> list[str]:
    """实施编码 of the department's services that produce this type (the type's "produces" links)."""
    return sorted(
        session.exec(
            select(LicenceTypeEntry.task_code).where(
                LicenceTypeEntry.licence_type_id == lt.id,
                LicenceTypeEntry.role == "produces",
                col(LicenceTypeEntry.task_code).startswith(dept.uscc),
            )
        ).all()
    )


def issuing_service(session: Session, lt: LicenceType, dept: Department, task_code: str | None) -> str | None:
    """The 实施编码 a new licence is issued under: the one given, which must be one of the department's
    services producing the type; else the only such service; None when the type lists none for the
    department (recorded as unknown, never guessed)."""
    return choose_service(producing_services(session, lt, dept), task_code)


def choose_service(services_: Sequence[str], task_code: str | None) -> str | None:
    """The rule of issuing_service on a known list of the department's producing services."""
    if task_code is not None:
        if task_code not in services_:
            listed = "、".join(services_) or "（该类型尚未关联本部门的办理事项）"
            raise Invalid(
                "实施编码不是本部门产生该证照的办理事项",
                {"task_code": [f"应为以下之一：{listed}"]},
            )
        return task_code
    if len(services_) == 1:
        return services_[0]
    if len(services_) > 1:
        raise Invalid(
            "请指明据以颁发的办理事项（实施编码）",
            {"task_code": [f"本部门有 {len(services_)} 个事项产生该证照：{'、'.join(services_)}"]},
        )
    return None


def _locked(session: Session, licence_id: int) -> Licence:
    licence = session.exec(select(Licence).where(Licence.id == licence_id).with_for_update()).first()
    if licence is None:
        raise NotFound("证照不存在")
    return licence


# 颁发日期 is the certificate's date and stays across its versions unless an amendment corrects it
# explicitly; the version's own time is the new row's created_at.
AMEND_FIELDS = {"holder_name", "number", "issue_date", "valid_from", "valid_to", "area_code", "face"}


def amend_licence(
    session: Session, actor: Principal, licence_id: int, changes: Mapping[str, Any], reason: str | None = None
) -> Licence:
    """变更: a new version (version segment + 1) with the changes; the old version is kept, superseded."""
    old = _locked(session, licence_id)
    _own(session, actor, old)
    if old.status in ENDED_STATUSES:
        raise Conflict(f"已{STATUS_LABELS[LicenceStatus(old.status)]}的证照不能变更")
    if old.status == LicenceStatus.SUPERSEDED or not old.is_current:
        raise Conflict("该版本已被新版本替代，请变更最新版本")
    if old.status == LicenceStatus.SUSPENDED:
        raise Conflict("已暂扣（暂停使用）的证照请先恢复，再办理变更")
    bad = set(changes) - AMEND_FIELDS
    if bad:
        raise Invalid(
            "这些信息不能通过变更修改（持证主体代码、证照类型不可变更）",
            {k: ["不可变更"] for k in sorted(bad)},
        )
    if not changes:
        raise Invalid("没有需要变更的内容", {"_schema": ["至少修改一项"]})
    lt = session.get(LicenceType, old.type_id)
    assert lt is not None  # noqa: S101  (foreign key)
    base: dict[str, Any] = {
        "holder_name": old.holder_name,
        "holder_code": old.holder_code,
        "number": old.number,
        "issue_date": old.issue_date,
        "valid_from": old.valid_from,
        "valid_to": old.valid_to,
        "area_code": old.area_code,
        "face": dict(old.face or {}),
        "holder_code_type": old.holder_code_type,
        "task_code": old.task_code,
    }
    if "valid_from" in changes and "valid_to" not in changes and lt.validity_years:
        base["valid_to"] = None
    base.update(changes)
    inp = prepare_licence(lt, base, default_area=old.area_code)
    dept = _department(session, old.issuer_department_id)
    try:
        new = new_licence(lt, dept, inp, version=old.version + 1, serial=old.serial, created_by=actor.user_id)
    except IdentifierError as exc:
        raise Conflict(f"无法生成新版本标识：{exc}") from None
    new.previous_id = old.id
    now = utcnow()
    old.status = LicenceStatus.SUPERSEDED.value
    old.status_reason = f"已变更为第 {new.version} 版" + (f"：{reason}" if reason else "")
    old.status_changed_at = now
    old.is_current = False
    old.revision += 1
    old.updated_at = now
    session.add(old)
    session.add(new)
    _flush_or_conflict(session, "该证照正在被其他人变更，请刷新后重试")
    record(
        session,
        actor=actor,
        action="licence.amend",
        entity_type="licence",
        entity_id=new.id,
        old=_snapshot(old),
        new=_snapshot(new),
        reason=reason,
    )
    record_change(session, old, "amend")
    record_change(session, new, "amend")
    return new


STATUS_OPERATIONS = {
    LicenceStatus.SUSPENDED: "suspend",
    LicenceStatus.VALID: "resume",
    **{s: "revoke" for s in ENDED_STATUSES},
}
AUDIT_ACTIONS = {
    LicenceStatus.SUSPENDED: "suspend",
    LicenceStatus.VALID: "resume",
    LicenceStatus.CANCELLED: "cancel",
    LicenceStatus.REVOKED: "revoke",
    LicenceStatus.WITHDRAWN: "withdraw",
    LicenceStatus.VOID: "void",
}
STATUS_ACTION_LABELS = {
    LicenceStatus.SUSPENDED: "暂扣（暂停使用）",
    LicenceStatus.VALID: "恢复",
    LicenceStatus.CANCELLED: "注销",
    LicenceStatus.REVOKED: "吊销",
    LicenceStatus.WITHDRAWN: "撤销",
    LicenceStatus.VOID: "挂失/作废",
}


def change_status(
    session: Session,
    actor: Principal,
    licence_id: int,
    *,
    to: str,
    category: str | None = None,
    effective_date: Any = None,
    reason: str | None = None,
) -> Licence:
    """Move a licence to ``to`` (暂扣, 恢复, 注销, 吊销, 撤销, 挂失/作废); audited; writes the outbox row.

    Every status but 恢复 needs a public reason category from REASON_CATEGORIES[to] (a status with one
    category takes it by default) and an internal reason. ``effective_date`` is the day the status
    took effect (default today, China time): not before the licence's issue date and not in the
    future. Final statuses (ENDED_STATUSES) are reached from 有效 or 暂扣 and never left; 恢复 only
    from 暂扣. Bad input raises Invalid naming the field, before anything changes.
    """
    errors: dict[str, list[str]] = {}
    try:
        target = LicenceStatus(to)
    except ValueError:
        target = None
    if target is None or target == LicenceStatus.SUPERSEDED:
        raise Invalid("目标状态无效", {"status": [f"应为 {'/'.join(STATUS_OPERATIONS)} 之一"]})
    reason = (reason or "").strip() or None
    choices = REASON_CATEGORIES.get(target, {})
    if target != LicenceStatus.VALID:
        if category is None and len(choices) == 1:
            category = next(iter(choices))
        if category not in choices:
            errors["category"] = [f"原因类别应为：{'、'.join(f'{k}（{v}）' for k, v in choices.items())}"]
        if not reason:
            errors["reason"] = ["请填写原因（内部记录，不公开）"]
    else:
        category = None
    if reason and len(reason) > 500:
        errors["reason"] = ["原因最多 500 字"]
    day = _date(effective_date, "effective_date", errors) or today()
    if errors:
        raise Invalid("状态变更信息有误", errors)
    licence = _locked(session, licence_id)
    _own(session, actor, licence)
    current = LicenceStatus(licence.status)
    allowed_from: tuple[LicenceStatus, ...] = (
        (LicenceStatus.SUSPENDED,) if target == LicenceStatus.VALID else (LicenceStatus.VALID,)
    )
    if target in ENDED_STATUSES:
        allowed_from = (LicenceStatus.VALID, LicenceStatus.SUSPENDED)
    if current not in allowed_from or not licence.is_current:
        raise Conflict(f"证照当前状态为“{STATUS_LABELS[current]}”，不能{STATUS_ACTION_LABELS[target]}")
    if day > today():
        raise Invalid("生效日期不能晚于今天", {"effective_date": ["不能晚于今天"]})
    if day < licence.issue_date:
        raise Invalid("生效日期不能早于颁发日期", {"effective_date": [f"不能早于 {licence.issue_date}"]})
    old = {
        "status": licence.status,
        "status_date": licence.status_date,
        "status_category": licence.status_category,
    }
    now = utcnow()
    licence.status = target.value
    licence.status_reason = reason
    licence.status_category = category
    licence.status_date = day
    licence.status_changed_at = now
    licence.revision += 1
    licence.updated_at = now
    session.add(licence)
    session.flush()
    operation = STATUS_OPERATIONS[target]
    record(
        session,
        actor=actor,
        action=f"licence.{AUDIT_ACTIONS[target]}",
        entity_type="licence",
        entity_id=licence.id,
        old=old,
        new={"status": licence.status, "status_date": day, "status_category": category},
        reason=reason,
    )
    record_change(session, licence, operation)
    return licence


def suspend_licence(
    session: Session,
    actor: Principal,
    licence_id: int,
    reason: str | None,
    category: str | None = None,
    effective_date: Any = None,
) -> Licence:
    """暂扣 a valid licence (see change_status)."""
    return change_status(
        session,
        actor,
        licence_id,
        to=LicenceStatus.SUSPENDED,
        category=category or "under_investigation",
        effective_date=effective_date,
        reason=reason,
    )


def resume_licence(
    session: Session,
    actor: Principal,
    licence_id: int,
    reason: str | None = None,
    category: str | None = None,
    effective_date: Any = None,
) -> Licence:
    """恢复 a suspended licence (see change_status)."""
    return change_status(
        session, actor, licence_id, to=LicenceStatus.VALID, effective_date=effective_date, reason=reason
    )


def revoke_licence(
    session: Session,
    actor: Principal,
    licence_id: int,
    reason: str | None,
    category: str | None = None,
    effective_date: Any = None,
) -> Licence:
    """吊销 (an administrative penalty) a valid or suspended licence (see change_status)."""
    return change_status(
        session,
        actor,
        licence_id,
        to=LicenceStatus.REVOKED,
        category=category,
        effective_date=effective_date,
        reason=reason,
    )


# ---------------------------------------------------------------- reads


@dataclass(frozen=True)
class Page:
    items: list[Licence]
    total: int
    page: int
    limit: int


def effective_status(licence: Licence, on: date | None = None) -> str:
    """The stored status, or for a valid licence expired (过期) / not_yet_valid from its dates."""
    if licence.status != LicenceStatus.VALID:
        return licence.status
    day = on or today()
    if licence.valid_to is not None and licence.valid_to < day:
        return "expired"
    if licence.valid_from > day:
        return "not_yet_valid"
    return "valid"


def effective_status_date(licence: Licence, on: date | None = None) -> date | None:
    """The day the effective status took effect: expiry the day after valid_to, else the stored date
    (None for a valid licence that never changed status: it is valid since valid_from)."""
    status = effective_status(licence, on)
    if status == "expired" and licence.valid_to is not None:
        return licence.valid_to + timedelta(days=1)
    if status in ("valid", "not_yet_valid"):
        return licence.status_date or licence.valid_from
    return licence.status_date


def public_reason_category(licence: Licence) -> str | None:
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
            col(Licence.type_id).in_(_granted_type_ids(rights)),
        )
    if current_only:
        query = query.where(col(Licence.is_current).is_(True))
    if type_code:
        query = query.where(col(Licence.type_id).in_(_granted_type_ids([type_code])))
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
            t.issuer_department_id == actor.department_id, t.type_id.in_(_granted_type_ids(rights))
        )
    if type_code:
        query = query.where(t.type_id.in_(_granted_type_ids([type_code])))
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
    if not _can_view(session, actor, licence):
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
        _own(session, actor, licence)
    else:
        auth = live_authorisation(
            session, actor, authorisation_id, licence.holder_code, _type_of(session, licence)
        )
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
        _record_use(session, actor, auth, [licence], "read_full")
    return licence


# ---------------------------------------------------------------- 用证授权 (the holder's authorisation)

MAX_AUTHORISATION_DAYS = 366
CASE_NUMBER_RE = re.compile(r"^[0-9A-Za-z\-]{1,64}$")


def record_authorisation(session: Session, actor: Principal, data: Mapping[str, Any]) -> LicenceAuthorisation:
    """Record a holder's authorisation for the actor's department (audited). Bad input raises Invalid
    naming every field at once: holder code, known type codes, 办件编号, the department's own 实施编码,
    an end in the future but within a year, and how it was given."""
    if not actor.is_authenticated or actor.department_id is None or actor.role not in LOOKUP_ROLES:
        raise Forbidden("只有部门工作人员可以登记持证人的用证授权")
    dept = _department(session, actor.department_id)
    errors: dict[str, list[str]] = {}
    holder_code = str(data.get("holder_code") or "").strip().upper()
    if not (check_id_number(holder_code).ok or check_uscc(holder_code).ok):
        errors["holder_code"] = ["应为有效的公民身份号码或统一社会信用代码（校验位正确）"]
    codes = data.get("type_codes")
    if not isinstance(codes, list) or not codes or not all(isinstance(c, str) for c in codes):
        errors["type_codes"] = ["请列出授权使用的证照类型代码"]
        codes = []
    codes = sorted({c.strip().upper() for c in codes})
    known = set(session.exec(select(LicenceType.code).where(col(LicenceType.code).in_(codes))).all())
    if codes and known != set(codes):
        errors["type_codes"] = [f"未知的证照类型代码 {c}" for c in codes if c not in known]
    case_number = str(data.get("case_number") or "").strip()
    if not CASE_NUMBER_RE.match(case_number):
        errors["case_number"] = ["办件编号必填，1-64 位字母、数字或连字符"]
    task_code = str(data.get("task_code") or "").strip()
    if len(task_code) != 31 or not task_code.startswith(dept.uscc):
        errors["task_code"] = ["实施编码应为本部门的 31 位实施编码（以本部门统一社会信用代码开头）"]
    method = data.get("method")
    if method not in AUTHORISATION_METHODS:
        errors["method"] = [
            f"授权方式应为：{'、'.join(f'{k}（{v}）' for k, v in AUTHORISATION_METHODS.items())}"
        ]
    until = data.get("valid_until")
    now = utcnow()
    if isinstance(until, date) and not isinstance(until, datetime):
        # A day means the end of that day in China time.
        until = datetime(until.year, until.month, until.day, 23, 59, 59, tzinfo=CHINA_TZ)
    if not isinstance(until, datetime) or until.tzinfo is None:
        errors["valid_until"] = ["请填写授权有效期截止日期"]
    elif until <= now:
        errors["valid_until"] = ["授权有效期截止时间已过"]
    elif until > now + timedelta(days=MAX_AUTHORISATION_DAYS):
        errors["valid_until"] = [f"授权有效期最长 {MAX_AUTHORISATION_DAYS} 天"]
    if errors or not isinstance(until, datetime):
        raise Invalid("用证授权信息有误", errors)
    auth = LicenceAuthorisation(
        holder_code=holder_code,
        department_id=dept.id or 0,
        type_codes=codes,
        case_number=case_number,
        task_code=task_code,
        valid_until=until,
        method=str(method),
        recorded_by=actor.user_id,
    )
    session.add(auth)
    session.flush()
    record(
        session,
        actor=actor,
        action="licence_authorisation.create",
        entity_type="licence_authorisation",
        entity_id=auth.id,
        new={
            "holder_code": mask_code(holder_code),
            "type_codes": codes,
            "case_number": case_number,
            "task_code": task_code,
            "valid_until": until,
            "method": method,
        },
    )
    return auth


def live_authorisation(
    session: Session, actor: Principal, authorisation_id: int | None, holder_code: str, type_code: str
) -> LicenceAuthorisation:
    """The authorisation, when it is the actor's department's, for this holder and type, and live;
    else Forbidden with the reason in Chinese."""
    if not actor.is_authenticated:
        raise Forbidden("请先登录")
    if actor.department_id is None:
        raise Forbidden("用证由办件部门凭持证人的授权办理，本账号不属于任何部门")
    if authorisation_id is None:
        raise Forbidden("用证须有持证人的授权：请先登记授权（办件编号、实施编码、有效期），再凭授权编号查询")
    auth = session.get(LicenceAuthorisation, authorisation_id)
    if auth is None or auth.department_id != actor.department_id:
        raise Forbidden("授权不存在或不属于本部门")
    if auth.holder_code != holder_code:
        raise Forbidden("该授权不是此持证人给出的")
    if type_code not in auth.type_codes:
        raise Forbidden("该授权不包含此类证照")
    if auth.revoked_at is not None:
        raise Forbidden("该授权已被撤回")
    if auth.valid_until <= utcnow():
        until = auth.valid_until.astimezone(CHINA_TZ).strftime("%Y-%m-%d %H:%M")
        raise Forbidden(f"该授权已于 {until} 过期，请重新取得持证人授权")
    return auth


def _record_use(
    session: Session, actor: Principal, auth: LicenceAuthorisation, licences: Sequence[Licence], action: str
) -> None:
    for licence in licences:
        session.add(
            LicenceUse(
                licence_id=licence.id or 0,
                holder_code=licence.holder_code,
                department_id=auth.department_id,
                authorisation_id=auth.id or 0,
                action=action,
                user_id=actor.user_id,
            )
        )
    session.flush()


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
        .where(Material.licence_type_code == type_code, ImplementationEntry.department_id == dept.id)
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
            col(Licence.type_id).in_(_granted_type_ids([type_code])),
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
    _record_use(session, actor, auth, rows, "lookup")
    return list(rows)


# ---------------------------------------------------------------- the holder's 用证记录

HOLDER_CODE_MINUTES = 10
HOLDER_CODE_ATTEMPTS = 5
HOLDER_CODE_INTERVAL_SECONDS = 60


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def request_holder_code(session: Session, holder_code: str, sender: Any) -> None:
    """Send the holder a one-time code for its 用证记录 page (flushes; the caller commits).

    The answer never says whether the holder has licences. At most one code a minute per holder.
    """
    import secrets

    holder_code = (holder_code or "").strip().upper()
    if not (check_id_number(holder_code).ok or check_uscc(holder_code).ok):
        raise Invalid(
            "持证主体代码有误", {"holder_code": ["应为有效的公民身份号码或统一社会信用代码（校验位正确）"]}
        )
    now = utcnow()
    last = session.exec(
        select(HolderCode)
        .where(HolderCode.holder_digest == _digest(holder_code))
        .order_by(sa.desc(col(HolderCode.id)))
        .limit(1)
    ).first()
    if last is not None and (now - last.created_at).total_seconds() < HOLDER_CODE_INTERVAL_SECONDS:
        raise Conflict("验证码已发送，请 1 分钟后再试")
    code = f"{secrets.randbelow(1_000_000):06d}"
    session.add(
        HolderCode(
            holder_digest=_digest(holder_code),
            code_hash=_digest(f"{holder_code}:{code}"),
            expires_at=now + timedelta(minutes=HOLDER_CODE_MINUTES),
        )
    )
    session.flush()
    sender.send(
        holder_code,
        f"您的用证记录查询验证码为 {code}，{HOLDER_CODE_MINUTES} 分钟内有效。如非本人操作请忽略。",
    )


@dataclass(frozen=True)
class UseView:
    at: datetime
    department: str
    type_name: str
    number: str
    action: str
    case_number: str
    task_code: str
    method: str


def holder_uses(session: Session, holder_code: str, code: str) -> list[UseView]:
    """The holder's 用证记录 once its one-time code checks out (the code is then used up).

    A wrong code counts an attempt and raises Forbidden; after HOLDER_CODE_ATTEMPTS wrong tries, or
    once expired or used, the code is dead. The caller commits even on Forbidden, so attempts count.
    """
    import hmac

    holder_code = (holder_code or "").strip().upper()
    now = utcnow()
    challenge = session.exec(
        select(HolderCode)
        .where(HolderCode.holder_digest == _digest(holder_code), col(HolderCode.used_at).is_(None))
        .order_by(sa.desc(col(HolderCode.id)))
        .limit(1)
    ).first()
    if challenge is None or challenge.expires_at <= now or challenge.attempts >= HOLDER_CODE_ATTEMPTS:
        raise Forbidden("验证码无效或已过期，请重新获取")
    if not hmac.compare_digest(challenge.code_hash, _digest(f"{holder_code}:{(code or '').strip()}")):
        challenge.attempts += 1
        session.add(challenge)
        session.flush()
        raise Forbidden(f"验证码错误（还可尝试 {HOLDER_CODE_ATTEMPTS - challenge.attempts} 次）")
    challenge.used_at = now
    session.add(challenge)
    rows = session.exec(
        select(LicenceUse, Licence, LicenceAuthorisation, Department.name)
        .join(Licence, col(Licence.id) == col(LicenceUse.licence_id))
        .join(LicenceAuthorisation, col(LicenceAuthorisation.id) == col(LicenceUse.authorisation_id))
        .join(Department, col(Department.id) == col(LicenceUse.department_id))
        .where(LicenceUse.holder_code == holder_code)
        .order_by(sa.desc(col(LicenceUse.at)))
        .limit(500)
    ).all()
    session.flush()
    labels = {"lookup": "查询证照", "read_full": "调取完整证照信息"}
    return [
        UseView(
            use.at,
            dept_name,
            licence.type_name,
            licence.number,
            labels.get(use.action, use.action),
            auth.case_number,
            auth.task_code,
            AUTHORISATION_METHODS.get(auth.method, auth.method),
        )
        for use, licence, auth, dept_name in rows
    ]


# ---------------------------------------------------------------- tokens and verification


def ensure_signing_key(
    session: Session, keystore: KeyStore, dept_id: int, issuer_code: str
) -> LicenceSigningKey:
    """The department's current signing key, its public half registered (published) if it is new."""
    key = keystore.key_for(issuer_code)
    row = session.exec(select(LicenceSigningKey).where(LicenceSigningKey.kid == key.kid)).first()
    if row is None:
        row = LicenceSigningKey(
            kid=key.kid,
            algorithm=key.algorithm,
            department_id=dept_id,
            issuer_code=issuer_code,
            public_key=b64e(key.public_raw),
        )
        session.add(row)
        session.flush()
        record(
            session,
            actor=ANONYMOUS,
            action="licence_key.create",
            entity_type="licence_signing_key",
            entity_id=key.kid,
            new={"issuer_code": issuer_code, "algorithm": key.algorithm},
        )
    return row


def publish_keys(session: Session, keystore: KeyStore) -> int:
    """Publish the key of every department that has issued a licence but has none yet (keys made
    before issue 15 were only made when a QR code was first opened); returns how many were added."""
    have = set(session.exec(select(LicenceSigningKey.department_id)).all())
    added = 0
    for dept_id, issuer_code in session.exec(
        select(Licence.issuer_department_id, Licence.issuer_code).distinct()
    ).all():
        if dept_id not in have:
            ensure_signing_key(session, keystore, dept_id, issuer_code)
            have.add(dept_id)
            added += 1
    return added


def rotate_signing_key(
    session: Session, actor: Principal, keystore: KeyStore, issuer_code: str
) -> tuple[LicenceSigningKey | None, LicenceSigningKey]:
    """A new signing key for the department (administrators); the old one is retired, not deleted:
    it keeps verifying the tokens it signed until their licences expire (``verify_until``). Audited."""
    if not actor.is_admin:
        raise Forbidden("仅区级管理员可更换签名密钥")
    dept = session.exec(select(Department).where(Department.uscc == issuer_code)).first()
    if dept is None:
        raise NotFound(f"找不到统一社会信用代码为 {issuer_code} 的部门")
    old_row = None
    if keystore.has_key(issuer_code):
        old_row = ensure_signing_key(session, keystore, dept.id or 0, issuer_code)
    now = utcnow()
    if old_row is not None:
        ends = session.exec(
            select(func.count(), func.max(Licence.valid_to)).where(Licence.issuer_department_id == dept.id)
        ).one()
        open_ended = session.exec(
            select(func.count()).where(
                Licence.issuer_department_id == dept.id, col(Licence.valid_to).is_(None)
            )
        ).one()
        old_row.retired_at = now
        old_row.verify_until = None if open_ended else ends[1]
        session.add(old_row)
    keystore.rotate(issuer_code)
    new_row = ensure_signing_key(session, keystore, dept.id or 0, issuer_code)
    record(
        session,
        actor=actor,
        action="licence_key.rotate",
        entity_type="licence_signing_key",
        entity_id=new_row.kid,
        old={"kid": old_row.kid if old_row else None},
        new={"kid": new_row.kid, "issuer_code": issuer_code},
    )
    return old_row, new_row


def licence_token(
    session: Session, actor: Principal, keystore: KeyStore, licence_id: int
) -> tuple[Licence, str]:
    """A signed verification token for the QR code (issuing department or administrators)."""
    licence = get_licence(session, actor, licence_id)
    return licence, token_for(session, keystore, licence)


def token_for(session: Session, keystore: KeyStore, licence: Licence) -> str:
    ensure_signing_key(session, keystore, licence.issuer_department_id, licence.issuer_code)
    key = keystore.key_for(licence.issuer_code)
    claims = new_claims(
        key,
        status_index=licence.id or 0,
        identifier=licence.identifier,
        holder_name_masked=mask_name(licence.holder_name, licence.holder_code_type),
        holder_code_masked=mask_code(licence.holder_code),
        valid_from=licence.valid_from,
        valid_to=licence.valid_to,
    )
    return make_token(key, claims)


def published_keys(session: Session) -> list[PublicKey]:
    """Every published key, retired ones included: a retired key still verifies what it signed."""
    return [
        PublicKey(r.kid, r.algorithm, r.issuer_code, b64d(r.public_key))
        for r in session.exec(select(LicenceSigningKey)).all()
    ]


def key_rows(session: Session) -> list[LicenceSigningKey]:
    return list(session.exec(select(LicenceSigningKey).order_by(col(LicenceSigningKey.id))).all())


class KeyRing:
    """Per-process cache of the published keys: reloaded every 5 minutes; an unknown key id is
    looked up on its own at once, so a department's first key verifies in every worker immediately."""

    RELOAD_SECONDS = 300

    def __init__(self) -> None:
        self._verifier = Verifier({})
        self._loaded_at = 0.0
        self._lock = threading.Lock()

    def verifier(self, session: Session, kid_hint: str | None = None) -> Verifier:
        if self._loaded_at == 0.0 or time.monotonic() - self._loaded_at > self.RELOAD_SECONDS:
            with self._lock:
                self._verifier = Verifier({k.kid: k for k in published_keys(session)})
                self._loaded_at = time.monotonic()
        elif kid_hint and len(kid_hint) <= 32 and kid_hint not in self._verifier.keys:
            row = session.exec(select(LicenceSigningKey).where(LicenceSigningKey.kid == kid_hint)).first()
            if row is not None:
                key = PublicKey(row.kid, row.algorithm, row.issuer_code, b64d(row.public_key))
                with self._lock:
                    self._verifier = Verifier({**self._verifier.keys, key.kid: key})
        return self._verifier


def _kid_hint(token: str) -> str | None:
    import json

    try:
        payload = json.loads(b64d(token.split(".")[1]))
        return str(payload[0])
    except (ValueError, IndexError, TypeError, UnicodeDecodeError, KeyError):
        return None


PUBLIC_REASONS = {
    "suspended": "证照已被颁发机构暂扣（暂停使用）",
    "cancelled": "证照已注销",
    "revoked": "证照已被颁发机构吊销",
    "withdrawn": "证照已被颁发机构撤销",
    "void": "证照已挂失或作废",
    "superseded": "该版本已变更作废，请向持证人索取最新版本",
    "expired": "证照已过期",
    "not_yet_valid": "证照尚未到有效期起始日期",
}


@dataclass(frozen=True)
class Verification:
    """Outcome of an online check: ``valid`` only when the signature holds and the licence is in force.

    Everything here may be shown to anyone: ``reason`` and ``category_label`` come from fixed lists,
    never from the clerk's free text. ``checked_at`` is the time of the check.
    """

    valid: bool
    reason: str | None
    status: str | None = None
    status_label: str | None = None
    licence: Licence | None = None
    claims: TokenClaims | None = None
    type_name: str | None = None
    check: TokenCheck | None = None
    status_date: date | None = None
    category_label: str | None = None
    checked_at: datetime = field(default_factory=utcnow)


def verify_online(
    session: Session, keyring: KeyRing, token: str, *, audit: bool = True, channel: str = "page"
) -> Verification:
    """Check the signature, then the live state of the licence (a status change shows at once); audited."""
    verifier = keyring.verifier(session, _kid_hint(token) if isinstance(token, str) else None)
    check = verifier.check(token)
    result: Verification
    if not check.ok or check.claims is None:
        result = Verification(False, check.reason, check=check)
    else:
        claims = check.claims
        licence = session.get(Licence, claims.status_index)
        if licence is None or licence.identifier != claims.identifier:
            result = Verification(False, "登记库中没有该证照", claims=claims, check=check)
        else:
            status = effective_status(licence)
            result = Verification(
                status == "valid",
                PUBLIC_REASONS.get(status),
                status,
                EFFECTIVE_LABELS.get(status, status),
                licence,
                claims,
                licence.type_name,
                check,
                effective_status_date(licence),
                public_reason_category(licence) if status == licence.status else None,
            )
    if audit:
        # One row per verification in the verification log (see LicenceVerification for why not
        # the hash-chained audit log); a Core insert keeps /verify cheap. On PostgreSQL this
        # transaction commits asynchronously: a crash may lose the last fraction of a second of
        # verification records (never corrupts anything), and /verify does not wait for a disk flush.
        if session.get_bind().dialect.name == "postgresql":
            session.execute(sa.text("SET LOCAL synchronous_commit TO OFF"))
        session.execute(
            sa.insert(table_of(LicenceVerification)),
            {
                "at": utcnow(),
                "licence_id": result.licence.id if result.licence else None,
                "valid": result.valid,
                "status": result.status,
                "reason": (result.reason or "")[:300] or None,
                "kid": (check.kid or "")[:32] or None,
                "channel": channel,
            },
        )
    return result


def status_bits(session: Session, purpose: str) -> tuple[bytes, int]:
    """The bitstring (bit i set = licence id i has ended (注销/吊销/撤销/作废/superseded) for
    "revocation", or is 暂扣 for "suspension") and its length in bits (≥ 131,072)."""
    statuses = {
        "revocation": (*(s.value for s in ENDED_STATUSES), LicenceStatus.SUPERSEDED.value),
        "suspension": (LicenceStatus.SUSPENDED.value,),
    }[purpose]
    max_id = session.exec(select(func.max(Licence.id))).one() or 0
    size = max(131072, ((int(max_id) // 8) + 1) * 8)
    bits = bytearray(size // 8)
    for (lid,) in session.execute(sa.select(col(Licence.id)).where(col(Licence.status).in_(statuses))):
        # W3C Bitstring Status List: index 0 is the left-most (most significant) bit of the first byte.
        bits[lid // 8] |= 0x80 >> (lid % 8)
    return bytes(bits), size


def holder_code_digest(code: str) -> str:
    """Stable pseudonym of a holder code for logs and exports that need to count, not identify."""
    return hashlib.sha256(code.encode()).hexdigest()[:16]


def by_ids(session: Session, ids: Iterable[int]) -> list[Licence]:
    return list(session.exec(select(Licence).where(col(Licence.id).in_(list(ids)))).all())
