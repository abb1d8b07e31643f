"""The holder's authorisation to use its licences (用证授权) and the holder's own record of the uses
(用证记录): a department records an authorisation (办件编号, 实施编码, valid until, how it was given); every
lookup and full read by another department needs a live one and is recorded as a use; the holder reads
its uses with a one-time code.

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
from catalog.models import Department
from core.audit import record
from core.auth import Principal, Role
from core.errors import Conflict, Forbidden, Invalid
from core.types import CHINA_TZ, utcnow
from licenses.grants import get_department
from licenses.masking import mask_code
from licenses.models import (
    AUTHORISATION_METHODS,
    HolderCode,
    Licence,
    LicenceAuthorisation,
    LicenceType,
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
