"""Administration of the sync to the city registry: dead letters (list, requeue, skip; audited) and
the status figures of the dashboard, /metrics and /readyz (totals, lag, retries by kind, alerts, one
licence's changes).

Moved out of licenses.sync (which sends); every write here flushes, the web boundary commits.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from core import audit
from core.db import Database, table_of
from core.errors import Invalid, NotFound
from core.types import utcnow
from licenses import recon_state
from licenses.models import LicenceOutbox
from licenses.sync import (
    CLOCK_SKEW,
    ERROR_KINDS,
    FAILED,
    OUTBOX_STATUSES,
    PENDING,
    SENT,
    SKIPPED,
    SUPERSEDED,
    request_drain,
)
from licenses.sync_models import SyncRun

_T = table_of(LicenceOutbox)


def list_dead_letters(
    session: Session, *, offset: int = 0, limit: int = 50, issuer_code: str | None = None
) -> tuple[list[LicenceOutbox], int]:
    q = sa.select(LicenceOutbox).where(_T.c.status == FAILED)
    n = sa.select(sa.func.count()).select_from(_T).where(_T.c.status == FAILED)
    if issuer_code:
        q, n = q.where(_T.c.issuer_code == issuer_code), n.where(_T.c.issuer_code == issuer_code)
    rows = list(session.execute(q.order_by(_T.c.id).offset(offset).limit(limit)).scalars())
    return rows, int(session.execute(n).scalar_one())


def _failed_rows(session: Session, ids: list[int]) -> list[LicenceOutbox]:
    if not ids:
        raise Invalid("请至少选择一条记录", {"ids": ["请至少选择一条记录"]})
    rows = list(session.execute(sa.select(LicenceOutbox).where(_T.c.id.in_(ids))).scalars())
    missing = set(ids) - {r.id for r in rows}
    if missing:
        raise NotFound(f"同步记录不存在：{sorted(missing)[:10]}")
    not_failed = [r.id for r in rows if r.status != FAILED]
    if not_failed:
        raise Invalid(f"只有失败的记录可以重新排队或跳过：{not_failed[:10]}", {"ids": ["记录不是失败状态"]})
    return rows


def requeue_dead_letters(session: Session, ids: list[int], actor: Any) -> int:
    """Put failed records back in the queue (audited); a drain runs after the commit."""
    rows = _failed_rows(session, ids)
    now = utcnow()
    for row in rows:
        audit.record(
            session,
            actor=actor,
            action="licence_sync.requeue",
            entity_type="licence_outbox",
            entity_id=row.id,
            old={"status": row.status, "last_error": row.last_error},
            new={"status": PENDING},
        )
        row.status, row.updated_at = PENDING, now
        row.next_attempt_at, row.error_kind = None, None
    request_drain(session)
    session.flush()
    return len(rows)


def skip_dead_letters(session: Session, ids: list[int], actor: Any, reason: str) -> int:
    """Give up on failed records with a reason (audited); they are never sent."""
    reason = (reason or "").strip()
    if len(reason) < 2:
        raise Invalid("跳过需要填写原因", {"reason": ["请填写跳过原因"]})
    rows = _failed_rows(session, ids)
    now = utcnow()
    for row in rows:
        audit.record(
            session,
            actor=actor,
            action="licence_sync.skip",
            entity_type="licence_outbox",
            entity_id=row.id,
            old={"status": row.status, "last_error": row.last_error},
            new={"status": SKIPPED},
            reason=reason[:500],
        )
        row.status, row.updated_at = SKIPPED, now
        row.last_error = f"已跳过：{reason}"[:1000]
    session.flush()
    recon_state.note_skipped(session, rows)  # a skipped change leaves the reconciliation baseline
    return len(rows)


# ---------------------------------------------------------------- status figures


def status_summary(session: Session) -> dict[str, Any]:
    """Figures for the dashboard and /metrics: totals, lag, throughput, per department."""
    now = utcnow()
    by_status = {s: 0 for s in OUTBOX_STATUSES}
    by_issuer: dict[str, dict[str, int]] = {}
    synced_1m = synced_5m = 0
    last_synced: datetime | None = None
    # One pass over the outbox (no index on synced_at: it would slow every batch's update).
    recent = [
        sa.func.sum(sa.case((_T.c.synced_at >= now - timedelta(minutes=m), 1), else_=0)) for m in (1, 5)
    ]
    for issuer, status, n, r1, r5, last in session.execute(
        sa.select(
            _T.c.issuer_code, _T.c.status, sa.func.count(), *recent, sa.func.max(_T.c.synced_at)
        ).group_by(_T.c.issuer_code, _T.c.status)
    ):
        if last is not None and (last_synced is None or last > last_synced):
            last_synced = last
        by_status[status] = by_status.get(status, 0) + n
        by_issuer.setdefault(issuer, {s: 0 for s in OUTBOX_STATUSES})[status] = n
        synced_1m += int(r1 or 0)
        synced_5m += int(r5 or 0)
    # The oldest pending row by id, through the partial index of pending rows.
    oldest = session.execute(
        sa.select(_T.c.created_at).where(_T.c.status == PENDING).order_by(_T.c.id).limit(1)
    ).scalar()
    # Pending records whose last attempt failed (registry down, untrusted answers, clock skew): shown,
    # not hidden, by kind of failure.
    by_kind = {k: 0 for k in ERROR_KINDS}
    for kind, n in session.execute(
        sa.select(_T.c.error_kind, sa.func.count())
        .where(_T.c.status == PENDING, _T.c.error_kind.is_not(None))
        .group_by(_T.c.error_kind)
    ):
        by_kind[kind] = int(n)
    retrying = session.execute(
        sa.select(sa.func.count(), sa.func.min(_T.c.next_attempt_at)).where(
            _T.c.status == PENDING, _T.c.last_error.is_not(None)
        )
    ).one()
    last_error = None
    if retrying[0]:
        last_error = session.execute(
            sa.select(_T.c.last_error)
            .where(_T.c.status == PENDING, _T.c.last_error.is_not(None))
            .order_by(_T.c.updated_at.desc())
            .limit(1)
        ).scalar()
    names = _department_names(session, list(by_issuer))
    departments = [
        {
            "issuer_code": code,
            "name": names.get(code, code),
            "pushed": c[SENT],
            "pending": c[PENDING],
            "failed": c[FAILED],
            "skipped": c[SKIPPED],
            "superseded": c[SUPERSEDED],
        }
        for code, c in sorted(by_issuer.items())
    ]
    rt = table_of(SyncRun)
    runs = (
        session.execute(sa.select(SyncRun).where(rt.c.kind == "reconcile").order_by(rt.c.id.desc()).limit(1))
        .scalars()
        .first()
    )
    return {
        "generated_at": now.isoformat(),
        "by_status": by_status,
        "total": sum(by_status.values()),
        "dead_letters": by_status[FAILED],
        "retrying": {
            "count": int(retrying[0]),
            "last_error": last_error,
            "by_kind": by_kind,
            "next_attempt_at": retrying[1].isoformat() if isinstance(retrying[1], datetime) else None,
        },
        "alerts": sync_alerts(session),
        "lag_seconds": round((now - oldest).total_seconds(), 3) if oldest else 0.0,
        "oldest_pending_at": oldest.isoformat() if oldest else None,
        "last_synced_at": last_synced.isoformat() if isinstance(last_synced, datetime) else None,
        "throughput_per_s": {"1m": round(synced_1m / 60, 2), "5m": round(synced_5m / 300, 2)},
        "synced_last_minute": synced_1m,
        "departments": departments,
        "department_coverage": {
            "with_pushed": sum(1 for d in departments if d["pushed"]),
            "issuing": len(departments),
        },
        "last_reconciliation": None
        if runs is None
        else {
            "finished_at": runs.finished_at.isoformat() if runs.finished_at else None,
            "outcome": runs.outcome,
            "counts": runs.counts,
            "message": runs.message,
        },
    }


def sync_alerts(session: Session) -> list[dict[str, Any]]:
    """Conditions an operator must see that the sync cannot fix alone: rows waiting because the
    registry refuses this host's timestamps (the clock is off). Clears by itself once they are sent."""
    skewed = session.execute(
        sa.select(sa.func.count(), sa.func.max(_T.c.updated_at)).where(
            _T.c.status == PENDING, _T.c.error_kind == CLOCK_SKEW
        )
    ).one()
    if not skewed[0]:
        return []
    return [
        {
            "kind": CLOCK_SKEW,
            "reason": f"市级证照库拒绝本机时间戳（时钟偏差超过 300 秒），{int(skewed[0])} 条记录等待重试；"
                      "请校准服务器时钟（NTP），校准后自动恢复推送",
            "records": int(skewed[0]),
            "since": skewed[1].isoformat() if isinstance(skewed[1], datetime) else None,
        }
    ]


def readiness(db: Database) -> dict[str, Any]:
    """The sync's part of /readyz: "degraded" with the reasons while an alert stands, else "ok"."""
    with db.session() as session:
        alerts = sync_alerts(session)
    if not alerts:
        return {"state": "ok"}
    return {"state": "degraded", "reason": "；".join(a["reason"] for a in alerts), "alerts": alerts}


def _department_names(session: Session, codes: list[str]) -> dict[str, str]:
    if not codes:
        return {}
    from catalog.models import Department

    dt = table_of(Department)
    return {c: n for c, n in session.execute(sa.select(dt.c.uscc, dt.c.name).where(dt.c.uscc.in_(codes)))}


def licence_sync_status(session: Session, licence_id: int) -> dict[str, Any]:
    """Sync state of one licence across its versions: pending, synced version n, or failed."""
    from licenses.models import Licence

    lic = session.get(Licence, licence_id)
    if lic is None:
        raise NotFound("证照不存在")
    lt = table_of(Licence)
    versions = sa.select(lt.c.id).where(
        lt.c.type_code == lic.type_code, lt.c.issuer_code == lic.issuer_code, lt.c.serial == lic.serial
    )
    rows = list(
        session.execute(
            sa.select(
                _T.c.id,
                _T.c.identifier,
                _T.c.version,
                _T.c.operation,
                _T.c.status,
                _T.c.attempts,
                _T.c.last_error,
                _T.c.created_at,
                _T.c.synced_at,
            )
            .where(_T.c.licence_id.in_(versions))
            .order_by(_T.c.id)
        )
    )
    synced = [r for r in rows if r.status == SENT]
    last_sent = synced[-1] if synced else None
    latest = rows[-1] if rows else None
    if latest is None:
        state = "none"
    elif latest.status in (PENDING, FAILED):
        state = latest.status
    elif latest.status == SKIPPED:
        state = "skipped"
    else:
        state = "synced"
    return {
        "licence_id": licence_id,
        "state": state,
        # The identifier's version segment (a new one per amendment) and the record's revision.
        "synced_version": int(last_sent.identifier.rsplit(".", 2)[1]) if last_sent else None,
        "synced_revision": last_sent.version if last_sent else None,
        "last_error": latest.last_error if latest is not None else None,
        "changes": [
            {
                "outbox_id": r.id,
                "identifier": r.identifier,
                "revision": r.version,
                "operation": r.operation,
                "status": r.status,
                "attempts": r.attempts,
                "last_error": r.last_error,
                "created_at": r.created_at.isoformat() if r.created_at else None,
                "synced_at": r.synced_at.isoformat() if r.synced_at else None,
            }
            for r in rows
        ],
    }
