"""The holder's authorisation to use its licences (用证授权) and the holder's own record of the uses
(用证记录): a department records an authorisation (办件编号, 实施编码, valid until, how it was given); every
lookup and full read by another department needs a live one and is recorded as a use; the holder reads
its uses with a one-time code. The holder (on that page) or the department that recorded an
authorisation may withdraw it (授权撤回); uses relying on it are refused from then on.

Every service takes a Session, flushes and never commits; every write is audited.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from catalog.codes import check_id_number, check_uscc
from catalog.models import Department, EntryStatus, ImplementationEntry
from core.audit import record
from core.auth import ANONYMOUS, Principal, Role
from core.errors import Conflict, Forbidden, Invalid, NotFound
from core.types import CHINA_TZ, utcnow
from licenses.grants import get_department
from licenses.masking import mask_code
from licenses.models import (
    AUTHORISATION_METHODS,
    WITHDRAWN_VIA,
    HolderCode,
    Licence,
    LicenceAuthorisation,
    LicenceType,
    LicenceTypeEntry,
    LicenceUse,
)

# Who may look up a holder's licences for a case (证照联办): department staff of any kind.
LOOKUP_ROLES = (Role.DEPT_EDITOR, Role.DEPT_REVIEWER, Role.LICENCE_CLERK)
MAX_AUTHORISATION_DAYS = 366
CASE_NUMBER_RE = re.compile(r"^[0-9A-Za-z\-]{1,64}$")


def record_authorisation(session: Session, actor: Principal, data: Mapping[str, Any]) -> LicenceAuthorisation:
    """Record a holder's authorisation for the actor's department (audited). Bad input raises Invalid
    naming every field at once: holder code, known type codes, 办件编号, the department's own 实施编码,
    an end in the future but within a year, and how it was given."""
    if not actor.is_authenticated or actor.department_id is None or actor.role not in LOOKUP_ROLES:
        raise Forbidden("只有部门工作人员可以登记持证人的用证授权")
    dept = get_department(session, actor.department_id)
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
    elif not _known_task_code(session, dept.id, task_code):
        # The authorisation is for a case of a service the department really offers: a code made up
        # with the right prefix would let any department record consent for anything.
        errors["task_code"] = ["本部门没有该实施编码的已发布事项或证照关联"]
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
        raise Forbidden(withdrawn_reason(auth))
    if auth.valid_until <= utcnow():
        until = auth.valid_until.astimezone(CHINA_TZ).strftime("%Y-%m-%d %H:%M")
        raise Forbidden(f"该授权已于 {until} 过期，请重新取得持证人授权")
    return auth


def record_use(
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


def check_holder_entry(session: Session, holder_code: str, code: str) -> HolderCode:
    """The holder's one-time code checked and used up; the row is the proof the page then holds
    (``holder_proof_id``) to withdraw an authorisation within HOLDER_CODE_MINUTES.

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
    session.flush()
    return challenge


def uses_of(session: Session, holder_code: str) -> list[UseView]:
    """The uses of the holder's licences, newest first (callers have checked the holder's code)."""
    rows = session.exec(
        select(LicenceUse, Licence, LicenceAuthorisation, Department.name)
        .join(Licence, col(Licence.id) == col(LicenceUse.licence_id))
        .join(LicenceAuthorisation, col(LicenceAuthorisation.id) == col(LicenceUse.authorisation_id))
        .join(Department, col(Department.id) == col(LicenceUse.department_id))
        .where(LicenceUse.holder_code == holder_code)
        .order_by(sa.desc(col(LicenceUse.at)))
        .limit(500)
    ).all()
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


@dataclass(frozen=True)
class AuthorisationView:
    """One of the holder's authorisations as its 用证记录 page shows it."""

    id: int
    department: str
    type_names: list[str]
    case_number: str
    task_code: str
    valid_until: datetime
    method: str
    state: str  # 有效 / 已过期 / 已撤回（…）
    live: bool


def withdrawn_reason(auth: LicenceAuthorisation) -> str:
    """The Chinese reason a use under a withdrawn authorisation is refused: when and by whom."""
    when = auth.revoked_at.astimezone(CHINA_TZ).strftime("%Y-%m-%d %H:%M") if auth.revoked_at else ""
    who = WITHDRAWN_VIA.get(auth.revoked_via or "", "")
    by = f"由{who}" if who else ""
    return f"该授权已于 {when} {by}撤回，不能再凭此授权用证；如仍需用证，请重新取得持证人授权"


def holder_authorisations(session: Session, holder_code: str) -> list[AuthorisationView]:
    """The authorisations the holder gave, newest first (callers have checked the holder's code)."""
    holder_code = (holder_code or "").strip().upper()
    rows = session.exec(
        select(LicenceAuthorisation, Department.name)
        .join(Department, col(Department.id) == col(LicenceAuthorisation.department_id))
        .where(LicenceAuthorisation.holder_code == holder_code)
        .order_by(sa.desc(col(LicenceAuthorisation.id)))
        .limit(200)
    ).all()
    codes = sorted({c for auth, _ in rows for c in auth.type_codes})
    names = dict(
        session.exec(select(LicenceType.code, LicenceType.name).where(col(LicenceType.code).in_(codes))).all()
    )
    now = utcnow()
    out = []
    for auth, dept_name in rows:
        if auth.revoked_at is not None:
            who = WITHDRAWN_VIA.get(auth.revoked_via or "", "")
            state = f"已撤回（{who}，{auth.revoked_at.astimezone(CHINA_TZ).strftime('%Y-%m-%d %H:%M')}）"
        elif auth.valid_until <= now:
            state = "已过期"
        else:
            state = "有效"
        out.append(
            AuthorisationView(
                auth.id or 0,
                dept_name,
                [names.get(c, c) for c in auth.type_codes],
                auth.case_number,
                auth.task_code,
                auth.valid_until,
                AUTHORISATION_METHODS.get(auth.method, auth.method),
                state,
                state == "有效",
            )
        )
    return out


def _withdraw(
    session: Session,
    actor: Principal,
    auth: LicenceAuthorisation,
    via: str,
    reason: str | None,
) -> LicenceAuthorisation:
    if auth.revoked_at is not None:
        raise Conflict(withdrawn_reason(auth))
    auth.revoked_at = utcnow()
    auth.revoked_via = via
    auth.revoked_by = actor.user_id if via == "department" else None
    session.add(auth)
    session.flush()
    record(
        session,
        actor=actor,
        action="licence_authorisation.withdraw",
        entity_type="licence_authorisation",
        entity_id=auth.id,
        old={"revoked_at": None},
        new={"revoked_at": auth.revoked_at, "revoked_via": via, "case_number": auth.case_number},
        reason=reason,
    )
    return auth


def withdraw_authorisation(
    session: Session, actor: Principal, authorisation_id: int, *, reason: str | None = None
) -> LicenceAuthorisation:
    """授权撤回 by the department that recorded the authorisation (any of its staff who may record
    one); audited. From then on every lookup or full read relying on it is refused (403) with the
    reason. Withdrawing twice is a Conflict; another department's authorisation is Forbidden."""
    if not actor.is_authenticated or actor.department_id is None or actor.role not in LOOKUP_ROLES:
        raise Forbidden("只有登记该授权的部门的工作人员可以撤回授权")
    reason = (reason or "").strip() or None
    if reason is not None and len(reason) > 500:
        raise Invalid("撤回原因有误", {"reason": ["撤回原因最多 500 字"]})
    auth = session.exec(
        select(LicenceAuthorisation).where(LicenceAuthorisation.id == authorisation_id).with_for_update()
    ).first()
    if auth is None:
        raise NotFound("授权不存在")
    if auth.department_id != actor.department_id:
        raise Forbidden("该授权不是本部门登记的，只有登记授权的部门或持证人本人可以撤回")
    return _withdraw(session, actor, auth, "department", reason)


def withdraw_authorisation_as_holder(
    session: Session, holder_code: str, proof_id: int | None, authorisation_id: int
) -> LicenceAuthorisation:
    """授权撤回 by the holder on its 用证记录 page; audited (the actor is anonymous: the holder has no
    account, its one-time code is the proof). ``proof_id`` is the one-time code the page was opened
    with (check_holder_entry): it must be the holder's and used within the last HOLDER_CODE_MINUTES."""
    holder_code = (holder_code or "").strip().upper()
    challenge = session.get(HolderCode, proof_id) if proof_id is not None else None
    if (
        challenge is None
        or challenge.holder_digest != _digest(holder_code)
        or challenge.used_at is None
        or challenge.used_at + timedelta(minutes=HOLDER_CODE_MINUTES) <= utcnow()
    ):
        raise Forbidden("验证已过期，请重新获取验证码后再撤回授权")
    auth = session.exec(
        select(LicenceAuthorisation).where(LicenceAuthorisation.id == authorisation_id).with_for_update()
    ).first()
    if auth is None or auth.holder_code != holder_code:
        raise NotFound("授权不存在")
    return _withdraw(session, ANONYMOUS, auth, "holder", "持证人在用证记录页面撤回授权")


def _known_task_code(session: Session, department_id: int | None, task_code: str) -> bool:
    """Whether the 实施编码 is one of the department's published implementation entries, or one an
    administrator linked to a licence type (licence_type_entry)."""
    entry = session.exec(
        select(ImplementationEntry.id).where(
            ImplementationEntry.department_id == department_id,
            ImplementationEntry.task_code == task_code,
            ImplementationEntry.status == EntryStatus.PUBLISHED.value,
        )
    ).first()
    if entry is not None:
        return True
    link = session.exec(select(LicenceTypeEntry.id).where(LicenceTypeEntry.task_code == task_code)).first()
    return link is not None
