"""Append-only audit log with a hash chain, so that tampering is detectable.

Every write of a domain object and every full read of personal data records one row here,
in the same transaction as the change it describes.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import JSON, Field, Session, SQLModel, col, select

from core.types import UTCDateTime, utcnow

GENESIS = "0" * 64


class AuditLog(SQLModel, table=True):
    """审计日志 (audit log): who did what to which object, when, with old and new values."""

    __tablename__ = "audit_log"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    actor_id: int | None = Field(default=None, index=True)
    actor_name: str = Field(default="system", max_length=100)
    action: str = Field(max_length=60, index=True)
    entity_type: str = Field(max_length=60)
    entity_id: str = Field(max_length=100)
    old: dict[str, Any] | None = Field(default=None, sa_type=JSON)
    new: dict[str, Any] | None = Field(default=None, sa_type=JSON)
    reason: str | None = Field(default=None, max_length=500)
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64)

    __table_args__ = (sa.Index("ix_audit_log_entity", "entity_type", "entity_id"),)


def _digest(prev_hash: str, row: AuditLog) -> str:
    payload = json.dumps(
        {
            "prev": prev_hash,
            "at": row.at.isoformat(),
            "actor_id": row.actor_id,
            "actor_name": row.actor_name,
            "action": row.action,
            "entity_type": row.entity_type,
            "entity_id": row.entity_id,
            "old": row.old,
            "new": row.new,
            "reason": row.reason,
        },
        sort_keys=True,
        ensure_ascii=False,
        default=str,
    )
    return hashlib.sha256(payload.encode()).hexdigest()


def _jsonable(values: dict[str, Any] | None) -> dict[str, Any] | None:
    if values is None:
        return None
    plain: dict[str, Any] = json.loads(json.dumps(values, default=str, ensure_ascii=False))
    return plain


def record(
    session: Session,
    *,
    actor: Any,
    action: str,
    entity_type: str,
    entity_id: object,
    old: dict[str, Any] | None = None,
    new: dict[str, Any] | None = None,
    reason: str | None = None,
) -> AuditLog:
    """Append one audit row chained to the previous one. Flushes; the caller's transaction commits."""
    if session.get_bind().dialect.name == "postgresql":
        # Serialise appenders so the chain never forks; released at commit.
        session.execute(sa.text("SELECT pg_advisory_xact_lock(7203001)"))
    last = session.exec(select(AuditLog.hash).order_by(col(AuditLog.id).desc()).limit(1)).first()
    prev = last or GENESIS
    row = AuditLog(
        actor_id=getattr(actor, "user_id", None),
        actor_name=getattr(actor, "name", None) or "system",
        action=action,
        entity_type=entity_type,
        entity_id=str(entity_id),
        old=_jsonable(old),
        new=_jsonable(new),
        reason=reason,
        prev_hash=prev,
        hash="",
    )
    row.hash = _digest(prev, row)
    session.add(row)
    session.flush()
    return row


def verify_chain(session: Session) -> tuple[bool, int, int | None]:
    """Walk the chain. Returns (ok, rows checked, id of the first broken row or None)."""
    prev = GENESIS
    count = 0
    for row in session.exec(select(AuditLog).order_by(col(AuditLog.id))).yield_per(1000):
        count += 1
        if row.prev_hash != prev or _digest(prev, row) != row.hash:
            return False, count, row.id
        prev = row.hash
    return True, count, None
