"""Concurrent state changes of one implementation entry (and of its revision): exactly one wins, the
others get 409 with the platform's error shape, and the entry, its versions and the audit log hold only
the winner's change. Real threads on a committed database, SQLite and PostgreSQL (tests/factories/races.py).

Before the fix, approve and reject of one submitted entry both succeeded (published, yet carrying the
rejection reason; two versions numbered alike; both audited), and three approves gave 200, 500, 500
(IntegrityError on entry_version)."""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from typing import Any

import pytest
from sqlmodel import col, select

from catalog import entries as entry_services
from catalog import revisions
from catalog.models import EntryVersion, ImplementationEntry
from catalog.revision_models import EntryRevision
from core.audit import AuditLog
from core.auth import SYSTEM, Role
from core.db import Database
from core.errors import Conflict, NotFound
from tests.factories.catalog import COMPLETE_FIELDS, make_department, make_item, make_user, published_entry
from tests.factories.races import Rendezvous, auth, hold_after, race, race_app, race_db

__all__ = ["race_app", "race_db"]  # fixtures


def _submitted_entry(db: Database) -> tuple[int, str]:
    """A submitted entry (by the system, so four-eyes review lets the reviewer approve it) and a token
    of its department's reviewer, committed."""
    with db.transaction() as session:
        dept = make_department(session, f"区并发测试局{uuid.uuid4().hex[:8]}")
        item = make_item(session, name="并发审核测试事项")
        entry = entry_services.claim_item(session, SYSTEM, item_id=item.id, department_id=dept.id)
        entry_services.update_entry(session, SYSTEM, entry.id, fields=COMPLETE_FIELDS)
        entry_services.submit_entry(session, SYSTEM, entry.id)
        _user, _reviewer, token = make_user(session, Role.DEPT_REVIEWER, department=dept)
        return int(entry.id), token


def _audited(db: Database, entry_id: int) -> Counter[str]:
    with db.session() as session:
        actions = session.exec(
            select(AuditLog.action).where(
                AuditLog.entity_type == "implementation_entry", AuditLog.entity_id == str(entry_id)
            )
        ).all()
    return Counter(actions)


def _versions(db: Database, entry_id: int) -> list[tuple[int, str]]:
    with db.session() as session:
        rows = session.exec(
            select(EntryVersion).where(EntryVersion.entry_id == entry_id).order_by(col(EntryVersion.id))
        ).all()
        return [(v.version, v.status) for v in rows]


def _assert_conflict(body: Any) -> None:
    assert body["code"] == "conflict", body
    assert set(body) == {"code", "message", "details"}
    assert any("\u4e00" <= ch <= "\u9fff" for ch in body["message"]), body  # Simplified Chinese


def test_approve_and_reject_at_the_same_moment_one_wins_and_the_entry_is_consistent(
    race_db: Database, race_app: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    entry_id, token = _submitted_entry(race_db)
    hold_after(monkeypatch, entry_services, "get_entry", Rendezvous(2))  # both have read "submitted"
    approve, reject = race(race_app, [
        lambda c: c.post(f"/api/v1/entries/{entry_id}/approve", headers=auth(token)),
        lambda c: c.post(
            f"/api/v1/entries/{entry_id}/reject", json={"reason": "材料不全"}, headers=auth(token)
        ),
    ])
    assert sorted([approve.status, reject.status]) == [200, 409], (approve, reject)
    loser = approve if approve.status == 409 else reject
    _assert_conflict(loser.body)
    with race_db.session() as session:
        entry = session.get(ImplementationEntry, entry_id)
        assert entry is not None
        if approve.status == 200:
            assert (entry.status, entry.reject_reason) == ("published", None)
        else:
            assert (entry.status, entry.reject_reason) == ("draft", "材料不全")
    versions = _versions(race_db, entry_id)
    assert len({v for v, _s in versions}) == len(versions), versions  # no version number twice
    audited = _audited(race_db, entry_id)
    assert audited["entry.approve"] + audited["entry.reject"] == 1, audited


def test_three_identical_approvals_give_one_200_and_two_409s(
    race_db: Database, race_app: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    entry_id, token = _submitted_entry(race_db)
    hold_after(monkeypatch, entry_services, "get_entry", Rendezvous(3))
    answers = race(race_app, [
        lambda c: c.post(f"/api/v1/entries/{entry_id}/approve", headers=auth(token)) for _ in range(3)
    ])
    assert sorted(a.status for a in answers) == [200, 409, 409], answers
    for answer in answers:
        if answer.status == 409:
            _assert_conflict(answer.body)
    versions = _versions(race_db, entry_id)
    assert versions.count((versions[-1][0], "published")) == 1
    assert len({v for v, _s in versions}) == len(versions), versions
    assert _audited(race_db, entry_id)["entry.approve"] == 1


def test_a_draft_edited_while_it_is_submitted_is_refused_not_submitted_unseen(
    race_db: Database, race_app: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An edit that read the draft before a concurrent submit must not change the submitted entry."""
    with race_db.transaction() as session:
        dept = make_department(session, f"区并发编辑局{uuid.uuid4().hex[:8]}")
        item = make_item(session, name="并发编辑测试事项")
        entry = entry_services.claim_item(session, SYSTEM, item_id=item.id, department_id=dept.id)
        entry_services.update_entry(session, SYSTEM, entry.id, fields=COMPLETE_FIELDS)
        _user, _editor, token = make_user(session, Role.DEPT_EDITOR, department=dept)
        entry_id = int(entry.id)
    hold_after(monkeypatch, entry_services, "get_entry", Rendezvous(2))
    submit, edit = race(race_app, [
        lambda c: c.post(f"/api/v1/entries/{entry_id}/submit", headers=auth(token)),
        lambda c: c.patch(
            f"/api/v1/entries/{entry_id}", json={"promise_days": 3}, headers=auth(token)
        ),
    ])
    # Either the edit is refused (409), or (PostgreSQL, where the edit may take the entry's lock first)
    # it is made before the submission, which then submits the edited entry. Never an edit after it.
    assert {submit.status, edit.status} <= {200, 409}, (submit, edit)
    assert 200 in (submit.status, edit.status), (submit, edit)
    for answer in (submit, edit):
        if answer.status == 409:
            _assert_conflict(answer.body)
    with race_db.session() as session:
        stored = session.get(ImplementationEntry, entry_id)
        assert stored is not None
        expected = 3 if edit.status == 200 else COMPLETE_FIELDS["promise_days"]
        assert (stored.status, stored.promise_days) == (
            "submitted" if submit.status == 200 else "draft", expected
        )
        last = session.exec(
            select(EntryVersion)
            .where(EntryVersion.entry_id == entry_id)
            .order_by(col(EntryVersion.id).desc())
        ).first()
        assert last is not None
        assert (last.version, last.status, last.snapshot["promise_days"]) == (
            stored.version, stored.status, stored.promise_days
        )  # the last version holds what is stored: nothing was written after it
    versions = _versions(race_db, entry_id)
    assert len({v for v, _s in versions}) == len(versions), versions


def test_approve_and_reject_of_one_submitted_revision_at_once_one_wins(
    race_db: Database, race_app: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    with race_db.transaction() as session:
        dept = make_department(session, f"区并发修订局{uuid.uuid4().hex[:8]}")
        entry = published_entry(session, dept, make_item(session, name="并发修订测试事项"))
        revisions.open_revision(session, SYSTEM, entry.id, reason="更新咨询电话")
        revisions.update_revision(session, SYSTEM, entry.id, fields={"phone": "0523-86900009"})
        revisions.submit_revision(session, SYSTEM, entry.id)
        _user, _reviewer, token = make_user(session, Role.DEPT_REVIEWER, department=dept)
        entry_id, version = int(entry.id), entry.version
    hold_after(monkeypatch, revisions, "_open_or_conflict", Rendezvous(2))  # both have read "submitted"
    approve, reject = race(race_app, [
        lambda c: c.post(f"/api/v1/entries/{entry_id}/revision/approve", headers=auth(token)),
        lambda c: c.post(
            f"/api/v1/entries/{entry_id}/revision/reject", json={"reason": "号码有误"}, headers=auth(token)
        ),
    ])
    # The loser: 409, also a rejection that PostgreSQL runs after the approval, under the entry's lock
    # (it finds the revision approved, no longer open: before the fix, a 404).
    assert (approve.status, reject.status) in ((200, 409), (409, 200)), (approve, reject)
    _assert_conflict((approve if approve.status != 200 else reject).body)
    with race_db.session() as session:
        stored = session.get(ImplementationEntry, entry_id)
        revision = session.exec(select(EntryRevision).where(EntryRevision.entry_id == entry_id)).one()
        assert stored is not None
        if approve.status == 200:
            expected = ("approved", "0523-86900009", version + 1)
        else:
            expected = ("rejected", COMPLETE_FIELDS["phone"], version)
        assert (revision.status, stored.phone, stored.version) == expected
    audited = _audited(race_db, entry_id)
    assert audited["entry.revision.approve"] + audited["entry.revision.reject"] == 1, audited


def _submitted_revision(db: Database, name: str) -> tuple[int, int, str]:
    """A published entry with a submitted revision (by the system) and a token of its reviewer."""
    with db.transaction() as session:
        dept = make_department(session, f"区{name}局{uuid.uuid4().hex[:8]}")
        entry = published_entry(session, dept, make_item(session, name=f"{name}测试事项"))
        revisions.open_revision(session, SYSTEM, entry.id, reason="更新咨询电话")
        revisions.update_revision(session, SYSTEM, entry.id, fields={"phone": "0523-86900009"})
        revisions.submit_revision(session, SYSTEM, entry.id)
        _user, _reviewer, token = make_user(session, Role.DEPT_REVIEWER, department=dept)
        return int(entry.id), entry.version, token


def test_a_rejection_waiting_behind_an_approval_that_commits_first_is_a_409_not_a_404(
    race_db: Database, race_app: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The reviewer rejects while another approves: the approval holds the entry (PostgreSQL: its row
    lock, which the rejection queues on) and commits first. The rejection must say the revision was
    already handled (409, in Chinese), not that there is none (404)."""
    entry_id, version, token = _submitted_revision(race_db, "先通过后退回")
    approval_holds_the_entry = threading.Event()
    original = revisions._open_or_conflict

    def approval_first(session: Any, entry: Any) -> Any:
        revision = original(session, entry)
        if not approval_holds_the_entry.is_set():  # the approval: it holds the entry's lock here
            approval_holds_the_entry.set()
            time.sleep(0.5)  # the rejection now waits for that lock (PostgreSQL)
        return revision

    monkeypatch.setattr(revisions, "_open_or_conflict", approval_first)

    def reject_after(client: Any) -> Any:
        assert approval_holds_the_entry.wait(timeout=30)
        return client.post(
            f"/api/v1/entries/{entry_id}/revision/reject", json={"reason": "号码有误"}, headers=auth(token)
        )

    approve, reject = race(race_app, [
        lambda c: c.post(f"/api/v1/entries/{entry_id}/revision/approve", headers=auth(token)),
        reject_after,
    ])
    # SQLite has no row lock: the rejection may read the revision while it is still submitted, and
    # then one of the two compare-and-sets loses. Either way the loser is a 409.
    assert (approve.status, reject.status) in ((200, 409), (409, 200)), (approve, reject)
    if race_db.dialect == "postgresql":
        assert (approve.status, reject.status) == (200, 409), (approve, reject)
    loser = reject if approve.status == 200 else approve
    _assert_conflict(loser.body)
    if reject.status == 409:
        assert reject.body["message"] == "该修订已发布，当前没有待处理的修订，请刷新后查看"
    with race_db.session() as session:
        stored = session.get(ImplementationEntry, entry_id)
        revision = session.exec(select(EntryRevision).where(EntryRevision.entry_id == entry_id)).one()
        assert stored is not None
        if approve.status == 200:
            expected = ("approved", None, version + 1)
            assert (revision.status, revision.reject_reason, stored.version) == expected
    audited = _audited(race_db, entry_id)
    assert audited["entry.revision.approve"] + audited["entry.revision.reject"] == 1, audited


def test_acting_on_a_revision_that_was_handled_is_a_409_naming_what_happened(session: Any) -> None:
    """The same answer when the second request comes later (a reviewer's page opened before)."""
    dept = make_department(session, "区修订已处理测试局")
    entry = published_entry(session, dept, make_item(session, name="修订已处理测试事项"))
    with pytest.raises(NotFound):  # never revised: there is nothing to act on
        revisions.reject_revision(session, SYSTEM, entry.id, reason="号码有误")
    revisions.open_revision(session, SYSTEM, entry.id, reason="更新咨询电话")
    revisions.update_revision(session, SYSTEM, entry.id, fields={"phone": "0523-86900009"})
    revisions.submit_revision(session, SYSTEM, entry.id)
    revisions.approve_revision(session, SYSTEM, entry.id)
    for act in (
        lambda: revisions.reject_revision(session, SYSTEM, entry.id, reason="号码有误"),
        lambda: revisions.approve_revision(session, SYSTEM, entry.id),
        lambda: revisions.submit_revision(session, SYSTEM, entry.id),
        lambda: revisions.update_revision(session, SYSTEM, entry.id, fields={"phone": "0523-86900001"}),
    ):
        with pytest.raises(Conflict) as caught:
            act()
        assert caught.value.message == "该修订已发布，当前没有待处理的修订，请刷新后查看"
        assert caught.value.details == {"status": ["approved"]}
    revisions.open_revision(session, SYSTEM, entry.id, reason="再次更新")
    revisions.withdraw_revision(session, SYSTEM, entry.id)
    with pytest.raises(Conflict) as caught:
        revisions.reject_revision(session, SYSTEM, entry.id, reason="号码有误")
    assert caught.value.message == "该修订已撤回，当前没有待处理的修订，请刷新后查看"


def test_a_version_number_another_writer_took_is_a_409_not_a_500(session: Any) -> None:
    """The last guard: should a concurrent writer still have stored the version this change makes
    (entry_version is unique per entry, version and status), the change is a Conflict, not an
    IntegrityError (a 500)."""
    dept = make_department(session, "区版本冲突测试局")
    item = make_item(session, name="版本冲突测试事项")
    entry = entry_services.claim_item(session, SYSTEM, item_id=item.id, department_id=dept.id)
    session.add(EntryVersion(entry_id=entry.id, version=entry.version + 1, status="draft", snapshot={}))
    session.flush()
    with pytest.raises(Conflict) as caught:
        entry_services.update_entry(session, SYSTEM, entry.id, fields={"phone": "0523-86900001"})
    assert caught.value.status == 409
