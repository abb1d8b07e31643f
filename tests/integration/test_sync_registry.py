"""The reference city registry over real HTTP: authentication, batch upsert with per-record results,
idempotency, ordering of versions, validation, reconciliation digests and fault switches."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from licenses import reconcile, sync
from tests.factories.sync import (
    ISSUER,
    KEY,
    RegistryProcess,
    emptied_client,
    envelope,
    identifier,
    registry_database,
    running_registry,
)
from workers.registry_client import RegistryClient, sign


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryProcess]:
    yield from running_registry(tmp_path_factory.mktemp("registry"))


@pytest.fixture
def client(registry: RegistryProcess) -> Iterator[RegistryClient]:
    yield from emptied_client(registry)


def test_request_without_signature_is_refused(registry: RegistryProcess) -> None:
    response = httpx.post(f"{registry.url}/api/v1/licences/batch", json={"records": [envelope("A1")]})
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthenticated"


def test_request_with_wrong_key_or_tampered_body_is_refused(registry: RegistryProcess) -> None:
    body = json.dumps({"batch_id": "b", "records": [envelope("A1")]}).encode()
    ts = str(int(time.time()))
    path = "/api/v1/licences/batch"
    wrong = {
        "X-Client-Id": "321203",
        "X-Timestamp": ts,
        "X-Signature": sign("other-key", "POST", path, ts, body),
    }
    assert httpx.post(registry.url + path, content=body, headers=wrong).status_code == 401
    good_sig = sign(KEY, "POST", path, ts, body)
    tampered = body.replace(b"A1", b"A2")
    headers = {"X-Client-Id": "321203", "X-Timestamp": ts, "X-Signature": good_sig}
    assert httpx.post(registry.url + path, content=tampered, headers=headers).status_code == 401
    old_ts = str(int(time.time()) - 3600)
    stale = {
        "X-Client-Id": "321203",
        "X-Timestamp": old_ts,
        "X-Signature": sign(KEY, "POST", path, old_ts, body),
    }
    assert httpx.post(registry.url + path, content=body, headers=stale).status_code == 401


def test_batch_gives_one_result_per_record_and_redelivery_is_a_duplicate(client: RegistryClient) -> None:
    batch = [envelope("A1", sequence=1), envelope("A2", sequence=2)]
    first = client.post_batch("b1", batch)
    assert [r.status for r in first] == ["created", "created"]
    again = client.post_batch("b1", batch)
    assert [r.status for r in again] == ["duplicate", "duplicate"]
    stats = client.stats()
    assert stats["licences"] == 2
    assert stats["receipts"] == 2
    assert stats["redeliveries"] == 2


def test_later_version_wins_whatever_the_arrival_order(client: RegistryClient) -> None:
    v1 = envelope("B1", version=1, revision=2, sequence=10, status="superseded")
    v2 = envelope("B1", version=2, revision=1, sequence=11)
    assert [r.status for r in client.post_batch("b", [v2])] == ["created"]
    late = client.post_batch("b", [v1])
    assert late[0].status == "stale"
    assert late[0].version == 2
    suspended = envelope("B1", version=2, revision=2, sequence=12, status="suspended")
    assert client.post_batch("b", [suspended])[0].status == "updated"
    records = client.records(ISSUER, "2018-03-01")
    assert [(r["identifier"], r["revision"], r["status"]) for r in records] == [
        (identifier("B1", 2), 2, "suspended")
    ]


def test_invalid_record_is_rejected_without_blocking_its_batch(client: RegistryClient) -> None:
    bad_check = envelope("C2")
    ident = bad_check["record"]["certificate_identifier"]
    bad_check["record"]["certificate_identifier"] = ident[:-1] + ("0" if ident[-1] != "0" else "1")
    batch = [envelope("C1", sequence=1), bad_check, envelope("C3", sequence=3, area_code="32")]
    results = client.post_batch("b", batch)
    assert [r.status for r in results] == ["created", "rejected", "rejected"]
    assert "校验位" in (results[1].message or "")
    assert "属地" in (results[2].message or "")


def test_reconciliation_digest_matches_the_districts_computation(client: RegistryClient) -> None:
    client.post_batch(
        "b",
        [
            envelope("D1", sequence=1),
            envelope("D2", sequence=2, status="revoked", revision=2),
            envelope("D3", sequence=3, issue_date="2018-03-02"),
        ],
    )
    groups = {(g["issuer_code"], g["day"]): g for g in client.digests()}
    assert set(groups) == {(ISSUER, "2018-03-01"), (ISSUER, "2018-03-02")}
    count, digest = reconcile.digest([(identifier("D1"), 1, "valid"), (identifier("D2"), 2, "revoked")])
    assert groups[(ISSUER, "2018-03-01")] == {
        "issuer_code": ISSUER,
        "day": "2018-03-01",
        "count": count,
        "digest": digest,
    }
    assert client.digests(issuer_code="11321203MB0000001X") == []


@pytest.mark.parametrize(
    ("switches", "error"),
    [
        ({"error_rate": 1.0, "status_code": 503}, sync.RegistryUnavailableError),
        ({"error_rate": 1.0, "status_code": 429}, sync.RegistryUnavailableError),
        ({"down": True}, sync.RegistryUnavailableError),
        ({"bad_response": "malformed"}, sync.RegistryProtocolError),
        ({"bad_response": "wrong_count"}, sync.RegistryProtocolError),
        ({"bad_response": "unknown_status"}, sync.RegistryProtocolError),
        ({"bad_response": "error_body"}, sync.RegistryProtocolError),
        ({"error_rate": 1.0, "status_code": 400}, sync.RegistryProtocolError),
    ],
)
def test_faulty_answers_map_to_retryable_or_protocol_errors(
    client: RegistryClient, switches: dict[str, Any], error: type[Exception]
) -> None:
    client.set_faults(**switches)
    with pytest.raises(error):
        client.post_batch("b", [envelope("E1"), envelope("E2", sequence=2)])


def test_latency_switch_delays_answers(client: RegistryClient) -> None:
    client.set_faults(latency_ms=300)
    started = time.monotonic()
    client.post_batch("b", [envelope("F1")])
    assert time.monotonic() - started >= 0.3


def test_timeout_is_retryable(registry: RegistryProcess, client: RegistryClient) -> None:
    client.set_faults(latency_ms=1500)
    impatient = RegistryClient(registry.url, KEY, "321203", timeout=0.5)
    with pytest.raises(sync.RegistryUnavailableError, match="超时"):
        impatient.post_batch("b", [envelope("G1")])
    impatient.close()


def test_fault_switches_reject_unknown_names(client: RegistryClient) -> None:
    with pytest.raises(sync.RegistryProtocolError, match="400"):
        client.set_faults(explode=True)


def test_lower_revision_with_a_higher_sequence_is_stale_and_never_rolls_back(client: RegistryClient) -> None:
    # After a restore that reset the district's sequences, revision 1 arrives numbered after revision 3.
    rev3 = envelope("H1", revision=3, sequence=5, status="revoked")
    rev1 = envelope("H1", revision=1, sequence=99, status="valid")
    assert client.post_batch("b", [rev3])[0].status == "created"
    late = client.post_batch("b", [rev1])
    assert late[0].status == "stale"
    assert [(r["revision"], r["status"]) for r in client.records(ISSUER, "2018-03-01")] == [(3, "revoked")]
    # In one batch too: the higher revision wins whatever the order and the sequence numbers.
    both = client.post_batch("b", [envelope("H2", revision=3, sequence=1, status="suspended"),
                                   envelope("H2", revision=1, sequence=2)])
    assert [r.status for r in both] == ["created", "stale"]
    held = {r["identifier"]: r["revision"] for r in client.records(ISSUER, "2018-03-01")}
    assert held[identifier("H2")] == 3


@pytest.fixture(params=["sqlite", "postgresql"])
def registry_db_url(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[str]:
    with registry_database(request.param, tmp_path, "registry") as url:
        yield url


def test_registry_ordering_rule_holds_in_sql_for_a_second_process(registry_db_url: str) -> None:
    """Two registry processes on one database: the one that read before the other wrote cannot
    roll the licence back, because the rank check is the upsert's own condition."""
    from city_registry.protocol import validate_record
    from city_registry.store import RegistryStore

    first, second = RegistryStore(registry_db_url), RegistryStore(registry_db_url)
    try:
        first.reset()
        assert first.apply_batch("321203", [envelope("J1", revision=3, sequence=1, status="revoked")])[0][
            "status"] == "created"
        # The second process writes what it believed was newer (its view predates the first's commit).
        rec, _ = validate_record(envelope("J1", revision=1, sequence=50, status="valid"))
        assert rec is not None
        row = (rec["licence_key"], rec["identifier"], rec["idem_key"], rec["version"], rec["revision"],
               rec["sequence"], "321203", rec["issuer_code"], rec["issue_day"], rec["status"], "{}", "now")
        with second.engine.begin() as conn:
            second.write(conn, [row])
        # And through its normal path it answers stale.
        assert second.apply_batch("321203", [envelope("J1", revision=2, sequence=60, status="suspended")])[0][
            "status"] == "stale"
        assert [(r["revision"], r["status"]) for r in first.records(ISSUER, "2018-03-01")] == [(3, "revoked")]
        higher = envelope("J1", version=2, revision=1, sequence=2)
        assert second.apply_batch("321203", [higher])[0]["status"] == "updated"
        assert [(r["version"], r["revision"]) for r in first.records(ISSUER, "2018-03-01")] == [(2, 1)]
    finally:
        first.engine.dispose()
        second.engine.dispose()


def test_stale_timestamp_is_a_retryable_clock_skew_error(client: RegistryClient) -> None:
    client.set_faults(clock_skew_s=400)
    with pytest.raises(sync.RegistryClockSkewError, match="stale_timestamp"):
        client.post_batch("b", [envelope("K1")])
    assert issubclass(sync.RegistryClockSkewError, sync.RegistryUnavailableError)  # retried like an outage
    client.set_faults(clock_skew_s=0)
    assert client.post_batch("b", [envelope("K1")])[0].status == "created"


def test_batch_answers_logs_and_digest_tree_on_both_databases(registry_db_url: str) -> None:
    """The per-record answers, receipts, applied and refused logs and the digest tree are the same on
    SQLite (a statement per row) and PostgreSQL (a statement per batch)."""
    from city_registry.store import RegistryStore
    from city_registry.tree import Node, RegistryTree, digest_of, row_hash

    store = RegistryStore(registry_db_url)
    try:
        store.reset()
        bad = envelope("S9", area_code="32")
        first = store.apply_batch("321203", [
            envelope("S1", sequence=1),
            envelope("S2", revision=2, sequence=2, status="suspended"),
            envelope("S2", revision=1, sequence=3),  # older than the change before it in this batch
            bad,
            envelope("S1", sequence=1),  # the same change twice in one batch
        ])
        assert [(r["status"], r.get("version")) for r in first] == [
            ("created", 1), ("created", 1), ("stale", 1), ("rejected", None), ("duplicate", 1)]
        second = store.apply_batch("321203", [
            envelope("S1", sequence=1),
            envelope("S2", version=2, revision=1, sequence=4),
            envelope("S3", sequence=5),
            envelope("S3", sequence=6, status="revoked"),  # same rank, different status: a repair
            envelope("S2", revision=3, sequence=7),  # version 1 after version 2: stale
        ])
        assert [(r["status"], r["version"]) for r in second] == [
            ("duplicate", 1), ("updated", 2), ("created", 1), ("updated", 1), ("stale", 2)]
        held = [(r["identifier"], r["revision"], r["status"]) for r in store.records(ISSUER, "2018-03-01")]
        assert held == [(identifier("S1"), 1, "valid"), (identifier("S2", 2), 1, "valid"),
                        (identifier("S3"), 1, "revoked")]
        # Receipts count every delivery of a key; S1:1 came three times, S3:1 twice.
        assert store.stats() == {"licences": 3, "receipts": 6, "deliveries": 9, "redeliveries": 3,
                                 "applied": 4, "refused_stale": 2}
        assert store.applied_twice() == []
        assert store.regressions() == []
        assert [(r["idem_key"], r["held_version"], r["held_revision"]) for r in store.refused()] == [
            (f"{identifier('S2')}:1", 1, 2), (f"{identifier('S2')}:3", 2, 1)]
        # The digest tree reads what is held now.
        (root,) = RegistryTree(store.engine).children([Node()])
        assert root["children"] == [{"key": ISSUER, "count": 3,
                                     "digest": digest_of(sum(row_hash(*row) for row in held))}]
    finally:
        store.engine.dispose()


def test_values_holding_the_batch_separator_are_stored_as_sent(registry_db_url: str) -> None:
    """On PostgreSQL a batch travels as one string per column, its values joined by a control
    character: an idem_key or a status holding that character (or a comma, a quote, a backslash) is
    still stored, logged and answered exactly as sent, on both databases."""
    from city_registry.store import RegistryStore

    store = RegistryStore(registry_db_url)
    try:
        store.reset()
        odd = '\x1e,"{}\\'
        newer = {**envelope("Z1", revision=2, status=f"revoked{odd}"), "idem_key": f"new{odd}"}
        older = {**envelope("Z1", revision=1), "idem_key": f"old{odd}"}
        answers = store.apply_batch("321203", [newer, older])
        assert [(r["idem_key"], r["status"]) for r in answers] == [
            (f"new{odd}", "created"), (f"old{odd}", "stale")]
        assert [r["status"] for r in store.records(ISSUER, "2018-03-01")] == [f"revoked{odd}"]
        assert [r["idem_key"] for r in store.refused()] == [f"old{odd}"]
        assert store.apply_batch("321203", [newer])[0]["status"] == "duplicate"
        assert store.stats() == {"licences": 1, "receipts": 2, "deliveries": 3, "redeliveries": 1,
                                 "applied": 1, "refused_stale": 1}
    finally:
        store.engine.dispose()


# PostgreSQL only: a SQLite file has one writer, so the other process's transaction would block the
# read this test needs to interleave with.
@pytest.mark.parametrize("registry_db_url", ["postgresql"], indirect=True)
def test_a_change_stored_by_another_process_after_the_read_is_answered_from_the_database(
    registry_db_url: str,
) -> None:
    """Another process commits a change of the same licence between this batch's read and its write:
    the upsert refuses to go back, and the answer (stale, or duplicate when it is the same change) and
    the refused log follow what the database holds."""
    import threading

    import sqlalchemy as sa

    from city_registry.protocol import validate_record
    from city_registry.store import RegistryStore

    first, other = RegistryStore(registry_db_url), RegistryStore(registry_db_url)
    try:
        first.reset()
        rows = []
        for env in (envelope("R1", revision=3, sequence=1, status="revoked"), envelope("R3", sequence=2)):
            rec, _ = validate_record(env)
            assert rec is not None
            rows.append((rec["licence_key"], rec["identifier"], rec["idem_key"], rec["version"],
                         rec["revision"], rec["sequence"], "321203", rec["issuer_code"], rec["issue_day"],
                         rec["status"], "{}", "now"))
        answers: list[dict[str, Any]] = []
        with other.engine.connect() as conn:
            tx = conn.begin()
            other.write(conn, rows)  # not committed yet: the first store's read does not see it
            batch = [envelope("R1", revision=2, sequence=3, status="suspended"), envelope("R2", sequence=4),
                     envelope("R3", sequence=2)]
            worker = threading.Thread(target=lambda: answers.extend(first.apply_batch("321203", batch)))
            worker.start()
            waiting = 0
            deadline = time.monotonic() + 30
            while not waiting and time.monotonic() < deadline and worker.is_alive():
                with first.engine.connect() as probe:
                    waiting = probe.execute(sa.text(
                        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                        "AND wait_event_type = 'Lock'")).scalar_one()
                time.sleep(0.05)
            assert waiting == 1  # the first store read, then blocked on our uncommitted rows
            tx.commit()
        worker.join(30)
        assert [(a["status"], a["version"]) for a in answers] == [
            ("stale", 1), ("created", 1), ("duplicate", 1)]
        assert [(r["idem_key"], r["held_revision"]) for r in first.refused()] == [
            (f"{identifier('R1')}:2", 3)]
        held = [(r["identifier"], r["revision"], r["status"]) for r in first.records(ISSUER, "2018-03-01")]
        assert held == [(identifier("R1"), 3, "revoked"), (identifier("R2"), 1, "valid"),
                        (identifier("R3"), 1, "valid")]
        assert first.stats()["applied"] == 1  # only R2 was written by this batch
    finally:
        first.engine.dispose()
        other.engine.dispose()
