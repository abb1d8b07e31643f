"""Licence services on the embedded SQLite and on PostgreSQL: issue, amend, status changes, outbox, audit."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import select

from core.audit import AuditLog, verify_chain
from core.auth import SYSTEM
from core.errors import Conflict, Forbidden, Invalid
from demo import synthetic_licences
from licenses import authorisations, bulk, issuing, queries, verification
from licenses import types as licence_types
from licenses.identifiers import parse_identifier
from licenses.models import Licence, LicenceOutbox, LicenceTypeEntry
from tests.factories.licences import (
    ORG_TYPE,
    PERSON_TYPE,
    id_number,
    make_staff,
    make_types,
    org_licence,
    person_licence,
)


@pytest.fixture(scope="session")
def postgresql_database(pg_database):
    """conftest's any_session asks for "<param>_database"; its PostgreSQL fixture is pg_database."""
    return pg_database


@pytest.fixture
def setup(any_session):
    make_types(any_session)
    a = make_staff(any_session, "高港区行政审批局", "MB158001", "clerk_a")
    b = make_staff(any_session, "高港区民政局", "01414003", "clerk_b")
    return any_session, a, b


def outbox_for(session, licence_id):
    return list(
        session.exec(
            select(LicenceOutbox).where(LicenceOutbox.licence_id == licence_id).order_by(LicenceOutbox.id)
        ).all()
    )


def test_issue_assigns_a_valid_identifier_of_the_issuer_and_writes_outbox_and_audit(setup):
    session, a, _b = setup
    licence = person_licence(session, a)
    ident = parse_identifier(licence.identifier)
    assert (ident.type_code, ident.issuer_code, ident.version) == (PERSON_TYPE, a.department.uscc, 1)
    [row] = outbox_for(session, licence.id)
    assert row.operation == "issue"
    assert row.status == "pending"
    assert row.version == 1
    assert row.idem_key == f"{licence.identifier}:1"
    assert row.issue_day == licence.issue_date
    assert row.issuer_code == a.department.uscc
    payload = row.payload
    assert payload["certificate_identifier"] == licence.identifier
    assert payload["holder_code"] == licence.holder_code
    assert payload["holder_code_type"] == "111"
    assert payload["issue_date"] == licence.issue_date.isoformat()
    assert len(payload["area_code"]) == 6
    assert set(payload) >= {
        "certificate_type_code",
        "certificate_type_name",
        "certificate_name",
        "certificate_number",
        "holder_name",
        "issuer_name",
        "issuer_code",
        "valid_from",
        "valid_to",
        "status",
        "version",
        "operation",
    }
    audit = session.exec(select(AuditLog).where(AuditLog.action == "licence.issue")).all()
    assert [x.entity_id for x in audit] == [str(licence.id)]
    assert "********" in audit[0].new["holder_code"]  # the audit log keeps holder data masked


def test_outbox_row_is_part_of_the_licence_transaction(setup):
    session, a, _b = setup
    before = len(session.exec(select(LicenceOutbox)).all())
    nested = session.begin_nested()
    person_licence(session, a)
    nested.rollback()
    assert len(session.exec(select(LicenceOutbox)).all()) == before
    assert session.exec(select(Licence)).all() == []


def test_failed_issue_writes_nothing(setup):
    session, a, _b = setup
    with pytest.raises(Invalid):
        person_licence(session, a, face={"gender": "男", "colour": "red"})
    assert session.exec(select(Licence)).all() == []
    assert session.exec(select(LicenceOutbox)).all() == []


def test_amend_makes_a_new_version_and_keeps_the_old_one(setup):
    session, a, _b = setup
    old = org_licence(session, a)
    new = issuing.amend_licence(
        session, a.actor, old.id, {"holder_name": "泰州市高港区港城食品股份有限公司"}, reason="名称变更"
    )
    assert new.version == 2
    assert new.previous_id == old.id
    assert new.serial == old.serial
    assert parse_identifier(new.identifier).version == 2
    session.refresh(old)
    assert old.status == "superseded"
    assert not old.is_current
    assert old.holder_name.endswith("有限公司")
    ops = [
        (r.identifier, r.operation, r.payload["status"])
        for r in session.exec(select(LicenceOutbox).order_by(LicenceOutbox.id)).all()
    ]
    assert ops == [
        (old.identifier, "issue", "valid"),
        (old.identifier, "amend", "superseded"),
        (new.identifier, "amend", "valid"),
    ]
    assert [v.version for v in queries.licence_versions(session, new)] == [2, 1]
    with pytest.raises(Conflict):
        issuing.amend_licence(session, a.actor, old.id, {"holder_name": "再改"})


def test_amend_cannot_change_the_holder_code_or_revive_a_revoked_licence(setup):
    session, a, _b = setup
    licence = person_licence(session, a)
    with pytest.raises(Invalid):
        issuing.amend_licence(session, a.actor, licence.id, {"holder_code": id_number(7)})
    issuing.revoke_licence(session, a.actor, licence.id, "当事人申请注销")
    with pytest.raises(Conflict, match="已吊销"):
        issuing.amend_licence(session, a.actor, licence.id, {"holder_name": "李四"})


def test_suspend_resume_revoke_need_reasons_and_each_writes_one_outbox_record(setup):
    session, a, _b = setup
    licence = person_licence(session, a)
    with pytest.raises(Invalid):
        issuing.suspend_licence(session, a.actor, licence.id, "  ")
    issuing.suspend_licence(session, a.actor, licence.id, "涉嫌违规，暂停使用")
    with pytest.raises(Conflict):
        issuing.suspend_licence(session, a.actor, licence.id, "再次暂停")
    issuing.resume_licence(session, a.actor, licence.id)
    with pytest.raises(Invalid):
        issuing.revoke_licence(session, a.actor, licence.id, None)
    issuing.revoke_licence(session, a.actor, licence.id, "证照注销")
    with pytest.raises(Conflict):
        issuing.resume_licence(session, a.actor, licence.id)
    rows = outbox_for(session, licence.id)
    assert [(r.operation, r.version) for r in rows] == [
        ("issue", 1),
        ("suspend", 2),
        ("resume", 3),
        ("revoke", 4),
    ]
    assert len({r.idem_key for r in rows}) == 4
    actions = [
        x.action
        for x in session.exec(
            select(AuditLog)
            .where(AuditLog.entity_type == "licence", AuditLog.entity_id == str(licence.id))
            .order_by(AuditLog.id)
        ).all()
    ]
    assert actions == ["licence.issue", "licence.suspend", "licence.resume", "licence.revoke"]
    assert verify_chain(session)[0]


def test_another_department_cannot_change_or_read_a_licence(setup):
    session, a, b = setup
    licence = person_licence(session, a)
    for call in (
        lambda: issuing.amend_licence(session, b.actor, licence.id, {"holder_name": "王五"}),
        lambda: issuing.suspend_licence(session, b.actor, licence.id, "x"),
        lambda: issuing.revoke_licence(session, b.actor, licence.id, "x"),
        lambda: queries.read_full_licence(session, b.actor, licence.id),
        lambda: queries.get_licence(session, b.actor, licence.id),
        lambda: queries.read_full_licence(session, SYSTEM, licence.id),
    ):
        with pytest.raises(Forbidden):
            call()
    assert queries.list_licences(session, b.actor).total == 0
    assert queries.list_licences(session, a.actor).total == 1


def test_full_read_is_audited(setup):
    session, a, _b = setup
    licence = person_licence(session, a)
    queries.read_full_licence(session, a.actor, licence.id)
    reads = session.exec(select(AuditLog).where(AuditLog.action == "licence.read_full")).all()
    assert [r.actor_id for r in reads] == [a.actor.user_id]


def test_lookup_is_scoped_to_departments_whose_entries_accept_the_type(setup):
    session, a, b = setup
    licence = person_licence(session, a, seq=5)
    with pytest.raises(Forbidden):
        queries.lookup_licences(session, b.actor, holder_code=licence.holder_code, type_code=PERSON_TYPE)
    licence_types.link_type_entry(
        session,
        SYSTEM,
        PERSON_TYPE,
        task_code=b.department.uscc + "4" + "000107001000",
        role="accepts",
        material_name="资格证书复印件",
    )
    auth = authorisations.record_authorisation(
        session,
        b.actor,
        {
            "holder_code": licence.holder_code,
            "type_codes": [PERSON_TYPE],
            "case_number": "GG-2026-0001",
            "task_code": b.department.uscc + "4" + "000107001000",
            "valid_until": licence_types.today() + timedelta(days=30),
            "method": "signed_form",
        },
    )
    found = queries.lookup_licences(
        session, b.actor, holder_code=licence.holder_code, type_code=PERSON_TYPE, authorisation_id=auth.id
    )
    assert [x.id for x in found] == [licence.id]
    issuing.revoke_licence(session, a.actor, licence.id, "注销")
    assert (
        queries.lookup_licences(
            session, b.actor, holder_code=licence.holder_code, type_code=PERSON_TYPE, authorisation_id=auth.id
        )
        == []
    )
    lookups = session.exec(select(AuditLog).where(AuditLog.action == "licence.lookup")).all()
    assert len(lookups) == 2
    assert "********" in lookups[0].new["holder_code"]
    assert session.exec(select(LicenceTypeEntry)).first().role == "accepts"


def test_bulk_issue_reports_bad_rows_and_skips_existing_on_rerun(setup):
    session, a, _b = setup
    lt = licence_types.get_licence_type(session, ORG_TYPE)
    rows = list(synthetic_licences.synthetic_rows([lt], 50, seed=3))
    rows[3][1]["holder_code"] = (
        rows[3][1]["holder_code"][:-1] + "0"
        if not rows[3][1]["holder_code"].endswith("0")
        else rows[3][1]["holder_code"][:-1] + "1"
    )
    rows[7][1]["valid_to"] = "2000-01-01"
    result = bulk.bulk_issue(session, a.actor, a.department, rows, source="test")
    assert result.inserted == 48
    assert [line for line, _ in result.errors] == [4, 8]
    again = bulk.bulk_issue(session, a.actor, a.department, rows, source="test")
    assert (again.inserted, again.skipped) == (0, 48)
    assert len(session.exec(select(LicenceOutbox)).all()) == 48


def test_status_bits_follow_revocation_and_suspension(setup):
    session, a, _b = setup
    one, two = person_licence(session, a, seq=1), person_licence(session, a, seq=2)
    issuing.revoke_licence(session, a.actor, one.id, "注销")
    issuing.suspend_licence(session, a.actor, two.id, "暂停")

    def bit(bits, i):
        return bool(bits[i // 8] & (0x80 >> (i % 8)))

    revoked, size = verification.status_bits(session, "revocation")
    suspended, _ = verification.status_bits(session, "suspension")
    assert size >= 131072
    assert bit(revoked, one.id)
    assert not bit(revoked, two.id)
    assert bit(suspended, two.id)
    assert not bit(suspended, one.id)
