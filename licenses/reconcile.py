"""Reconciliation with the city registry (对账): count and digest per issuer and 颁发日期 on both sides,
the records of differing groups compared one by one, and what differs re-sent through the outbox.

Moved out of licenses.sync (which sends); the protocol is in docs/city_registry.md.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import date
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from core.types import utcnow
from licenses.models import LicenceOutbox
from licenses.sync import (
    FAILED,
    PENDING,
    SKIPPED,
    RegistryClient,
    change_rank,
    licence_key,
    request_drain,
)

_T = LicenceOutbox.__table__  # type: ignore[attr-defined]


def digest(rows: Iterable[tuple[str, int, str]]) -> tuple[int, str]:
    """Count and SHA-256 over sorted ``identifier|revision|status`` lines (docs/city_registry.md)."""
    lines = sorted(f"{identifier}|{revision}|{status}\n" for identifier, revision, status in rows)
    h = hashlib.sha256()
    for line in lines:
        h.update(line.encode())
    return len(lines), h.hexdigest()


@dataclass
class Expected:
    outbox_id: int
    status: str  # outbox status of the licence's latest change
    identifier: str
    revision: int  # the record's ``version``: +1 per status change of one identifier
    licence_status: str


def expected_state(
    session: Session, issuer_code: str | None = None
) -> dict[tuple[str, str], dict[str, Expected]]:
    """What the registry should hold: per (issuer, issue day), each licence's latest change.

    The latest change of a licence is its highest (version segment, revision), the rank the registry
    keeps. The group is that change's 颁发日期 as sent (the registry groups the record it holds by
    the ``issue_date`` of that record), so a licence whose versions carry different dates is counted
    once, in the same group on both sides. Skipped changes are left out (an administrator chose not
    to send them).
    """
    q = (
        sa.select(
            _T.c.id,
            _T.c.identifier,
            _T.c.version,
            _T.c.issuer_code,
            _T.c.issue_day,
            _T.c.status,
            _T.c.payload,
        )
        .where(_T.c.status != SKIPPED)
        .order_by(_T.c.id)
        .execution_options(yield_per=5000)
    )
    if issuer_code:
        q = q.where(_T.c.issuer_code == issuer_code)
    latest: dict[str, tuple[tuple[int, int], str, str, Expected]] = {}
    for row in session.execute(q):
        key = licence_key(row.identifier)
        rank = change_rank(row.identifier, row.version)
        held = latest.get(key)
        if held is not None and held[0] >= rank:
            continue
        day = row.issue_day.isoformat() if isinstance(row.issue_day, date) else str(row.issue_day)
        payload = row.payload or {}
        latest[key] = (
            rank,
            row.issuer_code,
            day,
            Expected(row.id, row.status, row.identifier, row.version, str(payload.get("status", ""))),
        )
    groups: dict[tuple[str, str], dict[str, Expected]] = {}
    for key, (_rank, issuer, day, expected) in latest.items():
        groups.setdefault((issuer, day), {})[key] = expected
    return groups


@dataclass
class ReconcileReport:
    groups: int = 0
    matching: int = 0
    differing: list[dict[str, Any]] = field(default_factory=list)
    requeued: int = 0
    in_flight: int = 0
    dead_letters: int = 0
    extra_in_registry: int = 0

    @property
    def consistent(self) -> bool:
        """Both sides hold the same latest change of every licence (nothing differs, nothing extra)."""
        return not self.differing and not self.extra_in_registry

    @property
    def result(self) -> str:
        return "一致" if self.consistent else "存在差异"

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "result": self.result}


def _reconcile_issuer(session: Session, client: RegistryClient, issuer: str, report: ReconcileReport,
                      requeue: list[int]) -> None:
    expected = expected_state(session, issuer)
    theirs = {(g["issuer_code"], g["day"]): g for g in client.digests(issuer_code=issuer)}
    for (issuer_code, day), licences in sorted(expected.items()):
        report.groups += 1
        count, hexdigest = digest((e.identifier, e.revision, e.licence_status) for e in licences.values())
        remote = theirs.pop((issuer_code, day), None)
        if remote and remote.get("count") == count and remote.get("digest") == hexdigest:
            report.matching += 1
            continue
        held = {r["licence_key"]: r for r in client.records(issuer_code, day)} if remote else {}
        differing = 0
        for key, exp in licences.items():
            have = held.pop(key, None)
            if (
                have
                and have["identifier"] == exp.identifier
                and have["revision"] == exp.revision
                and have["status"] == exp.licence_status
            ):
                continue
            differing += 1
            if exp.status == PENDING:
                report.in_flight += 1
            elif exp.status == FAILED:
                report.dead_letters += 1
            else:
                requeue.append(exp.outbox_id)
        report.extra_in_registry += len(held)
        report.differing.append(
            {
                "issuer_code": issuer_code,
                "day": day,
                "count": count,
                "registry_count": remote.get("count") if remote else 0,
                "differing": differing,
                "extra": len(held),
            }
        )
    for remote in theirs.values():
        report.extra_in_registry += int(remote.get("count", 0))


def reconcile(session: Session, client: RegistryClient, issuer_code: str | None = None) -> ReconcileReport:
    """Compare count and digest per issuer and day with the registry; re-send what differs.

    A licence whose latest change is pending (in flight) or failed (a dead letter, already visible)
    is counted, not re-sent; one the district believes sent but the registry lacks or holds in
    another version or status is set pending again. Flushes, never commits; asks for a drain.
    """
    report = ReconcileReport()
    requeue: list[int] = []
    if issuer_code:
        issuers = [issuer_code]
    else:  # one issuer at a time keeps memory bounded by the largest department
        issuers = list(session.execute(sa.select(_T.c.issuer_code).distinct().order_by(_T.c.issuer_code))
                       .scalars())
        known = set(issuers)
        report.extra_in_registry += sum(int(g.get("count", 0)) for g in client.digests()
                                        if g["issuer_code"] not in known)
    for issuer in issuers:
        _reconcile_issuer(session, client, issuer, report, requeue)
    if requeue:
        now = utcnow()
        for i in range(0, len(requeue), 1000):
            session.execute(
                _T.update()
                .where(_T.c.id.in_(requeue[i : i + 1000]))
                .values(status=PENDING, updated_at=now, last_error="对账发现市级证照库数据不一致，重新推送",
                        error_kind=None, next_attempt_at=None)
            )
        report.requeued = len(requeue)
        request_drain(session)
    session.flush()
    return report
