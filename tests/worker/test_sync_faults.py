"""Proof under faults: a real Celery worker process (with beat), real Redis, the real reference city
registry over HTTP, a real PostgreSQL. After each fault clears, the registry holds exactly the latest
change of every district licence: none missing, none duplicated, versions and statuses equal.

These tests commit; they use their own database (<test db>_worker), Redis database 5 (shifted per
xdist worker) and a registry on a free port, and clean up after themselves. Each prints its counts
before and after.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis
import sqlalchemy as sa

from celery_app import make_celery
from core.coalesce import Coalescer
from core.config import Settings
from core.db import Database
from licenses import issuing, sync, sync_admin
from tests.conftest import _ensure_pg_database, pg_test_url, redis_db, reset_and_migrate_pg
from tests.factories.sync import (
    KEY,
    Issuer,
    RegistryProcess,
    Worker,
    current_licences,
    empty_sync_state,
    free_port,
    issue_many,
    make_issuer,
    outbox_counts,
    redis_base,
    registry_licences,
    registry_stats,
)
from webapp.tasks import make_scheduler
from workers.registry_client import RegistryClient

pytestmark = pytest.mark.worker
@dataclass
class Env:
    db: Database
    registry: RegistryProcess
    client: RegistryClient
    issuer: Issuer
    worker: Worker
    settings: Settings
    tmp: Path


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    tmp = tmp_path_factory.mktemp("sync-worker")
    url = sa.engine.make_url(pg_test_url())
    url = url.set(database=f"{url.database}_worker").render_as_string(hide_password=False)
    _ensure_pg_database(url)
    reset_and_migrate_pg(url)
    db = Database(url)
    redis_url = f"{redis_base()}/{redis_db(5)}"
    redis.Redis.from_url(redis_url).flushdb()
    registry = RegistryProcess(tmp).start()
    client = RegistryClient(registry.url, KEY, "321203", timeout=5)
    with db.transaction() as session:
        issuer = make_issuer(session)
    settings = Settings(database_url=url, instance_dir=tmp, secret_key="test", redis_url=redis_url)
    sync.bind_drain_scheduler(db, make_scheduler(settings))
    worker = Worker(tmp, url, redis_url, registry.url)
    try:  # a worker that fails to start must not leave the registry running
        worker.start()
        yield Env(db, registry, client, issuer, worker, settings, tmp)
    finally:
        sync.bind_drain_scheduler(db, None)
        worker.stop()
        client.close()
        registry.stop()
        redis.Redis.from_url(redis_url).flushdb()
        db.engine.dispose()


@pytest.fixture
def fresh(env: Env) -> Iterator[Env]:
    with env.db.transaction() as session:
        empty_sync_state(session)
    env.client.reset()
    # A drain token left by the previous test's retry would hold this test's first publish back.
    Coalescer(env.settings.redis_url, sync.DRAIN_JOB).give_back()
    if env.worker.proc is None:
        env.worker.start()
    yield env
    env.client.set_faults(reset=True)


_seed = iter(range(100, 10_000))


def issue(env: Env, n: int) -> list[int]:
    with env.db.transaction() as session:
        return issue_many(session, env.issuer, n, seed=next(_seed))


def change_some(env: Env, ids: list[int], n: int) -> None:
    """Suspend, amend and revoke a few licences: several changes of one licence in flight."""
    actor = env.issuer.actor
    with env.db.transaction() as session:
        for lid in ids[:n]:
            issuing.suspend_licence(session, actor, lid, "整改")
        for lid in ids[:n // 2]:
            issuing.resume_licence(session, actor, lid)
    with env.db.transaction() as session:
        for lid in ids[n : 2 * n]:
            new = issuing.amend_licence(session, actor, lid, {"holder_name": "泰州市更名后有限公司"})
            issuing.revoke_licence(session, actor, new.id, "注销")


def snapshot(env: Env) -> dict[str, Any]:
    with env.db.transaction() as session:
        counts = outbox_counts(session)
    return {"outbox": counts, "registry": registry_stats(env.registry.database_url)}


def converge(env: Env, timeout: float) -> float:
    """Wait until nothing is pending and the registry equals the district; return the seconds taken."""
    started = time.monotonic()
    while True:
        with env.db.transaction() as session:
            counts = outbox_counts(session)
            done = not counts.get("pending")
            if done:
                district = current_licences(session)
        if done and registry_licences(env.registry.database_url) == district:
            return time.monotonic() - started
        if time.monotonic() - started > timeout:
            detail = ""
            if done:
                held = registry_licences(env.registry.database_url)
                diff = sorted((k, district.get(k), held.get(k)) for k in set(district) | set(held)
                              if district.get(k) != held.get(k))
                detail = f"; {len(diff)} differ (key, district, registry): {diff[:3]}"
            raise AssertionError(f"not converged after {timeout}s: {counts}{detail}; worker log tail: "
                                 f"{env.worker.log.read_text()[-2000:]}")
        time.sleep(0.25)


def assert_exact(env: Env) -> None:
    with env.db.transaction() as session:
        district = current_licences(session)
        counts = outbox_counts(session)
    held = registry_licences(env.registry.database_url)
    assert held == district  # none missing, none extra, identifiers, revisions and statuses equal
    assert set(counts) <= {"sent", "superseded"}
    assert registry_stats(env.registry.database_url)["licences"] == len(district)


def report(name: str, before: dict[str, Any], after: dict[str, Any], seconds: float) -> None:
    print(f"\n[{name}] before={before} after={after} converged_in={seconds:.1f}s")


def test_happy_path_every_change_reaches_the_registry(fresh: Env) -> None:
    ids = issue(fresh, 1000)
    change_some(fresh, ids, 20)
    before = snapshot(fresh)
    seconds = converge(fresh, timeout=30)
    assert_exact(fresh)
    after = snapshot(fresh)
    assert after["registry"]["licences"] == 1000
    report("happy", before, after, seconds)


def test_thirty_percent_503_answers_are_retried_until_everything_is_synced(fresh: Env) -> None:
    fresh.client.set_faults(error_rate=0.3, status_code=503)
    ids: list[int] = []
    for _ in range(10):  # ten commits, ten drains racing the faults
        ids += issue(fresh, 200)
    change_some(fresh, ids, 30)
    before = snapshot(fresh)
    seconds = converge(fresh, timeout=120)
    faults = fresh.client.set_faults(reset=True)
    assert faults["counters"]["faulted"] > 0
    assert_exact(fresh)
    report("503x30%", before, {**snapshot(fresh), "faulted_requests": faults["counters"]["faulted"]}, seconds)


# Long enough for several failed attempts per row (backoff 2 s, 4 s, 8 s: the rows are still waiting
# out a backoff when the registry comes back) and for the check below to fall inside the outage.
OUTAGE_S = 15


def test_registry_down_for_a_while_loses_nothing(fresh: Env) -> None:
    fresh.client.set_faults(down_for_s=OUTAGE_S)
    down_until = time.monotonic() + OUTAGE_S
    issue(fresh, 500)
    # While the registry is still down: the drain has tried, failed and kept every row.
    while True:
        with fresh.db.transaction() as session:
            rows = session.execute(sa.text("SELECT status, attempts, last_error FROM licence_outbox")).all()
        if min(r.attempts for r in rows) >= 2 or time.monotonic() > down_until - 3:
            break
        time.sleep(0.25)
    assert {r.status for r in rows} == {"pending"}
    assert any(r.last_error and "不可用" in r.last_error for r in rows)
    before = snapshot(fresh)
    seconds = converge(fresh, timeout=OUTAGE_S + 90)
    assert time.monotonic() >= down_until
    assert_exact(fresh)
    report(f"down{OUTAGE_S}s", before, snapshot(fresh), seconds)


def drain_messages(env: Env) -> int:
    """Messages of the sync queue in the broker: waiting in the list, or held by the worker unacknowledged
    (prefetched, running, or an ETA retry)."""
    r = redis.Redis.from_url(env.settings.redis_url or "")
    return int(r.llen("sync")) + int(r.hlen("unacked"))


def test_outage_with_writers_running_keeps_one_drain_in_the_broker(fresh: Env) -> None:
    """Back-pressure: each commit asks for a drain, but while the registry is down the broker holds the
    one drain waiting for its retry (and a sweep tick at most), not a message or a retry chain per
    commit; everything written meanwhile is sent once the registry is back."""
    fresh.client.set_faults(down_for_s=OUTAGE_S)
    down_until = time.monotonic() + OUTAGE_S
    most, commits = 0, 0
    while time.monotonic() < down_until - 2:
        issue(fresh, 5)  # one commit, one request for a drain
        commits += 1
        most = max(most, drain_messages(fresh))
        time.sleep(0.2)
    assert commits >= 20
    assert most <= 3, f"{most} sync messages in the broker after {commits} commits during the outage"
    before = snapshot(fresh)
    seconds = converge(fresh, timeout=OUTAGE_S + 150)
    assert_exact(fresh)
    report(f"writers-during-down{OUTAGE_S}s", before, snapshot(fresh), seconds)


@pytest.mark.parametrize("bad", ["wrong_count", "unknown_status", "malformed"])
def test_bad_answers_back_off_and_nothing_dead_letters(fresh: Env, bad: str) -> None:
    fresh.client.set_faults(bad_response=bad)
    ids: list[int] = []
    for _ in range(8):  # eight commits, eight drains enqueued against answers we cannot trust
        ids += issue(fresh, 25)
    change_some(fresh, ids, 5)
    time.sleep(4)  # long enough for the old code to dead-letter everything (it took 0.5 s)
    with fresh.db.transaction() as session:
        counts = outbox_counts(session)
        waiting = session.execute(sa.text(
            "SELECT count(*) FROM licence_outbox WHERE status = 'pending' AND next_attempt_at > now()"
        )).scalar_one()
    assert "failed" not in counts
    assert counts.get("pending")
    assert waiting > 0  # rows wait out their backoff instead of going again with every drain
    before = snapshot(fresh)
    fresh.client.set_faults(reset=True)
    seconds = converge(fresh, timeout=sync.BACKOFF_MAX_S + 60)
    assert_exact(fresh)
    report(f"bad-{bad}", before, snapshot(fresh), seconds)


def test_clock_skew_is_retried_and_recovers_without_an_operator(fresh: Env) -> None:
    fresh.client.set_faults(clock_skew_s=400)
    issue(fresh, 100)
    time.sleep(3)
    with fresh.db.transaction() as session:
        kinds = dict(session.execute(sa.text(
            "SELECT status, max(error_kind) FROM licence_outbox GROUP BY status")).all())
        alerts = sync_admin.sync_alerts(session)
    assert kinds == {"pending": sync.CLOCK_SKEW}
    assert [a["kind"] for a in alerts] == [sync.CLOCK_SKEW]
    before = snapshot(fresh)
    fresh.client.set_faults(clock_skew_s=0)  # the clock is fixed; no requeue, no operator
    seconds = converge(fresh, timeout=sync.BACKOFF_MAX_S + 60)
    assert_exact(fresh)
    with fresh.db.transaction() as session:
        assert sync_admin.sync_alerts(session) == []
    report("clock-skew", before, snapshot(fresh), seconds)


def test_two_second_latency_only_slows_the_sync(fresh: Env) -> None:
    fresh.client.set_faults(latency_ms=2000)
    ids = issue(fresh, 600)
    change_some(fresh, ids, 10)
    before = snapshot(fresh)
    seconds = converge(fresh, timeout=60)
    assert seconds >= 2
    assert_exact(fresh)
    report("latency2s", before, snapshot(fresh), seconds)


def test_worker_killed_mid_batch_resumes_without_loss_or_double_effect(fresh: Env) -> None:
    fresh.client.set_faults(latency_ms=1500)
    issue(fresh, 1000)
    deadline = time.monotonic() + 20
    while fresh.client.set_faults()["counters"]["requests"] < 2:  # a batch is in flight
        assert time.monotonic() < deadline, "no batch started"
        time.sleep(0.1)
    time.sleep(0.5)
    fresh.worker.kill()
    before = snapshot(fresh)
    assert before["outbox"].get("pending", 0) > 0
    fresh.client.set_faults(latency_ms=0)
    fresh.worker.start()
    seconds = converge(fresh, timeout=60)
    assert_exact(fresh)
    after = snapshot(fresh)
    assert after["registry"]["licences"] == 1000
    report("sigkill", before, after, seconds)


def test_message_delivered_twice_is_harmless(fresh: Env) -> None:
    sync.bind_drain_scheduler(fresh.db, None)
    try:
        issue(fresh, 800)
    finally:
        sync.bind_drain_scheduler(fresh.db, make_scheduler(fresh.settings))
    fresh.client.set_faults(latency_ms=200)
    app = make_celery(fresh.settings)
    for _ in range(2):  # the same message (same task id) delivered twice
        app.send_task("workers.sync_drain", queue="sync", task_id="drain-delivered-twice")
    converge(fresh, timeout=60)
    assert_exact(fresh)
    first = registry_stats(fresh.registry.database_url)
    # The worker's commit is lost after the registry applied the batch: the same records go again.
    with fresh.db.transaction() as session:
        session.execute(sa.text("UPDATE licence_outbox SET status = 'pending', synced_at = NULL"))
    before = snapshot(fresh)
    for _ in range(2):
        app.send_task("workers.sync_drain", queue="sync", task_id="drain-redelivered")
    seconds = converge(fresh, timeout=60)
    assert_exact(fresh)
    after = registry_stats(fresh.registry.database_url)
    assert after["licences"] == first["licences"] == 800
    assert after["redeliveries"] >= 800  # every record came again and was recognised as a duplicate
    report("delivered-twice", before, snapshot(fresh), seconds)


def test_reconciliation_task_repairs_records_the_registry_lost(fresh: Env) -> None:
    issue(fresh, 300)
    converge(fresh, timeout=30)
    engine = sa.create_engine(fresh.registry.database_url)
    with engine.begin() as conn:  # the city restores an old backup: 25 licences vanish
        conn.execute(sa.text("DELETE FROM registry_licence WHERE licence_key IN "
                             "(SELECT licence_key FROM registry_licence ORDER BY licence_key LIMIT 25)"))
    engine.dispose()
    before = snapshot(fresh)
    assert before["registry"]["licences"] == 275
    make_celery(fresh.settings).send_task("workers.sync_reconcile", queue="sync")
    deadline = time.monotonic() + 30
    while registry_stats(fresh.registry.database_url)["licences"] < 300:
        assert time.monotonic() < deadline, fresh.worker.log.read_text()[-2000:]
        time.sleep(0.25)
    seconds = converge(fresh, timeout=30)
    assert_exact(fresh)
    with fresh.db.transaction() as session:
        run = session.execute(sa.text("SELECT outcome, counts FROM sync_run WHERE kind = 'reconcile'")).one()
    assert run.outcome == "differences"
    assert run.counts["requeued"] == 25
    report("reconcile", before, snapshot(fresh), seconds)


def test_redis_restarted_while_changes_are_made(fresh: Env) -> None:
    server = shutil.which("redis-server")
    assert server, "redis-server is needed for this test"
    port = free_port()
    data = fresh.tmp / f"redis-{port}"
    data.mkdir()
    cmd = [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
           "--dir", str(data)]
    redis_proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    url = f"redis://127.0.0.1:{port}/0"
    _wait_redis(url)
    fresh.worker.stop()
    worker = Worker(fresh.tmp, fresh.db.url, url, fresh.registry.url, concurrency=1)
    settings = fresh.settings.with_overrides(redis_url=url)
    sync.bind_drain_scheduler(fresh.db, make_scheduler(settings))
    try:
        worker.start()
        issue(fresh, 300)
        converge(fresh, timeout=30)
        redis_proc.terminate()
        redis_proc.wait(10)
        issue(fresh, 300)  # the enqueue after commit fails; the rows wait in the outbox
        before = snapshot(fresh)
        assert before["outbox"].get("pending") == 300
        time.sleep(2)
        redis_proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        _wait_redis(url)
        seconds = converge(fresh, timeout=90)
        assert_exact(fresh)
        report("redis-restart", before, snapshot(fresh), seconds)
    finally:
        worker.stop()
        sync.bind_drain_scheduler(fresh.db, make_scheduler(fresh.settings))
        redis_proc.terminate()
        redis_proc.wait(10)


def _wait_redis(url: str) -> None:
    deadline = time.monotonic() + 10
    while True:
        try:
            redis.Redis.from_url(url, socket_connect_timeout=0.5).ping()
            return
        except redis.ConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
