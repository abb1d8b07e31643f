"""Fault schedules the state machine (test_fault_state_machine.py) does not draw, each run once on purpose:

- the registry answers after the district's client timeout: it applied the batch, the district saw a
  timeout; the re-send must be answered ``duplicate`` and nothing applied twice;
- a licence changed again while its previous change is in flight and times out: the slow older change
  lands after the newer one and must not roll the licence back;
- the district process is SIGKILLed between the registry's answer and its own commit;
- the registry is killed mid-batch and restarted on the same database;
- answers of 200 that we cannot trust in ways the registry's fault switches do not produce (empty,
  partial, reordered, null items, a non-string refusal message, not JSON at all);
- two workers, each with its own beat, while Redis restarts several times and licences change.

Most drive ``licenses.sync`` in this process against the reference registry over HTTP (no Celery), so
the timing of each step is the test's own; the last one runs real Celery workers. These tests commit;
they use their own database (<test db>_faultsx) and throwaway redis-servers (fault_env.RedisProcess),
never the shared Redis.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from city_registry.store import RegistryStore
from core.config import Settings
from core.db import Database, id_of
from licenses import issuing, reconcile, sync
from licenses.models import Licence
from tests.conftest import _ensure_pg_database, pg_test_url, reset_and_migrate_pg
from tests.factories.sync import (
    KEY,
    ROOT,
    Issuer,
    RegistryProcess,
    Worker,
    current_licences,
    empty_sync_state,
    free_port,
    issue_many,
    make_issuer,
    outbox_counts,
    registry_licences,
)
from tests.worker.fault_env import RedisProcess, district_truth
from webapp.tasks import make_scheduler
from workers.registry_client import RegistryClient

pytestmark = pytest.mark.worker

BATCH = 50


@dataclass
class Env:
    db: Database
    registry: RegistryProcess
    client: RegistryClient
    issuer: Issuer
    tmp: Path
    first_id: int = 0


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    tmp = tmp_path_factory.mktemp("sync-faults-extra")
    base = sa.engine.make_url(pg_test_url())
    url = base.set(database=f"{base.database}_faultsx").render_as_string(hide_password=False)
    _ensure_pg_database(url)
    reset_and_migrate_pg(url)
    db = Database(url)
    registry = RegistryProcess(tmp).start()
    client = RegistryClient(registry.url, KEY, "321203", timeout=5)
    try:
        with db.transaction() as session:
            issuer = make_issuer(session)
        yield Env(db, registry, client, issuer, tmp)
    finally:
        client.close()
        registry.stop()
        db.engine.dispose()


@pytest.fixture
def fresh(env: Env) -> Iterator[Env]:
    if env.registry.proc is None:
        env.registry.start()
    with env.db.transaction() as session:
        empty_sync_state(session)
        top = session.execute(sa.text("SELECT COALESCE(MAX(id), 0) FROM licence")).scalar_one()
        env.first_id = int(top) + 1
    env.client.set_faults(reset=True)
    env.client.reset()
    yield env
    if env.registry.proc is not None:
        env.client.set_faults(reset=True)


_seed = iter(range(20_000, 30_000))


def issue(env: Env, n: int) -> list[int]:
    with env.db.transaction() as session:
        return issue_many(session, env.issuer, n, seed=next(_seed))


def client_with_timeout(env: Env, seconds: float) -> RegistryClient:
    return RegistryClient(env.registry.url, KEY, "321203", timeout=seconds, connect_timeout=seconds)


def drain(env: Env, client: RegistryClient, lanes: int = 1) -> sync.DrainReport | sync.RegistryError:
    """One drain as the worker runs it; a transient error is returned, not raised."""
    try:
        return sync.drain(env.db, client, BATCH, budget_s=30, lanes=lanes)
    except sync.RegistryUnavailableError as exc:
        return exc


def make_due(env: Env) -> None:
    """Time passes: every pending row's backoff is over (the sweep would send them now)."""
    with env.db.transaction() as session:
        session.execute(sa.text("UPDATE licence_outbox SET next_attempt_at = NULL WHERE status = 'pending'"))


def drain_until_settled(env: Env, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        make_due(env)
        drain(env, env.client, lanes=2)
        with env.db.transaction() as session:
            if not outbox_counts(session).get("pending"):
                return
        assert time.monotonic() < deadline, "rows still pending"
        time.sleep(0.2)


def registry_store(env: Env) -> RegistryStore:
    return RegistryStore(env.registry.database_url)


def assert_registry_equals_district(env: Env) -> None:
    with env.db.transaction() as session:
        truth = district_truth(session, env.first_id)
        counts = outbox_counts(session)
    assert set(counts) <= {"sent", "superseded"}, counts
    held = registry_licences(env.registry.database_url)
    assert held == truth
    store = registry_store(env)
    try:
        assert store.applied_twice() == []
        assert store.regressions() == []
    finally:
        store.engine.dispose()


def outbox(env: Env) -> list[Any]:
    with env.db.transaction() as session:
        return list(session.execute(sa.text(
            "SELECT id, idem_key, status, attempts, error_kind, last_error, next_attempt_at"
            " FROM licence_outbox ORDER BY id")))


# ---------------------------------------------------------------- slow answers beyond the client timeout


def test_answer_after_the_client_timeout_is_resent_as_a_duplicate(fresh: Env) -> None:
    """The registry applies a batch after the district gave up waiting: the re-send is a duplicate."""
    issue(fresh, 30)
    fresh.client.set_faults(latency_ms=2500)
    impatient = client_with_timeout(fresh, 1.0)
    try:
        failed = drain(fresh, impatient)
    finally:
        impatient.close()
    assert isinstance(failed, sync.RegistryUnavailableError), failed
    rows = outbox(fresh)
    assert {r.status for r in rows} == {"pending"}
    assert {r.error_kind for r in rows} == {sync.UNAVAILABLE}
    fresh.client.set_faults(latency_ms=0)
    # The registry applies the batch once its latency has passed, with nobody listening.
    deadline = time.monotonic() + 30
    while len(registry_licences(fresh.registry.database_url)) < 30:
        assert time.monotonic() < deadline, "the slow batch never landed"
        time.sleep(0.2)
    make_due(fresh)
    report = drain(fresh, fresh.client)
    assert isinstance(report, sync.DrainReport), report
    assert report.totals.sent == 30
    assert report.totals.duplicates == 30  # the registry had applied them; nothing applied twice
    assert_registry_equals_district(fresh)


def test_newer_change_overtakes_a_timed_out_older_one_without_regression(fresh: Env) -> None:
    """Issue (revision 1) goes out slowly and times out; the licence is suspended (revision 2), which
    goes out at once; the slow revision 1 lands afterwards and must be refused as stale, and the
    re-send of revision 1 must end ``superseded``."""
    (lid,) = issue(fresh, 1)
    # Long enough that revision 2 lands first however loaded the machine is.
    fresh.client.set_faults(latency_ms=8000)
    impatient = client_with_timeout(fresh, 1.0)
    try:
        assert isinstance(drain(fresh, impatient), sync.RegistryUnavailableError)
    finally:
        impatient.close()
    fresh.client.set_faults(latency_ms=0)
    with fresh.db.transaction() as session:
        issuing.suspend_licence(session, fresh.issuer.actor, lid, "整改")
    report = drain(fresh, fresh.client)  # revision 2 goes out (revision 1 is backing off, or superseded)
    assert isinstance(report, sync.DrainReport), report
    assert report.totals.sent == 1
    store = registry_store(fresh)
    try:
        deadline = time.monotonic() + 60
        while not (refused := store.refused()):  # the slow revision 1 reaches the registry
            assert time.monotonic() < deadline, "the slow revision 1 never reached the registry"
            time.sleep(0.25)
    finally:
        store.engine.dispose()
    assert [(r["revision"], r["held_revision"]) for r in refused] == [(1, 2)]
    drain_until_settled(fresh)
    assert [r.status for r in outbox(fresh)] == ["superseded", "sent"]
    assert_registry_equals_district(fresh)


def test_amend_suspend_revoke_while_the_previous_version_is_in_flight(fresh: Env) -> None:
    """Changes of licences whose previous change is in a slow batch of another drain: the other drain
    leaves them out (advisory lock per licence), and the registry ends at the last change."""
    ids = issue(fresh, 20)
    fresh.client.set_faults(latency_ms=1500)
    slow = threading.Thread(target=drain, args=(fresh, client_with_timeout(fresh, 10.0)))
    slow.start()
    try:
        time.sleep(0.5)  # the slow batch holds the 20 licences' rows and locks
        actor = fresh.issuer.actor
        with fresh.db.transaction() as session:
            for lid in ids[:5]:
                new = issuing.amend_licence(session, actor, lid, {"holder_name": "泰州市高港区新港贸易商行"})
                issuing.suspend_licence(session, actor, id_of(new), "整改")
            for lid in ids[5:10]:
                issuing.revoke_licence(session, actor, lid, "注销")
        fresh.client.set_faults(latency_ms=0)
        concurrent = drain(fresh, fresh.client, lanes=2)  # while the slow batch is still out
        assert isinstance(concurrent, sync.DrainReport), concurrent
    finally:
        slow.join(60)
    drain_until_settled(fresh)
    assert_registry_equals_district(fresh)


def run_reconcile(env: Env, method: str = "tree", verify: bool = False) -> reconcile.ReconcileReport:
    """One reconciliation as the nightly task runs it (baseline first, in a transaction of its own)."""
    with env.db.transaction() as session:
        baseline = reconcile.prepare_baseline(session, verify=verify)
    with env.db.transaction() as session:
        return reconcile.reconcile(session, env.client, method=method, baseline=baseline)


def test_reconciliation_during_and_after_in_flight_amendments_of_the_issue_date(fresh: Env) -> None:
    """Amendments that correct the 颁发日期 (the licence moves to another day group) and status changes,
    made while the previous versions are in a slow batch; a reconciliation runs meanwhile. Once the
    outbox is drained the registry equals the district and both methods report 一致."""
    ids = issue(fresh, 30)
    drain_until_settled(fresh)
    fresh.client.set_faults(latency_ms=1500)
    actor = fresh.issuer.actor
    with fresh.db.transaction() as session:
        for lid in ids[:10]:
            issuing.suspend_licence(session, actor, lid, "整改")
    slow = threading.Thread(target=drain, args=(fresh, client_with_timeout(fresh, 10.0)))
    slow.start()
    try:
        time.sleep(0.5)
        with fresh.db.transaction() as session:
            for lid in ids[:5]:
                issuing.resume_licence(session, actor, lid)
            for lid in ids[:3]:
                lic = session.get(Licence, lid)
                assert lic is not None
                earlier = lic.issue_date - timedelta(days=40)
                issuing.amend_licence(session, actor, lid, {"issue_date": earlier})
            for lid in ids[10:13]:
                lic = session.get(Licence, lid)
                assert lic is not None
                earlier = lic.issue_date - timedelta(days=3)
                new = issuing.amend_licence(session, actor, lid, {"issue_date": earlier})
                issuing.revoke_licence(session, actor, id_of(new), "注销")
        fresh.client.set_faults(latency_ms=0)
        during = run_reconcile(fresh)  # in flight: counted, re-sent at most (idempotent)
        assert during.extra_in_registry == 0
    finally:
        slow.join(60)
    drain_until_settled(fresh)
    assert_registry_equals_district(fresh)
    for method in ("tree", "groups"):
        after = run_reconcile(fresh, method=method)
        assert after.consistent, (method, after.as_dict())
        assert after.requeued == 0
    verified = run_reconcile(fresh, verify=True)
    assert verified.consistent, verified.as_dict()
    assert verified.baseline_drift == 0


# ---------------------------------------------------------------- processes killed


_KILLED_BETWEEN_ANSWER_AND_COMMIT = """
import os, signal, sys
from core.db import Database
from licenses import sync
from workers.registry_client import RegistryClient

db = Database(sys.argv[1])
client = RegistryClient(sys.argv[2], sys.argv[3], "321203", timeout=10)
session = db.sessionmaker()
outcome = sync.send_batch(session, client, 1000)
session.flush()  # the answer is written, not committed
print(outcome.sent, flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_district_killed_between_the_answer_and_its_commit(fresh: Env) -> None:
    issue(fresh, 40)
    done = subprocess.run(
        [sys.executable, "-c", _KILLED_BETWEEN_ANSWER_AND_COMMIT, fresh.db.url, fresh.registry.url, KEY],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, timeout=120,
    )
    assert done.returncode == -9, done.stderr.decode()[-2000:]
    assert done.stdout.decode().strip() == "40"  # the registry answered all of them
    assert len(registry_licences(fresh.registry.database_url)) == 40
    rows = outbox(fresh)
    assert {r.status for r in rows} == {"pending"}  # the kill lost the district's commit
    report = drain(fresh, fresh.client)
    assert isinstance(report, sync.DrainReport), report
    assert report.totals.duplicates == 40
    assert_registry_equals_district(fresh)


def test_registry_killed_mid_batch_and_restarted_on_its_database(fresh: Env) -> None:
    issue(fresh, 120)
    fresh.client.set_faults(latency_ms=2000)
    results: list[Any] = []
    client = client_with_timeout(fresh, 10.0)
    worker = threading.Thread(target=lambda: results.append(drain(fresh, client, lanes=2)))
    worker.start()
    time.sleep(1.0)  # both lanes' batches are in the registry's latency
    assert fresh.registry.proc is not None
    fresh.registry.proc.kill()
    fresh.registry.proc.wait(10)
    worker.join(60)
    assert results, "the drain did not return"
    assert isinstance(results[0], sync.RegistryUnavailableError), results
    restarted = RegistryProcess(fresh.tmp, database_url=fresh.registry.database_url, port=fresh.registry.port)
    fresh.registry.proc = restarted.start().proc
    fresh.client.set_faults(reset=True)
    # The same client, whose pooled connections went to the killed process.
    deadline = time.monotonic() + 60
    while True:
        make_due(fresh)
        drain(fresh, client, lanes=2)
        with fresh.db.transaction() as session:
            if not outbox_counts(session).get("pending"):
                break
        assert time.monotonic() < deadline
        time.sleep(0.2)
    client.close()
    assert_registry_equals_district(fresh)


# ---------------------------------------------------------------- answers we cannot trust


def _results(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"idem_key": r["idem_key"], "status": "created", "version": 1} for r in records]


def _answer(results: list[Any], count: int | None = None) -> bytes:
    return json.dumps({"batch_id": "x", "count": len(results) if count is None else count,
                       "results": results}).encode()


GARBLED: dict[str, Callable[[list[dict[str, Any]]], bytes]] = {
    "empty_results": lambda recs: _answer([]),
    "partial_results_matching_count": lambda recs: _answer(_results(recs)[:-1]),
    "reordered_results": lambda recs: _answer(list(reversed(_results(recs)))),
    "null_items": lambda recs: _answer([None] * len(recs)),
    "missing_idem_key": lambda recs: _answer([{"status": "created"} for _ in recs]),
    "one_key_twice": lambda recs: _answer([_results(recs)[0]] * len(recs)),
    "results_not_a_list": lambda recs: json.dumps({"count": len(recs), "results": "ok"}).encode(),
    "json_null": lambda recs: b"null",
    "html": lambda recs: b"<html><body>502 Bad Gateway</body></html>",
    "empty_body": lambda recs: b"",
}


def garbling_client(answer: Callable[[list[dict[str, Any]]], bytes], status: int = 200,
                    headers: dict[str, str] | None = None) -> RegistryClient:
    """The real client over a transport that answers ``answer(records)`` to every batch."""
    def handler(request: httpx.Request) -> httpx.Response:
        records = json.loads(request.content)["records"]
        return httpx.Response(status, content=answer(records),
                              headers={"Content-Type": "application/json", **(headers or {})})

    client = RegistryClient("http://registry.invalid", KEY, "321203")
    client._http.close()
    client._http = httpx.Client(base_url="http://registry.invalid", transport=httpx.MockTransport(handler))
    return client


def _drained_as_untrusted(fresh: Env, client: Any) -> list[Any]:
    """Drain through ``client``; the answer must be taken as untrusted: every row still pending, marked
    ``protocol`` with a backoff. The rows."""
    try:
        report = drain(fresh, client)
    finally:
        client.close()
    assert isinstance(report, sync.DrainReport), report
    assert report.protocol_error
    rows = outbox(fresh)
    assert {r.status for r in rows} == {"pending"}
    assert {r.error_kind for r in rows} == {sync.PROTOCOL}
    assert all(r.next_attempt_at is not None for r in rows)
    return rows


@pytest.mark.parametrize("kind", sorted(GARBLED))
def test_untrusted_200_answers_keep_rows_pending_with_backoff(fresh: Env, kind: str) -> None:
    issue(fresh, 12)
    rows = _drained_as_untrusted(fresh, garbling_client(GARBLED[kind]))
    assert {r.attempts for r in rows} == {1}


def test_answer_body_that_cannot_be_decoded_keeps_rows_pending_with_backoff(fresh: Env) -> None:
    """A body announced as gzip that is not (a proxy in front of the registry mangling the answer):
    httpx raises DecodingError, which is no TransportError."""
    issue(fresh, 5)
    _drained_as_untrusted(
        fresh, garbling_client(lambda recs: _answer(_results(recs)), headers={"Content-Encoding": "gzip"})
    )


@pytest.mark.parametrize("message", [{"code": "E42", "detail": "证照标识校验位错误"}, 42, ["a", "b"]])
def test_refusal_with_a_message_that_is_not_text_is_a_dead_letter(fresh: Env, message: Any) -> None:
    """A refusal is the registry's word on the record; its ``message`` is free-form from another system."""
    issue(fresh, 3)
    client = garbling_client(lambda recs: _answer(
        [{"idem_key": r["idem_key"], "status": "rejected", "message": message} for r in recs]))
    try:
        report = drain(fresh, client)
    finally:
        client.close()
    assert isinstance(report, sync.DrainReport), report
    assert report.totals.failed == 3
    rows = outbox(fresh)
    assert {r.status for r in rows} == {"failed"}
    assert all(r.last_error.startswith("市级证照库拒收：") for r in rows)


# ---------------------------------------------------------------- two workers, two beats, Redis flapping


def test_two_workers_and_beats_with_redis_flapping_lose_nothing(fresh: Env) -> None:
    redis_proc = RedisProcess(fresh.tmp, free_port()).start()
    workers = []
    settings = Settings(database_url=fresh.db.url, instance_dir=fresh.tmp, secret_key="test",
                        redis_url=redis_proc.url)
    sync.bind_drain_scheduler(fresh.db, make_scheduler(settings))
    try:
        for i in range(2):
            folder = fresh.tmp / f"w{i}"
            folder.mkdir(exist_ok=True)
            workers.append(Worker(folder, fresh.db.url, redis_proc.url, fresh.registry.url).start())
        ids = issue(fresh, 60)
        actor = fresh.issuer.actor
        fresh.client.set_faults(latency_ms=300)
        for round_ in range(3):
            redis_proc.stop()
            # Changes committed while Redis is down: their drain requests fail, the rows wait for a sweep.
            with fresh.db.transaction() as session:
                for lid in ids[round_ * 10 : round_ * 10 + 5]:
                    issuing.suspend_licence(session, actor, lid, "整改")
            issue(fresh, 5)
            time.sleep(1.5)
            redis_proc.start()
            with fresh.db.transaction() as session:
                for lid in ids[round_ * 10 : round_ * 10 + 5]:
                    issuing.resume_licence(session, actor, lid)
                for lid in ids[round_ * 10 + 5 : round_ * 10 + 10]:
                    issuing.amend_licence(session, actor, lid, {"holder_name": "王晓明"})
            time.sleep(2.0)
        fresh.client.set_faults(reset=True)
        deadline = time.monotonic() + sync.BACKOFF_MAX_S * (1 + sync.BACKOFF_JITTER) + 90
        while True:
            with fresh.db.transaction() as session:
                counts = outbox_counts(session)
                district = current_licences(session)
            if not counts.get("pending") and registry_licences(fresh.registry.database_url) == district:
                break
            assert time.monotonic() < deadline, (counts, [w.log.read_text()[-1500:] for w in workers])
            time.sleep(0.5)
        assert all(w.proc is not None and w.proc.poll() is None for w in workers)
        assert_registry_equals_district(fresh)
    finally:
        for w in workers:
            w.stop()
        sync.bind_drain_scheduler(fresh.db, None)
        redis_proc.stop()
