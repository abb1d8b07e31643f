"""Users, roles, API tokens and the Principal that services check permissions against.

Passwords are hashed with argon2; API tokens are random 256-bit strings stored as SHA-256
digests (a fast hash is right for high-entropy tokens, unlike passwords). Account and token
administration (the audited writes) lives in core.users.
"""

from __future__ import annotations

import enum
import hashlib
from dataclasses import dataclass
from datetime import datetime

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerifyMismatchError
from sqlmodel import Field, Session, SQLModel, select

from core.types import UTCDateTime, utcnow

_hasher = PasswordHasher()


class Role(enum.StrEnum):
    ADMIN = "admin"  # 区级管理员: district administrator
    DEPT_EDITOR = "dept_editor"  # 部门编辑: edits own department's entries
    DEPT_REVIEWER = "dept_reviewer"  # 部门审核: reviews and publishes own department's entries
    DIVISION_OPERATOR = "division_operator"  # 镇村经办: town or village operator, own division only


ROLE_LABELS = {
    Role.ADMIN: "区级管理员",
    Role.DEPT_EDITOR: "部门编辑",
    Role.DEPT_REVIEWER: "部门审核",
    Role.DIVISION_OPERATOR: "镇村经办",
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


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def principal_for_token(session: Session, token: str) -> Principal | None:
    row = session.exec(
        select(User)
        .join(ApiToken, ApiToken.user_id == User.id)  # type: ignore[arg-type]
        .where(ApiToken.token_hash == token_digest(token), ApiToken.revoked_at.is_(None))  # type: ignore[union-attr]
    ).first()
    if row is None or not row.is_active:
        return None
    return Principal.of(row)
