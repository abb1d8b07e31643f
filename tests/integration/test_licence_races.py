"""Concurrent licence requests: one status change of a licence wins, the others get 409 (never a 500 on
the outbox's idempotency key), and identical issues with one 证照编号 give one licence and 409s naming
``number``. Real threads on a committed database, SQLite and PostgreSQL (tests/factories/races.py).

Before the fix: three identical suspends gave 200, 500, 500 on SQLite (SELECT ... FOR UPDATE is a no-op
there; UNIQUE licence_outbox.idem_key), and three identical issues gave three 201s with one number."""

from __future__ import annotations

import itertools
import os
import threading
from collections import Counter
from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa
from sqlmodel import col, select

from core.audit import AuditLog
from core.db import Database, table_of
from core.errors import Conflict
from licenses import bulk, issuing
from licenses.models import Licence, LicenceOutbox, LicenceType
from licenses.outbox import outbox_row
from tests.factories.licences import PERSON_TYPE, Staff, id_number, make_staff, make_types, person_licence
from tests.factories.races import Rendezvous, auth, hold_after, hold_before, race, race_app, race_db

__all__ = ["race_app", "race_db"]  # fixtures

_n = itertools.count(1)
BODY = {
    "type_code": PERSON_TYPE,
    "holder_name": "张三",
    "face": {"gender": "男", "work_type": "建筑电工"},
}


def _clerk(db: Database) -> Staff:
    """A department of its own and its licence clerk, committed (the types once per database)."""
    n = next(_n)
    with db.transaction() as session:
        if session.exec(select(LicenceType).where(LicenceType.code == PERSON_TYPE)).first() is None:
            make_types(session)
        return make_staff(session, f"高港区并发测试局{n}", f"MB{os.getpid() % 1000:03d}{n:03d}", f"race{n}")


def _issued(db: Database, clerk: Staff, number: str | None = None) -> int:
    with db.transaction() as session:
        data = {**BODY, "holder_code": id_number(next(_n))} | ({"number": number} if number else {})
        return int(issuing.issue_licence(session, clerk.actor, data).id or 0)


def _conflict(answer: Any, field: str | None = None) -> None:
    assert answer.status == 409, answer
    assert answer.body["code"] == "conflict"
    assert set(answer.body) == {"code", "message", "details"}
    assert any("\u4e00" <= ch <= "\u9fff" for ch in answer.body["message"]), answer.body
    if field is not None:
        assert field in answer.body["details"], answer.body


def test_three_identical_suspends_give_one_200_and_two_409s(
    race_db: Database, race_app: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    clerk = _clerk(race_db)
    licence_id = _issued(race_db, clerk)
    hold_after(monkeypatch, issuing, "_locked", Rendezvous(3))  # all three have read "valid"
    body = {"reason": "涉嫌违法经营，暂停使用", "category": "under_investigation"}
    answers = race(race_app, [
        lambda c: c.post(f"/api/v1/licences/{licence_id}/suspend", json=body, headers=auth(clerk.token))
        for _ in range(3)
    ])
    assert sorted(a.status for a in answers) == [200, 409, 409], answers
    for answer in answers:
        if answer.status != 200:
            _conflict(answer)
    with race_db.session() as session:
        licence = session.get(Licence, licence_id)
        assert licence is not None
        assert (licence.status, licence.revision) == ("suspended", 2)
        outbox = session.exec(
            select(LicenceOutbox.operation).where(LicenceOutbox.licence_id == licence_id)
        ).all()
        assert sorted(outbox) == ["issue", "suspend"]
        audited = session.exec(
            select(AuditLog.action).where(
                AuditLog.entity_type == "licence", AuditLog.entity_id == str(licence_id)
            )
        ).all()
        assert Counter(audited)["licence.suspend"] == 1


def test_an_amendment_and_a_suspension_at_once_one_wins(
    race_db: Database, race_app: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    clerk = _clerk(race_db)
    licence_id = _issued(race_db, clerk)
    hold_after(monkeypatch, issuing, "_locked", Rendezvous(2))
    amend, suspend = race(race_app, [
        lambda c: c.post(
            f"/api/v1/licences/{licence_id}/amend",
            json={"holder_name": "张三丰", "reason": "更正姓名"},
            headers=auth(clerk.token),
        ),
        lambda c: c.post(
            f"/api/v1/licences/{licence_id}/suspend",
            json={"reason": "涉嫌违法经营，暂停使用", "category": "under_investigation"},
            headers=auth(clerk.token),
        ),
    ])
    assert (amend.status, suspend.status) in ((201, 409), (409, 200)), (amend, suspend)
    _conflict(amend if amend.status == 409 else suspend)
    with race_db.session() as session:
        outbox = session.exec(select(LicenceOutbox.idem_key)).all()
        assert len(outbox) == len(set(outbox))
        old = session.get(Licence, licence_id)
        assert old is not None
        assert old.status == ("suspended" if suspend.status == 200 else "superseded")


def test_three_identical_issues_with_one_number_give_one_licence(
    race_db: Database, race_app: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    clerk = _clerk(race_db)
    number = f"高港建证字第{next(_n):05d}号"
    # Each waits with its licence written, not committed: the others check the number meanwhile.
    hold_before(monkeypatch, issuing, "record", Rendezvous(3))
    body = {**BODY, "holder_code": id_number(next(_n)), "number": number}
    answers = race(race_app, [
        lambda c: c.post("/api/v1/licences", json=body, headers=auth(clerk.token)) for _ in range(3)
    ])
    assert sorted(a.status for a in answers) == [201, 409, 409], answers
    for answer in answers:
        if answer.status == 409:
            _conflict(answer, "number")
    with race_db.session() as session:
        rows = session.exec(
            select(Licence.id).where(
                Licence.number == number, col(Licence.issuer_department_id) == clerk.department.id
            )
        ).all()
        assert len(rows) == 1
        assert len(session.exec(select(LicenceOutbox).where(LicenceOutbox.licence_id == rows[0])).all()) == 1


def test_an_outbox_key_another_change_took_is_a_409_not_a_500(session: Any) -> None:
    """The last guard: should the outbox already hold this change's idempotency key
    (identifier:revision, unique), the status change is a Conflict, not an IntegrityError (a 500)."""
    make_types(session)
    clerk = make_staff(session, "高港区行政审批局", "MB158001", "clerk_a")
    licence = person_licence(session, clerk, 1)
    columns = {c.key: getattr(licence, c.key) for c in sa.inspect(Licence).mapper.column_attrs}
    taken = outbox_row(SimpleNamespace(**{**columns, "revision": licence.revision + 1}), "suspend")
    session.execute(sa.insert(table_of(LicenceOutbox)), [taken])
    with pytest.raises(Conflict) as caught:
        issuing.suspend_licence(session, clerk.actor, licence.id, "涉嫌违法经营，暂停使用")
    assert caught.value.status == 409


@pytest.mark.parametrize("same_licence", [False, True], ids=["another-licence", "the-same-licence"])
def test_two_imports_racing_on_one_number_report_it_and_never_fail(
    race_db: Database, monkeypatch: pytest.MonkeyPatch, same_licence: bool
) -> None:
    """Two `flask licences import` runs of files sharing a 证照编号, both past the checks before either
    inserts: the one that inserts second waits for the first's commit (PostgreSQL: the unique index;
    SQLite: the write lock), then treats the shared row as if the other's licence had been there
    before it began: another licence with the number (issued in another year, so another derived
    流水号) is reported as in use, the same licence (same year, same derived identifier) is skipped as
    on a re-run; the rest is imported. Before the fix it failed its whole chunk with an IntegrityError.
    """
    clerk = _clerk(race_db)
    shared = f"IMP-{next(_n)}"

    def rows(tag: str, year: int) -> list[tuple[int, dict[str, Any]]]:
        return [
            (line, {**BODY, "holder_code": id_number(next(_n)), "number": number, "issue_date": day})
            for line, number, day in (
                (2, f"{tag}-{next(_n)}", "2020-01-02"),
                (3, shared, f"{year}-03-01"),
                (4, f"{tag}-{next(_n)}", "2020-01-02"),
            )
        ]

    files = [rows("A", 2020), rows("B", 2020 if same_licence else 2021)]
    checked = Rendezvous(2)
    hold_after(monkeypatch, bulk, "numbers_in_use", checked)  # both have checked the numbers
    results: list[bulk.BulkResult | None] = [None, None]
    failures: list[BaseException] = []

    def run(i: int) -> None:
        try:
            results[i] = bulk.run_bulk(
                race_db, clerk.actor, clerk.department.id or 0, files[i], source=f"race-{i}"
            )
        except BaseException as exc:  # surfaced below: a thread cannot fail the test itself
            failures.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not failures, failures
    assert checked.met  # neither inserted before the other had checked
    done = [r for r in results if r is not None]
    assert sorted(r.inserted for r in done) == [2, 3], done
    [second] = [r for r in done if r.inserted == 2]
    if same_licence:
        assert (second.skipped, second.errors) == (1, []), second
    else:
        assert second.errors == [(3, f"number: 证照编号 {shared} 已被本部门另一张同类证照使用")], second
    with race_db.session() as session:
        holders = session.exec(
            select(Licence.id).where(
                Licence.number == shared, col(Licence.issuer_department_id) == clerk.department.id
            )
        ).all()
        assert len(holders) == 1
