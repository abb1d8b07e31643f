"""Draining the outbox to the real reference registry over HTTP, on the rolled-back PostgreSQL:
batches, per-record results, dead letters, versions racing, reconciliation, status and the hook."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from core import users
from core.audit import AuditLog
from core.auth import SYSTEM, Role
from core.db import Database
from core.errors import Invalid
from core.types import utcnow
from licenses import issuing, reconcile, sync, sync_admin
from licenses.models import Licence, LicenceOutbox
from licenses.sync_models import SyncLock
from tests.conftest import sign_in
from tests.factories.sync import (
    Issuer,
    RegistryProcess,
    current_licences,
    emptied_client,
    issue_many,
    make_issuer,
    outbox_counts,
    registry_licences,
    running_registry,
)
from workers.registry_client import RegistryClient

T = LicenceOutbox.__table__


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryProcess]:
    yield from running_registry(tmp_path_factory.mktemp("registry"))


@pytest.fixture
def client(registry: RegistryProcess) -> Iterator[RegistryClient]:
    yield from emptied_client(registry)


@pytest.fixture
def issuer(db: Database) -> Issuer:
    with db.transaction() as session:
        return make_issuer(session)


def _issue(db: Database, issuer: Issuer, n: int, seed: int = 1) -> list[int]:
    with db.transaction() as session:
        return issue_many(session, issuer, n, seed=seed)


def test_drain_sends_every_pending_record_in_batches(
    db: Database, issuer: Issuer, client: RegistryClient, registry: RegistryProcess
) -> None:
    _issue(db, issuer, 250)
    report = sync.drain(db, client, batch_size=100)
    assert report.batches == 3
    assert report.totals.sent == 250
    with db.transaction() as session:
        assert outbox_counts(session) == {"sent": 250}
        district = current_licences(session)
        summary = sync_admin.status_summary(session)
    assert registry_licences(registry.database_url) == district
    assert summary["by_status"]["sent"] == 250
    assert summary["lag_seconds"] == 0
    assert summary["synced_last_minute"] == 250
    assert summary["departments"][0]["pushed"] == 250
    assert summary["departments"][0]["name"] == issuer.department.name


def test_rejected_record_is_a_dead_letter_and_does_not_block_its_batch(
    db: Database, issuer: Issuer, client: RegistryClient, registry: RegistryProcess
) -> None:
    _issue(db, issuer, 20)
    with db.transaction() as session:
        keys = list(session.execute(sa.select(T.c.idem_key).order_by(T.c.id).limit(2)).scalars())
    client.set_faults(reject_keys=keys)
    report = sync.drain(db, client, batch_size=100)
    assert (report.totals.sent, report.totals.failed) == (18, 2)
    with db.transaction() as session:
        dead, total = sync_admin.list_dead_letters(session)
        assert total == 2
        assert {d.idem_key for d in dead} == set(keys)
        assert all("拒收" in (d.last_error or "") for d in dead)
        with pytest.raises(Invalid):
            sync_admin.skip_dead_letters(session, [dead[0].id], SYSTEM, " ")
        sync_admin.skip_dead_letters(session, [dead[0].id], SYSTEM, "持证主体已注销，市级库不再接收")
        sync_admin.requeue_dead_letters(session, [dead[1].id], SYSTEM)
        actions = list(
            session.execute(
                sa.select(AuditLog.action, AuditLog.reason)
                .where(AuditLog.entity_type == "licence_outbox")
                .order_by(AuditLog.id)
            )
        )
    assert actions == [
        ("licence_sync.skip", "持证主体已注销，市级库不再接收"),
        ("licence_sync.requeue", None),
    ]
    client.set_faults(reset=True)
    sync.drain(db, client, batch_size=100)
    with db.transaction() as session:
        assert outbox_counts(session) == {"sent": 19, "skipped": 1}
        assert len(registry_licences(registry.database_url)) == 19
        with pytest.raises(Invalid):  # only failed records can be requeued
            sync_admin.requeue_dead_letters(session, [dead[1].id], SYSTEM)


def test_later_version_wins_when_changes_race(
    db: Database, issuer: Issuer, client: RegistryClient, registry: RegistryProcess
) -> None:
    ids = _issue(db, issuer, 3)
    sync.drain(db, client, batch_size=100)
    with db.transaction() as session:
        issuing.suspend_licence(session, issuer.actor, ids[0], "整改期间暂停")
        issuing.resume_licence(session, issuer.actor, ids[0])
        new = issuing.amend_licence(
            session, issuer.actor, ids[1], {"holder_name": "泰州市新名称有限公司"}
        )
        issuing.revoke_licence(session, issuer.actor, new.id, "申请注销")
    # The newest change of licence 2 goes out first; its older changes arrive later and lose.
    with db.transaction() as session:
        newest = session.execute(sa.select(sa.func.max(T.c.id))).scalar_one()
        session.execute(T.update().where(T.c.status == "pending", T.c.id != newest).values(status="hold"))
    sync.drain(db, client, batch_size=100)
    with db.transaction() as session:
        session.execute(T.update().where(T.c.status == "hold").values(status="pending"))
    report = sync.drain(db, client, batch_size=2)  # the held changes, two per batch
    assert report.totals.superseded >= 2
    with db.transaction() as session:
        district = current_licences(session)
        assert "pending" not in outbox_counts(session)
    held = registry_licences(registry.database_url)
    assert held == district
    key = new.identifier.rsplit(".", 2)[0]
    assert held[key][0] == new.identifier
    assert held[key][2] == "revoked"


def test_unavailable_registry_leaves_records_pending_with_the_error(
    db: Database, issuer: Issuer, client: RegistryClient
) -> None:
    _issue(db, issuer, 5)
    client.set_faults(error_rate=1.0, status_code=503)
    with pytest.raises(sync.RegistryUnavailableError):
        sync.drain(db, client, batch_size=100)
    with db.transaction() as session:
        rows = session.execute(sa.select(T.c.status, T.c.attempts, T.c.last_error)).all()
    assert {r.status for r in rows} == {"pending"}
    assert {r.attempts for r in rows} == {1}
    assert all("503" in r.last_error for r in rows)
    with db.transaction() as session:
        retrying = sync_admin.status_summary(session)["retrying"]
    assert retrying["count"] == 5
    assert "503" in retrying["last_error"]


def test_the_registrys_words_are_masked_before_they_are_stored(db: Database, issuer: Issuer) -> None:
    """The registry is another government's system: what it says about a record may quote the holder's
    ID number or name, and the error is shown on the sync pages and in the dead-letter API."""
    _issue(db, issuer, 1)
    with db.transaction() as session:
        ids = list(session.execute(sa.select(T.c.id)).scalars())
        sync.note_failure(session, ids, RuntimeError("记录 32120319900101123X 与姓名：张三丰 不符"))
    with db.transaction() as session:
        [error] = session.execute(sa.select(T.c.last_error)).scalars().all()
    assert "32120319900101123X" not in error
    assert "张三丰" not in error
    assert "321203********123X" in error


def _make_due(db: Database) -> None:
    """Let the backoff of every pending row pass (the clock is what a test cannot wait for)."""
    with db.transaction() as session:
        session.execute(T.update().where(T.c.status == "pending").values(next_attempt_at=utcnow()))


@pytest.mark.parametrize("bad", ["wrong_count", "unknown_status", "malformed"])
def test_untrustworthy_answers_back_off_and_never_dead_letter(
    db: Database, issuer: Issuer, client: RegistryClient, registry: RegistryProcess, bad: str
) -> None:
    _issue(db, issuer, 5)
    client.set_faults(bad_response=bad)
    attempts = 7  # more than any dead-letter limit would allow
    for attempt in range(1, attempts + 1):
        report = sync.drain(db, client, batch_size=100)
        assert report.protocol_error
        with db.transaction() as session:
            rows = session.execute(
                sa.select(T.c.status, T.c.attempts, T.c.error_kind, T.c.updated_at, T.c.next_attempt_at)
            ).all()
        assert {r.status for r in rows} == {"pending"}
        assert {r.attempts for r in rows} == {attempt}
        assert {r.error_kind for r in rows} == {sync.PROTOCOL}
        for r in rows:  # the wait grows with the attempts (within the jitter)
            wait = (r.next_attempt_at - r.updated_at).total_seconds()
            expected = sync.backoff_seconds(attempt)
            assert expected * (1 - sync.BACKOFF_JITTER) <= wait <= expected * (1 + sync.BACKOFF_JITTER)
        # A drain right after (as every commit enqueues one) leaves the waiting rows alone.
        requests = client.set_faults()["counters"]["requests"]
        assert sync.drain(db, client, batch_size=100).totals.claimed == 0
        assert client.set_faults()["counters"]["requests"] == requests
        _make_due(db)
    # The registry did apply the batch each time; re-sending changed nothing there.
    assert client.stats()["licences"] == 5
    client.set_faults(reset=True)
    report = sync.drain(db, client, batch_size=100)
    assert report.totals.sent == 5
    assert report.totals.duplicates == 5
    with db.transaction() as session:
        assert outbox_counts(session) == {"sent": 5}
        assert sync_admin.list_dead_letters(session)[1] == 0


def test_clock_skew_is_retried_alerted_and_recovers_once_the_clock_is_right(
    app: Any, db: Database, issuer: Issuer, client: RegistryClient, registry: RegistryProcess
) -> None:
    _issue(db, issuer, 3)
    # /metrics answers only its scraper (core.web.require_metrics_access).
    app.extensions["gaogang.settings"] = app.extensions["gaogang.settings"].with_overrides(
        metrics_token="scrape-token", metrics_cache_seconds=0)
    web = app.test_client()
    assert web.get("/readyz").get_json()["checks"]["licence_sync"]["state"] == "ok"
    client.set_faults(clock_skew_s=400)  # the registry's clock (or ours) is 400 s off
    with pytest.raises(sync.RegistryClockSkewError):
        sync.drain(db, client, batch_size=100)
    with db.transaction() as session:
        rows = session.execute(sa.select(T.c.status, T.c.error_kind, T.c.next_attempt_at)).all()
    assert {(r.status, r.error_kind) for r in rows} == {("pending", sync.CLOCK_SKEW)}
    ready = web.get("/readyz", headers={"Authorization": "Bearer scrape-token"}).get_json()
    assert "licence_sync" in ready["degraded"]
    assert ready["checks"]["licence_sync"]["state"] == "degraded"
    assert "时钟偏差" in ready["checks"]["licence_sync"]["reason"]
    metrics = web.get("/metrics", headers={"Authorization": "Bearer scrape-token"}).get_data(as_text=True)
    assert "gaogang_licence_sync_clock_skew 1.0" in metrics
    assert 'gaogang_licence_sync_retrying_by_kind{kind="clock_skew"} 3.0' in metrics
    with db.transaction() as session:
        admin_id = users.create_user(session, SYSTEM, users.NewUser(
            username="skewadmin", password="password-123", display_name="管理员", role=Role.ADMIN
        ))[0].id
    sign_in(web, admin_id)
    assert "时钟偏差" in web.get("/admin/sync/").get_data(as_text=True)
    client.set_faults(clock_skew_s=0)  # the clock is fixed; nobody touches the records
    due = max(r.next_attempt_at for r in rows)
    while utcnow() < due:  # the backoff of a first failure is seconds: wait it out for real
        time.sleep(0.1)
    report = sync.drain(db, client, batch_size=100)
    assert report.totals.sent == 3
    with db.transaction() as session:
        assert outbox_counts(session) == {"sent": 3}
    assert web.get("/readyz").get_json()["checks"]["licence_sync"]["state"] == "ok"
    scraped = web.get("/metrics", headers={"Authorization": "Bearer scrape-token"})
    assert "gaogang_licence_sync_clock_skew 0.0" in scraped.get_data(as_text=True)


def test_amended_licence_reconciles_as_consistent_and_nothing_is_resent(
    db: Database, issuer: Issuer, client: RegistryClient, registry: RegistryProcess
) -> None:
    ids = _issue(db, issuer, 6)
    with db.transaction() as session:
        first = session.get(Licence, ids[0])
        original_day = first.issue_date
        amended = issuing.amend_licence(
            session, issuer.actor, ids[0], {"holder_name": "泰州市新名称有限公司"}
        )
        assert amended.issue_date == original_day  # 颁发日期 stays; the version has its own time
        # A correction of the 颁发日期 itself: the licence moves to another day's group on both sides.
        corrected_day = session.get(Licence, ids[1]).issue_date - timedelta(days=3)
        corrected = issuing.amend_licence(
            session, issuer.actor, ids[1], {"issue_date": corrected_day}
        )
        assert corrected.issue_date == corrected_day
    sync.drain(db, client, batch_size=100)
    for _run in range(2):
        with db.transaction() as session:
            report = reconcile.reconcile(session, client)
        assert report.result == "一致"
        assert report.requeued == 0
        assert report.differing == []
    with db.transaction() as session:
        assert "pending" not in outbox_counts(session)
        assert registry_licences(registry.database_url) == current_licences(session)


def test_reconciliation_finds_lost_and_differing_records_and_resends_them(
    db: Database, issuer: Issuer, client: RegistryClient, registry: RegistryProcess
) -> None:
    _issue(db, issuer, 40)
    sync.drain(db, client, batch_size=100)
    with db.transaction() as session:
        assert reconcile.reconcile(session, client).differing == []
    engine = sa.create_engine(registry.database_url)
    with engine.begin() as conn:  # the city loses one record and corrupts another's status
        keys = [
            k for (k,) in conn.execute(sa.text("SELECT licence_key FROM registry_licence ORDER BY 1 LIMIT 2"))
        ]
        conn.execute(sa.text("DELETE FROM registry_licence WHERE licence_key = :k"), {"k": keys[0]})
        conn.execute(
            sa.text("UPDATE registry_licence SET status = 'revoked' WHERE licence_key = :k"), {"k": keys[1]}
        )
    engine.dispose()
    with db.transaction() as session:
        report = reconcile.reconcile(session, client)
    assert report.requeued == 2
    assert sum(d["differing"] for d in report.differing) == 2
    sync.drain(db, client, batch_size=100)
    with db.transaction() as session:
        assert reconcile.reconcile(session, client).differing == []
        assert registry_licences(registry.database_url) == current_licences(session)


def test_after_commit_hook_schedules_a_drain_only_for_committed_outbox_rows(
    db: Database, issuer: Issuer
) -> None:
    calls: list[int] = []
    sync.bind_drain_scheduler(db, lambda: calls.append(1))
    _issue(db, issuer, 2)
    assert calls == [1]
    with pytest.raises(RuntimeError):  # noqa: PT012, SIM117  (the rollback is the point of the block)
        with db.transaction() as session:
            issue_many(session, issuer, 1, seed=7)
            raise RuntimeError("rolled back")
    assert calls == [1]
    with db.transaction() as session:  # a write without outbox rows schedules nothing
        session.execute(T.update().values(attempts=0))
    assert calls == [1]


def test_drain_scheduler_belongs_to_its_database_only(db: Database, issuer: Issuer) -> None:
    from sqlalchemy.orm import sessionmaker
    from sqlmodel import Session

    # Another Database object in the same process (on the same rolled-back connection).
    other = Database.__new__(Database)
    other.url, other.engine = db.url, db.engine
    other.sessionmaker = sessionmaker(bind=db.sessionmaker.kw["bind"], class_=Session, expire_on_commit=False,
                                      join_transaction_mode="create_savepoint")
    mine: list[int] = []
    theirs: list[int] = []
    sync.bind_drain_scheduler(db, lambda: mine.append(1))
    sync.bind_drain_scheduler(other, lambda: theirs.append(1))
    _issue(other, issuer, 1)
    assert (mine, theirs) == ([], [1])
    _issue(db, issuer, 1, seed=2)  # binding the other database replaced nothing here
    assert (mine, theirs) == ([1], [1])
    with Session(db.engine) as unrelated:  # a session of no factory of ours fires nothing
        unrelated.info["licence_sync_drain_requested"] = True
        unrelated.commit()
    assert (mine, theirs) == ([1], [1])


def test_scheduler_failure_never_fails_the_commit(db: Database, issuer: Issuer) -> None:
    def broken() -> None:
        raise ConnectionError("broker down")

    sync.bind_drain_scheduler(db, broken)
    _issue(db, issuer, 1)
    with db.transaction() as session:
        assert outbox_counts(session) == {"pending": 1}


def test_enqueue_with_redis_down_fails_fast_and_the_row_waits_for_the_sweep(
    db: Database, issuer: Issuer, tmp_path: Any
) -> None:
    import socket

    from celery_app import PUBLISH_TRANSPORT_OPTIONS, make_celery
    from tests.conftest import make_settings
    from webapp.tasks import make_scheduler

    with socket.socket() as s:  # a port nobody listens on: Redis is down
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    settings = make_settings(tmp_path, db.url, redis_url=f"redis://127.0.0.1:{closed}/0")
    publisher = make_celery(settings, publisher=True).conf.broker_transport_options
    assert publisher["max_retries"] == PUBLISH_TRANSPORT_OPTIONS["max_retries"] == 1
    assert publisher["socket_connect_timeout"] <= 1
    sync.bind_drain_scheduler(db, make_scheduler(settings))
    started = time.monotonic()
    _issue(db, issuer, 1)  # commit, then the enqueue fails: logged, not raised
    elapsed = time.monotonic() - started
    assert elapsed < 2, f"the write waited {elapsed:.1f} s for a broker that is down"
    with db.transaction() as session:
        assert outbox_counts(session) == {"pending": 1}


def test_single_flight_lock_is_exclusive_until_released_or_expired(db: Database) -> None:
    assert sync.acquire_lock(db, "reconcile", "a", ttl_s=60)
    assert not sync.acquire_lock(db, "reconcile", "b", ttl_s=60)
    sync.release_lock(db, "reconcile", "a")
    assert sync.acquire_lock(db, "reconcile", "b", ttl_s=60)
    with db.transaction() as session:
        session.get(SyncLock, "reconcile").expires_at = utcnow() - timedelta(seconds=1)
    assert sync.acquire_lock(db, "reconcile", "c", ttl_s=60)
    assert sync.acquire_lock(db, "brand-new-job", "c", ttl_s=60)


def _admin_token(db: Database) -> str:
    with db.transaction() as session:
        user = users.create_user(
            session, SYSTEM, users.NewUser(
                username="syncadmin", password="password-123", display_name="管理员", role=Role.ADMIN
        ))[0]
        return users.issue_token(session, SYSTEM, user.id, "test")[1]


def test_status_json_and_metrics_show_the_figures(app: Any, db: Database, issuer: Issuer) -> None:
    _issue(db, issuer, 3)
    client = app.test_client()
    assert client.get("/api/v1/sync/status").status_code == 401
    token = _admin_token(db)
    body = client.get("/api/v1/sync/status", headers={"Authorization": f"Bearer {token}"}).get_json()
    assert body["by_status"]["pending"] == 3
    assert body["lag_seconds"] >= 0
    assert body["departments"][0]["pending"] == 3
    scrape = "metrics-scrape-token-0001"
    settings = app.extensions["gaogang.settings"]
    app.extensions["gaogang.settings"] = settings.with_overrides(metrics_token=scrape)
    metrics = client.get("/metrics", headers={"Authorization": f"Bearer {scrape}"})
    assert metrics.status_code == 200
    assert metrics.mimetype == "text/plain"
    assert 'gaogang_licence_outbox_records{status="pending"} 3.0' in metrics.get_data(as_text=True)
    assert "holder" not in metrics.get_data(as_text=True)


def test_dead_letters_api_is_for_administrators_and_requires_a_reason_to_skip(
    app: Any, db: Database, issuer: Issuer
) -> None:
    _issue(db, issuer, 2)
    with db.transaction() as session:
        session.execute(T.update().values(status="failed", last_error="市级证照库拒收：测试"))
        ids = list(session.execute(sa.select(T.c.id).order_by(T.c.id)).scalars())
        staff_token = users.issue_token(session, SYSTEM, issuer.actor.user_id, "t")[1]
    client = app.test_client()
    staff = {"Authorization": f"Bearer {staff_token}"}
    assert client.get("/api/v1/sync/dead-letters", headers=staff).status_code == 403
    admin = {"Authorization": f"Bearer {_admin_token(db)}"}
    listing = client.get("/api/v1/sync/dead-letters", headers=admin).get_json()
    assert listing["total"] == 2
    assert "holder_name" not in listing["items"][0]
    no_reason = client.post("/api/v1/sync/dead-letters/skip", json={"ids": ids[:1]}, headers=admin)
    assert no_reason.status_code == 422
    assert "reason" in no_reason.get_json()["details"]
    assert client.post(
        "/api/v1/sync/dead-letters/skip", json={"ids": ids[:1], "reason": "重复数据"}, headers=admin
    ).get_json() == {"skipped": 1}
    assert client.post(
        "/api/v1/sync/dead-letters/requeue", json={"ids": ids[1:]}, headers=admin
    ).get_json() == {"requeued": 1}
    assert (
        client.post("/api/v1/sync/dead-letters/requeue", json={"ids": [2**62 + 5]}, headers=admin).status_code
        == 422
    )
    page = client.get(f"/api/v1/sync/licences/{ids[0] and _licence_id(db, ids[0])}", headers=staff).get_json()
    assert page["state"] == "skipped"


def _licence_id(db: Database, outbox_id: int) -> int:
    with db.transaction() as session:
        return int(session.execute(sa.select(T.c.licence_id).where(T.c.id == outbox_id)).scalar_one())


def test_admin_sync_page_lists_dead_letters_and_requeues_them(app: Any, db: Database, issuer: Issuer) -> None:
    _issue(db, issuer, 1)
    with db.transaction() as session:
        session.execute(T.update().values(status="failed", last_error="市级证照库拒收：测试原因"))
        outbox_id = session.execute(sa.select(T.c.id)).scalar_one()
        user = users.create_user(
            session, SYSTEM, users.NewUser(
                username="pageadmin", password="password-123", display_name="管理员", role=Role.ADMIN
        ))[0]
        user_id = user.id
    client = app.test_client()
    assert client.get("/admin/sync/").status_code == 401
    sign_in(client, user_id)
    page = client.get("/admin/sync/")
    text = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "测试原因" in text
    assert "重新排队推送" in text
    skipped = client.post(
        "/admin/sync/skip", data={"ids": [str(outbox_id)], "reason": ""}, follow_redirects=True
    )
    assert "跳过需要填写原因" in skipped.get_data(as_text=True)
    done = client.post("/admin/sync/requeue", data={"ids": [str(outbox_id)]}, follow_redirects=True)
    assert "已重新排队 1 条" in done.get_data(as_text=True)
    with db.transaction() as session:
        assert outbox_counts(session) == {"pending": 1}


@pytest.mark.parametrize("raw", ["\u00b2", "\u0661", "99999999999999999999"])
def test_admin_sync_page_ignores_ids_that_are_not_ascii_row_ids(app: Any, db: Database, raw: str) -> None:
    # "²" passes str.isdigit() and int() then raised: requeue and skip answered 500.
    with db.transaction() as session:
        user_id = users.create_user(
            session, SYSTEM, users.NewUser(
                username="idsadmin", password="password-123", display_name="管理员", role=Role.ADMIN
        ))[0].id
    client = app.test_client()
    sign_in(client, user_id)
    for path in ("/admin/sync/requeue", "/admin/sync/skip"):
        answer = client.post(path, data={"ids": [raw], "reason": "测试"})
        assert answer.status_code == 303, (path, answer.status_code)


def test_admin_can_request_a_reconciliation_now(app: Any, db: Database, tmp_path: Any) -> None:

    with db.transaction() as session:
        user = users.create_user(
            session, SYSTEM, users.NewUser(
                username="reconadmin", password="password-123", display_name="管理员", role=Role.ADMIN
        ))[0]
        user_id = user.id
    client = app.test_client()
    sign_in(client, user_id)
    done = client.post("/admin/sync/reconcile", follow_redirects=True)
    assert "已提交对账任务" in done.get_data(as_text=True)
    queued = list((tmp_path / "broker" / "queue").iterdir())
    assert len(queued) == 1
    assert "workers.sync_reconcile" in queued[0].read_text()
    with db.transaction() as session:
        assert (
            session.execute(
                sa.select(sa.func.count()).where(AuditLog.action == "licence_sync.reconcile_requested")
            ).scalar_one()
            == 1
        )


def test_embedded_sqlite_mode_drains_and_reconciles_the_same_way(
    tmp_path: Any, client: RegistryClient, registry: RegistryProcess
) -> None:
    from tests.conftest import migrate

    url = f"sqlite:///{tmp_path / 'embedded.db'}"
    migrate(url)
    lite = Database(url)
    try:
        with lite.transaction() as session:
            lite_issuer = make_issuer(session)
        ids = _issue(lite, lite_issuer, 120)
        with lite.transaction() as session:
            issuing.suspend_licence(session, lite_issuer.actor, ids[0], "整改")
        report = sync.drain(lite, client, batch_size=50, lanes=2)  # one lane on SQLite
        assert (report.batches, report.totals.sent) == (3, 121)  # the suspension follows in batch 3
        with lite.transaction() as session:
            assert registry_licences(registry.database_url) == current_licences(session)
            assert reconcile.reconcile(session, client).differing == []
            assert sync_admin.status_summary(session)["by_status"]["sent"] == 121
    finally:
        lite.engine.dispose()
