"""Verification of issued licences: the departments' signing keys (published with their first licence,
rotated by administrators, retired keys kept), the signed QR tokens, the online check behind /verify
(signature, then the live status; every check logged) and the signed status lists' bitstrings.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime

import sqlalchemy as sa
from sqlmodel import Session, col, func, select

from catalog.models import Department
from core.audit import record
from core.auth import ANONYMOUS, Principal
from core.errors import Forbidden, NotFound
from core.types import utcnow
from licenses.masking import mask_code, mask_name
from licenses.models import (
    ENDED_STATUSES,
    Licence,
    LicenceSigningKey,
    LicenceStatus,
    LicenceStatusListKey,
)
from licenses.queries import (
    EFFECTIVE_LABELS,
    effective_status,
    effective_status_date,
    get_licence,
    public_reason_category,
)
from licenses.signing import (
    KeyStore,
    PublicKey,
    TokenCheck,
    TokenClaims,
    Verifier,
    b64d,
    b64e,
    make_token,
    new_claims,
)
from licenses.verification_cache import FactsCache, LicenceFacts
from licenses.verification_log import VerificationLog


def ensure_signing_key(
    session: Session, keystore: KeyStore, dept_id: int, issuer_code: str
) -> LicenceSigningKey:
    """The department's current signing key, its public half registered (published) if it is new."""
    key = keystore.key_for(issuer_code)
    row = session.exec(select(LicenceSigningKey).where(LicenceSigningKey.kid == key.kid)).first()
    if row is None:
        row = LicenceSigningKey(
            kid=key.kid,
            algorithm=key.algorithm,
            department_id=dept_id,
            issuer_code=issuer_code,
            public_key=b64e(key.public_raw),
        )
        session.add(row)
        session.flush()
        record(
            session,
            actor=ANONYMOUS,
            action="licence_key.create",
            entity_type="licence_signing_key",
            entity_id=key.kid,
            new={"issuer_code": issuer_code, "algorithm": key.algorithm},
        )
    return row


def publish_keys(session: Session, keystore: KeyStore) -> int:
    """Publish the key of every department that has issued a licence but has none yet (keys made
    before issue 15 were only made when a QR code was first opened); returns how many were added."""
    have = set(session.exec(select(LicenceSigningKey.department_id)).all())
    added = 0
    for dept_id, issuer_code in session.exec(
        select(Licence.issuer_department_id, Licence.issuer_code).distinct()
    ).all():
        if dept_id not in have:
            ensure_signing_key(session, keystore, dept_id, issuer_code)
            have.add(dept_id)
            added += 1
    return added


def rotate_signing_key(
    session: Session, actor: Principal, keystore: KeyStore, issuer_code: str
) -> tuple[LicenceSigningKey | None, LicenceSigningKey]:
    """A new signing key for the department (administrators); the old one is retired, not deleted:
    it keeps verifying the tokens it signed until their licences expire (``verify_until``). Audited."""
    if not actor.is_admin:
        raise Forbidden("仅区级管理员可更换签名密钥")
    dept = session.exec(select(Department).where(Department.uscc == issuer_code)).first()
    if dept is None:
        raise NotFound(f"找不到统一社会信用代码为 {issuer_code} 的部门")
    old_row = None
    if keystore.has_key(issuer_code):
        old_row = ensure_signing_key(session, keystore, dept.id or 0, issuer_code)
    now = utcnow()
    if old_row is not None:
        ends = session.exec(
            select(func.count(), func.max(Licence.valid_to)).where(Licence.issuer_department_id == dept.id)
        ).one()
        open_ended = session.exec(
            select(func.count()).where(
                Licence.issuer_department_id == dept.id, col(Licence.valid_to).is_(None)
            )
        ).one()
        old_row.retired_at = now
        old_row.verify_until = None if open_ended else ends[1]
        session.add(old_row)
    keystore.rotate(issuer_code)
    new_row = ensure_signing_key(session, keystore, dept.id or 0, issuer_code)
    record(
        session,
        actor=actor,
        action="licence_key.rotate",
        entity_type="licence_signing_key",
        entity_id=new_row.kid,
        old={"kid": old_row.kid if old_row else None},
        new={"kid": new_row.kid, "issuer_code": issuer_code},
    )
    return old_row, new_row


# The key-store name of the key that signs the status lists (one per instance).
STATUS_LIST_SIGNER = "status-list"


@dataclass(frozen=True)
class StatusListKey:
    """A published status-list key."""

    kid: str
    algorithm: str
    public_raw: bytes
    created_at: datetime
    retired_at: datetime | None


def _status_list_key_row(session: Session, keystore: KeyStore) -> LicenceStatusListKey:
    """The published row of the current status-list signing key, added when it is new."""
    key = keystore.key_for(STATUS_LIST_SIGNER)
    row = session.exec(select(LicenceStatusListKey).where(LicenceStatusListKey.kid == key.kid)).first()
    if row is None:
        row = LicenceStatusListKey(
            kid=key.kid,
            algorithm=key.algorithm,
            public_key=b64e(key.public_raw),
            created_at=keystore.created_at(STATUS_LIST_SIGNER),
        )
        session.add(row)
        session.flush()
    return row


def status_list_keys(session: Session, keystore: KeyStore) -> list[StatusListKey]:
    """The status-list keys to publish: every one recorded at a rotation (retired ones stay listed, so a
    list signed before a rotation still verifies offline), and the key signing now."""
    current = keystore.key_for(STATUS_LIST_SIGNER)
    rows = [
        StatusListKey(r.kid, r.algorithm, b64d(r.public_key), r.created_at, r.retired_at)
        for r in session.exec(select(LicenceStatusListKey).order_by(col(LicenceStatusListKey.id))).all()
    ]
    if current.kid not in {r.kid for r in rows}:
        made = keystore.created_at(STATUS_LIST_SIGNER)
        rows.append(StatusListKey(current.kid, current.algorithm, current.public_raw, made, None))
    return rows


def rotate_status_list_key(
    session: Session, actor: Principal, keystore: KeyStore
) -> tuple[LicenceStatusListKey | None, LicenceStatusListKey]:
    """A new key for signing the status lists (administrators); audited. The old key is retired, never
    deleted: its public half stays published (``status_list_keys``), so the lists it signed still verify
    offline; its private half moves to the key store's ``retired/`` folder and signs nothing again."""
    if not actor.is_admin:
        raise Forbidden("仅区级管理员可更换签名密钥")
    old_row = None
    if keystore.has_key(STATUS_LIST_SIGNER):
        old_row = _status_list_key_row(session, keystore)
        old_row.retired_at = utcnow()
        session.add(old_row)
    keystore.rotate(STATUS_LIST_SIGNER)
    new_row = _status_list_key_row(session, keystore)
    record(
        session,
        actor=actor,
        action="licence_key.rotate_status_list",
        entity_type="licence_status_list_key",
        entity_id=new_row.kid,
        old={"kid": old_row.kid if old_row else None},
        new={"kid": new_row.kid},
    )
    return old_row, new_row


def licence_token(
    session: Session, actor: Principal, keystore: KeyStore, licence_id: int
) -> tuple[Licence, str]:
    """A signed verification token for the QR code (issuing department or administrators)."""
    licence = get_licence(session, actor, licence_id)
    return licence, token_for(session, keystore, licence)


def token_for(session: Session, keystore: KeyStore, licence: Licence) -> str:
    ensure_signing_key(session, keystore, licence.issuer_department_id, licence.issuer_code)
    key = keystore.key_for(licence.issuer_code)
    claims = new_claims(
        key,
        status_index=licence.id or 0,
        identifier=licence.identifier,
        holder_name_masked=mask_name(licence.holder_name, licence.holder_code_type),
        holder_code_masked=mask_code(licence.holder_code),
        valid_from=licence.valid_from,
        valid_to=licence.valid_to,
    )
    return make_token(key, claims)


def published_keys(session: Session) -> list[PublicKey]:
    """Every published key, retired ones included: a retired key still verifies what it signed."""
    return [
        PublicKey(r.kid, r.algorithm, r.issuer_code, b64d(r.public_key))
        for r in session.exec(select(LicenceSigningKey)).all()
    ]


def key_rows(session: Session) -> list[LicenceSigningKey]:
    return list(session.exec(select(LicenceSigningKey).order_by(col(LicenceSigningKey.id))).all())


class KeyRing:
    """Per-process cache of the published keys: reloaded every 5 minutes; an unknown key id is
    looked up on its own at once, so a department's first key verifies in every worker immediately."""

    RELOAD_SECONDS = 300

    def __init__(self) -> None:
        self._verifier = Verifier({})
        self._loaded_at = 0.0
        self._lock = threading.Lock()

    def verifier(self, session: Callable[[], Session], kid_hint: str | None = None) -> Verifier:
        """``session`` is called only when the keys must be read (most calls need no database)."""
        if self._loaded_at == 0.0 or time.monotonic() - self._loaded_at > self.RELOAD_SECONDS:
            with self._lock:
                self._verifier = Verifier({k.kid: k for k in published_keys(session())})
                self._loaded_at = time.monotonic()
        elif kid_hint and len(kid_hint) <= 32 and kid_hint not in self._verifier.keys:
            row = session().exec(select(LicenceSigningKey).where(LicenceSigningKey.kid == kid_hint)).first()
            if row is not None:
                key = PublicKey(row.kid, row.algorithm, row.issuer_code, b64d(row.public_key))
                with self._lock:
                    self._verifier = Verifier({**self._verifier.keys, key.kid: key})
        return self._verifier


def _kid_hint(token: str) -> str | None:
    import json

    try:
        payload = json.loads(b64d(token.split(".")[1]))
        return str(payload[0])
    except (ValueError, IndexError, TypeError, UnicodeDecodeError, KeyError):
        return None


PUBLIC_REASONS = {
    "suspended": "证照已被颁发机构暂扣（暂停使用）",
    "cancelled": "证照已注销",
    "revoked": "证照已被颁发机构吊销",
    "withdrawn": "证照已被颁发机构撤销",
    "void": "证照已挂失或作废",
    "superseded": "该版本已变更作废，请向持证人索取最新版本",
    "expired": "证照已过期",
    "not_yet_valid": "证照尚未到有效期起始日期",
}


@dataclass(frozen=True)
class Verification:
    """Outcome of an online check: ``valid`` only when the signature holds and the licence is in force.

    Everything here may be shown to anyone: ``reason`` and ``category_label`` come from fixed lists,
    never from the clerk's free text. ``checked_at`` is the time of the check.
    """

    valid: bool
    reason: str | None
    status: str | None = None
    status_label: str | None = None
    licence: LicenceFacts | None = None
    claims: TokenClaims | None = None
    type_name: str | None = None
    check: TokenCheck | None = None
    status_date: date | None = None
    category_label: str | None = None
    checked_at: datetime = field(default_factory=utcnow)


def verify_online(
    session: Callable[[], Session],
    keyring: KeyRing,
    token: str,
    *,
    facts: FactsCache,
    log: VerificationLog,
    channel: str = "page",
) -> Verification:
    """Check the signature, then the state of the licence (``facts``: read within the last 30 s, or
    at once after a change made through this process); logged in the verification log. ``session``
    gives the request's session and is called only on a cache miss: a hit touches no database."""
    verifier = keyring.verifier(session, _kid_hint(token) if isinstance(token, str) else None)
    check = verifier.check(token)
    result: Verification
    if not check.ok or check.claims is None:
        result = Verification(False, check.reason, check=check)
    else:
        claims = check.claims
        licence = facts.get(session, claims.status_index)
        if licence is None or licence.identifier != claims.identifier:
            result = Verification(False, "登记库中没有该证照", claims=claims, check=check)
        else:
            status = effective_status(licence)
            result = Verification(
                status == "valid",
                PUBLIC_REASONS.get(status),
                status,
                EFFECTIVE_LABELS.get(status, status),
                licence,
                claims,
                licence.type_name,
                check,
                effective_status_date(licence),
                public_reason_category(licence) if status == licence.status else None,
            )
    # One row per verification in the verification log (see LicenceVerification for why not the
    # hash-chained audit log), written in batches by ``log`` (see licenses.verification_log for
    # what a crash may lose).
    log.append(
        {
            "at": result.checked_at,
            "licence_id": result.licence.id if result.licence else None,
            "valid": result.valid,
            "status": result.status,
            "reason": (result.reason or "")[:300] or None,
            "kid": (check.kid or "")[:32] or None,
            "channel": channel,
        }
    )
    return result


def status_bits(session: Session, purpose: str) -> tuple[bytes, int]:
    """The bitstring (bit i set = licence id i has ended (注销/吊销/撤销/作废/superseded) for
    "revocation", or is 暂扣 for "suspension") and its length in bits (≥ 131,072)."""
    statuses = {
        "revocation": (*(s.value for s in ENDED_STATUSES), LicenceStatus.SUPERSEDED.value),
        "suspension": (LicenceStatus.SUSPENDED.value,),
    }[purpose]
    max_id = session.exec(select(func.max(Licence.id))).one() or 0
    size = max(131072, ((int(max_id) // 8) + 1) * 8)
    bits = bytearray(size // 8)
    for (lid,) in session.execute(sa.select(col(Licence.id)).where(col(Licence.status).in_(statuses))):
        # W3C Bitstring Status List: index 0 is the left-most (most significant) bit of the first byte.
        bits[lid // 8] |= 0x80 >> (lid % 8)
    return bytes(bits), size
