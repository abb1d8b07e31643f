"""Licence types (证照目录) and their rules: the face-field schema (照面信息), the validity rule, the holder
kind, the entries (实施编码) that produce or accept a type, and the checks a licence's fields must pass
against its type. Administrators maintain the types; everyone may read them.

Every service takes a Session, flushes and never commits; every change writes its audit row.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlmodel import Session, col, select

from catalog.codes import check_id_number, check_uscc, is_valid_uscc
from catalog.models import ImplementationEntry, Material
from core.audit import record
from core.auth import Principal
from core.csv_input import parse_iso_date
from core.errors import Conflict, Forbidden, Invalid, NotFound
from core.types import china_today, utcnow
from licenses.identifiers import TYPE_CODE_RE
from licenses.models import (
    AUTHORITY_LEVELS,
    CATEGORIES,
    FACE_FIELD_TYPES,
    HOLDER_KINDS,
    ORGANISATION_ONLY_FIELDS,
    TYPE_HOLDER_LABELS,
    Licence,
    LicenceType,
    LicenceTypeEntry,
)

FACE_KEY_RE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
MAX_YEARS = 100
MAX_FACE_FIELDS, MAX_FACE_CHOICES, MAX_FACE_LABEL = 100, 200, 100
FACE_INTEGER_DIGITS = 15  # of an integer face field: below 2**53, which every JSON reader keeps exactly
FACE_INTEGER_MAX = 10**FACE_INTEGER_DIGITS - 1
EARLIEST_YEAR = 1900


def today() -> date:
    """Licence dates are calendar days in China Standard Time."""
    return china_today()


def require_admin(actor: Principal) -> None:
    if not actor.is_admin:
        raise Forbidden("仅区级管理员可维护证照目录")


def type_of(session: Session, licence: Licence) -> str:
    """The code of the licence's type now. Usually licence.type_code; after two duplicate types were
    merged the licence keeps the code it was issued under (it is in its identifier) but belongs to
    the surviving type, whose grants then apply."""
    lt = session.get(LicenceType, licence.type_id)
    return lt.code if lt is not None else licence.type_code


def granted_type_ids(rights: Iterable[str]) -> Any:
    """Ids of the types with these codes (a subquery): licences are matched by type id, see type_of."""
    return select(LicenceType.id).where(col(LicenceType.code).in_(sorted(rights)))


def validate_face_schema(schema: Any, holder_kind: str | None = None) -> list[dict[str, Any]]:
    """Normalise a face-field schema: a list of {key, label, type, required, max_length, choices, for}.

    ``for`` ("111" or "001") limits a field to holders of that kind; 法定代表人 is for organisations
    only, so a natural-person type may not carry it and an either-kind type gets it as ``for: 001``.
    """
    if schema is None:
        return []
    if not isinstance(schema, list):
        raise Invalid("照面字段定义应为列表", {"face_schema": ["应为列表"]})
    if len(schema) > MAX_FACE_FIELDS:
        raise Invalid("照面字段定义有误", {"face_schema": [f"最多 {MAX_FACE_FIELDS} 个字段"]})
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
        elif len(raw["label"].strip()) > MAX_FACE_LABEL:
            errors[where] = [f"label（字段名称）最多 {MAX_FACE_LABEL} 字"]
        elif not isinstance(raw.get("required", False), bool):
            # bool("false") is True: a string would make an optional field required.
            errors[where] = ["required 应为 true 或 false"]
        elif kind not in FACE_FIELD_TYPES:
            errors[where] = [f"type 应为 {'/'.join(FACE_FIELD_TYPES)} 之一"]
        elif kind == "enum" and not (
            isinstance(raw.get("choices"), list)
            and raw["choices"]
            and all(isinstance(c, str) for c in raw["choices"])
        ):
            errors[where] = ["enum 字段需要非空的 choices 列表"]
        elif kind == "enum" and not (
            len(raw["choices"]) <= MAX_FACE_CHOICES
            and all(c.strip() == c and 0 < len(c) <= MAX_FACE_LABEL for c in raw["choices"])
            and len(set(raw["choices"])) == len(raw["choices"])
        ):
            # An empty choice reads as "not filled", so a required field holding only it could never be met.
            errors[where] = [
                f"choices 最多 {MAX_FACE_CHOICES} 项，每项 1-{MAX_FACE_LABEL} 字、首尾无空格、不重复"
            ]
        elif "max_length" in raw and not (
            isinstance(raw["max_length"], int)
            and not isinstance(raw["max_length"], bool)
            and 1 <= raw["max_length"] <= 5000
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
            if kind in ("string", "text", "person"):
                item["max_length"] = raw.get("max_length", {"string": 200, "text": 2000, "person": 50}[kind])
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
        if not isinstance(data["is_active"], bool):  # bool("false") is True
            errors["is_active"] = ["应为 true 或 false"]
        out["is_active"] = data["is_active"] is True
    if errors:
        raise Invalid("证照类型信息有误", errors)
    return out


def create_licence_type(session: Session, actor: Principal, data: Mapping[str, Any]) -> LicenceType:
    """Add a 证照目录 entry (administrators). The code must be new."""
    require_admin(actor)
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
    require_admin(actor)
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
    require_admin(actor)
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


def parse_date(value: Any, field_name: str, errors: dict[str, list[str]]) -> date | None:
    if value is None or value == "":
        return None
    if isinstance(value, date):
        return value
    try:
        # Only YYYY-MM-DD, as the message says: date.fromisoformat alone also reads 20260302.
        return parse_iso_date(str(value))
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
        if kind in ("string", "text", "person"):
            if not isinstance(value, str):
                errors[f"face.{key}"] = [f"{spec['label']}应为文本"]
            elif len(value) > spec.get("max_length", 200):
                errors[f"face.{key}"] = [f"{spec['label']}最多 {spec.get('max_length', 200)} 字"]
            else:
                out[key] = value
        elif kind == "integer":
            # ASCII digits only ("²" passed isdigit() and int() raised: a 500), and within what a
            # JSON reader keeps exactly (2**53): the face is signed and synced to the city registry.
            if isinstance(value, bool) or not (
                isinstance(value, int) or (isinstance(value, str) and value.isascii() and value.isdigit())
            ):
                errors[f"face.{key}"] = [f"{spec['label']}应为整数"]
            elif (isinstance(value, str) and len(value) > FACE_INTEGER_DIGITS) or (
                isinstance(value, int) and abs(value) > FACE_INTEGER_MAX
            ):
                errors[f"face.{key}"] = [f"{spec['label']}应为不超过 {FACE_INTEGER_DIGITS} 位的整数"]
            else:
                out[key] = int(value)
        elif kind == "date":
            parsed = parse_date(value, f"face.{key}", errors)
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
