"""Thin Celery tasks: take ids or batch bounds, open a session, call a domain function.

Every sync task is idempotent: records carry an idempotency key per licence version and their
state is written in the same transaction as the registry's answer, so acks_late redelivery, a
message delivered twice or a killed worker never sends a change twice in effect.
"""

from __future__ import annotations

import logging
import os
import socket
from typing import Any

from celery import Task, current_app, shared_task
from celery.utils.time import get_exponential_backoff_interval

from core.auth import SYSTEM
from core.coalesce import Coalescer
from core.config import Settings
from core.db import Database
from core.types import china_today, utcnow
from licenses import reconcile, sync
from reports import supervision
from workers.registry_client import RegistryClient

log = logging.getLogger(__name__)

# A drain's retries while the registry is unavailable: Celery's exponential backoff with full jitter,
# 2 s doubling to at most 120 s (celery_app.RETRY_BACKOFF_MAX, well under the visibility timeout).
DRAIN_BACKOFF_S = 2
DRAIN_BACKOFF_MAX_S = 120
DRAIN_MAX_RETRIES = 12
_state: dict[str, Any] = {}


def _context() -> tuple[Settings, Database, RegistryClient]:
    """Per-process settings, engine and HTTP client (created after the prefork fork)."""
    if _state.get("pid") != os.getpid():
        settings: Settings = getattr(current_app.conf, "gaogang_settings", None) or Settings.from_env()
        _state.update(
            pid=os.getpid(),
            settings=settings,
            db=Database(settings.database_url),
            client=RegistryClient(settings.city_registry_url, settings.require_city_registry_key(),
                                  settings.district_code),
        )
        sync.bind_drain_scheduler(_state["db"], enqueue_drain)
    return _state["settings"], _state["db"], _state["client"]


def _drain_token() -> Coalescer:
    if _state.get("token_pid") != os.getpid():
        settings, _db, _client = _context()
        _state.update(token_pid=os.getpid(), token=Coalescer(settings.redis_url, sync.DRAIN_JOB))
    token: Coalescer = _state["token"]
    return token


def enqueue_drain(countdown: float = 0) -> None:
    """Publish a drain unless one is already queued or waiting for its retry (core.coalesce)."""
    token = _drain_token()
    if not token.take(sync.DRAIN_REQUEST_TTL_S + countdown):
        return
    try:
        sync_drain.apply_async(queue="sync", countdown=countdown, retry=False)
    except Exception:
        token.give_back()
        raise


def _owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


@shared_task(name="workers.ping")
def ping() -> str:
    """Liveness probe for the worker; no transaction, idempotent."""
    return "pong"


@shared_task(name="workers.sync_drain", bind=True, acks_late=True)
def sync_drain(self: Task[Any, Any], budget_s: float = 20.0) -> dict[str, Any]:
    """Send pending outbox rows in batches of Settings.sync_batch_size until none is left.

    One transaction per batch (claim, post, record results). Idempotent. The drain token
    (core.coalesce) is given back before the first claim, so commits from then on ask for a drain of
    their own. A first full batch asks for one more drain, so a backlog recruits idle workers.

    While the registry is unavailable and no batch got through, it retries with Celery's exponential
    backoff and jitter (DRAIN_BACKOFF_*), holding the token until the retry is due: writers' commits publish
    nothing meanwhile, and a second failing drain ends instead of starting a retry chain of its own.
    The broker holds one drain message however long the outage (docs/benchmarks.md, back-pressure).
    After partial progress, or when the time budget ends with rows left, it asks for a fresh drain.
    """
    settings, db, client = _context()
    token = _drain_token()
    token.give_back()
    try:
        report = sync.drain(db, client, settings.sync_batch_size, budget_s, lanes=settings.sync_drain_lanes,
                            on_backlog=enqueue_drain)
    except sync.RegistryUnavailableError as exc:
        retries = self.request.retries
        if retries >= DRAIN_MAX_RETRIES:
            raise  # the periodic sweep carries on from here
        countdown = get_exponential_backoff_interval(
            DRAIN_BACKOFF_S, retries, DRAIN_BACKOFF_MAX_S, full_jitter=True)
        if not token.take(countdown + sync.DRAIN_REQUEST_TTL_S):
            return {"deferred": str(exc)}  # another drain is queued or waiting: it will claim these rows
        try:
            retry = self.retry(exc=exc, countdown=countdown, throw=False)
        except Exception:  # the retry could not be published: the next commit or the sweep drains
            token.give_back()
            raise
        raise retry from exc
    if report.more or report.interrupted:
        enqueue_drain(countdown=1 if report.interrupted else 0)
    return report.as_dict()


@shared_task(name="workers.sync_sweep", acks_late=True)
def sync_sweep() -> dict[str, Any] | None:
    """Beat's safety net: drain under the single-flight 'sweep' lease. Idempotent; not retried
    (the next beat tick is the retry). Hands over to a drain task when its time budget ends."""
    settings, db, client = _context()
    report = sync.sweep(db, client, settings.sync_batch_size, _owner())
    if report is not None and report.more:
        enqueue_drain()
    return None if report is None else report.as_dict()


@shared_task(name="workers.sync_reconcile", acks_late=True, autoretry_for=(sync.RegistryUnavailableError,),
             retry_backoff=60, retry_backoff_max=DRAIN_BACKOFF_MAX_S, retry_jitter=True, max_retries=5)
def sync_reconcile(issuer_code: str | None = None, verify: bool = False) -> dict[str, Any] | None:
    """Nightly: descend the registry's digest tree where it differs from ours (licenses.reconcile);
    re-send what the registry lacks or holds in an older version; report what only it holds.
    ``verify`` (weekly): first recompute the district's baseline from the whole outbox and report
    its drift.

    Holds the single-flight 'reconcile' lease; re-queued rows are committed with the report and a
    drain is enqueued after that commit. Idempotent (a second run finds nothing to re-send); retried
    with backoff while the registry is unavailable.
    """
    _settings, db, client = _context()
    owner = _owner()
    if not sync.acquire_lock(db, "reconcile", owner, ttl_s=3600):
        return None
    started = utcnow()
    try:
        # The baseline's writes commit first, in a transaction of their own: the descent that follows
        # only reads until its re-queue, so licence writes never wait on a registry round trip.
        with db.transaction() as session:
            baseline = reconcile.prepare_baseline(session, issuer_code, verify=verify)
        with db.transaction() as session:
            report = reconcile.reconcile(session, client, issuer_code, baseline=baseline)
        sync.record_run(db, "reconcile", started, "ok" if report.consistent else "differences",
                        report.as_dict())
        return report.as_dict()
    except (sync.RegistryUnavailableError, sync.RegistryProtocolError) as exc:
        sync.record_run(db, "reconcile", started, "error", {}, str(exc))
        raise
    finally:
        sync.release_lock(db, "reconcile", owner)


@shared_task(name="workers.refresh_case_warnings", acks_late=True)
def refresh_case_warnings() -> dict[str, Any] | None:
    """Daily 电子监察 refresh: recompute the yellow and red warnings of open cases as of today (China
    time), in one transaction, under the single-flight 'case-warnings' lease. Idempotent (a second run
    on the same day changes nothing); not retried (the next day's run, or `flask cases
    refresh-warnings`, is the retry)."""
    settings, db, _client = _context()
    owner = _owner()
    if not sync.acquire_lock(db, "case-warnings", owner, ttl_s=3600):
        return None
    try:
        with db.transaction() as session:
            report = supervision.refresh_warnings(session, SYSTEM, china_today(), settings.case_yellow_days)
        return report.as_dict()
    finally:
        sync.release_lock(db, "case-warnings", owner)
