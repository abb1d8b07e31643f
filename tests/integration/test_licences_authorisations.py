"""用证 with the holder's authorisation (issue #15 item 4): a second department looks up or reads a
licence only under a live authorisation covering it; every use is audited and recorded with it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import func, select

from core.audit import AuditLog
from core.auth import SYSTEM
from core.types import utcnow
from licenses import authorisations
from licenses import types as licence_types
from licenses.models import LicenceAuthorisation, LicenceUse
from tests.factories.licences import ORG_TYPE, PERSON_TYPE, auth, id_number, issue, world  # noqa: F401  (fixture)

HOLDER = id_number(11)  # the holder test_licences_api.issue uses


@pytest.fixture
def setup(client, db, world):  # noqa: F811
    lid = issue(client, world["a"]).get_json()["id"]
    with db.transaction() as session:
        from catalog.models import Department

        b_uscc = session.exec(select(Department.uscc).where(Department.name == "高港区民政局")).one()
        licence_types.link_type_entry(
            session,
            SYSTEM,
            PERSON_TYPE,
            task_code=f"{b_uscc}4000107001000",
            role="accepts",
            material_name="复印件",
        )
    return {"lid": lid, "b_task": f"{b_uscc}4000107001000"}


def _authorise(client, world, setup, **overrides):  # noqa: F811
    body = {
        "holder_code": HOLDER,
        "type_codes": [PERSON_TYPE],
        "case_number": "GG-2026-0100",
        "task_code": setup["b_task"],
        "valid_until": (licence_types.today() + timedelta(days=10)).isoformat(),
        "method": "signed_form",
    }
    body.update(overrides)
    return client.post("/api/v1/licence-authorisations", json=body, headers=auth(world["b"]))


def _lookup(client, world, authorisation_id=None, holder=HOLDER, type_code=PERSON_TYPE):  # noqa: F811
    path = f"/api/v1/licences/lookup?holder_code={holder}&type_code={type_code}"
    if authorisation_id is not None:
        path += f"&authorisation_id={authorisation_id}"
    return client.get(path, headers=auth(world["b"]))


def test_a_second_department_uses_a_licence_only_with_a_live_authorisation(client, db, world, setup):  # noqa: F811
    refused = _lookup(client, world)
    assert refused.status_code == 403
    assert "授权" in refused.get_json()["message"]
    full = client.get(f"/api/v1/licences/{setup['lid']}/full", headers=auth(world["b"]))
    assert full.status_code == 403

    created = _authorise(client, world, setup)
    assert created.status_code == 201, created.get_json()
    aid = created.get_json()["id"]
    assert created.get_json()["holder_code"].count("*") == 8

    found = _lookup(client, world, aid)
    assert found.status_code == 200
    assert [r["id"] for r in found.get_json()] == [setup["lid"]]
    read = client.get(
        f"/api/v1/licences/{setup['lid']}/full?authorisation_id={aid}", headers=auth(world["b"])
    )
    assert read.status_code == 200
    assert read.get_json()["holder_code"] == HOLDER

    with db.transaction() as session:
        uses = session.exec(select(LicenceUse).order_by(LicenceUse.id)).all()
        assert [(u.licence_id, u.authorisation_id, u.action) for u in uses] == [
            (setup["lid"], aid, "lookup"),
            (setup["lid"], aid, "read_full"),
        ]
        audited = session.exec(
            select(AuditLog).where(AuditLog.action.in_(["licence.lookup", "licence.read_full"]))
        ).all()
        assert all(a.new and a.new.get("authorisation_id") == aid for a in audited), [a.new for a in audited]
        assert all(a.new.get("case_number") == "GG-2026-0100" for a in audited)


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("expired", "过期"),
        ("withdrawn", "撤回"),
        ("other_holder", "不是此持证人"),
        ("other_type", "不包含此类证照"),
        ("other_department", "不属于本部门"),
    ],
)
def test_an_authorisation_that_does_not_cover_the_use_is_a_403_with_the_reason(
    client,
    db,
    world,  # noqa: F811
    setup,
    case,
    reason,
):
    aid = _authorise(client, world, setup).get_json()["id"]
    holder, type_code, headers = HOLDER, PERSON_TYPE, auth(world["b"])
    with db.transaction() as session:
        row = session.get(LicenceAuthorisation, aid)
        if case == "expired":
            row.valid_until = utcnow() - timedelta(minutes=1)
        elif case == "withdrawn":
            row.revoked_at = utcnow()
        session.add(row)
    if case == "other_holder":
        holder = id_number(12)
    elif case == "other_type":
        type_code = ORG_TYPE
    elif case == "other_department":
        headers = auth(world["a"])
    response = client.get(
        f"/api/v1/licences/lookup?holder_code={holder}&type_code={type_code}&authorisation_id={aid}",
        headers=headers,
    )
    if (
        case == "other_type"
    ):  # 民政局's entries do not accept 营业执照 either: refused before the authorisation
        assert response.status_code == 403
        return
    assert response.status_code == 403, response.get_json()
    assert reason in response.get_json()["message"]
    with db.transaction() as session:
        assert session.exec(select(func.count()).select_from(LicenceUse)).one() == 0


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"valid_until": "2020-01-01"}, "valid_until"),
        ({"valid_until": (licence_types.today() + timedelta(days=400)).isoformat()}, "valid_until"),
        ({"task_code": "11321203MB1580019D4000107001000"}, "task_code"),
        ({"method": "phone_call"}, "method"),
        ({"type_codes": ["11100000000013338W999"]}, "type_codes"),
        ({"holder_code": "32120319800101"}, "holder_code"),
        ({"case_number": ""}, "case_number"),
    ],
)
def test_bad_authorisations_get_a_chinese_422_and_nothing_is_recorded(
    client,
    db,
    world,  # noqa: F811
    setup,
    overrides,
    field,
):
    response = _authorise(client, world, setup, **overrides)
    assert response.status_code == 422, response.get_json()
    assert field in response.get_json()["details"]
    assert any("\u4e00" <= ch <= "\u9fff" for ch in response.get_json()["message"])
    with db.transaction() as session:
        assert session.exec(select(func.count()).select_from(LicenceAuthorisation)).one() == 0


def _code(app) -> str:
    import re

    message = app.extensions["licences.code_sender"].messages()[-1]
    assert message["to"].count("*") == 8
    return re.search(r"\d{6}", message["message"]).group(0)


def test_the_holder_sees_who_used_which_licence_when_after_a_one_time_code(app, client, db, world, setup):  # noqa: F811
    aid = _authorise(client, world, setup).get_json()["id"]
    assert _lookup(client, world, aid).status_code == 200
    page = client.get("/licences/my-uses")
    assert page.status_code == 200
    sent = client.post("/licences/my-uses", data={"action": "send", "holder_code": HOLDER})
    assert sent.status_code == 200
    assert "验证码已发送" in sent.get_data(as_text=True)
    code = _code(app)
    wrong = "000000" if code != "000000" else "111111"
    refused = client.post("/licences/my-uses", data={"action": "view", "holder_code": HOLDER, "code": wrong})
    assert refused.status_code == 403
    assert "验证码错误" in refused.get_data(as_text=True)
    assert "高港区民政局" not in refused.get_data(as_text=True)
    shown = client.post("/licences/my-uses", data={"action": "view", "holder_code": HOLDER, "code": code})
    assert shown.status_code == 200
    text = shown.get_data(as_text=True)
    assert "高港区民政局" in text
    assert "GG-2026-0100" in text
    assert "书面授权书" in text
    again = client.post("/licences/my-uses", data={"action": "view", "holder_code": HOLDER, "code": code})
    assert again.status_code == 403  # used up


@pytest.mark.parametrize("raw", ["abc", "\u00b2", "1e5", "99999999999999999999"])
def test_a_malformed_authorisation_id_on_the_holder_page_is_refused_not_a_server_error(client, raw):
    # int() of the posted id raised on anything but ASCII digits: a 500 to any anonymous visitor.
    answer = client.post(
        "/licences/my-uses", data={"action": "withdraw", "holder_code": HOLDER, "authorisation_id": raw}
    )
    assert answer.status_code == 403


def test_holder_codes_are_limited_and_bad_holder_codes_refused(app, client, world, db):  # noqa: F811
    from licenses.models import HolderCode

    bad = client.post("/licences/my-uses", data={"action": "send", "holder_code": "123"})
    assert bad.status_code == 422
    assert client.post("/licences/my-uses", data={"action": "send", "holder_code": HOLDER}).status_code == 200
    assert client.post("/licences/my-uses", data={"action": "send", "holder_code": HOLDER}).status_code == 409
    for _ in range(authorisations.HOLDER_CODE_ATTEMPTS):
        client.post("/licences/my-uses", data={"action": "view", "holder_code": HOLDER, "code": "x"})
    right = _code(app)
    dead = client.post("/licences/my-uses", data={"action": "view", "holder_code": HOLDER, "code": right})
    assert dead.status_code == 403  # too many wrong tries: the code is dead
    with db.transaction() as session:
        row = session.exec(select(HolderCode)).one()
        assert row.attempts == authorisations.HOLDER_CODE_ATTEMPTS
        assert right not in row.code_hash


def test_the_department_that_recorded_an_authorisation_withdraws_it_and_uses_relying_on_it_get_403(
    client,
    db,
    world,  # noqa: F811
    setup,
):
    aid = _authorise(client, world, setup).get_json()["id"]
    assert _lookup(client, world, aid).status_code == 200
    url = f"/api/v1/licence-authorisations/{aid}/withdraw"

    other = client.post(url, json={}, headers=auth(world["a"]))  # the issuing department did not record it
    assert other.status_code == 403
    assert "不是本部门登记的" in other.get_json()["message"]

    done = client.post(url, json={"reason": "办件已办结"}, headers=auth(world["b"]))
    assert done.status_code == 200, done.get_json()
    assert done.get_json()["revoked_via"] == "department"
    assert done.get_json()["revoked_at"]

    refused = _lookup(client, world, aid)
    assert refused.status_code == 403
    assert "撤回" in refused.get_json()["message"]
    assert "登记授权的部门" in refused.get_json()["message"]
    full_url = f"/api/v1/licences/{setup['lid']}/full?authorisation_id={aid}"
    full = client.get(full_url, headers=auth(world["b"]))
    assert full.status_code == 403
    assert "撤回" in full.get_json()["message"]

    again = client.post(url, json={}, headers=auth(world["b"]))
    assert again.status_code == 409
    missing = client.post("/api/v1/licence-authorisations/999999/withdraw", json={}, headers=auth(world["b"]))
    assert missing.status_code == 404
    with db.transaction() as session:
        rows = session.exec(select(AuditLog).where(AuditLog.action == "licence_authorisation.withdraw")).all()
        assert [(r.entity_id, r.new["revoked_via"], r.reason) for r in rows] == [
            (str(aid), "department", "办件已办结")
        ]
        assert session.exec(select(func.count()).select_from(LicenceUse)).one() == 1  # only the first lookup


def _open_uses_page(app, client):
    client.post("/licences/my-uses", data={"action": "send", "holder_code": HOLDER})
    view = {"action": "view", "holder_code": HOLDER, "code": _code(app)}
    return client.post("/licences/my-uses", data=view)


def test_the_holder_withdraws_an_authorisation_on_its_uses_page(app, client, db, world, setup):  # noqa: F811
    aid = _authorise(client, world, setup).get_json()["id"]
    assert _lookup(client, world, aid).status_code == 200
    shown = _open_uses_page(app, client)
    assert shown.status_code == 200
    text = shown.get_data(as_text=True)
    assert "我给出的用证授权" in text
    assert f'name="authorisation_id" value="{aid}"' in text
    assert "撤回授权" in text

    withdrawn = client.post(
        "/licences/my-uses", data={"action": "withdraw", "holder_code": HOLDER, "authorisation_id": str(aid)}
    )
    assert withdrawn.status_code == 200
    page = withdrawn.get_data(as_text=True)
    assert "已撤回办件 GG-2026-0100 的用证授权" in page
    assert "已撤回（持证人" in page
    assert f'name="authorisation_id" value="{aid}"' not in page  # no button for a withdrawn one

    refused = _lookup(client, world, aid)
    assert refused.status_code == 403
    assert "由持证人撤回" in refused.get_json()["message"]
    with db.transaction() as session:
        row = session.get(LicenceAuthorisation, aid)
        assert (row.revoked_via, row.revoked_by) == ("holder", None)
        withdraw = AuditLog.action == "licence_authorisation.withdraw"
        audit = session.exec(select(AuditLog).where(withdraw)).one()
        assert audit.new["revoked_via"] == "holder"


def test_withdrawing_as_the_holder_needs_the_one_time_code_of_that_holder(app, client, db, world, setup):  # noqa: F811
    aid = _authorise(client, world, setup).get_json()["id"]
    body = {"action": "withdraw", "holder_code": HOLDER, "authorisation_id": str(aid)}
    without = client.post("/licences/my-uses", data=body)  # never opened the page with a code
    assert without.status_code == 403
    assert "重新获取验证码" in without.get_data(as_text=True)

    other_holder = id_number(12)
    assert _open_uses_page(app, client).status_code == 200  # proof for HOLDER, not for the other holder
    with db.transaction() as session:
        stranger = LicenceAuthorisation(
            holder_code=other_holder,
            department_id=session.get(LicenceAuthorisation, aid).department_id,
            type_codes=[PERSON_TYPE],
            case_number="GG-2026-0200",
            task_code=setup["b_task"],
            valid_until=utcnow() + timedelta(days=3),
            method="signed_form",
        )
        session.add(stranger)
        session.flush()
        stranger_id = stranger.id
    forged = client.post(
        "/licences/my-uses",
        data={"action": "withdraw", "holder_code": other_holder, "authorisation_id": str(stranger_id)},
    )
    assert forged.status_code == 403
    not_theirs = client.post(
        "/licences/my-uses",
        data={"action": "withdraw", "holder_code": HOLDER, "authorisation_id": str(stranger_id)},
    )
    assert not_theirs.status_code == 404
    with db.transaction() as session:
        assert session.get(LicenceAuthorisation, stranger_id).revoked_at is None
        assert session.get(LicenceAuthorisation, aid).revoked_at is None


def test_an_authorisation_names_a_real_task_code_of_the_department(client, world, setup):  # noqa: F811
    made_up = _authorise(client, world, setup, task_code=setup["b_task"][:18] + "9999999999999")
    assert made_up.status_code == 422
    assert "task_code" in made_up.get_json()["details"]


def test_a_full_read_under_an_authorisation_needs_a_type_the_department_accepts(client, db, world):  # noqa: F811
    # 民政局 has a real task code, linked to another type: it may record the holder's consent for a
    # case, but its entries do not accept the licence read here, so the full read is refused as the
    # lookup is.
    lid = issue(client, world["a"]).get_json()["id"]
    with db.transaction() as session:
        from catalog.models import Department

        b_uscc = session.exec(select(Department.uscc).where(Department.name == "高港区民政局")).one()
        licence_types.link_type_entry(
            session, SYSTEM, ORG_TYPE, task_code=f"{b_uscc}4000107001000", role="accepts",
            material_name="复印件",
        )
    created = _authorise(client, world, {"b_task": f"{b_uscc}4000107001000"})
    assert created.status_code == 201, created.get_json()
    read = client.get(
        f"/api/v1/licences/{lid}/full?authorisation_id={created.get_json()['id']}", headers=auth(world["b"])
    )
    assert read.status_code == 403
    assert "申请材料" in read.get_json()["message"]


def test_a_full_read_under_an_authorisation_shows_only_the_current_valid_version(client, world, setup):  # noqa: F811
    amended = client.post(
        f"/api/v1/licences/{setup['lid']}/amend", json={"holder_name": "张三丰"}, headers=auth(world["a"])
    )
    assert amended.status_code in (200, 201), amended.get_json()
    aid = _authorise(client, world, setup).get_json()["id"]
    old = client.get(f"/api/v1/licences/{setup['lid']}/full?authorisation_id={aid}", headers=auth(world["b"]))
    assert old.status_code == 403
    new_id = amended.get_json()["id"]
    current = client.get(f"/api/v1/licences/{new_id}/full?authorisation_id={aid}", headers=auth(world["b"]))
    assert current.status_code == 200
