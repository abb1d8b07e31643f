"""Sync of licence changes to the city-level registry (市级证照库): the drain scheduler, outbox
draining with backoff, single-flight locks and the sweep. Reconciliation is in licenses.reconcile,
dead letters and status figures in licenses.sync_admin.

Contracts
- Every licence change writes a ``LicenceOutbox`` row in its own transaction (licenses.outbox);
  nothing here runs inside that transaction except ``request_drain``'s after-commit hook.
- ``send_batch`` claims up to N pending rows that are due (``next_attempt_at`` passed or unset;
  ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so parallel drains never share a row), posts them in one
  request and writes every record's result in the same transaction as the claim. A crash anywhere
  before that commit leaves the rows pending; the registry is idempotent on ``identifier:version``
  (the idem_key) and ranks changes of a licence by (identifier version segment, revision), so
  re-sending is harmless and the later change of a licence wins whatever order they arrive in.
- Only a per-record refusal (``rejected``) marks a record ``failed`` (a dead letter). Every other
  failure (timeouts, connection errors, 429, 5xx, a stale timestamp from clock skew, an answer we
  cannot trust) leaves the rows pending with a backoff by attempts (``next_attempt_at``), so the
  drain after each commit does not hammer them; they are sent once the fault clears.
- ``licenses`` never imports ``workers``: the app and the worker bind a scheduler to their own
  ``Database``'s session factory with ``bind_drain_scheduler``; it is called after a commit of a
  session of that factory that wrote outbox rows.
"""

from __future__ import annotations

import json
import logging
import os
import random
import re
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.orm import ORMExecuteState, sessionmaker
from sqlalchemy.orm import Session as OrmSession
from sqlmodel import Session

from core.db import Database, table_of
from core.logging import get_request_id
from core.pii import mask_personal_data
from core.types import UTCDateTime, utcnow
from licenses.models import LicenceOutbox
from licenses.sync_models import SyncLock, SyncRun

log = logging.getLogger(__name__)

# A request id we store, send on and log (the caller of the web request may choose it).
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")


def clean_request_id(value: object) -> str | None:
    """``value`` if it is a request id we are willing to store, log and send on; else None."""
    if isinstance(value, str) and _REQUEST_ID.fullmatch(value):
        return value
    return None


def current_request_id() -> str | None:
    """The id of the web request being served (bound by the app in core.logging's context variable,
    also used by the structured logs); None outside a request. licenses never imports flask."""
    return clean_request_id(get_request_id())


PENDING, SENT, FAILED, SKIPPED, SUPERSEDED = "pending", "sent", "failed", "skipped", "superseded"
OUTBOX_STATUSES = (PENDING, SENT, FAILED, SKIPPED, SUPERSEDED)
STATUS_LABELS = {
    PENDING: "待推送",
    SENT: "已推送",
    FAILED: "失败（死信）",
    SKIPPED: "已跳过",
    SUPERSEDED: "已被新版本取代",
}
# Registry answers per record (docs/city_registry.md).
ACCEPTED = ("created", "updated", "duplicate")
STALE = "stale"
REJECTED = "rejected"
RESULT_STATUSES = (*ACCEPTED, STALE, REJECTED)
# Kinds of failed attempt (``error_kind``); none of them dead-letters a record.
UNAVAILABLE, PROTOCOL, CLOCK_SKEW = "unavailable", "protocol", "clock_skew"
ERROR_KINDS = (UNAVAILABLE, PROTOCOL, CLOCK_SKEW)
# Backoff of a row after its n-th failed attempt: 2 s, 4 s, 8 s ... capped at BACKOFF_MAX_S, so a row
# is tried again within minutes of a fault clearing and a registry that answers badly is not hammered.
BACKOFF_BASE_S = 2.0
BACKOFF_MAX_S = 120.0
BACKOFF_JITTER = 0.1  # +-10 %: rows of many failed batches do not all come due in the same second
_T = table_of(LicenceOutbox)
# The coalesced job of drain requests (core.coalesce), shared by the web app and the workers, and how
# long a request holds it while its message waits in the queue.
DRAIN_JOB = "sync-drain"
DRAIN_REQUEST_TTL_S = 60.0


class RegistryError(Exception):
    """A failed exchange with the registry; ``outbox_ids`` are the rows of the failed batch."""

    outbox_ids: list[int] = []  # noqa: RUF012  (replaced per instance, never mutated)


class RegistryUnavailableError(RegistryError):
    """Transient: timeout, connection error, 429 or 5xx. Retry later with backoff."""


class RegistryClockSkewError(RegistryUnavailableError):
    """The registry refused our timestamp (401 ``stale_timestamp``): this host's clock is more than
    300 s off. Retryable: nothing is wrong with the records, and sending resumes by itself once the
    clock is right. Shown as an alert (metric, /readyz degraded) while rows wait because of it."""


class RegistryProtocolError(RegistryError):
    """The registry answered something we cannot trust (malformed JSON, wrong count, unknown status,
    a 200 with an error body, an unexpected 4xx). The rows stay pending and back off like transient
    failures: the registry may well have applied them, and re-sending is idempotent."""


class RegistryTreeUnsupportedError(RegistryProtocolError):
    """The registry has no digest tree (404 on /api/v1/reconciliation/tree) or not our digest scheme:
    an older registry; reconciliation falls back to the per-(issuer, day) groups."""


def error_kind(error: Exception) -> str:
    """The ``error_kind`` stored on rows after a failed attempt."""
    if isinstance(error, RegistryClockSkewError):
        return CLOCK_SKEW
    if isinstance(error, RegistryProtocolError):
        return PROTOCOL
    return UNAVAILABLE


def backoff_seconds(attempts: int) -> float:
    """How long a row waits after its ``attempts``-th failed attempt (without jitter)."""
    # The exponent is capped: a row failing for days passes 1,024 attempts, and 2 ** 1,024 does not fit
    # in a float (OverflowError in the drain); 2 ** 32 is far beyond the cap already.
    doublings = min(max(attempts - 1, 0), 32)
    return min(BACKOFF_BASE_S * 2.0**doublings, BACKOFF_MAX_S)


@dataclass(frozen=True)
class RecordResult:
    idem_key: str
    status: str
    message: str | None = None
    version: int | None = None


class RegistryClient(Protocol):
    def post_batch(self, batch_id: str, envelopes: list[str]) -> list[RecordResult]:
        """``envelopes`` are JSON texts (see ``envelope_json``); one result per envelope, in order."""

    def digests(
        self, issuer_code: str | None = None, since: str | None = None, until: str | None = None
    ) -> list[dict[str, Any]]: ...

    def records(self, issuer_code: str, day: str) -> list[dict[str, Any]]: ...

    def tree_children(self, nodes: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Children (key, count, digest) of each node of the digest tree, in request order."""

    def tree_records(self, nodes: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The records of each node of the digest tree, in request order."""


def licence_key(identifier: str) -> str:
    """A licence across its versions: the 电子证照标识 without its version and check segments."""
    return identifier.rsplit(".", 2)[0]


def change_rank(identifier: str, revision: int) -> tuple[int, int]:
    """Order of the changes of one licence, the same on both sides: (version segment, revision).

    An amendment is a new identifier version; a status change raises the revision of one version.
    The outbox id is not part of it: ids can be reset (a restore) and say nothing about the change.
    """
    return int(identifier.rsplit(".", 2)[1]), int(revision)


# ---------------------------------------------------------------- scheduler interface

_FLAG = "licence_sync_drain_requested"
_HOOKS = "licence_sync_hooks"  # key in the session factory's ``info``: the factory's _DrainHooks


class _DrainHooks:
    """Session hooks of one session factory: remember that outbox rows were written, and call the
    scheduler after the commit. Bound to that factory only (sessionmaker gives every factory its own
    Session subclass), so other sessions in the process, and other apps' databases, never fire them."""

    def __init__(self, scheduler: Callable[[], None] | None) -> None:
        self.scheduler = scheduler

    def after_flush(self, session: OrmSession, _ctx: Any) -> None:
        if any(isinstance(obj, LicenceOutbox) for obj in session.new):
            session.info[_FLAG] = True

    def do_orm_execute(self, state: ORMExecuteState) -> None:
        # Bulk loads insert outbox rows with one INSERT statement, no ORM objects.
        if state.is_insert and getattr(state.statement, "table", None) is _T:
            state.session.info[_FLAG] = True

    def after_commit(self, session: OrmSession) -> None:
        scheduler = self.scheduler
        if session.info.pop(_FLAG, False) and scheduler is not None:
            try:
                scheduler()
            except Exception:  # the periodic sweep is the guarantee; never fail a committed request
                log.warning(
                    "could not enqueue the outbox drain; the sweep will pick the rows up", exc_info=True
                )

    def after_rollback(self, session: OrmSession) -> None:
        session.info.pop(_FLAG, None)


def bind_drain_scheduler(db: Database, scheduler: Callable[[], None] | None) -> None:
    """Call ``scheduler`` (it enqueues a drain) after each commit of a session of ``db`` that wrote
    outbox rows or asked for a drain. The scheduler is held by ``db``'s session factory: binding
    again replaces it for that database only; None unbinds it (the hooks stay, doing nothing)."""
    factory: sessionmaker[Any] = db.sessionmaker
    info = dict(factory.kw.get("info") or {})
    hooks = info.get(_HOOKS)
    if isinstance(hooks, _DrainHooks):
        hooks.scheduler = scheduler
        return
    hooks = _DrainHooks(scheduler)
    for name in ("after_flush", "do_orm_execute", "after_commit", "after_rollback"):
        event.listen(factory, name, getattr(hooks, name))
    info[_HOOKS] = hooks
    factory.configure(info=info)


def drain_scheduler(db: Database) -> Callable[[], None] | None:
    """The scheduler bound to ``db`` (None when none is)."""
    hooks = (db.sessionmaker.kw.get("info") or {}).get(_HOOKS)
    return hooks.scheduler if isinstance(hooks, _DrainHooks) else None


def request_drain(session: OrmSession) -> None:
    """Ask for a drain after this session's next commit (used after requeues)."""
    session.info[_FLAG] = True


# ---------------------------------------------------------------- draining


@dataclass
class BatchOutcome:
    claimed: int = 0
    sent: int = 0
    failed: int = 0
    superseded: int = 0
    duplicates: int = 0

    def add(self, other: BatchOutcome) -> None:
        for name in ("claimed", "sent", "failed", "superseded", "duplicates"):
            setattr(self, name, getattr(self, name) + getattr(other, name))


@dataclass
class DrainReport:
    batches: int = 0
    totals: BatchOutcome = field(default_factory=BatchOutcome)
    more: bool = False  # stopped by the time budget with rows still pending
    interrupted: str | None = None  # a transient error after some progress
    protocol_error: str | None = None
    error: Exception | None = None  # the transient error itself, re-raised when nothing got through

    def as_dict(self) -> dict[str, Any]:
        return {
            "batches": self.batches,
            **asdict(self.totals),
            "more": self.more,
            "interrupted": self.interrupted,
            "protocol_error": self.protocol_error,
        }


def _due(now: datetime) -> sa.ColumnElement[bool]:
    """Rows whose backoff (if any) has passed."""
    return sa.or_(_T.c.next_attempt_at.is_(None), _T.c.next_attempt_at <= now)


# The advisory locks of a batch's licences, tried without waiting; the keys come as one text parameter,
# comma-separated, which PostgreSQL splits (psycopg's Python array dumper escaping 500 keys one by one
# was 7 % of a batch's CPU). Keys are computed here, not in SQL: ``licence_key`` as a regular expression
# per row cost PostgreSQL more than the round trip it saved.
_LOCK_KEYS_PG = sa.text(
    "SELECT k FROM unnest(string_to_array(:keys, ',')) AS k"
    " WHERE pg_try_advisory_xact_lock(hashtextextended(k, 0))"
)


def _claim(session: Session, limit: int) -> list[sa.Row[Any]]:
    # The payload is read as JSON text and spliced into the request unparsed (half the CPU of a batch
    # went to decoding and re-encoding it).
    q = (
        sa.select(_T.c.id, _T.c.identifier, _T.c.version, _T.c.idem_key,
                  sa.cast(_T.c.payload, sa.Text).label("payload"), _T.c.request_id)
        .where(_T.c.status == PENDING, _due(utcnow()))
        .order_by(_T.c.id)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        # Losing the last commits in a database crash only re-sends records the registry already
        # holds (idempotent), so the drain does not wait for the WAL flush.
        session.execute(sa.text("SET LOCAL synchronous_commit = off"))
        q = q.with_for_update(skip_locked=True)
        return _one_sender_per_licence(session, list(session.execute(q).all()))
    return list(session.execute(q).all())


def _one_sender_per_licence(session: Session, rows: list[sa.Row[Any]]) -> list[sa.Row[Any]]:
    """Keep the rows of the licences this transaction holds, so that two drains (lanes, worker processes,
    hosts) never send changes of one licence at the same time, where the later change could arrive
    first. SKIP LOCKED keeps drains on disjoint rows, not on disjoint licences: a licence changed twice
    in quick succession has rows in two drains' batches. A transaction-scoped advisory lock per licence
    key, taken without waiting, settles it: rows of a licence another drain holds stay pending (and
    locked by us until our commit, so nobody else takes them in between) for the next batch. What still
    arrives late (an older change that was backing off) is refused by the registry as stale and marked
    superseded here, never applied over the newer one.
    """
    if not rows:
        return rows
    keys = sorted({licence_key(r.identifier) for r in rows})
    joined = ",".join(keys)
    if joined.count(",") == len(keys) - 1:
        held = set(session.execute(_LOCK_KEYS_PG, {"keys": joined}).scalars())
    else:  # a key with a comma in it (no identifier we issue has one): an array parameter
        held = set(session.execute(
            sa.text("SELECT k FROM unnest(CAST(:keys AS text[])) AS k"
                    " WHERE pg_try_advisory_xact_lock(hashtextextended(k, 0))"),
            {"keys": keys},
        ).scalars())
    return rows if len(held) == len(keys) else [r for r in rows if licence_key(r.identifier) in held]


def envelope_json(row: sa.Row[Any]) -> str:
    """One element of the request's ``records``: {"idem_key", "sequence", "record"[, "request_id"]}
    as JSON text; ``request_id`` (the web request that made the change) only when there is one."""
    rid = getattr(row, "request_id", None)
    trace = f',"request_id":{json.dumps(rid)}' if rid else ""
    return f'{{"idem_key":{json.dumps(row.idem_key)},"sequence":{int(row.id)}{trace},"record":{row.payload}}}'


# Marks a batch's answered rows on PostgreSQL in one statement: sent (with ``synced_at``) or superseded,
# given as two parallel arrays, each one text parameter ('{1,2,3}', '{sent,superseded,...}'), which
# PostgreSQL parses: psycopg's array dumper escaped every element in Python (7 % of a batch's CPU for
# the claim's 500 keys alone), and a statement per status was a round trip more.
_MARK_PG = sa.text(
    "UPDATE licence_outbox AS o SET status = v.status, attempts = o.attempts + 1, updated_at = :now,"
    " last_error = NULL, error_kind = NULL, next_attempt_at = NULL,"
    " synced_at = CASE WHEN v.status = 'sent' THEN :now ELSE o.synced_at END"
    " FROM unnest(CAST(:ids AS integer[]), CAST(:statuses AS text[])) AS v(id, status)"
    " WHERE o.id = v.id"
).bindparams(sa.bindparam("now", type_=UTCDateTime()))


def _mark_answered(session: Session, sent: list[int], superseded: list[int], now: datetime) -> None:
    """Rows the registry accepted are ``sent``, rows it refused as stale (or older changes of a licence
    left out of the batch) ``superseded``; one attempt more, no error, no backoff."""
    if session.get_bind().dialect.name != "postgresql":
        _set_status(session, sent, SENT, now, synced=True)
        _set_status(session, superseded, SUPERSEDED, now)
        return
    if not sent and not superseded:
        return
    ids = "{" + ",".join(map(str, sent + superseded)) + "}"
    statuses = "{" + ",".join([SENT] * len(sent) + [SUPERSEDED] * len(superseded)) + "}"
    session.execute(_MARK_PG, {"now": now, "ids": ids, "statuses": statuses})


def _set_status(
    session: Session,
    ids: list[int],
    status: str,
    now: datetime,
    *,
    error: str | None = None,
    synced: bool = False,
) -> None:
    if not ids:
        return
    values: dict[str, Any] = {
        "status": status,
        "attempts": _T.c.attempts + 1,
        "updated_at": now,
        "last_error": error,
        "error_kind": None,
        "next_attempt_at": None,
    }
    if synced:
        values["synced_at"] = now
    for i in range(0, len(ids), 1000):  # SQLite: at most 32,766 parameters a statement
        session.execute(_T.update().where(_T.c.id.in_(ids[i : i + 1000])).values(values))


def send_batch(session: Session, client: RegistryClient, limit: int) -> BatchOutcome:
    """Claim up to ``limit`` pending rows, post them in one request, record each result.

    Raises RegistryUnavailableError / RegistryProtocolError with nothing written (the caller rolls
    back and calls ``note_failure``). Flushes, never commits.
    """
    rows = _claim(session, limit)
    outcome = BatchOutcome(claimed=len(rows))
    if not rows:
        return outcome
    now = utcnow()
    # Two changes of one licence in one batch: only the later one (by rank) is sent.
    latest: dict[str, sa.Row[Any]] = {}
    for row in rows:
        key = licence_key(row.identifier)
        held = latest.get(key)
        rank = change_rank(row.identifier, row.version)
        if held is None or rank > change_rank(held.identifier, held.version):
            latest[key] = row
    to_send = [r for r in rows if latest[licence_key(r.identifier)] is r]
    older = [r.id for r in rows if latest[licence_key(r.identifier)] is not r]
    envelopes = [envelope_json(r) for r in to_send]
    try:
        results = client.post_batch(uuid.uuid4().hex, envelopes)
        if len(results) != len(to_send):
            raise RegistryProtocolError(f"答复条数 {len(results)} 与请求条数 {len(to_send)} 不一致")
        for row, result in zip(to_send, results, strict=True):
            if result.idem_key != row.idem_key:
                raise RegistryProtocolError(f"答复顺序错乱：期望 {row.idem_key}，收到 {result.idem_key}")
            if result.status not in RESULT_STATUSES:
                raise RegistryProtocolError(f"未知的记录状态 {result.status!r}")
    except (RegistryUnavailableError, RegistryProtocolError) as exc:
        exc.outbox_ids = [r.id for r in rows]
        raise
    sent: list[int] = []
    stale: list[int] = list(older)
    failed: list[dict[str, Any]] = []
    for row, result in zip(to_send, results, strict=True):
        if result.status in ACCEPTED:
            sent.append(row.id)
            outcome.duplicates += result.status == "duplicate"
        elif result.status == STALE:
            stale.append(row.id)
        else:
            # The registry's words are another system's and may quote the record (a holder's ID number
            # or name): masked before they are stored and shown on the sync pages.
            reason = mask_personal_data(result.message or "无说明")
            failed.append({"k": row.id, "e": f"市级证照库拒收：{reason}"[:1000]})
    for row, result in zip(to_send, results, strict=True):
        # One line per record that came from a web request (bulk loads carry none): grep the id.
        if row.request_id:
            log.info("sync record %s sent: %s request_id=%s", row.idem_key, result.status, row.request_id,
                     extra={"request_id": row.request_id, "idem_key": row.idem_key})
    _mark_answered(session, sent, stale, now)
    if failed:
        session.execute(
            _T.update()
            .where(_T.c.id == sa.bindparam("k"))
            .values(status=FAILED, attempts=_T.c.attempts + 1, updated_at=now, last_error=sa.bindparam("e"),
                    error_kind=None, next_attempt_at=None),
            failed,
        )
    outcome.sent, outcome.superseded, outcome.failed = len(sent), len(stale), len(failed)
    return outcome


_KIND_LABELS = {
    UNAVAILABLE: "市级证照库暂不可用",
    PROTOCOL: "市级证照库答复异常",
    CLOCK_SKEW: "市级证照库拒绝时间戳（本机时钟偏差超过 300 秒）",
}


def note_failure(session: Session, ids: list[int], error: Exception) -> None:
    """Record a failed attempt on rows that stay pending, with a backoff by their attempts.

    No kind of failed attempt dead-letters a row: only the registry's per-record ``rejected`` does
    (in ``send_batch``). Flushes, never commits.
    """
    if not ids:
        return
    now = utcnow()
    kind = error_kind(error)
    message = f"{_KIND_LABELS[kind]}：{mask_personal_data(str(error))}"[:1000]
    attempts: dict[int, list[int]] = {}
    for i in range(0, len(ids), 1000):
        for row_id, n in session.execute(
            sa.select(_T.c.id, _T.c.attempts).where(_T.c.id.in_(ids[i : i + 1000]), _T.c.status == PENDING)
        ):
            attempts.setdefault(int(n) + 1, []).append(row_id)
    jitter = 1 + random.uniform(-BACKOFF_JITTER, BACKOFF_JITTER)  # noqa: S311  (spreading load, not security)
    for n, group in attempts.items():
        due = now + timedelta(seconds=backoff_seconds(n) * jitter)
        for i in range(0, len(group), 1000):
            session.execute(
                _T.update()
                .where(_T.c.id.in_(group[i : i + 1000]))
                .values(attempts=n, last_error=message, error_kind=kind, updated_at=now, next_attempt_at=due)
            )


def _drain_lane(
    db: Database, client: RegistryClient, batch_size: int, deadline: float, stop: threading.Event,
    backlog: Callable[[], None],
) -> DrainReport:
    report = DrainReport()
    while not stop.is_set():
        try:
            with db.transaction() as session:
                outcome = send_batch(session, client, batch_size)
        except (RegistryUnavailableError, RegistryProtocolError) as exc:
            stop.set()
            with db.transaction() as session:
                note_failure(session, exc.outbox_ids, exc)
            if isinstance(exc, RegistryProtocolError):
                report.protocol_error = str(exc)
            else:
                report.interrupted = str(exc)
                report.error = exc
            return report
        if outcome.claimed == 0:
            return report
        report.batches += 1
        report.totals.add(outcome)
        if outcome.claimed < batch_size:
            return report
        backlog()
        if time.monotonic() >= deadline:
            report.more = True
            return report
    return report


def drain(
    db: Database, client: RegistryClient, batch_size: int, budget_s: float = 20.0, lanes: int = 1,
    on_backlog: Callable[[], None] | None = None,
) -> DrainReport:
    """Send batches until no pending row is left or ``budget_s`` has passed; one transaction per batch.

    ``lanes`` > 1 (PostgreSQL only, where SKIP LOCKED keeps lanes on disjoint rows) overlaps one
    batch's HTTP round trip with another's database work. A transient error before any progress is
    raised (the task retries it with backoff); after some progress it is reported in ``interrupted``
    (the task enqueues a fresh drain). A protocol error stops the drain and is reported; the sweep
    tries again later.

    ``on_backlog`` is called once, after the first full batch (more rows are likely waiting): the worker
    asks for another drain there, so a backlog spreads over idle worker processes and hosts.
    """
    if db.dialect != "postgresql":
        lanes = 1
    deadline = time.monotonic() + budget_s
    stop = threading.Event()
    called = threading.Event()

    def backlog() -> None:
        if on_backlog is not None and not called.is_set():
            called.set()
            try:
                on_backlog()
            except Exception:  # a helper is an optimisation: this drain carries on alone
                log.warning("could not ask for another drain", exc_info=True)

    if lanes == 1:
        reports = [_drain_lane(db, client, batch_size, deadline, stop, backlog)]
    else:
        with ThreadPoolExecutor(max_workers=lanes, thread_name_prefix="drain") as pool:
            futures = [pool.submit(_drain_lane, db, client, batch_size, deadline, stop, backlog)
                       for _ in range(lanes)]
            reports = [f.result() for f in futures]
    report = DrainReport()
    for r in reports:
        report.batches += r.batches
        report.totals.add(r.totals)
        report.more = report.more or r.more
        report.interrupted = report.interrupted or r.interrupted
        report.protocol_error = report.protocol_error or r.protocol_error
        report.error = report.error or r.error
    if report.interrupted and report.batches == 0 and not report.protocol_error:
        if isinstance(report.error, RegistryUnavailableError):
            raise report.error  # its kind (an outage, clock skew) tells the caller what happened
        raise RegistryUnavailableError(report.interrupted)
    return report


# ---------------------------------------------------------------- single-flight locks and runs


def acquire_lock(db: Database, name: str, owner: str, ttl_s: float) -> bool:
    """Take the named lease if it is free, expired, or held by a dead process on this host.

    ``owner`` is ``host:pid``. Commits at once so other workers see it.
    """
    now = utcnow()
    t = table_of(SyncLock)
    values = {"owner": owner, "acquired_at": now, "expires_at": now + timedelta(seconds=ttl_s)}
    with db.transaction() as session:
        row = session.get(SyncLock, name)
        if row is None:
            try:
                with session.begin_nested():
                    session.add(SyncLock(name=name))
            except sa.exc.IntegrityError:
                pass
        taken = _rowcount(
            session.execute(
                t.update()
                .where(t.c.name == name, sa.or_(t.c.expires_at.is_(None), t.c.expires_at < now))
                .values(values)
            )
        )
        if not taken and row is not None and row.owner and _dead_local_owner(row.owner, owner):
            taken = _rowcount(
                session.execute(t.update().where(t.c.name == name, t.c.owner == row.owner).values(values))
            )
    return bool(taken)


def _rowcount(result: Any) -> int:
    return int(result.rowcount)


def _dead_local_owner(holder: str, me: str) -> bool:
    """A lease held by a process of this host that no longer runs (e.g. a SIGKILLed worker)."""
    host, _, pid = holder.rpartition(":")
    if host != me.rpartition(":")[0] or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def release_lock(db: Database, name: str, owner: str) -> None:
    t = table_of(SyncLock)
    with db.transaction() as session:
        session.execute(t.update().where(t.c.name == name, t.c.owner == owner).values(expires_at=None))


def record_run(
    db: Database,
    kind: str,
    started: datetime,
    outcome: str,
    counts: dict[str, Any],
    message: str | None = None,
) -> None:
    with db.transaction() as session:
        session.add(
            SyncRun(
                kind=kind,
                started_at=started,
                finished_at=utcnow(),
                outcome=outcome,
                counts=counts,
                message=(message or None) and message[:1000],
            )
        )


def sweep(
    db: Database, client: RegistryClient, batch_size: int, owner: str, budget_s: float = 25.0
) -> DrainReport | None:
    """Periodic safety net: drain whatever is pending, once at a time across workers.

    Returns None when another worker holds the sweep lease. An unavailable registry ends the sweep
    (reported in ``interrupted``); the next tick tries again, so a sweep is never retried itself.
    """
    if not acquire_lock(db, "sweep", owner, ttl_s=budget_s + 10):
        return None
    started = utcnow()
    try:
        report = drain(db, client, batch_size, budget_s)
    except RegistryUnavailableError as exc:
        report = DrainReport(interrupted=str(exc))
    finally:
        release_lock(db, "sweep", owner)
    if report.batches or report.protocol_error or report.interrupted:
        outcome = "interrupted" if report.interrupted or report.protocol_error else "ok"
        message = report.protocol_error or report.interrupted
        record_run(db, "sweep", started, outcome, report.as_dict(), message)
    return report
