"""Thin Celery tasks: take ids or batch bounds, open a session, call a domain function.

Every sync task is idempotent: records carry an idempotency key per licence version and their
state is written in the same transaction as the registry's answer, so acks_late redelivery, a
message delivered twice or a killed worker never sends a change twice in effect.
"""

from __future__ import annotations

import logging
import os
import socket
from typing import Any, TypedDict

from celery import current_app, shared_task

from core.auth import SYSTEM
from core.config import Settings
from core.db import Database
from core.types import china_today, utcnow
from licenses import reconcile, sync
from reports import supervision
from workers.registry_client import RegistryClient

log = logging.getLogger(__name__)
class RetryOptions(TypedDict):
    autoretry_for: tuple[type[BaseException], ...]
    retry_backoff: int
    retry_backoff_max: int
    retry_jitter: bool
    max_retries: int
    acks_late: bool


RETRY: RetryOptions = {
    "autoretry_for": (sync.RegistryUnavailableError,),
    "retry_backoff": 2,
    "retry_backoff_max": 120,  # celery_app.RETRY_BACKOFF_MAX, well under the visibility timeout
    "retry_jitter": True,
    "max_retries": 12,
    "acks_late": True,
}
# Parallel lanes of one drain on PostgreSQL (SKIP LOCKED): one batch's HTTP round trip overlaps
# another's database work. SQLite always uses one.
DRAIN_LANES = 2
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


def enqueue_drain() -> None:
    sync_drain.apply_async(queue="sync", retry=False)


def _owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


@shared_task(name="workers.ping")
def ping() -> str:
    """Liveness probe for the worker; no transaction, idempotent."""
    return "pong"


@shared_task(name="workers.sync_drain", **RETRY)
def sync_drain(budget_s: float = 20.0) -> dict[str, Any]:
    """Send pending outbox rows in batches of Settings.sync_batch_size until none is left.

    One transaction per batch (claim, post, record results). Idempotent; retried with exponential
    backoff and jitter while the registry is unavailable and no batch got through; after partial
    progress, or when the time budget ends with rows left, it enqueues a fresh drain instead.
    """
    settings, db, client = _context()
    report = sync.drain(db, client, settings.sync_batch_size, budget_s, lanes=DRAIN_LANES)
    if report.more or report.interrupted:
        sync_drain.apply_async(queue="sync", countdown=1 if report.interrupted else 0)
    return report.as_dict()


@shared_task(name="workers.sync_sweep", acks_late=True)
def sync_sweep() -> dict[str, Any] | None:
    """Beat's safety net: drain under the single-flight 'sweep' lease. Idempotent; not retried
    (the next beat tick is the retry). Hands over to a drain task when its time budget ends."""
    settings, db, client = _context()
    report = sync.sweep(db, client, settings.sync_batch_size, _owner())
    if report is not None and report.more:
        sync_drain.apply_async(queue="sync")
    return None if report is None else report.as_dict()


@shared_task(name="workers.sync_reconcile", acks_late=True, autoretry_for=(sync.RegistryUnavailableError,),
             retry_backoff=60, retry_backoff_max=RETRY["retry_backoff_max"], retry_jitter=True, max_retries=5)
def sync_reconcile(issuer_code: str | None = None) -> dict[str, Any] | None:
    """Nightly: descend the registry's digest tree where it differs from ours (licenses.reconcile);
    re-send what the registry lacks or holds in an older version; report what only it holds.

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
        with db.transaction() as session:
            report = reconcile.reconcile(session, client, issuer_code)
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
