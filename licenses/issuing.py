"""Issuing and changing licences: validate a licence's fields against its type, issue (颁发), amend (变更,
a new version) and change status (暂扣, 恢复, 注销, 吊销, 撤销, 挂失/作废), each under the actor's
licence grant (licenses.grants).

Every service takes a Session, flushes and never commits. Every licence change writes its audit row
and its outbox row (licenses.outbox.record_change) in the caller's transaction.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from catalog.codes import check_id_number
from catalog.models import Department
from core.audit import record
from core.auth import Principal
from core.db import compare_and_set
from core.errors import Conflict, Forbidden, Invalid, NotFound
from core.types import utcnow
from licenses.areas import AreaCodes, AreaRule, structural_problem
from licenses.grants import NO_RIGHTS, get_department, require_own, require_rights
from licenses.identifiers import IdentifierError, make_identifier, new_serial
from licenses.masking import face_schema_of, mask_code, mask_face, mask_name
from licenses.models import (
    ANY_HOLDER,
    ENDED_STATUSES,
    HOLDER_CODE_TYPES,
    LIVE_STATUSES,
    REASON_CATEGORIES,
    STATUS_LABELS,
    TYPE_HOLDER_LABELS,
    Licence,
    LicenceStatus,
    LicenceType,
    LicenceTypeEntry,
)
from licenses.outbox import record_change
from licenses.signing import KeyStore
from licenses.types import EARLIEST_YEAR, add_years, check_holder_code, parse_date, today, validate_face
from licenses.verification import ensure_signing_key


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
    lt: LicenceType,
    data: Mapping[str, Any],
    *,
    default_area: str,
    on: date | None = None,
    area_rule: AreaRule = structural_problem,
) -> LicenceInput:
    """Validate one licence's fields against its type; raises Invalid with every field error at once.

    ``area_rule`` judges the 管辖属地 (licenses.areas): the services pass ``AreaCodes().rule(session)``,
    the divisions table with the structure of GB/T 2260; the default, the structure alone, is for
    callers without a database (unit tests, the validation benchmark).
    """
    errors: dict[str, list[str]] = {}
    unknown = set(data) - ISSUE_FIELDS
    for key in sorted(unknown):
        errors[key] = ["未知字段"]
    if not lt.is_active:
        errors["type_code"] = ["该证照类型已停用"]
    name = str(data.get("holder_name") or "").strip()
    if not name or len(name) > 200:
        errors["holder_name"] = ["持证主体名称必填，最多 200 字"]
    elif not any(ch.isalpha() for ch in name) or any(unicodedata.category(ch) == "Cf" for ch in name):
        # A name of combining marks only, or one holding direction overrides (U+202E shows the rest
        # reversed on every page and certificate), names nobody.
        errors["holder_name"] = ["持证主体名称应含文字，且不得含方向控制等不可见字符"]
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
    issue_date = parse_date(data.get("issue_date"), "issue_date", errors) or day
    if issue_date > day:
        errors["issue_date"] = ["颁发日期不能晚于今天"]
    elif issue_date.year < EARLIEST_YEAR:
        errors["issue_date"] = [f"颁发日期不能早于 {EARLIEST_YEAR} 年"]
    valid_from = parse_date(data.get("valid_from"), "valid_from", errors) or issue_date
    if not EARLIEST_YEAR <= valid_from.year <= day.year + 10:
        errors["valid_from"] = [f"有效期起始日期应在 {EARLIEST_YEAR} 年至 {day.year + 10} 年之间"]
    valid_to = parse_date(data.get("valid_to"), "valid_to", errors)
    if valid_to is None and lt.validity_years and "valid_to" not in errors:
        valid_to = add_years(valid_from, lt.validity_years) - timedelta(days=1)
    if valid_to is not None and valid_to < valid_from:
        errors["valid_to"] = ["有效期截止日期早于起始日期"]
    elif valid_to is not None and lt.validity_years and valid_to > add_years(valid_from, lt.validity_years):
        errors["valid_to"] = [f"该证照类型有效期最长 {lt.validity_years} 年"]
    area = str(data.get("area_code") or default_area)
    area_problem = area_rule(area)
    if area_problem is not None:
        errors["area_code"] = [area_problem]
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
        "face": mask_face(licence.face, face_schema_of(licence)),
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


def _flush_or_conflict(session: Session, message: str, number: str | None = None) -> None:
    """Flush; a unique key that a concurrent request took meanwhile is a Conflict (the caller rolls
    back), not a 500. With ``number``, a clash on uq_licence_number says so, naming the field."""
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError as exc:
        # PostgreSQL names the index in its message, SQLite the index's columns.
        clash = any(key in str(exc.orig) for key in ("uq_licence_number", "licence.number"))
        if number is not None and clash:
            raise number_taken(number) from None
        raise Conflict(message) from None


CHANGED_MEANWHILE = "该证照刚被其他人变更，请刷新后重试"


def number_taken(number: str) -> Conflict:
    """The answer to a 证照编号 another live licence of the same type and department holds."""
    return Conflict(
        f"证照编号 {number} 已被本部门另一张同类证照（有效或暂扣）使用，请核对证照编号",
        {"number": ["已被本部门另一张同类证照使用"]},
    )


def numbers_in_use(
    session: Session,
    department_id: int,
    keys: Iterable[tuple[int, str]],
    *,
    except_id: int | None = None,
) -> set[tuple[int, str]]:
    """Which of the (type id, 证照编号) pairs a live licence of the department holds (other than the
    licence row ``except_id``): the rule of the unique index uq_licence_number (licenses.models)."""
    wanted = set(keys)
    numbers = sorted({number for _type_id, number in wanted})
    found: set[tuple[int, str]] = set()
    for start in range(0, len(numbers), 5000):  # SQLite caps the number of bound parameters
        query = select(Licence.type_id, Licence.number).where(
            Licence.issuer_department_id == department_id,
            col(Licence.is_current).is_(True),
            col(Licence.status).in_([s.value for s in LIVE_STATUSES]),
            col(Licence.number).in_(numbers[start : start + 5000]),
        )
        if except_id is not None:
            query = query.where(Licence.id != except_id)
        found.update((type_id, number) for type_id, number in session.exec(query).all())
    return found & wanted


def _refuse_number_in_use(session: Session, licence: Licence, except_id: int | None = None) -> None:
    key = (licence.type_id, licence.number)
    if numbers_in_use(session, licence.issuer_department_id, [key], except_id=except_id):
        raise number_taken(licence.number)


def _take_next_revision(session: Session, licence: Licence) -> None:
    """Move the stored licence from the status and revision this request read to the next revision
    (core.db.compare_and_set), or Conflict. SELECT ... FOR UPDATE (``_locked``) makes concurrent changes
    of one licence wait for each other on PostgreSQL but does nothing on SQLite, where two identical
    suspensions both went on and the second failed on the outbox's idempotency key
    (identifier:revision) with a 500; here the second is refused."""
    expected = {"revision": licence.revision, "status": licence.status, "is_current": True}
    if not compare_and_set(session, Licence, licence.id, expected, revision=licence.revision + 1):
        raise Conflict(CHANGED_MEANWHILE, {"status": [STATUS_LABELS[LicenceStatus(licence.status)]]})


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
    dept = get_department(session, require_rights(session, actor, lt.code))
    inp = prepare_licence(
        lt,
        {k: v for k, v in data.items() if k != "type_code"},
        default_area=default_area,
        area_rule=AreaCodes().rule(session),
    )
    inp.task_code = issuing_service(session, lt, dept, inp.task_code)
    try:
        licence = new_licence(lt, dept, inp, created_by=actor.user_id)
    except IdentifierError as exc:
        raise Invalid(f"无法生成电子证照标识：{exc}", {"serial": [str(exc)]}) from None
    _refuse_number_in_use(session, licence)
    session.add(licence)
    # The unique index refuses the number to a concurrent issue that checked it before this commits.
    _flush_or_conflict(session, "相同流水号的证照已存在", number=licence.number)
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
    require_own(session, actor, old)
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
    # A new 管辖属地 is checked as at issue; one carried over from the old version by its structure
    # only: a code the divisions table no longer lists (retired since) must not block correcting a
    # holder's name, while one that never was a division code (999999) does not go on a new version.
    area_rule = AreaCodes().rule(session) if "area_code" in changes else structural_problem
    inp = prepare_licence(lt, base, default_area=old.area_code, area_rule=area_rule)
    dept = get_department(session, old.issuer_department_id)
    try:
        new = new_licence(lt, dept, inp, version=old.version + 1, serial=old.serial, created_by=actor.user_id)
    except IdentifierError as exc:
        raise Conflict(f"无法生成新版本标识：{exc}") from None
    new.previous_id = old.id
    _refuse_number_in_use(session, new, except_id=old.id)
    _take_next_revision(session, old)
    now = utcnow()
    old.status = LicenceStatus.SUPERSEDED.value
    old.status_reason = f"已变更为第 {new.version} 版" + (f"：{reason}" if reason else "")
    old.status_changed_at = now
    old.is_current = False
    old.revision += 1
    old.updated_at = now
    session.add(old)
    session.add(new)
    _flush_or_conflict(session, "该证照正在被其他人变更，请刷新后重试", number=new.number)
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
    day = parse_date(effective_date, "effective_date", errors) or today()
    if errors:
        raise Invalid("状态变更信息有误", errors)
    licence = _locked(session, licence_id)
    require_own(session, actor, licence)
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
    _take_next_revision(session, licence)
    now = utcnow()
    licence.status = target.value
    licence.status_reason = reason
    licence.status_category = category
    licence.status_date = day
    licence.status_changed_at = now
    licence.revision += 1
    licence.updated_at = now
    session.add(licence)
    _flush_or_conflict(session, CHANGED_MEANWHILE)
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
    try:
        record_change(session, licence, operation)
    except IntegrityError:  # the outbox's identifier:revision taken by a concurrent change
        raise Conflict(CHANGED_MEANWHILE) from None
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
