"""User and API token administration: the one service layer the admin pages, the CLI and the demo call.

Every write takes the acting principal, checks that it may act, and writes its audit row in the same
transaction (services flush, the caller commits). The CLI acts as ``cli_principal()``, a system
principal whose name records the operating-system account that ran the command.
"""

from __future__ import annotations

import getpass
import re
import secrets
from dataclasses import dataclass

import sqlalchemy as sa
from sqlmodel import Session, col, select

from core.audit import record
from core.auth import (
    ApiToken,
    Principal,
    Role,
    User,
    end_sessions,
    hash_password,
    token_digest,
    user_by_name,
)
from core.db import MAX_DB_ID, id_of
from core.errors import Conflict, Forbidden, Invalid, NotFound
from core.types import utcnow

USERNAME_RE = re.compile(r"^[A-Za-z0-9_.\-]{3,60}$")
MIN_PASSWORD = 8
MAX_PASSWORD = 200
MAX_DISPLAY_NAME = 100
MAX_TOKEN_NAME = 100
DEPARTMENT_ROLES = (Role.DEPT_EDITOR, Role.DEPT_REVIEWER, Role.LICENCE_CLERK)

# The domain tables a user may belong to, named without importing the catalogue (core imports no domain).
_department = sa.table("department", sa.column("id"))
_division = sa.table("division", sa.column("code"))


def cli_principal() -> Principal:
    """The principal a `flask ...` command acts as: a system administrator named after the OS account."""
    try:
        account = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry and no USER/LOGNAME (some containers)
        account = "unknown"
    return Principal(user_id=None, name=f"cli:{account}"[:100], role=Role.ADMIN)


def _require_admin(actor: Principal, action: str) -> None:
    if not actor.is_admin:
        raise Forbidden(f"仅区级管理员可{action}")


@dataclass(frozen=True)
class NewUser:
    """What an administrator asks for; ``password`` None means generate one and show it once."""

    username: str
    display_name: str
    role: str
    password: str | None = None
    department_id: int | None = None
    division_code: str | None = None


def create_user(session: Session, actor: Principal, new: NewUser) -> tuple[User, str | None]:
    """Create a staff account (admin only) and audit it as ``user.create``.

    Department roles need an existing department, operators an existing division; an administrator
    belongs to neither. A department given for a role outside DEPARTMENT_ROLES is refused, not
    dropped. Returns the user and the generated password (None when one was given).
    Raises Invalid with per-field Chinese messages, Conflict for a taken username.
    """
    _require_admin(actor, "创建用户")
    errors: dict[str, list[str]] = {}
    username = (new.username or "").strip()
    display_name = (new.display_name or "").strip()
    if not USERNAME_RE.match(username):
        errors["username"] = ["用户名为 3-60 位字母、数字、下划线、点或连字符"]
    if not display_name or len(display_name) > MAX_DISPLAY_NAME:
        errors["display_name"] = [f"请填写姓名（不超过 {MAX_DISPLAY_NAME} 字）"]
    try:
        role: Role | None = Role(new.role)
    except ValueError:
        errors["role"] = ["请选择角色"]
        role = None
    department_id = new.department_id if role in DEPARTMENT_ROLES else None
    division_code = (new.division_code or None) if role == Role.DIVISION_OPERATOR else None
    if role is not None and role not in DEPARTMENT_ROLES and new.department_id is not None:
        # Refused, not dropped: whoever asked for an administrator "of" a department would otherwise
        # get a district-wide account without being told.
        errors["department_id"] = ["该角色不属于部门，请勿指定所属部门"]
    if role is not None and role != Role.DIVISION_OPERATOR and new.division_code:
        # Likewise: a division only scopes a 镇村经办; given for another role it would be dropped unsaid.
        errors["division_code"] = ["只有镇村经办需要指定所属镇村，请勿为该角色指定"]
    if role in DEPARTMENT_ROLES:
        if department_id is None:
            errors["department_id"] = ["部门角色必须指定所属部门"]
        elif not 0 < department_id < MAX_DB_ID or session.execute(
            sa.select(_department.c.id).where(_department.c.id == department_id)
        ).first() is None:
            errors["department_id"] = ["所属部门不存在"]
    if role == Role.DIVISION_OPERATOR:
        if not division_code:
            errors["division_code"] = ["镇村经办必须指定所属镇村"]
        # Look the code up as given: a longer one (it used to be cut to 12 for the lookup, then
        # stored whole) can never name a division.
        elif len(division_code) > 12 or session.execute(
            sa.select(_division.c.code).where(_division.c.code == division_code)
        ).first() is None:
            errors["division_code"] = ["所在区划不存在"]
    generated = None
    password = new.password
    if not password:
        password = generated = secrets.token_urlsafe(12)
    elif len(password) < MIN_PASSWORD:
        errors["password"] = [f"密码至少 {MIN_PASSWORD} 位"]
    elif len(password) > MAX_PASSWORD:
        errors["password"] = [f"密码不能超过 {MAX_PASSWORD} 位"]
    if errors or role is None:
        raise Invalid("用户信息有误，请按各字段的说明修改", errors)
    # Case-blind: ATK_ED1 beside atk_ed1 would be two accounts a reader of the audit log cannot tell apart.
    taken = user_by_name(session, username)
    if taken:
        reason = (
            "用户名已存在" if taken.username == username else f"已有用户名 {taken.username}（不区分大小写）"
        )
        raise Conflict(f"用户名 {username} 已存在", {"username": [reason]})
    user = User(
        username=username,
        display_name=display_name,
        password_hash=hash_password(password),
        role=role.value,
        department_id=department_id,
        division_code=division_code,
    )
    try:
        with session.begin_nested():
            session.add(user)
            session.flush()
    except sa.exc.IntegrityError as exc:
        # A concurrent create of the same name (in any case) committed after the check above: the
        # unique indexes on username and lower(username) refuse this one.
        if "username" not in str(exc.orig):
            raise
        raise Conflict(f"用户名 {username} 已存在", {"username": ["用户名已存在（不区分大小写）"]}) from None
    record(session, actor=actor, action="user.create", entity_type="user", entity_id=user.id,
           new={"username": user.username, "role": user.role, "department_id": department_id,
                "division_code": division_code})
    return user, generated


def set_user_active(session: Session, actor: Principal, user_id: int, active: bool) -> User:
    """Enable or disable an account (admin only; nobody disables themselves).

    Audited as ``user.activate`` / ``user.deactivate`` when the state changes; a no-op writes nothing.
    """
    _require_admin(actor, "启用或停用账号")
    user = session.get(User, user_id) if 0 < user_id < MAX_DB_ID else None
    if user is None:
        raise NotFound("用户不存在")
    if user.id == actor.user_id and not active:
        raise Conflict("不能停用自己的账号")
    if user.is_active != active:
        old = user.is_active
        user.is_active = active
        session.add(user)
        session.flush()
        # Deactivation ends every session; reactivating must not revive cookies issued before it.
        end_sessions(session, user_id)
        revoked = [] if active else _revoke_all_tokens(session, user_id)
        record(session, actor=actor, action="user.activate" if active else "user.deactivate",
               entity_type="user", entity_id=user.id, old={"is_active": old},
               new={"is_active": active, **({"revoked_token_ids": revoked} if revoked else {})})
    return user


def _revoke_all_tokens(session: Session, user_id: int) -> list[int]:
    """Revoke the user's live tokens; their ids. Deactivation does this, as it ends sessions: a token
    is a credential, and reactivating the account must not bring back one issued before (an
    administrator issues new ones)."""
    tokens = session.exec(
        select(ApiToken).where(ApiToken.user_id == user_id, col(ApiToken.revoked_at).is_(None))
    ).all()
    now = utcnow()
    for token in tokens:
        token.revoked_at = now
        session.add(token)
    session.flush()
    return [id_of(t) for t in tokens]


def issue_token(session: Session, actor: Principal, user_id: int, name: str) -> tuple[ApiToken, str]:
    """Issue an API token acting as the user (admin only); audited as ``token.issue``.

    Returns the row and the plain token, which is shown once and never stored.
    """
    _require_admin(actor, "签发 API 令牌")
    user = session.get(User, user_id) if 0 < user_id < MAX_DB_ID else None
    if user is None or user.id is None:
        raise NotFound("用户不存在")
    label = (name or "").strip()[:MAX_TOKEN_NAME] or "API 令牌"
    plain = "gg_" + secrets.token_urlsafe(32)
    token = ApiToken(user_id=user.id, name=label, token_hash=token_digest(plain), prefix=plain[:10])
    session.add(token)
    session.flush()
    record(session, actor=actor, action="token.issue", entity_type="user", entity_id=user.id,
           new={"token_id": token.id, "token_name": label, "prefix": token.prefix})
    return token, plain


def revoke_token(session: Session, actor: Principal, token_id: int) -> ApiToken:
    """Revoke a token (admin only); audited as ``token.revoke``. Revoking twice writes nothing."""
    _require_admin(actor, "吊销 API 令牌")
    token = session.get(ApiToken, token_id) if 0 < token_id < MAX_DB_ID else None
    if token is None:
        raise NotFound("令牌不存在")
    if token.revoked_at is None:
        token.revoked_at = utcnow()
        session.add(token)
        session.flush()
        record(session, actor=actor, action="token.revoke", entity_type="user", entity_id=token.user_id,
               old={"token_id": token.id, "prefix": token.prefix})
    return token


def find_user(session: Session, username: str) -> User:
    """The account named ``username`` in any case (names are unique case-blind); NotFound otherwise."""
    user = user_by_name(session, username)
    if user is None:
        raise NotFound(f"用户 {username} 不存在")
    return user
