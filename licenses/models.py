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
# What a licence type accepts as holder: one kind, or either ("any": e.g. a 医疗机构执业许可证 is held by
# an institution but a 个体诊所 may be held by its doctor). A licence always records its concrete kind.
ANY_HOLDER = "any"
TYPE_HOLDER_LABELS: dict[str, str] = {**HOLDER_CODE_TYPES, ANY_HOLDER: "公民身份号码或统一社会信用代码"}
# Face fields that only make sense for one holder kind, whatever the type's schema says.
ORGANISATION_ONLY_FIELDS = {"legal_representative": "法定代表人"}
AUTHORITY_LEVELS = ("国家级", "省部级", "地市级", "区县级", "其他")
CATEGORIES = ("证照", "批文", "证明", "材料", "证件")
# "person": another natural person's name on the face (配偶姓名, 法定代表人): validated as a string and
# masked like the holder's name wherever the holder's is.
FACE_FIELD_TYPES = ("string", "text", "person", "date", "integer", "enum")


class LicenceStatus(enum.StrEnum):
    """Stored status of a licence version. 过期 (expired) is not stored: it follows from the dates."""

    VALID = "valid"  # 有效
    # 暂扣: a penalty (行政处罚法 art. 9: 暂扣许可证件) or a stop pending investigation; reversible.
    SUSPENDED = "suspended"
    CANCELLED = "cancelled"  # 注销 (行政许可法 art. 70): at the holder's request or by law, no penalty
    REVOKED = "revoked"  # 吊销: an administrative penalty (行政处罚法 art. 9)
    WITHDRAWN = "withdrawn"  # 撤销 (行政许可法 art. 69): the grant itself was unlawful or obtained improperly
    VOID = "void"  # 挂失/作废: the certificate is lost, damaged, wrongly made or replaced
    SUPERSEDED = "superseded"  # an older version after an amendment


STATUS_LABELS = {
    LicenceStatus.VALID: "有效",
    LicenceStatus.SUSPENDED: "暂扣（暂停使用）",
    LicenceStatus.CANCELLED: "注销",
    LicenceStatus.REVOKED: "吊销",
    LicenceStatus.WITHDRAWN: "撤销",
    LicenceStatus.VOID: "挂失/作废",
    LicenceStatus.SUPERSEDED: "已变更（旧版本）",
}

# Final statuses: the licence ends; they travel to the city registry as the "revoke" operation.
ENDED_STATUSES = (LicenceStatus.CANCELLED, LicenceStatus.REVOKED, LicenceStatus.WITHDRAWN, LicenceStatus.VOID)
# A live licence: the current version of a licence that has not ended. Its 证照编号 is its own among the
# live licences of its type and issuing department (index uq_licence_number): an amendment's new version
# keeps the number (the old version is superseded in the same flush, before the new row is inserted),
# and a licence that ended (注销, 吊销, 撤销, 作废) leaves the number to a certificate that replaces it
# (a 补发 certificate keeps the lost one's number). The 电子证照标识 does not make numbers unique: it is
# built from the 流水号, and two serials can carry one printed number.
LIVE_STATUSES = (LicenceStatus.VALID, LicenceStatus.SUSPENDED)
LIVE_NUMBER = "is_current AND status IN ('valid', 'suspended')"

# The public reason categories (公开的原因类别), a fixed list per status. The free-text reason a clerk
# writes stays internal: it may name people, cases or suspicions the public must not read.
REASON_CATEGORIES: dict[str, dict[str, str]] = {
    LicenceStatus.SUSPENDED: {
        "penalty_suspension": "行政处罚：暂扣许可证件",
        "under_investigation": "涉嫌违法，依法暂停使用",
    },
    LicenceStatus.CANCELLED: {
        "holder_request": "持证人申请注销",
        "expired_not_renewed": "有效期届满未延续",
        "holder_ended": "持证人死亡、丧失行为能力或组织依法终止",
        "licence_withdrawn": "许可被依法撤回",
        "force_majeure": "因不可抗力无法实施",
        "by_law": "法律、法规规定应当注销的其他情形",
        "legacy_unclassified": "历史记录：原为“吊销/注销”，未区分原因",
    },
    LicenceStatus.REVOKED: {"penalty": "行政处罚：吊销许可证件"},
    LicenceStatus.WITHDRAWN: {
        "unlawful_grant": "行政机关违法作出许可",
        "improper_means": "以欺骗、贿赂等不正当手段取得",
    },
    LicenceStatus.VOID: {
        "lost": "持证人挂失",
        "damaged": "证件损毁",
        "issued_in_error": "制证错误",
        "replaced": "已换发或补发新证",
    },
}

OUTBOX_OPERATIONS = ("issue", "amend", "suspend", "resume", "revoke")


class LicenceType(SQLModel, table=True):
    """证照目录 entry (licence type): what a licence of this kind states and who may hold it.

    ``code`` is the 证照类型代码: the defining authority's 统一社会信用代码 (18) + 3 digits.
    ``face_schema`` lists the 照面信息 fields a licence of this type carries (see licenses.types).
    ``validity_years`` None means 长期有效 (no end date required).
    """

    __tablename__ = "licence_type"

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=21, unique=True)
    # One type per name as well as per code: two 结婚证 rows split its licences and its links.
    name: str = Field(max_length=200, index=True, unique=True)
    authority_name: str = Field(default="", max_length=200)  # 证照定义机构
    authority_code: str = Field(max_length=18)  # 证照定义机构代码
    authority_level: str = Field(default="区县级", max_length=10)  # 证照定义机构级别
    holder_code_type: str = Field(max_length=3)  # 111 自然人 / 001 法人和其他组织 / any 二者皆可
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
    # 实施编码 of the service (implementation entry) the licence was issued under; None: not recorded.
    task_code: str | None = Field(default=None, max_length=31)
    status: str = Field(default=LicenceStatus.VALID.value, max_length=12, index=True)
    # Change counter of this identifier: 1 at issue, +1 on every suspend/resume/revoke/supersede.
    # It is the outbox ``version`` (idempotency key identifier:revision), so every change is one record.
    revision: int = Field(default=1)
    status_reason: str | None = Field(default=None, max_length=500)  # internal free text, never public
    status_changed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)  # when it was recorded
    status_date: date | None = Field(default=None)  # the date the status took effect (China time)
    status_category: str | None = Field(default=None, max_length=30)  # key of REASON_CATEGORIES[status]
    is_current: bool = Field(default=True)
    previous_id: int | None = Field(default=None, foreign_key="licence.id")
    created_by: int | None = Field(default=None)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)

    __table_args__ = (
        sa.UniqueConstraint("type_code", "issuer_code", "serial", "version", name="uq_licence_version"),
        sa.Index(
            "uq_licence_number",
            "type_id",
            "issuer_department_id",
            "number",
            unique=True,
            postgresql_where=sa.text(LIVE_NUMBER),
            sqlite_where=sa.text(LIVE_NUMBER),
        ),
        sa.Index("ix_licence_holder", "holder_code", "type_code"),
        sa.Index("ix_licence_issuer_current", "issuer_department_id", "is_current", "id"),
    )


class LicenceSigningKey(SQLModel, table=True):
    """A public key a department signs verification tokens with; the private half stays in instance/.

    Published from the department's first licence on (verification.ensure_signing_key at issue)."""

    __tablename__ = "licence_signing_key"

    id: int | None = Field(default=None, primary_key=True)
    kid: str = Field(max_length=32, unique=True)
    algorithm: str = Field(max_length=20)
    department_id: int = Field(foreign_key="department.id", index=True)
    issuer_code: str = Field(max_length=18)
    public_key: str = Field(max_length=400)  # base64url of the raw public key
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    # Rotated out: signs nothing from then on, but still verifies the tokens it signed.
    retired_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # Set at retirement: the last day a licence of the department issued until then is valid, so the
    # last day a token of this key can prove anything; None while current, or when one is 长期.
    verify_until: date | None = Field(default=None)


class LicenceStatusListKey(SQLModel, table=True):
    """A public key the instance signed its status lists with (证照状态列表签名密钥), current or retired.

    The private half stays in the key store. A retired key is kept published so a status list signed
    before a rotation still verifies offline."""

    __tablename__ = "licence_status_list_key"

    id: int | None = Field(default=None, primary_key=True)
    kid: str = Field(max_length=32, unique=True)
    algorithm: str = Field(max_length=20)
    public_key: str = Field(max_length=400)  # base64url of the raw public key
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    retired_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class LicenceGrant(SQLModel, table=True):
    """证照管理权限 (licence rights): a user may issue, amend and change the status of licences of one
    type in the name of one department.

    Kept apart from the catalogue roles on purpose: editing a department's 实施清单 gives no licence
    rights, and a grant gives no catalogue rights. A grant binds the department it was given for, so
    it lapses by itself when the user moves to another department. ``revoked_at`` ends it; a new
    grant of the same type revives the row (one row per user, department and type).
    """

    __tablename__ = "licence_grant"

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="app_user.id", index=True)
    department_id: int = Field(foreign_key="department.id", index=True)
    type_code: str = Field(max_length=21)
    granted_by: int | None = Field(default=None)
    granted_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)

    __table_args__ = (
        sa.UniqueConstraint("user_id", "department_id", "type_code", name="uq_licence_grant"),
    )


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
    # Not indexed: licenses.sync_models holds partial indexes on the pending and the failed rows only,
    # so marking a row sent does not touch an index (a HOT update).
    status: str = Field(default="pending", max_length=10)
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


AUTHORISATION_METHODS: dict[str, str] = {
    "signed_form": "书面授权书（签字）",
    "online_consent": "线上授权（实名认证后确认）",
}


WITHDRAWN_VIA = {"holder": "持证人", "department": "登记授权的部门"}


class LicenceAuthorisation(SQLModel, table=True):
    """用证授权: a holder's consent that one department may use its licences of these types for one case.

    Recorded by the department that needs the licences (免提交: the applicant hands in no copy).
    Lookups by holder and full reads by that department require a live authorisation covering the
    type (not revoked, ``valid_until`` not passed); every use names the authorisation it relied on.
    """

    __tablename__ = "licence_authorisation"

    id: int | None = Field(default=None, primary_key=True)
    holder_code: str = Field(max_length=18, index=True)  # 持证主体代码
    department_id: int = Field(foreign_key="department.id", index=True)  # the using department
    type_codes: list[str] = Field(default_factory=list, sa_type=JSON)
    case_number: str = Field(max_length=64)  # 办件编号
    task_code: str = Field(max_length=31)  # 实施编码 of the service the case belongs to
    valid_until: datetime = Field(sa_type=UTCDateTime)
    method: str = Field(max_length=20)  # AUTHORISATION_METHODS
    recorded_by: int | None = Field(default=None)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    # 授权撤回: withdrawn by the holder (its 用证记录 page) or by the department that recorded it.
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    revoked_via: str | None = Field(default=None, max_length=20)  # WITHDRAWN_VIA; NULL while it stands
    revoked_by: int | None = Field(default=None)  # the staff user; NULL when the holder withdrew it


class LicenceUse(SQLModel, table=True):
    """用证记录: one use of one licence by a department under an authorisation (what the holder sees)."""

    __tablename__ = "licence_use"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    licence_id: int = Field(foreign_key="licence.id", index=True)
    holder_code: str = Field(max_length=18, index=True)
    department_id: int = Field(foreign_key="department.id")
    authorisation_id: int = Field(foreign_key="licence_authorisation.id", index=True)
    action: str = Field(max_length=20)  # lookup / read_full
    user_id: int | None = Field(default=None)


class HolderCode(SQLModel, table=True):
    """A one-time code sent to a holder to open its 用证记录 page: only its SHA-256 is kept."""

    __tablename__ = "licence_holder_code"

    id: int | None = Field(default=None, primary_key=True)
    holder_digest: str = Field(max_length=64, index=True)  # SHA-256 of the holder code
    code_hash: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    expires_at: datetime = Field(sa_type=UTCDateTime)
    attempts: int = Field(default=0)
    used_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
