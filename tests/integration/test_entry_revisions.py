"""Revisions keep a published service online; review sees a labelled diff; four-eyes; history reads
as Chinese. On the real PostgreSQL, data made through the services."""

from __future__ import annotations

from typing import Any

import pytest
from sqlmodel import select

from catalog import entries as entry_services
from catalog import history, review_settings, revisions
from catalog import search as engine
from catalog.models import ImplementationEntry
from catalog.revision_models import EntryRevision
from core.audit import AuditLog
from core.auth import SYSTEM, Role
from core.errors import Conflict, Forbidden, Invalid
from core.types import CHINA_TZ
from tests.conftest import sign_in
from tests.factories.catalog import COMPLETE_FIELDS, make_department, make_item, make_user, published_entry

CHANGED = {"promise_days": 3, "phone": "0523-86900001"}


@pytest.fixture
def world(session: Any) -> dict[str, Any]:
    dept = make_department(session, "区修订测试局")
    item = make_item(session, name="修订测试许可事项")
    entry = published_entry(session, dept, item)
    editor = make_user(session, Role.DEPT_EDITOR, department=dept)
    reviewer = make_user(session, Role.DEPT_REVIEWER, department=dept)
    admin = make_user(session, Role.ADMIN)
    return {"dept": dept, "entry": entry, "editor": editor[1], "reviewer": reviewer[1], "admin": admin[1]}
# A fee needs its basis (the quality rules refuse one without).
FEE_BASIS = "《江苏省行政事业性收费项目目录》"


def _searchable(session: Any, entry: ImplementationEntry) -> bool:
    return entry.task_code in [h.task_code for h in engine.search(session, "修订测试许可").items]


def _public(session: Any, entry: ImplementationEntry) -> ImplementationEntry:
    session.expire_all()
    fresh = session.get(ImplementationEntry, entry.id)
    assert fresh is not None
    return fresh


def test_published_entry_stays_online_while_revision_is_open_withdrawn_or_rejected(session, world):
    entry, editor, reviewer = world["entry"], world["editor"], world["reviewer"]
    version = entry.version
    revisions.open_revision(session, editor, entry.id, reason="更新咨询电话")
    revisions.update_revision(session, editor, entry.id, fields=CHANGED)
    for step in ("open", "submitted", "rejected"):
        fresh = _public(session, entry)
        assert (fresh.status, fresh.version, fresh.promise_days) == ("published", version, 5), step
        assert _searchable(session, fresh), step
        if step == "open":
            revisions.submit_revision(session, editor, entry.id)
        elif step == "submitted":
            revisions.reject_revision(session, reviewer, entry.id, "电话号码请再核对")
    revisions.withdraw_revision(session, editor, entry.id)
    fresh = _public(session, entry)
    assert (fresh.status, fresh.version, fresh.phone) == ("published", version, COMPLETE_FIELDS["phone"])
    assert _searchable(session, fresh)
    assert revisions.open_revision_of(session, entry.id) is None


def test_approval_publishes_the_new_values_and_bumps_the_version(session, world):
    entry, editor, reviewer = world["entry"], world["editor"], world["reviewer"]
    version = entry.version
    revisions.open_revision(session, editor, entry.id, reason="缩短承诺时限")
    revisions.update_revision(
        session, editor, entry.id, fields={**CHANGED, "charges": True},
        fees=[{"name": "工本费", "amount_fen": 1500, "basis": FEE_BASIS}],
    )
    revisions.submit_revision(session, editor, entry.id)
    revision = revisions.approve_revision(session, reviewer, entry.id)
    fresh = _public(session, entry)
    assert (fresh.status, fresh.promise_days, fresh.phone) == ("published", 3, CHANGED["phone"])
    assert fresh.version == version + 1 == revision.applied_version
    assert [f.amount_fen for f in entry_services.entry_fees(session, entry.id)] == [1500]
    assert _searchable(session, fresh)
    actions = session.exec(
        select(AuditLog.action).where(AuditLog.entity_id == str(entry.id)).order_by(AuditLog.id)
    ).all()
    assert actions[-2:] == ["entry.revise", "entry.revision.approve"]


def test_at_most_one_open_revision_and_drafts_are_edited_in_place(session, world):
    entry, editor = world["entry"], world["editor"]
    revisions.open_revision(session, editor, entry.id, reason="第一次修订")
    with pytest.raises(Conflict):
        revisions.open_revision(session, editor, entry.id, reason="第二次修订")
    with pytest.raises(Invalid):
        revisions.open_revision(session, editor, entry.id, reason="  ")
    with pytest.raises(Conflict):
        entry_services.update_entry(session, editor, entry.id, fields={"phone": "0523-86900002"})
    with pytest.raises(Conflict):
        entry_services.reopen_entry(session, editor, entry.id)
    draft = entry_services.claim_item(
        session, SYSTEM, item_id=make_item(session).id, department_id=world["dept"].id
    )
    with pytest.raises(Conflict):
        revisions.open_revision(session, editor, draft.id, reason="草稿不需要修订")
    entry_services.update_entry(session, editor, draft.id, fields={"phone": "0523-86900003"})
    assert draft.phone == "0523-86900003"


def test_retiring_an_entry_withdraws_its_open_revision_with_an_audit_row(session, world):
    entry, editor, reviewer = world["entry"], world["editor"], world["reviewer"]
    revisions.open_revision(session, editor, entry.id, reason="更新咨询电话")
    revisions.update_revision(session, editor, entry.id, fields=CHANGED)
    revisions.submit_revision(session, editor, entry.id)
    entry_services.retire_entry(session, reviewer, entry.id, "事项已取消")
    assert revisions.open_revision_of(session, entry.id) is None
    assert revisions.revisions_to_handle(session, reviewer) == []
    revision = session.exec(select(EntryRevision).where(EntryRevision.entry_id == entry.id)).one()
    assert revision.status == "withdrawn"
    assert revision.payload["fields"]["phone"] == CHANGED["phone"]  # the editor's work is kept
    row = session.exec(
        select(AuditLog).where(AuditLog.action == "entry.revision.withdraw", AuditLog.entity_id == entry.id)
    ).one()
    assert row.reason == "实施清单已停用，进行中的修订随之撤回"
    # Reopened, the entry is a draft edited directly; no stale revision of the old version blocks it.
    entry_services.reopen_entry(session, editor, entry.id)
    entry_services.update_entry(session, editor, entry.id, fields={"phone": "0523-86900009"})


def test_revision_is_validated_like_update_entry(session, world):
    entry, editor = world["entry"], world["editor"]
    revisions.open_revision(session, editor, entry.id, reason="改时限")
    with pytest.raises(Invalid) as err:
        revisions.update_revision(
            session, editor, entry.id, fields={"promise_days": 30, "name": "改名", "phone": "abc"}
        )
    assert {"name"} <= set(err.value.details)
    with pytest.raises(Invalid) as err:
        revisions.update_revision(session, editor, entry.id, fields={"promise_days": 30, "phone": "abc"})
    assert {"promise_days", "phone"} <= set(err.value.details)
    with pytest.raises(Invalid):
        revisions.submit_revision(session, editor, entry.id)  # nothing changed yet


def test_four_eyes_the_submitter_cannot_approve_unless_switched_off(session, world):
    entry, admin = world["entry"], world["admin"]
    revisions.open_revision(session, admin, entry.id, reason="管理员修订")
    revisions.update_revision(session, admin, entry.id, fields=CHANGED)
    revisions.submit_revision(session, admin, entry.id)
    with pytest.raises(Forbidden):
        revisions.approve_revision(session, admin, entry.id)
    assert review_settings.four_eyes_enabled(session) is True
    with pytest.raises(Forbidden):
        review_settings.set_four_eyes(session, world["reviewer"], False)
    review_settings.set_four_eyes(session, admin, False, "本单位仅一名审核人员")
    revisions.approve_revision(session, admin, entry.id)
    assert _public(session, entry).phone == CHANGED["phone"]
    row = session.exec(select(AuditLog).where(AuditLog.action == "settings.four_eyes")).one()
    assert (row.old, row.new, row.reason) == (
        {"four_eyes": True},
        {"four_eyes": False},
        "本单位仅一名审核人员",
    )


def test_four_eyes_applies_to_first_drafts_too(session, world):
    admin, reviewer = world["admin"], world["reviewer"]
    draft = entry_services.claim_item(
        session, admin, item_id=make_item(session).id, department_id=world["dept"].id
    )
    entry_services.update_entry(session, admin, draft.id, fields=COMPLETE_FIELDS)
    entry_services.submit_entry(session, admin, draft.id)
    with pytest.raises(Forbidden):
        entry_services.approve_entry(session, admin, draft.id)
    entry_services.approve_entry(session, reviewer, draft.id)
    assert draft.status == "published"


def test_rejection_reason_is_kept_on_the_draft_until_resubmitted(session, world):
    editor, reviewer = world["editor"], world["reviewer"]
    draft = entry_services.claim_item(
        session, SYSTEM, item_id=make_item(session).id, department_id=world["dept"].id
    )
    entry_services.update_entry(session, editor, draft.id, fields=COMPLETE_FIELDS)
    entry_services.submit_entry(session, editor, draft.id)
    entry_services.reject_entry(session, reviewer, draft.id, "受理条件过于笼统")
    assert (draft.status, draft.reject_reason) == ("draft", "受理条件过于笼统")
    entry_services.submit_entry(session, editor, draft.id)
    assert draft.reject_reason is None


def test_diff_has_chinese_labels_formatted_values_and_child_rows(session, world):
    entry, editor = world["entry"], world["editor"]
    revision = revisions.open_revision(session, editor, entry.id, reason="补充材料和收费")
    revisions.update_revision(
        session,
        editor,
        entry.id,
        fields={"promise_days": 3, "result_delivery": "window,post", "opening_hours": None, "charges": True},
        materials=[{"name": "申请表", "form": "electronic", "copies": 2}],
        fees=[{"name": "工本费", "amount_fen": 1_500_000, "basis": FEE_BASIS}],
    )
    changes = history.diff_states(
        revisions.published_state(session, entry), revisions.proposed_state(session, entry, revision)
    )
    by_key = {c.key: c for c in changes}
    assert set(by_key) == {"promise_days", "result_delivery", "opening_hours", "charges", "materials", "fees"}
    assert (by_key["charges"].old, by_key["charges"].new) == ("否", "是")
    assert (by_key["promise_days"].label, by_key["promise_days"].old, by_key["promise_days"].new) == (
        "承诺办结时限",
        "5",
        "3",
    )
    assert by_key["result_delivery"].new == "窗口领取、快递送达"
    assert by_key["opening_hours"].new == "未填报"
    fee = by_key["fees"].rows[0]
    assert (fee.kind_label, fee.title) == ("新增", "工本费（15,000.00 元）")
    assert ("收费标准", "未填报", "15,000.00 元") in fee.fields
    assert ("是否允许减免", "未填报", "否") in fee.fields
    material = by_key["materials"].rows[0]
    assert material.kind_label == "新增"
    assert ("材料形式", "未填报", "电子") in material.fields
    assert ("份数", "未填报", "2") in material.fields
    text = repr(changes)
    assert "amount_fen" not in [c.label for c in changes]
    assert "None" not in text


def test_history_formatting_has_no_reprs_and_uses_china_time(session, world):
    rows = session.exec(select(AuditLog).where(AuditLog.entity_id == str(world["entry"].id))).all()
    for row in rows:
        for change in history.audit_changes(row.old, row.new):
            for text in (change.label, change.old, change.new):
                assert "None" not in text
                assert "amount_fen" not in text
                assert "{" not in text
    assert history.format_value("fees", [{"name": "工本费", "amount_fen": 1000}]) == "工本费（10.00 元）"
    assert history.format_value("online_depth", "4,5") == "互联网受理、互联网办理"
    assert history.format_value("visits", None) == "未填报"
    assert history.format_value("no_contact", True) == "是"
    assert history.format_value("published_at", "2026-11-30T18:00:00+00:00") == "2026-12-01 02:00"
    assert history.label("amount_fen") == "收费标准"
    assert history.label("not_a_field") == "not_a_field"


def test_revision_can_set_the_no_contact_flag_through_the_rule(session, world):
    entry, editor, reviewer = world["entry"], world["editor"], world["reviewer"]
    revisions.open_revision(session, editor, entry.id, reason="实现不见面")
    revisions.update_revision(session, editor, entry.id, fields={"no_contact": True})
    with pytest.raises(Invalid) as err:
        revisions.submit_revision(session, editor, entry.id)
    assert "no_contact" in err.value.details
    assert _public(session, entry).no_contact is False
    revisions.update_revision(
        session,
        editor,
        entry.id,
        fields={
            "visits": 0,
            "visits_reason": None,
            "handle_forms": "online",
            "online_depth": "1,2,3,4,5,6",
            "online_url": "https://www.jszwfw.gov.cn/item/1",
            "result_delivery": "post",
        },
        materials=[{"name": "申请表", "form": "electronic"}],
    )
    revisions.submit_revision(session, editor, entry.id)
    revisions.approve_revision(session, reviewer, entry.id)
    fresh = _public(session, entry)
    assert (fresh.no_contact, fresh.visits) == (True, 0)
    assert (
        session.exec(select(EntryRevision).where(EntryRevision.entry_id == entry.id)).one().status
        == "approved"
    )


# ---------------------------------------------------------------- pages and API

FORM = {
    "accept_conditions": COMPLETE_FIELDS["accept_conditions"],
    "anticipate_days": "20",
    "anticipate_unit": "working",
    "promise_days": "5",
    "promise_unit": "working",
    "project_type": "2",
    "visits": "1",
    "visits_reason": COMPLETE_FIELDS["visits_reason"],
    "result_delivery": ["window"],
    "window_address": COMPLETE_FIELDS["window_address"],
    "opening_hours": COMPLETE_FIELDS["opening_hours"],
    "phone": COMPLETE_FIELDS["phone"],
}
NEW_PHONE = "0523-86955555"


@pytest.fixture
def site(client: Any, session: Any) -> dict[str, Any]:
    dept = make_department(session, "区页面修订测试局")
    entry = published_entry(session, dept, make_item(session, name="页面修订测试许可"))
    people = {
        "editor": make_user(session, Role.DEPT_EDITOR, department=dept),
        "reviewer": make_user(session, Role.DEPT_REVIEWER, department=dept),
        "admin": make_user(session, Role.ADMIN),
    }
    session.commit()
    return {
        "entry": entry,
        "dept": dept,
        **{k: v[0] for k, v in people.items()},
        "tokens": {k: v[2] for k, v in people.items()},
    }


def _as(client: Any, user: Any) -> None:
    sign_in(client, user.id)


def _text(response: Any) -> str:
    return response.get_data(as_text=True)


def test_revision_through_the_pages_keeps_the_public_page_until_approval(client, session, site):
    entry = site["entry"]
    public = f"/entries/{entry.task_code}"
    _as(client, site["editor"])
    assert client.post(f"/staff/entries/{entry.id}/revision", data={"reason": ""}).status_code == 302
    assert revisions.open_revision_of(session, entry.id) is None  # the reason is asked
    response = client.post(f"/staff/entries/{entry.id}/revision", data={"reason": "电话号码变更"})
    assert response.headers["Location"].endswith(f"/staff/entries/{entry.id}/edit")
    form = _text(client.get(f"/staff/entries/{entry.id}/edit"))
    assert "修订实施要素" in form
    assert COMPLETE_FIELDS["phone"] in form
    assert (
        client.post(f"/staff/entries/{entry.id}/edit", data={**FORM, "phone": NEW_PHONE}).status_code == 302
    )
    for page in (_text(client.get(public)), _text(client.get("/search?q=页面修订测试"))):
        assert NEW_PHONE not in page
    assert COMPLETE_FIELDS["phone"] in _text(client.get(public))
    assert entry.task_code in _text(client.get("/search?q=页面修订测试")) or "页面修订测试许可" in _text(
        client.get("/search?q=页面修订测试")
    )
    # The open data exports and the anonymous API keep the published version too.
    assert entry.task_code in _text(client.get("/open311/v2/services.json"))
    via_api = client.get(f"/api/v1/entries/by-code/{entry.task_code}")
    assert via_api.get_json()["phone"] == COMPLETE_FIELDS["phone"]
    detail = _text(client.get(f"/staff/entries/{entry.id}"))
    assert "进行中的修订" in detail
    assert "咨询电话" in detail
    assert NEW_PHONE in detail
    assert client.post(f"/staff/entries/{entry.id}/revision/submit").status_code == 302

    _as(client, site["reviewer"])
    waiting = _text(client.get("/staff/entries/"))
    assert "修订待审核" in waiting
    assert "电话号码变更" in waiting
    client.post(f"/staff/entries/{entry.id}/revision/reject", data={"reason": "新号码尚未开通"})
    assert client.get(public).status_code == 200
    _as(client, site["editor"])
    assert "新号码尚未开通" in _text(client.get(f"/staff/entries/{entry.id}"))
    assert "修订已退回" in _text(client.get("/staff/entries/"))
    client.post(f"/staff/entries/{entry.id}/revision/submit")

    _as(client, site["reviewer"])
    assert client.post(f"/staff/entries/{entry.id}/revision/approve").status_code == 302
    assert NEW_PHONE in _text(client.get(public))


def test_rejected_draft_shows_the_reason_on_the_page_and_in_the_list(client, session, site):
    draft = entry_services.claim_item(
        session, SYSTEM, item_id=make_item(session, name="退回测试许可").id, department_id=site["dept"].id
    )
    entry_services.update_entry(session, SYSTEM, draft.id, fields=COMPLETE_FIELDS)
    entry_services.submit_entry(session, SYSTEM, draft.id)
    session.commit()
    _as(client, site["reviewer"])
    review = _text(client.get(f"/staff/entries/{draft.id}"))
    assert "首次提交" in review
    assert "承诺办结时限" in review  # the submitted draft's diff against "not recorded"
    client.post(f"/staff/entries/{draft.id}/reject", data={"reason": "受理条件请写明户籍要求"})
    _as(client, site["editor"])
    assert "受理条件请写明户籍要求" in _text(client.get(f"/staff/entries/{draft.id}"))
    listing = _text(client.get("/staff/entries/?status=draft"))
    assert "已退回" in listing
    assert "受理条件请写明户籍要求" in _text(client.get(f"/staff/entries/{draft.id}/edit"))


def test_history_page_reads_as_chinese_in_china_time(client, session, site):
    entry = site["entry"]
    revisions.open_revision(session, SYSTEM, entry.id, reason="补充收费")
    revisions.update_revision(
        session,
        SYSTEM,
        entry.id,
        fields={"opening_hours": None, "charges": True},
        fees=[{"name": "工本费", "amount_fen": 1000, "basis": FEE_BASIS}],
    )
    revisions.submit_revision(session, SYSTEM, entry.id)
    revisions.approve_revision(session, SYSTEM, entry.id)
    session.commit()
    _as(client, site["editor"])
    page = _text(client.get(f"/staff/entries/{entry.id}/history"))
    for raw in ("None", "amount_fen", "entry.update", "[{", "'name'", "UTC"):
        assert raw not in page, raw
    for shown in ("工本费（10.00 元）", "未填报", "收费项目", "修订发布（要素变更）", "北京时间"):
        assert shown in page, shown
    version = entry_services.entry_history(session, entry.id)[-1]
    assert version.created_at.astimezone(CHINA_TZ).strftime("%Y-%m-%d %H:%M") in page


def test_revision_api_with_diff_four_eyes_and_chinese_errors(client, session, site):
    entry = site["entry"]
    base = f"/api/v1/entries/{entry.id}/revision"

    def call(method: str, url: str, who: str, body: Any = None) -> Any:
        return client.open(
            url, method=method, json=body, headers={"Authorization": f"Bearer {site['tokens'][who]}"}
        )

    assert call("GET", base, "editor").status_code == 404
    opened = call("POST", base, "admin", {"reason": "调整时限"})
    assert opened.status_code == 201, opened.get_json()
    bad = call("PATCH", base, "admin", {"fields": {"promise_days": 99}})
    assert bad.status_code == 422
    body = bad.get_json()
    assert set(body) == {"code", "message", "details"}
    assert "promise_days" in body["details"]
    assert "承诺办结时限不能超过法定办结时限" in body["details"]["promise_days"]
    unknown = call("PATCH", base, "admin", {"widgets": [{"name": "x"}]})
    assert unknown.status_code == 422
    assert "widgets" in unknown.get_json()["details"]
    ok = call(
        "PATCH",
        base,
        "admin",
        {"fields": {"promise_days": 2, "charges": True},
         "fees": [{"name": "工本费", "amount_fen": 500, "basis": FEE_BASIS}]},
    )
    assert ok.status_code == 200, ok.get_json()
    assert ok.get_json()["payload"]["fields"] == {"promise_days": 2, "charges": True}
    diff = call("GET", f"{base}/diff", "reviewer").get_json()
    assert [(c["label"], c["old"], c["new"]) for c in diff if not c["rows"]] == [
        ("承诺办结时限", "5", "2"), ("是否收费", "否", "是")]
    fees = next(c for c in diff if c["key"] == "fees")
    assert fees["rows"][0]["title"] == "工本费（5.00 元）"
    assert call("GET", f"/api/v1/entries/{entry.id}", "editor").get_json()["promise_days"] == 5
    assert call("POST", f"{base}/submit", "admin").status_code == 200
    refused = call("POST", f"{base}/approve", "admin")
    assert refused.status_code == 403
    assert "双人审核" in refused.get_json()["message"]
    assert call("PUT", "/api/v1/review-settings", "reviewer", {"four_eyes": False}).status_code == 403
    assert (
        call("PUT", "/api/v1/review-settings", "admin", {"four_eyes": False, "reason": "试运行"}).status_code
        == 200
    )
    approved = call("POST", f"{base}/approve", "admin")
    assert approved.status_code == 200, approved.get_json()
    assert approved.get_json()["status"] == "approved"
    assert call("GET", f"/api/v1/entries/{entry.id}", "editor").get_json()["promise_days"] == 2
    assert call("GET", base, "editor").status_code == 404


def test_admin_turns_four_eyes_off_on_the_settings_page(client, session, site):
    _as(client, site["editor"])
    assert client.get("/admin/review-settings").status_code == 403
    _as(client, site["admin"])
    assert "已开启" in _text(client.get("/admin/review-settings"))
    client.post("/admin/review-settings", data={"four_eyes": "0", "reason": "只有一名审核员"})
    session.expire_all()
    assert review_settings.four_eyes_enabled(session) is False
    assert "已关闭" in _text(client.get("/admin/review-settings"))


def test_another_departments_staff_see_the_published_entry_but_not_its_work_in_progress(
    client, session, site
):
    entry = site["entry"]
    other_dept = make_department(session, "区其他测试局")
    outsider, _password, outsider_token = make_user(session, Role.DEPT_EDITOR, department=other_dept)
    session.commit()
    opened = client.post(
        f"/api/v1/entries/{entry.id}/revision", json={"reason": "调整时限"},
        headers={"Authorization": f"Bearer {site['tokens']['editor']}"},
    )
    assert opened.status_code == 201, opened.get_json()
    client.patch(
        f"/api/v1/entries/{entry.id}/revision", json={"fields": {"phone": "0523-86999999"}},
        headers={"Authorization": f"Bearer {site['tokens']['editor']}"},
    )
    outsider_auth = {"Authorization": f"Bearer {outsider_token}"}
    editor_auth = {"Authorization": f"Bearer {site['tokens']['editor']}"}
    for path in ("revision", "revision/diff", "history"):
        url = f"/api/v1/entries/{entry.id}/{path}"
        assert client.get(url, headers=outsider_auth).status_code == 404, path
        assert client.get(url, headers=editor_auth).status_code == 200, path
    assert client.get(f"/api/v1/entries/{entry.id}", headers=outsider_auth).status_code == 200
    _as(client, outsider)
    page = client.get(f"/staff/entries/{entry.id}")
    assert page.status_code == 200
    assert "0523-86999999" not in _text(page)
    assert client.get(f"/staff/entries/{entry.id}/history").status_code == 403
