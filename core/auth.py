"""Users, roles, API tokens and the Principal that services check permissions against.

Passwords are hashed with argon2; API tokens are random 256-bit strings stored as SHA-256
digests (a fast hash is right for high-entropy tokens, unlike passwords). Account and token
administration (the audited writes) lives in core.users.
"""

from __future__ import annotations

import contextlib
import enum
import functools
import hashlib
import secrets
import string
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerifyMismatchError
from sqlmodel import Field, Session, SQLModel, col, select

from core.audit import record
from core.errors import Forbidden, Invalid, NotFound
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

    # One account per name whatever its case (ATK_ED1 beside atk_ed1 are one name to a reader of the
    # audit log); sign-in looks names up by lower(username), which this index serves.
    __table_args__ = (sa.Index("uq_app_user_username_lower", sa.text("lower(username)"), unique=True),)

    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(max_length=60, unique=True, index=True)
    display_name: str = Field(max_length=100)
    password_hash: str = Field(max_length=200)
    role: str = Field(max_length=30)
    department_id: int | None = Field(default=None, foreign_key="department.id", index=True)
    division_code: str | None = Field(default=None, max_length=12, foreign_key="division.code")
    is_active: bool = Field(default=True)
    # Moves whenever every session of the user must end (logout, password change, deactivation):
    # a login cookie carries the epoch it was issued under and is refused once it differs.
    session_epoch: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    # Failed logins are counted per attempted name in core.login (unknown names included).
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


_ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)


def username_key(name: str) -> str:
    """A user name as names are compared: its ASCII letters lowered, nothing else changed.

    User names are ASCII (core.users.USERNAME_RE) and unique under this key (uq_app_user_username_lower),
    so "Admin" names the account "admin". Only ASCII folds: Python's lower() maps the Kelvin sign to
    "k", which would let a name no account has reach one; SQLite's lower() folds ASCII only too."""
    return name.translate(_ASCII_LOWER)


def user_by_name(session: Session, name: str) -> User | None:
    """The account a typed name names, whatever the case typed (served by uq_app_user_username_lower)."""
    return session.exec(select(User).where(sa.func.lower(User.username) == username_key(name))).first()


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


@functools.cache
def _dummy_hash(time_cost: int, memory_cost: int, parallelism: int) -> str:
    # A hash of a random secret made with the current parameters, so that verifying against it
    # costs exactly what verifying a real user's hash costs.
    return PasswordHasher(time_cost=time_cost, memory_cost=memory_cost, parallelism=parallelism).hash(
        secrets.token_urlsafe(16)
    )


def check_password_or_dummy(user: User | None, password: str) -> bool:
    """check_password for a user that may not exist: an unknown name costs one argon2
    verification like a known one, so the answer time does not tell whether the account exists."""
    if user is not None:
        return check_password(user, password)
    dummy = _dummy_hash(_hasher.time_cost, _hasher.memory_cost, _hasher.parallelism)
    with contextlib.suppress(VerifyMismatchError, InvalidHashError):
        _hasher.verify(dummy, password)
    return False


def end_sessions(session: Session, user_id: int) -> int:
    """End every login session of the user (all browsers): move the epoch the cookies must match.

    One atomic UPDATE, so two requests ending sessions at once both take effect. Returns the new
    epoch. Flushes; the caller's transaction commits."""
    new_epoch = session.execute(
        sa.update(User)
        .where(col(User.id) == user_id)
        .values(session_epoch=col(User.session_epoch) + 1)
        .returning(col(User.session_epoch))
        .execution_options(synchronize_session=False)
    ).scalar_one()
    user = session.get(User, user_id)
    if user is not None:
        session.refresh(user, ["session_epoch"])
    return int(new_epoch)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def principal_for_token(session: Session, token: str) -> Principal | None:
    row = session.exec(
        select(User)
        .join(ApiToken, col(ApiToken.user_id) == User.id)
        .where(ApiToken.token_hash == token_digest(token), col(ApiToken.revoked_at).is_(None))
    ).first()
    if row is None or not row.is_active:
        return None
    return Principal.of(row)


def set_password(session: Session, actor: Principal, user_id: int, new_password: str) -> User:
    """Set a user's password (the user themself or a district administrator). Ends every session
    of the user, so a stolen cookie stops working with the old password. Audited (no hash logged)."""
    if not (actor.is_admin or actor.user_id == user_id):
        raise Forbidden("只能修改自己的密码；修改他人密码须由区级管理员操作")
    user = session.get(User, user_id)
    if user is None:
        raise NotFound("用户不存在")
    if len(new_password) < 8:
        raise Invalid("密码至少 8 位", {"password": ["密码至少 8 位"]})
    if len(new_password) > 200:
        raise Invalid("密码不能超过 200 位", {"password": ["密码不能超过 200 位"]})
    user.password_hash = hash_password(new_password)
    session.add(user)
    session.flush()
    end_sessions(session, user_id)
    record(session, actor=actor, action="user.password_changed", entity_type="user", entity_id=user_id)
    return user
