"""Reconciliation by digest tree against the real reference registry over HTTP (district on the
rolled-back PostgreSQL, registry on its own SQLite): each kind of damage is found and repaired, extras
are reported and left alone, and a run that finds nothing asks only for the top of the tree."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import date
from typing import Any

import orjson
import pytest
import sqlalchemy as sa

from city_registry import store as registry_store
from city_registry import tree as registry_tree
from core import users
from core.auth import SYSTEM, Role
from core.db import Database
from core.types import utcnow
from demo import synthetic_licences
from licenses import bulk, issuing, reconcile, sync
from licenses import reconcile_tree as district_tree
from licenses.models import LicenceOutbox
from licenses.sync import licence_key
from tests.conftest import sign_in
from tests.factories.sync import (
    Issuer,
    RegistryProcess,
    current_licences,
    emptied_client,
    issue_many,
    make_issuer,
    registry_licences,
    running_registry,
)
from workers.registry_client import RegistryClient, sign

T = LicenceOutbox.__table__
ONE_DAY = date(2018, 6, 1)


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


def _synced(db: Database, issuer: Issuer, client: RegistryClient, n: int) -> list[int]:
    with db.transaction() as session:
        ids = issue_many(session, issuer, n)
    sync.drain(db, client, batch_size=200)
    return ids


def _registry(registry: RegistryProcess, sql: str, **params: object) -> list[tuple[object, ...]]:
    engine = sa.create_engine(registry.database_url)
    try:
        with engine.begin() as conn:
            result = conn.execute(sa.text(sql), params)
            return [tuple(r) for r in result] if result.returns_rows else []
    finally:
        engine.dispose()


def _reconcile(db: Database, client: RegistryClient, **kw: object) -> reconcile.ReconcileReport:
    with db.transaction() as session:
        return reconcile.reconcile(session, client, **kw)  # type: ignore[arg-type]  # the options pass through as given; each test names valid ones


def test_both_copies_of_the_row_hash_and_bucket_agree_on_the_same_vectors() -> None:
    vectors = [("1.2.156.3005.2.11100000000013338W011.11321203MB0000000F.2018ABCDEFGHIJ.001.5", 1, "valid"),
               ("1.2.156.3005.2.11100000000013338W011.11321203MB0000000F.2430599.002.0", 3, "revoked")]
    for ident, rev, status in vectors:
        assert registry_tree.row_hash(ident, rev, status) == district_tree.row_hash(ident, rev, status)
        key = ident.rsplit(".", 2)[0]
        assert registry_tree.bucket_of(key) == district_tree.bucket_of(key)
    # A signed 64-bit value, as PostgreSQL's bigint holds it, and sensitive to each field.
    h = district_tree.row_hash(*vectors[0])
    assert -(1 << 63) <= h < 1 << 63
    assert h != district_tree.row_hash(vectors[0][0], 2, "valid")
    assert h != district_tree.row_hash(vectors[0][0], 1, "suspended")


def test_a_run_that_finds_no_difference_asks_only_for_the_top_of_the_tree(
    db: Database, issuer: Issuer, client: RegistryClient
) -> None:
    _synced(db, issuer, client, 60)
    report = _reconcile(db, client)
    assert report.method == "tree"
    assert report.result == "一致"
    assert report.requests == 1  # the issuers' digests; nothing below them differs
    assert report.registry_records_listed == 0
    assert report.requeued == 0
    assert report.groups >= 1


def test_records_the_registry_lost_are_found_resent_and_repaired(
    db: Database, issuer: Issuer, client: RegistryClient, registry: RegistryProcess
) -> None:
    _synced(db, issuer, client, 60)
    lost = [k for (k,) in _registry(registry, "SELECT licence_key FROM registry_licence ORDER BY 1 LIMIT 2")]
    for key in lost:
        _registry(registry, "DELETE FROM registry_licence WHERE licence_key = :k", k=key)
    report = _reconcile(db, client)
    assert report.missing_in_registry == 2
    assert report.requeued == 2
    assert sum(d["differing"] for d in report.differing) == 2
    assert report.registry_records_listed < 60  # a leaf, not the whole day
    sync.drain(db, client, batch_size=200)
    assert _reconcile(db, client).result == "一致"
    with db.transaction() as session:
        assert registry_licences(registry.database_url) == current_licences(session)


def test_a_run_given_its_committed_baseline_only_reads_until_it_requeues(
    db: Database, issuer: Issuer, client: RegistryClient, registry: RegistryProcess,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The nightly task (workers.tasks.sync_reconcile) commits the baseline's writes (the day log's
    fold, the weekly rebuild) before the descent, so no licence write waits on a registry round trip:
    until its last request the run's own transaction sends nothing but reads."""
    _synced(db, issuer, client, 60)
    lost = [k for (k,) in _registry(registry, "SELECT licence_key FROM registry_licence ORDER BY 1 LIMIT 2")]
    for key in lost:
        _registry(registry, "DELETE FROM registry_licence WHERE licence_key = :k", k=key)
    with db.transaction() as session:
        baseline = reconcile.prepare_baseline(session, verify=True)
    kinds: list[str] = []
    asked_at: list[int] = []
    listing = client.tree_records

    def tree_records(nodes: list[dict[str, Any]]) -> list[dict[str, Any]]:
        answer = listing(nodes)
        asked_at.append(len(kinds))
        return answer

    def seen(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        kinds.append(statement.split(None, 1)[0].upper())

    monkeypatch.setattr(client, "tree_records", tree_records)
    sa.event.listen(db.engine, "before_cursor_execute", seen)
    try:
        with db.transaction() as session:
            report = reconcile.reconcile(session, client, baseline=baseline)
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", seen)
    assert report.requeued == 2
    assert report.baseline_drift == 0
    assert asked_at
    assert set(kinds[: asked_at[-1]]) <= {"SELECT", "WITH", "SAVEPOINT", "RELEASE"}, kinds[: asked_at[-1]]
    assert "UPDATE" in kinds[asked_at[-1]:]  # the re-queue, after the registry was asked


def test_a_version_the_registry_rolled_back_is_found_as_behind_and_resent(
    db: Database, issuer: Issuer, client: RegistryClient, registry: RegistryProcess
) -> None:
    ids = _synced(db, issuer, client, 30)
    with db.transaction() as session:
        issuing.suspend_licence(session, issuer.actor, ids[0], "整改期间暂停")
    sync.drain(db, client, batch_size=200)
    with db.transaction() as session:
        ident, _revision, status = next(v for v in current_licences(session).values() if v[1] == 2)
    assert status == "suspended"
    key = ident.rsplit(".", 2)[0]
    _registry(registry, "UPDATE registry_licence SET revision = 1, status = 'valid' WHERE licence_key = :k",
              k=key)
    report = _reconcile(db, client)
    assert (report.behind_in_registry, report.missing_in_registry, report.requeued) == (1, 0, 1)
    sync.drain(db, client, batch_size=200)
    assert registry_licences(registry.database_url)[key] == (ident, 2, "suspended")
    assert _reconcile(db, client).result == "一致"


def test_extra_records_in_the_registry_are_reported_and_never_deleted(
    app: Any, db: Database, issuer: Issuer, client: RegistryClient, registry: RegistryProcess
) -> None:
    _synced(db, issuer, client, 20)
    (row,) = _registry(registry, "SELECT * FROM registry_licence ORDER BY licence_key LIMIT 1")
    cols = [c.name for c in registry_store.licences.c]
    extra = dict(zip(cols, row, strict=True))
    serial_at = extra["licence_key"].rindex(".") + 1
    extra["licence_key"] = extra["licence_key"][:serial_at] + "ZZZZNOTOURS"
    extra["identifier"] = extra["licence_key"] + ".001.0"
    extra["idem_key"] = extra["identifier"] + ":1"
    _registry(registry, f"INSERT INTO registry_licence ({', '.join(cols)}) "  # noqa: S608
              f"VALUES ({', '.join(':' + c for c in cols)})", **extra)
    report = _reconcile(db, client)
    assert report.extra_in_registry == 1
    assert report.extras == [{"issuer_code": extra["issuer_code"], "day": extra["issue_day"],
                              "identifier": extra["identifier"], "revision": extra["revision"],
                              "status": extra["status"]}]
    assert report.requeued == 0
    assert report.result == "存在差异"
    sync.drain(db, client, batch_size=200)
    assert extra["licence_key"] in registry_licences(registry.database_url)
    again = _reconcile(db, client)
    assert again.extra_in_registry == 1  # still there, still reported
    # What the nightly task records is what the administrators' page and the metric show.
    sync.record_run(db, "reconcile", utcnow(), "ok" if again.consistent else "differences", again.as_dict())
    app.extensions["gaogang.settings"] = app.extensions["gaogang.settings"].with_overrides(
        metrics_token="scrape-token", metrics_cache_seconds=0)
    web = app.test_client()
    metrics = web.get("/metrics", headers={"Authorization": "Bearer scrape-token"}).get_data(as_text=True)
    assert "gaogang_licence_sync_reconcile_extra 1.0" in metrics
    with db.transaction() as session:
        admin_id = users.create_user(session, SYSTEM, users.NewUser(
            username="reconadmin", password="password-123", display_name="管理员", role=Role.ADMIN))[0].id
    sign_in(web, admin_id)
    page = web.get("/admin/sync/").get_data(as_text=True)
    assert "市级库多出 1 条（仅报告，不删除）" in page
    assert extra["identifier"] in page


def test_a_large_day_is_descended_through_buckets_and_only_the_damaged_leaves_are_listed(
    db: Database, issuer: Issuer, client: RegistryClient, registry: RegistryProcess
) -> None:
    with db.transaction() as session:  # 200 licences issued on one day
        rows = []
        for line, row in synthetic_licences.synthetic_rows([issuer.licence_type], 200, seed=7):
            shift = row["issue_date"] - ONE_DAY
            rows.append((line, {**row, "issue_date": ONE_DAY, "valid_from": ONE_DAY,
                                "valid_to": row["valid_to"] and row["valid_to"] - shift}))
        assert not bulk.bulk_issue(session, issuer.actor, issuer.department, rows, source="test").errors
    sync.drain(db, client, batch_size=200)
    (key,) = _registry(registry, "SELECT licence_key FROM registry_licence ORDER BY 1 LIMIT 1")[0]
    _registry(registry, "DELETE FROM registry_licence WHERE licence_key = :k", k=key)
    _registry(registry, "UPDATE registry_licence SET status = 'revoked' WHERE licence_key = "
              "(SELECT max(licence_key) FROM registry_licence)")
    report = _reconcile(db, client, leaf=4)
    assert report.missing_in_registry == 1
    assert report.other_in_registry == 1
    assert report.requeued == 2
    # Two damaged leaves of at most 4 records, not the day's 200.
    assert report.registry_records_listed <= 2 * 4
    assert [(d["day"], d["count"], d["differing"]) for d in report.differing] == [
        (ONE_DAY.isoformat(), 200, 2)]
    groups = _reconcile(db, client, method="groups")  # the old method finds the same, listing whole days
    assert groups.method == "groups"
    assert groups.requeued == 0  # already pending again: counted in flight
    assert groups.in_flight == 2
    assert groups.registry_records_listed == 199  # the whole day


def test_the_registry_refuses_a_malformed_tree_request_with_a_code(client: RegistryClient) -> None:
    for body, code in [
        ({"nodes": [{"issuer_code": "bad"}]}, "bad_request"),
        ({"nodes": [{"issuer_code": None, "day": "2024"}]}, "bad_request"),
        ({"nodes": []}, "bad_request"),
        ({"scheme": "sha1-xor", "nodes": [{}]}, "unsupported_scheme"),
    ]:
        with pytest.raises(sync.RegistryProtocolError):
            client.request("POST", "/api/v1/reconciliation/tree", orjson.dumps(body))
        response = client._http.post(  # the same request, signed, to read the error body
            "/api/v1/reconciliation/tree", content=orjson.dumps(body),
            headers=_signed(client, "/api/v1/reconciliation/tree", orjson.dumps(body)))
        assert response.status_code == 400
        assert response.json()["error"]["code"] == code


def _signed(client: RegistryClient, path: str, body: bytes) -> dict[str, str]:
    ts = str(int(time.time()))
    return {"X-Client-Id": client.client_id, "X-Timestamp": ts,
            "X-Signature": sign(client.key, "POST", path, ts, body)}


def test_an_outbox_change_behind_the_baseline_is_found_by_the_weekly_full_verification(
    db: Database, issuer: Issuer, client: RegistryClient, registry: RegistryProcess
) -> None:
    """The tree trusts the baseline kept on write; an outbox row edited by hand (a partial restore)
    hides from it, and the full verification finds it and sends the licence again."""
    _synced(db, issuer, client, 20)
    with db.transaction() as session:
        row_id = session.execute(sa.select(sa.func.max(T.c.id))).scalar_one()
        row = session.execute(sa.select(T).where(T.c.id == row_id)).one()
        session.execute(T.update().where(T.c.id == row_id)
                        .values(payload={**row.payload, "status": "revoked"}))
    quick = _reconcile(db, client)
    assert (quick.result, quick.baseline_drift) == ("一致", None)  # what the writers kept still matches
    full = _reconcile(db, client, verify=True)
    assert (full.baseline_drift, full.baseline_drift_days) == (1, 1)
    assert (full.other_in_registry, full.requeued) == (1, 1)
    sync.drain(db, client, batch_size=200)
    assert _reconcile(db, client).result == "一致"
    assert registry_licences(registry.database_url)[licence_key(row.identifier)][2] == "revoked"


def test_a_differing_licence_whose_outbox_row_is_gone_is_counted_not_dropped(
    db: Database, issuer: Issuer, client: RegistryClient, registry: RegistryProcess, app: Any
) -> None:
    """The registry lost a licence whose outbox row was also deleted by hand: there is nothing to send
    again, and the run says so (it used to leave it out of every count) until the full verification
    rebuilds the baseline from the outbox."""
    _synced(db, issuer, client, 20)
    with db.transaction() as session:
        row = session.execute(sa.select(T).order_by(T.c.id.desc()).limit(1)).one()
        session.execute(T.delete().where(T.c.id == row.id))
    _registry(registry, "DELETE FROM registry_licence WHERE licence_key = :k", k=licence_key(row.identifier))
    quick = _reconcile(db, client)
    assert quick.result == "存在差异"
    assert sum(d["differing"] for d in quick.differing) == 1
    assert (quick.without_outbox_row, quick.missing_in_registry, quick.requeued) == (1, 0, 0)
    sync.record_run(db, "reconcile", utcnow(), "differences", quick.as_dict())
    web = app.test_client()
    with db.transaction() as session:
        admin_id = users.create_user(session, SYSTEM, users.NewUser(
            username="reconadmin2", password="password-123", display_name="管理员", role=Role.ADMIN))[0].id
    sign_in(web, admin_id)
    assert "发件箱中已无对应记录 1 条" in web.get("/admin/sync/").get_data(as_text=True)
    full = _reconcile(db, client, verify=True)
    assert (full.baseline_drift, full.without_outbox_row, full.result) == (1, 0, "一致")
