"""Users, roles, API tokens and the Principal that services check permissions against.

Passwords are hashed with argon2; API tokens are random 256-bit strings stored as SHA-256
digests (a fast hash is right for high-entropy tokens, unlike passwords).
"""

from __future__ import annotations

import enum
import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerifyMismatchError
from sqlmodel import Field, Session, SQLModel, select

from core.audit import record
from core.errors import Conflict, Forbidden, Invalid, NotFound
from core.types import UTCDateTime, utcnow

_hasher = PasswordHasher()


class Role(enum.StrEnum):
    ADMIN = "admin"  # 区级管理员: district administrator
    DEPT_EDITOR = "dept_editor"  # 部门编辑: edits own department's entries
    DEPT_REVIEWER = "dept_reviewer"  # 部门审核: reviews and publishes own department's entries
    DIVISION_OPERATOR = "division_operator"  # 镇村经办: town or village operator, own division only
    # 证照经办: department staff with licence rights only (licenses.models.LicenceGrant), no catalogue rights
    LICENCE_CLERK = "licence_clerk"


ROLE_LABELS = {
    Role.ADMIN: "区级管理员",
    Role.DEPT_EDITOR: "部门编辑",
    Role.DEPT_REVIEWER: "部门审核",
    Role.DIVISION_OPERATOR: "镇村经办",
    Role.LICENCE_CLERK: "证照经办",
}


class User(SQLModel, table=True):
    """用户: a staff account. Department staff carry department_id; town/village operators division_code."""

    __tablename__ = "app_user"

    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(max_length=60, unique=True, index=True)
    display_name: str = Field(max_length=100)
    password_hash: str = Field(max_length=200)
    role: str = Field(max_length=30)
    department_id: int | None = Field(default=None, foreign_key="department.id", index=True)
    division_code: str | None = Field(default=None, max_length=12, foreign_key="division.code")
    is_active: bool = Field(default=True)
    failed_logins: int = Field(default=0)
    locked_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)


class ApiToken(SQLModel, table=True):
    """API 令牌: a machine client's credential, acting as one user; hashed at rest, revocable."""

    __tablename__ = "api_token"

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="app_user.id", index=True)
    name: str = Field(max_length=100)
    token_hash: str = Field(max_length=64, unique=True, index=True)
    prefix: str = Field(max_length=12)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


@dataclass(frozen=True)
class Principal:
    """Who is acting. Services decide permissions from this, so API, pages and CLI agree."""

    user_id: int | None
    name: str
    role: Role | None
    department_id: int | None = None
    division_code: str | None = None

    @property
    def is_admin(self) -> bool:
        return self.role == Role.ADMIN

    @property
    def is_authenticated(self) -> bool:
        return self.role is not None

    @classmethod
    def of(cls, user: User) -> Principal:
        return cls(user.id, user.display_name, Role(user.role), user.department_id, user.division_code)


ANONYMOUS = Principal(user_id=None, name="anonymous", role=None)
SYSTEM = Principal(user_id=None, name="system", role=Role.ADMIN)


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def check_password(user: User, password: str) -> bool:
    try:
        return _hasher.verify(user.password_hash, password)
    except (VerifyMismatchError, InvalidHashError):
        return False


def _token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_user(
    session: Session,
    *,
    username: str,
    password: str,
    display_name: str,
    role: Role,
    department_id: int | None = None,
    division_code: str | None = None,
) -> User:
    """Create a staff account. Department roles need a department; operators need a division."""
    if role in (Role.DEPT_EDITOR, Role.DEPT_REVIEWER) and department_id is None:
        raise Invalid("部门角色必须指定所属部门", {"department_id": ["required for department roles"]})
    if role == Role.DIVISION_OPERATOR and not division_code:
        raise Invalid("镇村经办必须指定所属镇村", {"division_code": ["required for division operators"]})
    if len(password) < 8:
        raise Invalid("密码至少 8 位", {"password": ["at least 8 characters"]})
    if session.exec(select(User).where(User.username == username)).first():
        raise Conflict(f"用户名 {username} 已存在", {"username": ["already taken"]})
    user = User(
        username=username,
        display_name=display_name,
        password_hash=hash_password(password),
        role=role.value,
        department_id=department_id,
        division_code=division_code,
    )
    session.add(user)
    session.flush()
    return user


def issue_token(session: Session, user: User, name: str) -> str:
    """Create an API token for ``user``; the plain token is returned once and never stored."""
    if user.id is None:
        raise ValueError("issue_token needs a flushed user")
    token = "gg_" + secrets.token_urlsafe(32)
    session.add(ApiToken(user_id=user.id, name=name, token_hash=_token_digest(token), prefix=token[:10]))
    session.flush()
    return token


def principal_for_token(session: Session, token: str) -> Principal | None:
    row = session.exec(
        select(User)
        .join(ApiToken, ApiToken.user_id == User.id)  # type: ignore[arg-type]
        .where(ApiToken.token_hash == _token_digest(token), ApiToken.revoked_at.is_(None))  # type: ignore[union-attr]
    ).first()
    if row is None or not row.is_active:
        return None
    return Principal.of(row)


def revoke_token(session: Session, token_id: int) -> None:
    token = session.get(ApiToken, token_id)
    if token is not None and token.revoked_at is None:
        token.revoked_at = utcnow()
        session.flush()


def set_user_active(session: Session, actor: Principal, user_id: int, active: bool) -> User:
    """Enable or disable an account (admin only; nobody disables themselves). Audited."""
    if not actor.is_admin:
        raise Forbidden("仅区级管理员可启用或停用账号")
    user = session.get(User, user_id)
    if user is None:
        raise NotFound("用户不存在")
    if user.id == actor.user_id and not active:
        raise Conflict("不能停用自己的账号")
    if user.is_active != active:
        old = user.is_active
        user.is_active = active
        session.add(user)
        session.flush()
        record(session, actor=actor, action="user.activate" if active else "user.deactivate",
               entity_type="user", entity_id=user.id, old={"is_active": old}, new={"is_active": active})
    return user
