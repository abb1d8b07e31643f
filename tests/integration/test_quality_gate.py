"""The 要素质量检查 through the services, the API, the staff form, the CLI and the administrators' page;
the derived 不见面 class and depth level on save; the depth filter of the search."""

from __future__ import annotations

import io
from typing import Any

import pytest
from openpyxl import load_workbook

from catalog import entries as entry_services
from catalog.models import ImplementationEntry
from core.auth import SYSTEM, Role
from core.errors import Invalid
from licenses.models import LicenceType, LicenceTypeEntry
from tests.conftest import sign_in
from tests.factories.catalog import (
    COMPLETE_FIELDS,
    ELECTRONIC_MATERIALS,
    NO_CONTACT_FIELDS,
    make_department,
    make_item,
    make_user,
)

GOOD_FEE = {"name": "工本费", "amount_fen": 1000, "basis": "苏价费〔2018〕1号"}


def _claim(session: Any, dept: Any, **item: Any) -> ImplementationEntry:
    return entry_services.claim_item(
        session, SYSTEM, item_id=make_item(session, **item).id, department_id=dept.id
    )


def _publish(session: Any, dept: Any, fields: dict[str, Any], **item: Any) -> ImplementationEntry:
    entry = _claim(session, dept, **item)
    entry_services.update_entry(session, SYSTEM, entry.id, fields=fields, materials=ELECTRONIC_MATERIALS)
    entry_services.submit_entry(session, SYSTEM, entry.id)
    return entry_services.approve_entry(session, SYSTEM, entry.id)


# ---------------------------------------------------------------- the gate in the services


def test_submit_is_refused_with_every_error_at_once(session):
    dept = make_department(session, "区质检一局")
    entry = _claim(session, dept)
    with pytest.raises(Invalid) as err:
        entry_services.submit_entry(session, SYSTEM, entry.id)
    details = err.value.details
    assert {"anticipate_days", "promise_days", "window_address"} <= set(details)
    assert entry_services.get_entry(session, entry.id).status == "draft"


def test_approve_is_refused_when_a_submitted_entry_has_an_error(session):
    dept = make_department(session, "区质检二局")
    entry = _claim(session, dept)
    entry_services.update_entry(session, SYSTEM, entry.id, fields={**COMPLETE_FIELDS, "charges": True},
                                fees=[GOOD_FEE])
    entry_services.submit_entry(session, SYSTEM, entry.id)
    # A value no rule let through a save, as data from before the rule set would hold it.
    entry.promise_days = 30
    session.flush()
    with pytest.raises(Invalid) as err:
        entry_services.approve_entry(session, SYSTEM, entry.id)
    assert "承诺办结时限不能超过法定办结时限" in err.value.details["promise_days"]
    entry.promise_days = 5
    session.flush()
    assert entry_services.approve_entry(session, SYSTEM, entry.id).status == "published"


def test_warnings_do_not_block_submit(session):
    dept = make_department(session, "区质检三局")
    entry = _claim(session, dept)
    entry_services.update_entry(session, SYSTEM, entry.id, fields=COMPLETE_FIELDS)
    findings = entry_services.entry_findings(session, entry)
    assert any(f.level == "warning" and f.field == "complaint_phone" for f in findings)
    assert not [f for f in findings if f.level == "error"]
    assert entry_services.submit_entry(session, SYSTEM, entry.id).status == "submitted"


def test_a_save_reports_field_and_cross_field_errors_together(session):
    dept = make_department(session, "区质检四局")
    entry = _claim(session, dept)
    with pytest.raises(Invalid) as err:
        entry_services.update_entry(
            session, SYSTEM, entry.id,
            fields={**COMPLETE_FIELDS, "phone": "not a phone", "promise_days": 40, "visits_reason": None},
            materials=[{"name": "申请表", "form": "paper", "copies": 0}],
            fees=[{"name": "工本费", "amount_fen": 1_500_000_000, "basis": ""}],
        )
    assert {"phone", "promise_days", "visits_reason", "materials[0].copies", "fees[0].basis",
            "fees[0].amount_fen"} <= set(err.value.details)


# ---------------------------------------------------------------- derived on every save


def test_class_and_depth_are_derived_on_save_and_e_licence_needs_a_produced_type(session):
    dept = make_department(session, "区质检五局")
    entry = _claim(session, dept)
    fields = {**NO_CONTACT_FIELDS, "result_delivery": "elicence"}
    entry_services.update_entry(session, SYSTEM, entry.id, fields=fields, materials=ELECTRONIC_MATERIALS)
    assert entry.no_contact_class == "none"  # no licence type is produced by this entry
    assert entry.depth_level == 4
    licence_type = LicenceType(
        code="11321203MB0000000X001", name="质检测试证", authority_code="11321203MB0000000X",
        holder_code_type="111",
    )
    session.add(licence_type)
    session.flush()
    session.add(LicenceTypeEntry(licence_type_id=licence_type.id, task_code=entry.task_code, role="produces"))
    session.flush()
    entry_services.update_entry(session, SYSTEM, entry.id, fields={"keywords": "证照"})
    assert entry.no_contact_class == "full"
    entry_services.update_entry(
        session, SYSTEM, entry.id,
        fields={
            "visits": 1, "visits_reason": "现场勘查", "meeting_step": "现场勘查", "online_depth": "1,2,3,4"
        },
    )
    assert (entry.no_contact_class, entry.depth_level) == ("partial", 3)
    snapshot = entry_services.entry_history(session, entry.id)[-1].snapshot
    assert (snapshot["no_contact_class"], snapshot["depth_level"]) == ("partial", 3)


# ---------------------------------------------------------------- API and staff form: one round


@pytest.fixture
def editor(session) -> dict[str, Any]:
    dept = make_department(session, "区质检六局")
    user, _principal, token = make_user(session, Role.DEPT_EDITOR, department=dept)
    entry = _claim(session, dept)
    session.commit()
    return {"dept": dept, "user": user, "token": token, "entry": entry}


def test_api_returns_schema_errors_and_rule_errors_in_one_response(client, editor):
    response = client.patch(
        f"/api/v1/entries/{editor['entry'].id}",
        headers={"Authorization": f"Bearer {editor['token']}"},
        json={
            "anticipate_days": 20,
            "promise_days": -1,  # refused by the schema
            "visits": 2,  # needs a reason: a rule between fields
            "visits_reason": None,
            "online_depth": "4,5",  # needs an online address
            "materials": [{"name": "申请表", "copies": 0}],
        },
    )
    assert response.status_code == 422
    body = response.get_json()
    assert set(body) == {"code", "message", "details"}
    assert {"promise_days", "visits_reason", "online_url", "materials[0].copies"} <= set(body["details"])


def test_api_patch_sets_the_new_elements(client, editor):
    response = client.patch(
        f"/api/v1/entries/{editor['entry'].id}",
        headers={"Authorization": f"Bearer {editor['token']}"},
        json={"handle_forms": "post,window", "tolerant_acceptance": True, "meeting_step": None},
    )
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert (body["handle_forms"], body["tolerant_acceptance"]) == ("window,post", True)
    bad = client.patch(
        f"/api/v1/entries/{editor['entry'].id}",
        headers={"Authorization": f"Bearer {editor['token']}"},
        json={"handle_forms": "fax"},
    )
    assert bad.status_code == 422
    assert "handle_forms" in bad.get_json()["details"]


def test_staff_form_shows_parse_and_rule_errors_in_one_round(client, editor):
    sign_in(client, editor["user"].id)
    response = client.post(f"/staff/entries/{editor['entry'].id}/edit", data={
        "accept_conditions": "x", "anticipate_days": "abc", "anticipate_unit": "working",
        "promise_days": "5", "promise_unit": "working", "project_type": "2",
        "visits": "2", "visits_reason": "", "online_depth": ["4", "5"], "result_delivery": ["window"],
        "window_address": "窗口", "m-0-name": "申请表", "m-0-form": "paper", "m-0-copies": "0",
        "m-0-required": "1",
    })
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert 'id="anticipate_days-error"' in page  # the form's own error
    assert "需到现场的原因" in page  # a rule between fields, in the same round
    assert "网上受理或网上办理的事项须填写网上办理地址" in page
    assert "份数应为 1 到" in page  # the row's own check: 0 copies is no requirement


# ---------------------------------------------------------------- CLI and the administrators' page


@pytest.fixture
def catalogue(session) -> dict[str, Any]:
    good = make_department(session, "区质检优秀局")
    bad = make_department(session, "区质检待改局")
    clean = {**COMPLETE_FIELDS, "handle_forms": "window", "result_delivery": "window"}
    _publish(session, good, clean)
    failing = _publish(session, bad, clean, name="待改进事项")
    failing.promise_days = 99  # an error the page must find
    session.flush()
    admin = make_user(session, Role.ADMIN)[0]
    session.commit()
    return {"good": good, "bad": bad, "failing": failing, "admin": admin}


def test_cli_check_prints_the_summary(app, catalogue):
    result = app.test_cli_runner().invoke(args=["catalog", "check", "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "检查实施清单" in result.output
    assert "得分" in result.output
    assert "PROMISE_GT_ANTICIPATE" in result.output
    assert "区质检待改局" in result.output
    by_town = app.test_cli_runner().invoke(args=["catalog", "check", "--no-progress", "--by", "town"])
    assert "区级部门" in by_town.output


def test_admin_quality_page_drill_down_and_exports(client, catalogue):
    sign_in(client, catalogue["admin"].id)
    page = client.get("/admin/quality").get_data(as_text=True)
    assert "得分 = 没有“错误”的实施清单数" in page
    assert "区质检待改局" in page
    assert "区质检优秀局" in page
    assert "/admin/quality" in client.get("/admin/").get_data(as_text=True)
    key = str(catalogue["bad"].id)
    drill = client.get(f"/admin/quality?by=department&key={key}").get_data(as_text=True)
    assert catalogue["failing"].task_code in drill
    assert "承诺办结时限不能超过法定办结时限" in drill
    csv = client.get(f"/admin/quality/export.csv?by=department&key={key}")
    assert csv.status_code == 200
    assert catalogue["failing"].task_code in csv.get_data(as_text=True)
    xlsx = client.get("/admin/quality/export.xlsx?by=department")
    sheet = load_workbook(io.BytesIO(xlsx.data)).active
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][0] == "部门"
    assert any(r[0] == "区质检待改局" and r[4] >= 1 for r in rows[1:])
    town = client.get("/admin/quality?by=town").get_data(as_text=True)
    assert "区级部门" in town
    assert client.get("/admin/quality?by=department&key=999999").status_code == 404


def test_quality_page_is_for_administrators_only(client, editor):
    sign_in(client, editor["user"].id)
    assert client.get("/admin/quality").status_code == 403
    assert client.get("/admin/quality/export.csv").status_code == 403


# ---------------------------------------------------------------- search by depth


def test_search_filters_and_counts_by_depth_level(client, session):
    dept = make_department(session, "区质检七局")
    full = {**NO_CONTACT_FIELDS}
    partial = {**COMPLETE_FIELDS, "online_depth": "1,2"}
    deep = _publish(session, dept, full, name="深度测试许可甲")
    shallow = _publish(session, dept, partial, name="深度测试许可乙")
    session.commit()
    assert (deep.depth_level, shallow.depth_level) == (4, 2)
    every = client.get("/api/v1/search?q=深度测试许可").get_json()
    assert {f["value"]: f["count"] for f in every["facets"]["depth"]} == {4: 1, 2: 1}
    # Flat (entries counted from the facet cells, which carry the depth level) and grouped alike.
    flat = client.get("/api/v1/search?q=深度测试许可&group=none").get_json()
    assert {f["value"]: f["count"] for f in flat["facets"]["depth"]} == {4: 1, 2: 1}
    only = client.get("/api/v1/search?q=深度测试许可&depth=4").get_json()
    assert [h["task_code"] for h in only["items"]] == [deep.task_code]
    page = client.get("/search?q=深度测试许可&depth=2").get_data(as_text=True)
    assert shallow.task_code in page
    assert deep.task_code not in page
    assert 'data-facet="depth"' in page
    assert client.get("/api/v1/search?q=深度&depth=7").status_code in (400, 422)
    public = client.get(f"/entries/{deep.task_code}").get_data(as_text=True)
    assert "Ⅳ级（全程网办）" in public


def test_staff_list_filters_by_depth_and_the_entry_page_shows_it(client, session):
    dept = make_department(session, "区质检八局")
    admin, _principal, token = make_user(session, Role.ADMIN)
    deep = _publish(session, dept, {**NO_CONTACT_FIELDS}, name="列表深度甲")
    shallow = _publish(session, dept, {**COMPLETE_FIELDS, "online_depth": "1,2"}, name="列表深度乙")
    session.commit()
    sign_in(client, admin.id)
    page = client.get(f"/staff/entries/?department_id={dept.id}&depth_level=4").get_data(as_text=True)
    assert deep.task_code in page
    assert shallow.task_code not in page
    detail = client.get(f"/staff/entries/{deep.id}").get_data(as_text=True)
    assert "Ⅳ级（全程网办）" in detail
    assert 'id="no-contact-class">全程不见面<' in detail
    api = client.get(
        f"/api/v1/entries?department_id={dept.id}&depth_level=2", headers={"Authorization": f"Bearer {token}"}
    )
    assert [e["task_code"] for e in api.get_json()["items"]] == [shallow.task_code]
