"""Reconciliation with the city registry (对账): what the registry lacks or holds in an older version
is re-sent through the outbox; what it holds that we do not is reported, never deleted.

Two methods, one report. ``tree`` (the default) descends the registry's digest tree
(licenses.reconcile_tree): issuer, year, month, day, then hash buckets, only where digests differ,
so its cost follows the differences. ``groups`` compares count and digest per issuer and 颁发日期
and lists every record of a differing group: the protocol an older registry offers, used when the
registry answers 404 to the tree. Moved out of licenses.sync (which sends); the protocol is in
docs/city_registry.md.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import date
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from core.db import table_of
from core.types import utcnow
from licenses import recon_state
from licenses import reconcile_tree as tree
from licenses.models import LicenceOutbox
from licenses.sync import (
    FAILED,
    PENDING,
    SKIPPED,
    RegistryClient,
    RegistryTreeUnsupportedError,
    change_rank,
    licence_key,
    request_drain,
)

MAX_LISTED_EXTRAS = 100  # extras named in the report (all are counted)

_T = table_of(LicenceOutbox)


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
    # By kind, for what the district holds: the registry lacks it / holds an older change / other.
    missing_in_registry: int = 0
    behind_in_registry: int = 0
    other_in_registry: int = 0
    extras: list[dict[str, Any]] = field(default_factory=list)  # the first MAX_LISTED_EXTRAS, named
    method: str = "tree"
    requests: int = 0
    bytes_sent: int = 0
    bytes_received: int = 0
    registry_records_listed: int = 0
    # Licences the tree found differing whose change the baseline names but the outbox no longer holds
    # (a row deleted or restored by hand): nothing to re-send from, so counted here, and the weekly
    # full verification (``verify=True``) rebuilds the baseline from the outbox.
    without_outbox_row: int = 0
    # Full verification only (``verify=True``): licences and days on which the baseline kept on write
    # (licenses.recon_state) had drifted from the outbox; None when not verified.
    baseline_drift: int | None = None
    baseline_drift_days: int | None = None

    @property
    def consistent(self) -> bool:
        """Both sides hold the same latest change of every licence (nothing differs, nothing extra)."""
        return not self.differing and not self.extra_in_registry

    @property
    def result(self) -> str:
        return "一致" if self.consistent else "存在差异"

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "result": self.result}


def _classify(report: ReconcileReport, requeue: list[int], outbox_id: int, outbox_status: str,
              ours: tuple[str, int, str], held: dict[str, Any] | None) -> None:
    """One licence the registry holds otherwise than we do: by kind, then re-send, or count it."""
    identifier, revision, _status = ours
    if held is None:
        report.missing_in_registry += 1
    elif change_rank(str(held["identifier"]), int(held["revision"])) < change_rank(identifier, revision):
        report.behind_in_registry += 1
    else:
        report.other_in_registry += 1
    if outbox_status == PENDING:
        report.in_flight += 1
    elif outbox_status == FAILED:
        report.dead_letters += 1
    else:
        requeue.append(outbox_id)


def _note_extra(report: ReconcileReport, issuer_code: str, held: dict[str, Any]) -> None:
    report.extra_in_registry += 1
    if len(report.extras) < MAX_LISTED_EXTRAS:
        report.extras.append({"issuer_code": issuer_code, "day": held.get("day"),
                              "identifier": held.get("identifier"), "revision": held.get("revision"),
                              "status": held.get("status")})


def _same(held: dict[str, Any], identifier: str, revision: int, status: str) -> bool:
    return bool(held["identifier"] == identifier and held["revision"] == revision
                and held["status"] == status)


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
        report.registry_records_listed += len(held)
        differing = 0
        for key, exp in licences.items():
            have = held.pop(key, None)
            if have and _same(have, exp.identifier, exp.revision, exp.licence_status):
                continue
            differing += 1
            _classify(report, requeue, exp.outbox_id, exp.status,
                      (exp.identifier, exp.revision, exp.licence_status), have)
        for extra in held.values():
            _note_extra(report, issuer_code, {**extra, "day": day})
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


def _reconcile_groups(session: Session, client: RegistryClient, issuer_code: str | None,
                      report: ReconcileReport, requeue: list[int]) -> None:
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


@dataclass
class _DayTally:
    count: int = 0
    registry_count: int = 0
    differing: int = 0
    extra: int = 0


def _chunks(items: list[Any], size: int) -> Iterable[list[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _reconcile_tree(session: Session, client: RegistryClient, issuer_code: str | None,
                    report: ReconcileReport, requeue: list[int], leaf: int,
                    sums: dict[tuple[str, str], tuple[int, int, int]]) -> None:
    """Breadth-first descent: a level's differing nodes go to the registry in one request per CHUNK.

    A child the registry lacks entirely is read from our baseline (every licence in it is missing), with
    no request; a child only the registry has is descended like any other (its records are extras).
    """
    tree.check_issuer(issuer_code)
    ours = tree.Expected(session, sums)
    report.groups = ours.groups()
    days: dict[tuple[str, str], _DayTally] = {}
    frontier = [tree.Node(issuer_code)] if issuer_code else [tree.Node()]
    leaves: list[tree.Node] = []

    # Classified once their outbox rows are read (one lookup by idem_key for all of them).
    differ: list[tuple[tree.Ours, dict[str, Any] | None]] = []

    def missing(node: tree.Node) -> None:
        for row in ours.rows(node):
            days.setdefault((str(node.issuer_code), row.day), _DayTally()).differing += 1
            differ.append((row, None))

    while frontier:
        nxt: list[tree.Node] = []
        for chunk in _chunks(frontier, tree.CHUNK):
            answers = client.tree_children([n.as_dict() for n in chunk])
            for node, answer, mine in zip(chunk, answers, ours.children_many(chunk), strict=True):
                theirs = {str(c["key"]): tree.Held(int(c["count"]), str(c["digest"]))
                          for c in answer["children"]}
                for key in sorted(set(mine) | set(theirs)):
                    o, t = mine.get(key), theirs.get(key)
                    if o == t:
                        continue
                    child = node.child(key)
                    if len(child.day) == 10 and not child.bucket:
                        days[(str(child.issuer_code), child.day)] = _DayTally(
                            o.count if o else 0, t.count if t else 0)
                    if t is None:
                        missing(child)
                    elif max(o.count if o else 0, t.count) <= leaf or child.is_bottom:
                        leaves.append(child)
                    else:
                        nxt.append(child)
        frontier = nxt
    candidates: list[tuple[str, dict[str, Any]]] = []
    for chunk in _chunks(leaves, tree.CHUNK):
        answers = client.tree_records([n.as_dict() for n in chunk])
        for node, answer, listed in zip(chunk, answers, ours.rows_many(chunk), strict=True):
            held = {str(r["licence_key"]): r for r in answer["records"]}
            report.registry_records_listed += len(held)
            for row in listed:
                have = held.pop(row.licence_key, None)
                if have is not None and _same(have, row.identifier, row.revision, row.status):
                    continue
                days.setdefault((str(node.issuer_code), row.day), _DayTally()).differing += 1
                differ.append((row, have))
            candidates.extend((str(node.issuer_code), r) for r in held.values())
    outbox = ours.outbox_of([row.idem_key for row, _have in differ])
    for row, have in differ:
        if row.idem_key not in outbox:  # the baseline names a row no longer in the outbox
            report.without_outbox_row += 1
            continue
        outbox_id, outbox_status = outbox[row.idem_key]
        _classify(report, requeue, outbox_id, outbox_status, (row.identifier, row.revision, row.status),
                  have)
    # A licence whose day differs between the sides is found missing under our day; under the
    # registry's day it is not an extra.
    known = ours.known([str(r["licence_key"]) for _i, r in candidates])
    for issuer, held_record in candidates:
        if held_record["licence_key"] in known:
            continue
        _note_extra(report, issuer, held_record)
        days.setdefault((issuer, str(held_record.get("day"))), _DayTally()).extra += 1
    report.differing = [
        {"issuer_code": issuer, "day": day, "count": t.count, "registry_count": t.registry_count,
         "differing": t.differing, "extra": t.extra}
        for (issuer, day), t in sorted(days.items()) if t.differing or t.extra
    ]
    report.matching = report.groups - sum(1 for d in report.differing if d["count"])


@dataclass(frozen=True)
class Baseline:
    """The district's side as a run starts: the (issuer, day) sums and, after ``verify``, the drift."""

    sums: dict[tuple[str, str], tuple[int, int, int]]
    drift: recon_state.Drift | None = None


def prepare_baseline(session: Session, issuer_code: str | None = None, *, verify: bool = False) -> Baseline:
    """The baseline's own writes (the weekly rebuild, folding the day log), then its day sums.

    The nightly task commits this in a short transaction of its own before it talks to the registry:
    kept inside the descent, those writes held the write lock (SQLite) or the rebuilt rows (PostgreSQL)
    through every round trip, and licence writes waited on them."""
    drift = recon_state.rebuild(session) if verify else None
    return Baseline(recon_state.day_sums(session, issuer_code), drift)


def reconcile(session: Session, client: RegistryClient, issuer_code: str | None = None, *,
              method: str = "tree", leaf: int = tree.LEAF, verify: bool = False,
              baseline: Baseline | None = None) -> ReconcileReport:
    """Compare what the registry holds with the latest change of every licence; re-send what differs.

    ``method`` ``tree`` (falls back to ``groups`` when the registry has no digest tree) or ``groups``.
    A licence whose latest change is pending (in flight) or failed (a dead letter, already visible)
    is counted, not re-sent; one the district believes sent but the registry lacks or holds in
    another version or status is set pending again. Records only the registry holds are counted and
    the first MAX_LISTED_EXTRAS named in ``extras``; nothing is deleted. Flushes, never commits;
    asks for a drain.

    ``verify`` first recomputes the district's baseline from the whole outbox (one pass over it) and
    reports how far the kept one had drifted: the periodic full check behind the tree, which otherwise
    trusts the baseline kept on write. ``baseline``: one ``prepare_baseline`` already made (and
    committed), instead of making it here; ``verify`` is then the one it was made with.
    """
    if method not in ("tree", "groups"):
        raise ValueError(f"unknown reconciliation method {method!r}")
    report = ReconcileReport(method=method)
    requeue: list[int] = []
    traffic = [getattr(client, a, 0) for a in ("requests", "bytes_sent", "bytes_received")]
    if baseline is None:
        baseline = prepare_baseline(session, issuer_code, verify=verify)
    drift = baseline.drift
    if method == "tree":
        try:
            _reconcile_tree(session, client, issuer_code, report, requeue, leaf, baseline.sums)
        except RegistryTreeUnsupportedError:
            report = ReconcileReport(method="groups")
            requeue = []
    if report.method == "groups":
        _reconcile_groups(session, client, issuer_code, report, requeue)
    if drift is not None:
        report.baseline_drift, report.baseline_drift_days = drift.licences, drift.days
    report.requests, report.bytes_sent, report.bytes_received = (
        getattr(client, a, 0) - before
        for a, before in zip(("requests", "bytes_sent", "bytes_received"), traffic, strict=True))
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
