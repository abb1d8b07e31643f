"""Licence tables: licence types (证照目录), licences (电子证照), signing keys and the sync outbox."""

from __future__ import annotations

import enum
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import JSON, Field, SQLModel

from core.types import UTCDateTime, utcnow

# 持证主体代码类型 (GB/T 36903).
HOLDER_CODE_TYPES: dict[str, str] = {"111": "公民身份号码", "001": "统一社会信用代码"}
HOLDER_KINDS: dict[str, str] = {"111": "自然人", "001": "法人和其他组织"}
AUTHORITY_LEVELS = ("国家级", "省部级", "地市级", "区县级", "其他")
CATEGORIES = ("证照", "批文", "证明", "材料", "证件")
FACE_FIELD_TYPES = ("string", "text", "date", "integer", "enum")


class LicenceStatus(enum.StrEnum):
    VALID = "valid"
    SUSPENDED = "suspended"
    REVOKED = "revoked"
    SUPERSEDED = "superseded"  # an older version after an amendment


STATUS_LABELS = {
    LicenceStatus.VALID: "有效",
    LicenceStatus.SUSPENDED: "已暂停",
    LicenceStatus.REVOKED: "已吊销/注销",
    LicenceStatus.SUPERSEDED: "已变更（旧版本）",
}

OUTBOX_OPERATIONS = ("issue", "amend", "suspend", "resume", "revoke")


class LicenceType(SQLModel, table=True):
    """证照目录 entry (licence type): what a licence of this kind states and who may hold it.

    ``code`` is the 证照类型代码: the defining authority's 统一社会信用代码 (18) + 3 digits.
    ``face_schema`` lists the 照面信息 fields a licence of this type carries (see licenses.services).
    ``validity_years`` None means 长期有效 (no end date required).
    """

    __tablename__ = "licence_type"

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=21, unique=True)
    name: str = Field(max_length=200, index=True)
    authority_name: str = Field(default="", max_length=200)  # 证照定义机构
    authority_code: str = Field(max_length=18)  # 证照定义机构代码
    authority_level: str = Field(default="区县级", max_length=10)  # 证照定义机构级别
    holder_code_type: str = Field(max_length=3)  # 111 自然人 / 001 法人和其他组织
    category: str = Field(default="证照", max_length=10)  # 目录类别
    validity_years: int | None = Field(default=None)
    face_schema: list[dict[str, Any]] = Field(default_factory=list, sa_type=JSON)
    is_active: bool = Field(default=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)


class LicenceTypeEntry(SQLModel, table=True):
    """关联事项: an implementation entry (by 实施编码) that produces a licence type or accepts it.

    ``role`` is "produces" (the entry's result is this licence) or "accepts" (the licence replaces
    one of the entry's materials). The implementing body is the task code's first 18 characters,
    so scoping works even before the catalogue entry itself is loaded.
    """

    __tablename__ = "licence_type_entry"

    id: int | None = Field(default=None, primary_key=True)
    licence_type_id: int = Field(foreign_key="licence_type.id", index=True)
    task_code: str = Field(max_length=31, index=True)
    role: str = Field(max_length=10)
    entry_id: int | None = Field(default=None, foreign_key="implementation_entry.id")
    material_name: str | None = Field(default=None, max_length=200)

    __table_args__ = (
        sa.UniqueConstraint("licence_type_id", "task_code", "role", name="uq_licence_type_entry"),
    )


class Licence(SQLModel, table=True):
    """电子证照: one version of one licence. An amendment adds a row and marks the old one superseded.

    ``identifier`` is the GB/T 36904 电子证照标识; ``number`` the 证照编号 printed on the licence.
    ``id`` doubles as the index in the public status lists.
    """

    __tablename__ = "licence"

    id: int | None = Field(default=None, primary_key=True)
    identifier: str = Field(max_length=120, unique=True)
    type_id: int = Field(foreign_key="licence_type.id", index=True)
    type_code: str = Field(max_length=21)
    type_name: str = Field(max_length=200)
    serial: str = Field(max_length=40)  # 流水号
    version: int = Field(default=1)
    number: str = Field(max_length=100)  # 证照编号
    holder_name: str = Field(max_length=200)  # 持证主体
    holder_code: str = Field(max_length=18)  # 持证主体代码
    holder_code_type: str = Field(max_length=3)  # 持证主体代码类型代码
    issuer_department_id: int = Field(foreign_key="department.id", index=True)
    issuer_code: str = Field(max_length=18)
    issuer_name: str = Field(max_length=100)
    issue_date: date  # 颁发日期
    valid_from: date
    valid_to: date | None = Field(default=None)  # None: 长期
    area_code: str = Field(max_length=6)  # 管辖属地 (GB/T 2260)
    face: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)  # 照面信息 / 扩展业务信息
    status: str = Field(default=LicenceStatus.VALID.value, max_length=12, index=True)
    # Change counter of this identifier: 1 at issue, +1 on every suspend/resume/revoke/supersede.
    # It is the outbox ``version`` (idempotency key identifier:revision), so every change is one record.
    revision: int = Field(default=1)
    status_reason: str | None = Field(default=None, max_length=500)
    status_changed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    is_current: bool = Field(default=True)
    previous_id: int | None = Field(default=None, foreign_key="licence.id")
    created_by: int | None = Field(default=None)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)

    __table_args__ = (
        sa.UniqueConstraint("type_code", "issuer_code", "serial", "version", name="uq_licence_version"),
        sa.Index("ix_licence_holder", "holder_code", "type_code"),
        sa.Index("ix_licence_issuer_current", "issuer_department_id", "is_current", "id"),
    )


class LicenceSigningKey(SQLModel, table=True):
    """A public key a department signs verification tokens with; the private half stays in instance/."""

    __tablename__ = "licence_signing_key"

    id: int | None = Field(default=None, primary_key=True)
    kid: str = Field(max_length=32, unique=True)
    algorithm: str = Field(max_length=20)
    department_id: int = Field(foreign_key="department.id", index=True)
    issuer_code: str = Field(max_length=18)
    public_key: str = Field(max_length=400)  # base64url of the raw public key
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    retired_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class LicenceOutbox(SQLModel, table=True):
    """Outbox row: one licence change to push to the city registry (电子证照同步)."""

    __tablename__ = "licence_outbox"

    id: int | None = Field(default=None, primary_key=True)
    licence_id: int = Field(foreign_key="licence.id", index=True)
    identifier: str = Field(max_length=120)  # 电子证照标识 of that version
    version: int
    operation: str = Field(max_length=10)  # issue / amend / suspend / resume / revoke
    payload: dict[str, Any] = Field(sa_type=JSON)  # the up_lic_data record (standards §3.3)
    issuer_code: str = Field(max_length=18)
    issue_day: date  # 颁发日期, for the reconciliation per issuer and day
    status: str = Field(default="pending", max_length=10, index=True)
    attempts: int = Field(default=0)
    last_error: str | None = Field(default=None, max_length=1000)
    idem_key: str = Field(max_length=140, unique=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    synced_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    request_id: str | None = Field(default=None, max_length=64)  # web request that made the change
    # After a failed attempt the row waits until then (backoff by attempts); None: send at once.
    next_attempt_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    error_kind: str | None = Field(default=None, max_length=20)  # unavailable / protocol / clock_skew


class LicenceVerification(SQLModel, table=True):
    """核验记录: one public verification of a token, the audit trail of /verify.

    Kept apart from the hash-chained staff audit log: verifications are anonymous and numerous, and
    chaining them would serialise every verifier on the audit log's lock. No client address is kept.
    """

    __tablename__ = "licence_verification"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False, index=True)
    licence_id: int | None = Field(default=None, index=True)
    valid: bool
    status: str | None = Field(default=None, max_length=20)
    reason: str | None = Field(default=None, max_length=300)
    kid: str | None = Field(default=None, max_length=32)
    channel: str = Field(default="page", max_length=10)  # page / api
