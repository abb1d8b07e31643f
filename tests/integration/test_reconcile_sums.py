"""The per-(issuer, day) sums the digest tree reads above the day stay equal to what they sum, on both
sides and both databases: the registry's (kept by triggers, city_registry.sums) through upserts,
amendments, revocations, refused stale writes, deletes and SQL by hand; the district's (kept in the
outbox transaction, licenses.recon_state) through issues, amendments, status changes and skipped
changes. A drift behind the district's back is what the full verification finds."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlmodel import Session

from city_registry import sums as registry_sums
from city_registry.__main__ import main as registry_main
from city_registry.store import RegistryStore
from city_registry.tree import Node, RegistryTree, digest_of, row_hash
from core.auth import SYSTEM
from core.db import table_of
from licenses import issuing, recon_state, reconcile, sync_admin
from licenses import reconcile_tree as district_tree
from licenses import reconcile_tree as tree
from licenses.models import LicenceOutbox
from tests.factories.sync import ISSUER, envelope, identifier, issue_many, make_issuer, registry_database

OUTBOX = table_of(LicenceOutbox)


@pytest.fixture(params=["sqlite", "postgresql"])
def registry_url(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[str]:
    with registry_database(request.param, tmp_path, "registry_sums") as url:
        yield url


def _registry_root_is_its_records(store: RegistryStore) -> None:
    """Nothing drifted (the full check finds no day to repair) and the root reads what is held."""
    assert store.verify_sums() == []
    with store.engine.connect() as conn:
        held = [tuple(r) for r in conn.exec_driver_sql(
            "SELECT identifier, revision, status FROM registry_licence")]
    (root,) = RegistryTree(store.engine).children([Node()])
    expected = [{"key": ISSUER, "count": len(held), "digest": digest_of(sum(row_hash(*r) for r in held))}]
    assert root["children"] == (expected if held else [])


def test_registry_day_sums_follow_every_kind_of_write(registry_url: str) -> None:
    store = RegistryStore(registry_url)
    try:
        store.reset()
        _registry_root_is_its_records(store)
        store.apply_batch("321203", [envelope("S1"), envelope("S2"), envelope("S3", issue_date="2018-03-02")])
        _registry_root_is_its_records(store)
        # A status change (revocation), an amendment moving the licence to another day, a stale write
        # refused, the same change again with another status (a repair).
        answers = store.apply_batch("321203", [
            envelope("S1", revision=2, sequence=2, status="revoked"),
            envelope("S2", version=2, sequence=3, issue_date="2018-04-01"),
            envelope("S1", sequence=4),
            envelope("S3", sequence=5, issue_date="2018-03-02", status="suspended"),
        ])
        assert [a["status"] for a in answers] == ["updated", "updated", "stale", "updated"]
        _registry_root_is_its_records(store)
        with store.engine.connect() as conn:
            days = registry_sums.day_sums(conn, None)
        assert {d: n for (_i, d), (n, _hi, _lo) in days.items()} == {
            "2018-03-01": 1, "2018-03-02": 1, "2018-04-01": 1}
        # SQL by hand, from a connection that has none of the registry's functions: deleted, rolled
        # back, added. The sums follow, and a tree request sees it.
        plain = sa.create_engine(registry_url)
        with plain.begin() as conn:
            conn.execute(sa.text("DELETE FROM registry_licence WHERE licence_key = :k"),
                         {"k": identifier("S2", 2).rsplit(".", 2)[0]})
            conn.execute(sa.text("UPDATE registry_licence SET revision = 1, status = 'valid' "
                                 "WHERE identifier = :i"), {"i": identifier("S1")})
            conn.execute(sa.text(
                "INSERT INTO registry_licence SELECT licence_key || 'X', identifier || 'X', idem_key, "
                "version, revision, sequence, client_id, issuer_code, issue_day, status, record, updated_at "
                "FROM registry_licence WHERE identifier = :i"), {"i": identifier("S3")})
        plain.dispose()
        _registry_root_is_its_records(store)
        store.reset()
        _registry_root_is_its_records(store)
    finally:
        store.engine.dispose()


def test_registry_full_check_repairs_sums_edited_behind_the_triggers(registry_url: str) -> None:
    store = RegistryStore(registry_url)
    try:
        store.reset()
        store.apply_batch("321203", [envelope("S1"), envelope("S2", issue_date="2018-03-05")])
        with store.engine.begin() as conn:
            registry_sums.fold(conn)
            conn.exec_driver_sql("UPDATE registry_day_sum SET n = n + 1 WHERE day = '2018-03-05'")
        assert store.verify_sums() == [
            {"issuer_code": ISSUER, "day": "2018-03-05", "kept": [2], "actual": [1]}]
        _registry_root_is_its_records(store)
    finally:
        store.engine.dispose()


def test_registry_verify_sums_command_repairs_and_exits_1_on_drift(
        registry_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    """The operator's periodic check (`python -m city_registry verify-sums`): 0 when the sums hold, 1
    with the day listed when they had drifted, and repaired (a second run finds nothing)."""
    store = RegistryStore(registry_url)
    try:
        store.reset()
        store.apply_batch("321203", [envelope("S1"), envelope("S2", issue_date="2018-03-05")])
        assert registry_main(["verify-sums", "--database-url", registry_url]) == 0
        assert capsys.readouterr().out.strip().endswith("无不一致")
        with store.engine.begin() as conn:
            registry_sums.fold(conn)
            conn.exec_driver_sql("UPDATE registry_day_sum SET n = n + 3 WHERE day = '2018-03-05'")
        assert registry_main(["verify-sums", "--database-url", registry_url]) == 1
        out = capsys.readouterr().out
        assert f"已修复 {ISSUER} 2018-03-05：汇总记为 4 条，实有 1 条" in out
        assert "1 天不一致，已修复" in out
        assert registry_main(["verify-sums", "--database-url", registry_url]) == 0
    finally:
        store.engine.dispose()


def _district_baseline_is_the_outbox(session: Session) -> None:
    """The kept sums equal those of each licence's latest change as the groups method computes it
    (licenses.reconcile.expected_state, an independent pass in Python), and a rebuild finds no drift."""
    expected: dict[tuple[str, str], tuple[int, int]] = {}
    for (issuer, day), licences in reconcile.expected_state(session).items():
        n = len(licences)
        total = sum(tree.row_hash(e.identifier, e.revision, e.licence_status)
                    for e in licences.values())
        expected[(issuer, day)] = (n, total % (1 << 64))
    kept = {k: (n, int(district_tree.digest_of_halves(hi, lo), 16))
            for k, (n, hi, lo) in recon_state.day_sums(session).items()}
    assert kept == expected
    assert recon_state.rebuild(session) == recon_state.Drift(0, 0)


def test_district_day_sums_follow_issues_amendments_status_changes_and_skips(any_session: Session) -> None:
    issuer = make_issuer(any_session)
    ids = issue_many(any_session, issuer, 4)
    _district_baseline_is_the_outbox(any_session)
    amended = issuing.amend_licence(any_session, issuer.actor, ids[0],
                                    {"issue_date": date(2019, 5, 6), "valid_from": date(2019, 5, 6)})
    _district_baseline_is_the_outbox(any_session)
    assert (issuer.department.uscc, "2019-05-06") in recon_state.day_sums(any_session)
    issuing.suspend_licence(any_session, issuer.actor, ids[1], "整改期间暂停")
    issuing.revoke_licence(any_session, issuer.actor, ids[2], "吊销", category="penalty")
    _district_baseline_is_the_outbox(any_session)
    # The amendment's outbox row fails and is skipped: the licence falls back to its previous change.
    latest = any_session.execute(sa.select(OUTBOX.c.id).where(
        OUTBOX.c.licence_id == amended.id).order_by(OUTBOX.c.id.desc())).scalars().first()
    any_session.execute(OUTBOX.update().where(OUTBOX.c.id == latest).values(status="failed"))
    assert sync_admin.skip_dead_letters(any_session, [latest], SYSTEM, "市级库不再需要此版本") == 1
    _district_baseline_is_the_outbox(any_session)
    assert (issuer.department.uscc, "2019-05-06") not in recon_state.day_sums(any_session)


def test_district_drift_behind_the_baseline_is_found_by_the_full_verification(any_session: Session) -> None:
    issuer = make_issuer(any_session)
    issue_many(any_session, issuer, 3)
    before = recon_state.day_sums(any_session)
    # An outbox row edited by hand (a partial restore, say): the writers never saw it.
    row_id = any_session.execute(sa.select(sa.func.max(OUTBOX.c.id))).scalar_one()
    row = any_session.execute(sa.select(OUTBOX).where(OUTBOX.c.id == row_id)).one()
    any_session.execute(OUTBOX.update().where(OUTBOX.c.id == row_id).values(
        payload={**row.payload, "status": "revoked"}, issue_day=row.issue_day + timedelta(days=1)))
    assert recon_state.day_sums(any_session) == before  # the kept sums still say what was written
    assert recon_state.rebuild(any_session) == recon_state.Drift(1, 2)  # one licence, its two days
    _district_baseline_is_the_outbox(any_session)


def test_district_tree_levels_add_up_to_the_day_sums(any_session: Session) -> None:
    """The district's grouped queries below the day (one per level, on both databases) give each day's
    bucket children and rows, and they add up to the day sums the levels above read."""
    issuer = make_issuer(any_session)
    issue_many(any_session, issuer, 40)
    sums = recon_state.day_sums(any_session, issuer.department.uscc)
    ours = tree.Expected(any_session, sums)
    (root,) = ours.children_many([tree.Node()])
    assert root[issuer.department.uscc].count == 40
    day_nodes = [tree.Node(i, d) for i, d in sorted(sums)]
    for node, children, rows in zip(day_nodes, ours.children_many(day_nodes), ours.rows_many(day_nodes),
                                     strict=True):
        n, hi, lo = sums[(str(node.issuer_code), node.day)]
        assert sum(c.count for c in children.values()) == n == len(rows)
        total = sum(int(c.digest, 16) for c in children.values()) % (1 << 64)
        assert f"{total:016x}" == district_tree.digest_of_halves(hi, lo)
        buckets = [node.child(k) for k in sorted(children)]
        listed = ours.rows_many(buckets)
        assert [len(r) for r in listed] == [children[b.bucket].count for b in buckets]
        assert {r.licence_key for part in listed for r in part} == {r.licence_key for r in rows}
