"""Licence use cases: types, issue, amend, suspend/resume/revoke, scoped reads, lookup, verification.

Every service takes a Session, flushes and never commits. Every licence change writes its audit row
and its outbox row (``record_change``) in the caller's transaction, so a change and the record the
sync sends are committed together or not at all.

Permissions (``Principal``): department staff (部门编辑/部门审核) issue and change the licences of their
own department and are the only ones who read holder data whole (each such read audited);
administrators maintain licence types and see every licence masked; everyone may verify.
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
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, func, select

from catalog.codes import check_id_number, check_uscc, is_valid_uscc
from catalog.models import Department, ImplementationEntry, Material
from core.audit import record
from core.auth import ANONYMOUS, Principal, Role
from core.errors import Conflict, Forbidden, Invalid, NotFound
from core.types import utcnow
from licenses.identifiers import (
    TYPE_CODE_RE,
    IdentifierError,
    make_identifier,
    new_serial,
)
from licenses.masking import mask_code, mask_name
from licenses.models import (
    AUTHORITY_LEVELS,
    CATEGORIES,
    FACE_FIELD_TYPES,
    HOLDER_CODE_TYPES,
    STATUS_LABELS,
    Licence,
    LicenceOutbox,
    LicenceSigningKey,
    LicenceStatus,
    LicenceType,
    LicenceTypeEntry,
    LicenceVerification,
)
from licenses.signing import KeyStore, PublicKey, TokenCheck, TokenClaims, Verifier, make_token, new_claims
from licenses.sync import current_request_id

CHINA = ZoneInfo("Asia/Shanghai")
STAFF_ROLES = (Role.DEPT_EDITOR, Role.DEPT_REVIEWER)
FACE_KEY_RE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
AREA_RE = re.compile(r"^\d{6}$")
MAX_YEARS = 100
EARLIEST_YEAR = 1900


def today() -> date:
    """Licence dates are calendar days in China Standard Time."""
    return utcnow().astimezone(CHINA).date()


# ---------------------------------------------------------------- permissions


def _require_staff(actor: Principal) -> int:
    if actor.role not in STAFF_ROLES or actor.department_id is None:
        raise Forbidden("只有部门工作人员可以办理本部门的电子证照")
    return actor.department_id


def _require_admin(actor: Principal) -> None:
    if not actor.is_admin:
        raise Forbidden("仅区级管理员可维护证照目录")


def _can_view(actor: Principal, licence: Licence) -> bool:
    return actor.is_admin or (
        actor.role in STAFF_ROLES and actor.department_id == licence.issuer_department_id
    )


def _own(actor: Principal, licence: Licence) -> None:
    if actor.role not in STAFF_ROLES or actor.department_id != licence.issuer_department_id:
        raise Forbidden("只有颁发该证照的部门可以执行此操作")


# ---------------------------------------------------------------- licence types


def validate_face_schema(schema: Any) -> list[dict[str, Any]]:
    """Normalise a face-field schema: a list of {key, label, type, required, max_length, choices}."""
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
        unknown = set(raw) - {"key", "label", "type", "required", "max_length", "choices"}
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
        if hct not in HOLDER_CODE_TYPES:
            errors["holder_code_type"] = [
                "持证主体代码类型应为 111（公民身份号码）或 001（统一社会信用代码）"
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
            out["face_schema"] = validate_face_schema(data["face_schema"])
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
    fields = _type_fields({k: v for k, v in data.items() if k != "code"}, partial=True)
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
        .join(ImplementationEntry, ImplementationEntry.id == LicenceTypeEntry.entry_id, isouter=True)  # type: ignore[arg-type]
        .where(LicenceTypeEntry.licence_type_id == lt.id)
    ).all()
    out = [
        TypeEntryView(link.task_code, link.role, link.entry_id, name, link.material_name)
        for link, name in rows
    ]
    seen = {(v.task_code, v.role) for v in out}
    for entry, material in session.exec(
        select(ImplementationEntry, Material)
        .join(Material, Material.entry_id == ImplementationEntry.id)  # type: ignore[arg-type]
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


def validate_face(lt: LicenceType, face: Any) -> dict[str, Any]:
    """Check 照面信息 against the type's schema: no unknown fields, required present, values typed."""
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
    hct = data.get("holder_code_type") or lt.holder_code_type
    if hct != lt.holder_code_type:
        errors["holder_code_type"] = [
            f"该证照类型的持证主体代码类型为 {lt.holder_code_type}"
            f"（{HOLDER_CODE_TYPES[lt.holder_code_type]}）"
        ]
    problem = check_holder_code(lt.holder_code_type, code)
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
        face = validate_face(lt, data.get("face"))
    except Invalid as exc:
        errors.update(exc.details)
    if errors:
        raise Invalid("证照信息有误", errors)
    return LicenceInput(
        name, code, lt.holder_code_type, number, issue_date, valid_from, valid_to, area, face, serial
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
    session: Session, actor: Principal, data: Mapping[str, Any], *, default_area: str = "321203"
) -> Licence:
    """Issue a licence in the actor's department: validate, assign the identifier, audit, outbox."""
    department_id = _require_staff(actor)
    dept = _department(session, department_id)
    type_code = str(data.get("type_code") or "")
    lt = session.exec(select(LicenceType).where(LicenceType.code == type_code)).first()
    if lt is None:
        raise Invalid("证照类型不存在", {"type_code": [f"未知的证照类型代码 {type_code}"]})
    inp = prepare_licence(lt, {k: v for k, v in data.items() if k != "type_code"}, default_area=default_area)
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
    return licence


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
    _own(actor, old)
    if old.status == LicenceStatus.REVOKED:
        raise Conflict("已吊销/注销的证照不能变更")
    if old.status == LicenceStatus.SUPERSEDED or not old.is_current:
        raise Conflict("该版本已被新版本替代，请变更最新版本")
    if old.status == LicenceStatus.SUSPENDED:
        raise Conflict("已暂停的证照请先恢复，再办理变更")
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


def _change_status(
    session: Session,
    actor: Principal,
    licence_id: int,
    *,
    to: LicenceStatus,
    allowed_from: tuple[LicenceStatus, ...],
    operation: str,
    reason: str | None,
    reason_required: bool,
) -> Licence:
    reason = (reason or "").strip() or None
    if reason_required and not reason:
        raise Invalid("请填写原因", {"reason": ["必填"]})
    if reason and len(reason) > 500:
        raise Invalid("原因最多 500 字", {"reason": ["最多 500 字"]})
    licence = _locked(session, licence_id)
    _own(actor, licence)
    if licence.status not in allowed_from:
        label = STATUS_LABELS[LicenceStatus(licence.status)]
        raise Conflict(f"证照当前状态为“{label}”，不能执行此操作")
    old_status = licence.status
    now = utcnow()
    licence.status = to.value
    licence.status_reason = reason
    licence.status_changed_at = now
    licence.revision += 1
    licence.updated_at = now
    session.add(licence)
    session.flush()
    record(
        session,
        actor=actor,
        action=f"licence.{operation}",
        entity_type="licence",
        entity_id=licence.id,
        old={"status": old_status},
        new={"status": licence.status},
        reason=reason,
    )
    record_change(session, licence, operation)
    return licence


def suspend_licence(session: Session, actor: Principal, licence_id: int, reason: str | None) -> Licence:
    """暂停 a valid licence; needs a reason; audited; writes the outbox row."""
    return _change_status(
        session,
        actor,
        licence_id,
        to=LicenceStatus.SUSPENDED,
        allowed_from=(LicenceStatus.VALID,),
        operation="suspend",
        reason=reason,
        reason_required=True,
    )


def resume_licence(session: Session, actor: Principal, licence_id: int, reason: str | None = None) -> Licence:
    """恢复 a suspended licence; audited; writes the outbox row."""
    return _change_status(
        session,
        actor,
        licence_id,
        to=LicenceStatus.VALID,
        allowed_from=(LicenceStatus.SUSPENDED,),
        operation="resume",
        reason=reason,
        reason_required=False,
    )


def revoke_licence(session: Session, actor: Principal, licence_id: int, reason: str | None) -> Licence:
    """吊销/注销 a valid or suspended licence (final); needs a reason; audited; writes the outbox row."""
    return _change_status(
        session,
        actor,
        licence_id,
        to=LicenceStatus.REVOKED,
        allowed_from=(LicenceStatus.VALID, LicenceStatus.SUSPENDED),
        operation="revoke",
        reason=reason,
        reason_required=True,
    )


# ---------------------------------------------------------------- reads


@dataclass(frozen=True)
class Page:
    items: list[Licence]
    total: int
    page: int
    limit: int


def effective_status(licence: Licence, on: date | None = None) -> str:
    """valid / suspended / revoked / superseded, plus expired and not_yet_valid from the dates."""
    if licence.status != LicenceStatus.VALID:
        return licence.status
    day = on or today()
    if licence.valid_to is not None and licence.valid_to < day:
        return "expired"
    if licence.valid_from > day:
        return "not_yet_valid"
    return "valid"


EFFECTIVE_LABELS = {
    **{s.value: label for s, label in STATUS_LABELS.items()},
    "expired": "已过期",
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
    if not (actor.is_admin or (actor.role in STAFF_ROLES and actor.department_id is not None)):
        raise Forbidden("只有部门工作人员和管理员可以查看证照")
    query = select(Licence)
    if not actor.is_admin:
        query = query.where(Licence.issuer_department_id == actor.department_id)
    if current_only:
        query = query.where(col(Licence.is_current).is_(True))
    if type_code:
        query = query.where(Licence.type_code == type_code)
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
    if not (actor.is_admin or (actor.role in STAFF_ROLES and actor.department_id is not None)):
        raise Forbidden("只有部门工作人员和管理员可以导出证照")
    query = sa.select(Licence.__table__).where(Licence.__table__.c.is_current.is_(True))  # type: ignore[attr-defined]
    t = Licence.__table__.c  # type: ignore[attr-defined]
    if not actor.is_admin:
        query = query.where(t.issuer_department_id == actor.department_id)
    if type_code:
        query = query.where(t.type_code == type_code)
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
    if not _can_view(actor, licence):
        raise Forbidden("只能查看本部门颁发的证照")
    return licence


def read_full_licence(
    session: Session, actor: Principal, licence_id: int, purpose: str | None = None
) -> Licence:
    """Holder data in full: the issuing department only, and every read is audited."""
    licence = session.get(Licence, licence_id)
    if licence is None:
        raise NotFound("证照不存在")
    _own(actor, licence)
    record(
        session,
        actor=actor,
        action="licence.read_full",
        entity_type="licence",
        entity_id=licence.id,
        reason=purpose or "查看完整持证信息",
    )
    return licence


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
    if actor.is_admin:
        return True
    if actor.role not in STAFF_ROLES or actor.department_id is None:
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
        .join(ImplementationEntry, ImplementationEntry.id == Material.entry_id)  # type: ignore[arg-type]
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


def lookup_licences(session: Session, actor: Principal, *, holder_code: str, type_code: str) -> list[Licence]:
    """证照联办 lookup: an applicant's currently valid licences of one type (any issuer); audited.

    Allowed to department staff whose entries accept the type as a material (or who issue it), and to
    administrators. The caller already knows the holder code; names stay masked in the response.
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
    day = today()
    rows = session.exec(
        select(Licence)
        .where(
            Licence.holder_code == holder_code,
            Licence.type_code == type_code,
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
        new={"holder_code": mask_code(holder_code), "found": [r.identifier for r in rows]},
    )
    return list(rows)


# ---------------------------------------------------------------- tokens and verification


def ensure_signing_key(
    session: Session, keystore: KeyStore, dept_id: int, issuer_code: str
) -> LicenceSigningKey:
    """The department's current signing key, registered (public half) on first use."""
    key = keystore.key_for(issuer_code)
    row = session.exec(select(LicenceSigningKey).where(LicenceSigningKey.kid == key.kid)).first()
    if row is None:
        from licenses.signing import b64e

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
    from licenses.signing import b64d

    return [
        PublicKey(r.kid, r.algorithm, r.issuer_code, b64d(r.public_key))
        for r in session.exec(
            select(LicenceSigningKey).where(col(LicenceSigningKey.retired_at).is_(None))
        ).all()
    ]


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
            row = session.exec(
                select(LicenceSigningKey).where(
                    LicenceSigningKey.kid == kid_hint, col(LicenceSigningKey.retired_at).is_(None)
                )
            ).first()
            if row is not None:
                from licenses.signing import b64d

                key = PublicKey(row.kid, row.algorithm, row.issuer_code, b64d(row.public_key))
                with self._lock:
                    self._verifier = Verifier({**self._verifier.keys, key.kid: key})
        return self._verifier


def _kid_hint(token: str) -> str | None:
    import json

    from licenses.signing import b64d

    try:
        payload = json.loads(b64d(token.split(".")[1]))
        return str(payload[0])
    except (ValueError, IndexError, TypeError, UnicodeDecodeError, KeyError):
        return None


@dataclass(frozen=True)
class Verification:
    """Outcome of an online check: ``valid`` only when the signature holds and the licence is in force."""

    valid: bool
    reason: str | None
    status: str | None = None
    status_label: str | None = None
    licence: Licence | None = None
    claims: TokenClaims | None = None
    type_name: str | None = None
    check: TokenCheck | None = None


def verify_online(
    session: Session, keyring: KeyRing, token: str, *, audit: bool = True, channel: str = "page"
) -> Verification:
    """Check the signature, then the live state of the licence (revocation shows immediately); audited."""
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
            label = EFFECTIVE_LABELS.get(status, status)
            reasons = {
                "suspended": "证照已被颁发机构暂停使用",
                "revoked": "证照已被颁发机构吊销或注销",
                "superseded": "该版本已变更作废，请向持证人索取最新版本",
                "expired": "证照已超过有效期",
                "not_yet_valid": "证照尚未到有效期起始日期",
            }
            reason = reasons.get(status)
            if reason and licence.status_reason and status in ("suspended", "revoked"):
                reason = f"{reason}（{licence.status_reason}）"
            result = Verification(
                status == "valid", reason, status, label, licence, claims, licence.type_name, check
            )
    if audit:
        # One row per verification in the verification log (see LicenceVerification for why not
        # the hash-chained audit log); a Core insert keeps /verify cheap. On PostgreSQL this
        # transaction commits asynchronously: a crash may lose the last fraction of a second of
        # verification records (never corrupts anything), and /verify does not wait for a disk flush.
        if session.get_bind().dialect.name == "postgresql":
            session.execute(sa.text("SET LOCAL synchronous_commit TO OFF"))
        session.execute(
            sa.insert(LicenceVerification.__table__),  # type: ignore[attr-defined]
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
    """The bitstring (bit i set = licence id i is revoked/suspended) and its length in bits (≥ 131,072)."""
    statuses = {
        "revocation": (LicenceStatus.REVOKED.value, LicenceStatus.SUPERSEDED.value),
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
