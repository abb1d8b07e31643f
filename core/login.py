"""Staff login: password check, failure counting and temporary locks, audited.

Failures are counted per name typed, whether or not an account has that name: an unknown name is
checked against a dummy hash, counted and locked exactly like a real one, so neither the answer,
the lock message nor the time taken tells an attacker which accounts exist. Names are compared
case-blind (core.auth.username_key), as accounts are found: "Admin" signs in as "admin", and typing
it in another case neither escapes a lock nor starts a fresh count.

A name is stored only as its SHA-256 digest: people type passwords into the name field, and
attackers type other people's ID numbers; neither belongs in a table or the audit log. Audit rows
name the account when it exists and the digest's head otherwise.

Each failure is one atomic upsert (``INSERT ... ON CONFLICT DO UPDATE SET failed_count =
failed_count + 1 ... RETURNING``) so that parallel wrong passwords are all counted (a read,
increment and write in Python lost most of them) and exactly one of them sets the lock.
"""

from __future__ import annotations

import enum
import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Field, Session, SQLModel, col

from core.audit import record
from core.auth import ANONYMOUS, Principal, User, check_password_or_dummy, user_by_name, username_key
from core.db import table_of
from core.types import UTCDateTime, utcnow

MAX_FAILURES = 5
LOCK_MINUTES = 15
# Failures older than this no longer count towards a lock (a typo last week is forgotten).
FAILURE_WINDOW = timedelta(minutes=LOCK_MINUTES)
# Rows of names nobody tried for this long are deleted (unknown names must not pile up).
FORGET_AFTER = timedelta(days=1)
USERNAME_MAX = 60


class LoginFailure(SQLModel, table=True):
    """登录失败记录: consecutive failed logins for one name typed at the login form."""

    __tablename__ = "login_failure"

    name_digest: str = Field(primary_key=True, max_length=64)  # SHA-256 of the name, hex
    failed_count: int = Field(default=0)
    locked_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_failed_at: datetime = Field(sa_type=UTCDateTime, nullable=False, index=True)

    def is_locked(self, now: datetime | None = None) -> bool:
        return self.locked_until is not None and self.locked_until > (now or utcnow())


class LoginOutcome(enum.StrEnum):
    OK = "ok"
    WRONG = "wrong"  # wrong name or password, or an inactive account: one answer for all three
    LOCKED = "locked"


@dataclass(frozen=True)
class LoginResult:
    outcome: LoginOutcome
    user: User | None = None


def name_digest(username: str) -> str:
    """The key of a name's failure count: every case of one name counts together."""
    return hashlib.sha256(username_key(username[:USERNAME_MAX]).encode()).hexdigest()


def login_failures(session: Session, username: str) -> LoginFailure | None:
    """The failure record of a name, if it has one."""
    return session.get(LoginFailure, name_digest(username))


def clear_login_failures(session: Session, username: str) -> None:
    """Forget the failures and any lock of a name (an administrator resetting an account)."""
    session.execute(sa.delete(LoginFailure).where(col(LoginFailure.name_digest) == name_digest(username)))


def authenticate(session: Session, username: str, password: str, now: datetime | None = None) -> LoginResult:
    """Check a login attempt. Counts the failure (atomically) and locks the name at MAX_FAILURES
    failures within FAILURE_WINDOW for LOCK_MINUTES. Writes audit rows: ``login``,
    ``login.failed`` and ``login.locked``. Flushes: the caller commits, also on failure (the count
    and the audit rows must survive the refused request)."""
    now = now or utcnow()
    username = username[:USERNAME_MAX]
    user = user_by_name(session, username)
    # Always one argon2 verification, also for unknown names and locked accounts.
    password_ok = check_password_or_dummy(user, password)
    current = _locked_until(session, username, now, for_update=password_ok)
    if current is not None:
        _count_failure(session, username, now, user)
        return LoginResult(LoginOutcome.LOCKED)
    if not password_ok or user is None or not user.is_active:
        locked = _count_failure(session, username, now, user)
        return LoginResult(LoginOutcome.LOCKED if locked else LoginOutcome.WRONG)
    clear_login_failures(session, username)
    _forget_stale(session, now)
    record(session, actor=Principal.of(user), action="login", entity_type="user", entity_id=user.id)
    return LoginResult(LoginOutcome.OK, user)


def _locked_until(session: Session, username: str, now: datetime, *, for_update: bool) -> datetime | None:
    digest = name_digest(username)
    query = sa.select(col(LoginFailure.locked_until)).where(col(LoginFailure.name_digest) == digest)
    if for_update:
        # A right password racing the failure that sets the lock must see that lock.
        query = query.with_for_update()
    locked_until: datetime | None = session.execute(query).scalar_one_or_none()
    if locked_until is not None and locked_until > now:
        return locked_until
    return None


def _count_failure(session: Session, username: str, now: datetime, user: User | None) -> bool:
    """Count one failure in a single statement; returns True when this failure set the lock."""
    table = table_of(LoginFailure)
    lock_end = now + timedelta(minutes=LOCK_MINUTES)
    t = table.c
    # A lock that has run out, or failures outside the window, start a new count at 1.
    stale = sa.or_(
        sa.and_(t.locked_until.is_not(None), t.locked_until <= now),
        sa.and_(t.locked_until.is_(None), t.last_failed_at < now - FAILURE_WINDOW),
    )
    new_count = sa.case((stale, 1), else_=t.failed_count + 1)
    new_lock = sa.case(
        (sa.and_(t.locked_until.is_not(None), t.locked_until > now), t.locked_until),
        (new_count >= MAX_FAILURES, lock_end),
        else_=None,
    )
    dialect = session.get_bind().dialect.name
    insert = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)
    statement = (
        insert.values(name_digest=name_digest(username), failed_count=1, last_failed_at=now,
                      locked_until=lock_end if MAX_FAILURES <= 1 else None)
        .on_conflict_do_update(
            index_elements=[t.name_digest],
            set_={"failed_count": new_count, "locked_until": new_lock, "last_failed_at": now},
        )
        .returning(t.failed_count, t.locked_until)
    )
    count, locked_until = session.execute(statement).one()
    newly_locked = count == MAX_FAILURES and locked_until is not None
    if user is not None:
        actor, entity_type, entity_id = Principal.of(user), "user", str(user.id)
    else:
        actor, entity_type, entity_id = ANONYMOUS, "login_name", name_digest(username)[:16]
    record(session, actor=actor, action="login.failed", entity_type=entity_type, entity_id=entity_id,
           new={"failed_count": count})
    if newly_locked:
        record(session, actor=actor, action="login.locked", entity_type=entity_type, entity_id=entity_id,
               new={"locked_until": locked_until, "failed_count": count})
    return bool(locked_until is not None and locked_until > now)


def _forget_stale(session: Session, now: datetime) -> None:
    session.execute(
        sa.delete(LoginFailure).where(
            col(LoginFailure.last_failed_at) < now - FORGET_AFTER,
            sa.or_(col(LoginFailure.locked_until).is_(None), col(LoginFailure.locked_until) < now),
        )
    )
