"""Scope and competence (issue #12 items 9-11): a town operator's view of its villages, claims limited
to the items a department is competent for (主管部门) with an audited administrator override,
withdrawing a claim draft, the upper-level basic catalogue and the drift against it, the province's
不见面 standard list, and the demo's mapping of the borrowed catalogue's departments."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select

from catalog import consistency, scope, services
from catalog import entries as entry_services
from catalog.codes import make_uscc
from catalog.importer import import_items_csv, read_department_map, read_uscc_map
from catalog.models import CatalogItem, Department, ImplementationEntry, UpperCatalogItem
from catalog.upper import import_basic_catalogue, import_no_contact_list, no_contact_gaps
from core.audit import AuditLog
from core.auth import SYSTEM, Principal, Role
from core.errors import Conflict, Forbidden, Invalid
from tests.factories.catalog import (
    COMPLETE_FIELDS,
    ELECTRONIC_MATERIALS,
    NO_CONTACT_FIELDS,
    OTHER_TOWN,
    TOWN,
    VILLAGE,
    import_upper,
    make_department,
    make_item,
    make_user,
    published_entry,
    seed_divisions,
    upper_row_for,
    write_upper_csv,
)

ROOT = Path(__file__).resolve().parents[2]
REAL_FILE = ROOT / "data" / "service_items_guangan_511602.csv"
DEMO_USCC_MAP = ROOT / "data" / "demo_department_uscc_321203.csv"
DEPARTMENT_MAP = ROOT / "data" / "department_map_511602_321203.csv"


def _audit(session: Any, action: str) -> list[AuditLog]:
    return list(session.exec(select(AuditLog).where(AuditLog.action == action).order_by(AuditLog.id)))


# ---------------------------------------------------------------- town operator's scope


def _town_world(session: Any) -> dict[str, Any]:
    seed_divisions(session)
    town = make_department(session, "口岸街道办事处（范围测试）", "5", TOWN)
    village = make_department(session, "柴墟社区居委会（范围测试）", "6", VILLAGE)
    other = make_department(session, "刁铺街道办事处（范围测试）", "5", OTHER_TOWN)
    item = make_item(session, name="范围测试许可", use_levels="4,5")
    service = make_item(session, name="范围测试公共服务", task_type="20", use_levels="4,5,6")
    return {
        "town": entry_services.claim_item(session, SYSTEM, item_id=item.id, department_id=town.id),
        "village": entry_services.claim_item(session, SYSTEM, item_id=service.id, department_id=village.id),
        "other": entry_services.claim_item(session, SYSTEM, item_id=item.id, department_id=other.id),
    }


def test_town_operator_sees_the_town_and_its_villages_with_a_division_filter(any_session):
    world = _town_world(any_session)
    _user, town_op, _token = make_user(any_session, Role.DIVISION_OPERATOR, division_code=TOWN)
    rows, _total = entry_services.list_entries(any_session, town_op, under_division=TOWN, limit=100)
    ids = {e.id for e in rows}
    assert {world["town"].id, world["village"].id} <= ids
    assert world["other"].id not in ids  # another town's draft stays hidden
    rows, _total = entry_services.list_entries(any_session, town_op, division_code=VILLAGE, limit=100)
    assert [e.id for e in rows] == [world["village"].id]
    with pytest.raises(Invalid):
        entry_services.list_entries(any_session, town_op, under_division="32120")


def test_town_operator_staff_list_defaults_to_all_and_offers_each_village(client, session):
    world = _town_world(session)
    user, _principal, token = make_user(session, Role.DIVISION_OPERATOR, division_code=TOWN)
    session.commit()
    response = client.post("/login", data={"username": user.username, "password": "password-123"})
    assert response.status_code == 302
    page = client.get("/staff/entries/").get_data(as_text=True)
    assert world["town"].task_code in page
    assert world["village"].task_code in page
    assert world["other"].task_code not in page
    assert '<option value="">全部</option>' in page.split('id="division_code"')[1].split("</select>")[0]
    page = client.get(f"/staff/entries/?division_code={VILLAGE}").get_data(as_text=True)
    assert world["village"].task_code in page
    assert world["town"].task_code not in page
    # The API offers the same "this division and everything under it" filter.
    api = client.get(
        f"/api/v1/entries?under_division={TOWN}&limit=100", headers={"Authorization": f"Bearer {token}"}
    ).get_json()
    codes = {e["task_code"] for e in api["items"]}
    assert {world["town"].task_code, world["village"].task_code} <= codes
    assert world["other"].task_code not in codes


# ---------------------------------------------------------------- competence


def test_a_department_claims_only_items_it_is_competent_for(any_session):
    civil = make_department(any_session, "区民政局（测试）")
    land = make_department(any_session, "区自然资源局（测试）")
    mining = make_item(any_session, name="新设探矿权登记", use_levels="4")
    relief = make_item(any_session, name="临时救助（测试）", use_levels="4")
    unrecorded = make_item(any_session, name="未登记主管部门的事项", use_levels="4")
    scope.set_item_competence(any_session, SYSTEM, mining.id, land.id)
    scope.set_item_competence(any_session, SYSTEM, relief.id, civil.id)
    _user, editor, _token = make_user(any_session, Role.DEPT_EDITOR, department=civil)

    with pytest.raises(Forbidden, match="主管部门为区自然资源局"):
        entry_services.claim_item(any_session, editor, item_id=mining.id, department_id=civil.id)
    with pytest.raises(Forbidden, match="尚未登记主管部门"):
        entry_services.claim_item(any_session, editor, item_id=unrecorded.id, department_id=civil.id)
    with pytest.raises(Forbidden):
        entry_services.decline_item(
            any_session, editor, item_id=mining.id, department_id=civil.id, reason="不归我们"
        )
    entry = entry_services.claim_item(any_session, editor, item_id=relief.id, department_id=civil.id)
    assert entry.status == "draft"
    assert (
        any_session.exec(select(ImplementationEntry).where(ImplementationEntry.item_id == mining.id)).all()
        == []
    )


def test_an_administrator_overrides_competence_only_with_a_reason_which_is_audited(any_session):
    civil = make_department(any_session, "区民政局（越权测试）")
    land = make_department(any_session, "区自然资源局（越权测试）")
    mining = make_item(any_session, name="新设探矿权登记（越权测试）", use_levels="4")
    scope.set_item_competence(any_session, SYSTEM, mining.id, land.id)
    _user, admin, _token = make_user(any_session, Role.ADMIN)
    with pytest.raises(Invalid) as refused:
        entry_services.claim_item(any_session, admin, item_id=mining.id, department_id=civil.id)
    assert "override_reason" in refused.value.details
    entry = entry_services.claim_item(
        any_session, admin, item_id=mining.id, department_id=civil.id, override_reason="区政府临时指定代办"
    )
    row = [a for a in _audit(any_session, "entry.claim") if a.entity_id == str(entry.id)][-1]
    assert row.reason == "区政府临时指定代办"
    assert row.new["competence_override"] is True
    assert _audit(any_session, "item.competence")[-1].new == {"competent_department_id": land.id}


def test_competence_over_the_api_and_the_claim_page(client, session):
    civil = make_department(session, "区民政局（接口测试）")
    land = make_department(session, "区自然资源局（接口测试）")
    mining = make_item(session, name="新设探矿权登记（接口测试）", use_levels="4")
    user, _editor, token = make_user(session, Role.DEPT_EDITOR, department=civil)
    _admin_user, _admin, admin_token = make_user(session, Role.ADMIN)
    session.commit()
    as_admin = {"Authorization": f"Bearer {admin_token}"}
    response = client.put(
        f"/api/v1/items/{mining.id}/competence", json={"department_id": land.id}, headers=as_admin
    )
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["competent_department_id"] == land.id
    response = client.post(
        f"/api/v1/items/{mining.id}/claim",
        json={"department_id": civil.id},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 403
    assert "主管部门" in response.get_json()["message"]
    response = client.post(
        f"/api/v1/items/{mining.id}/claim", json={"department_id": civil.id}, headers=as_admin
    )
    assert response.status_code == 422
    assert "override_reason" in response.get_json()["details"]
    # The editor's claim page lists its own items by default and refuses the others with a message.
    client.post("/login", data={"username": user.username, "password": "password-123"})
    assert "新设探矿权登记（接口测试）" not in client.get("/staff/items/?all_levels=1").get_data(as_text=True)
    page = client.get("/staff/items/?all_levels=1&all_competence=1&q=接口测试").get_data(as_text=True)
    assert "非本部门主管事项，不能认领" in page
    response = client.post(f"/staff/items/{mining.id}/claim", data={"department_id": civil.id})
    assert response.status_code == 403
    session.expire_all()
    assert (
        session.exec(select(ImplementationEntry).where(ImplementationEntry.item_id == mining.id)).all() == []
    )


# ---------------------------------------------------------------- withdrawing a claim


def test_a_claim_draft_that_was_never_published_can_be_withdrawn_by_its_editor(any_session):
    dept = make_department(any_session, "区撤回测试局")
    other = make_department(any_session, "区其他测试局")
    item = make_item(any_session, name="撤回测试事项", use_levels="4")
    scope.set_item_competence(any_session, SYSTEM, item.id, dept.id)
    _u1, editor, _t1 = make_user(any_session, Role.DEPT_EDITOR, department=dept)
    _u2, stranger, _t2 = make_user(any_session, Role.DEPT_EDITOR, department=other)
    entry = entry_services.claim_item(any_session, editor, item_id=item.id, department_id=dept.id)
    entry_services.update_entry(
        any_session, editor, entry.id, fields=COMPLETE_FIELDS, materials=ELECTRONIC_MATERIALS
    )
    entry_id, task_code = entry.id, entry.task_code

    with pytest.raises(Forbidden):
        scope.withdraw_claim(any_session, stranger, entry_id)
    summary = scope.withdraw_claim(any_session, editor, entry_id, "认领错了")
    assert summary["task_code"] == task_code
    any_session.expire_all()
    assert any_session.get(ImplementationEntry, entry_id) is None
    row = _audit(any_session, "entry.withdraw_claim")[-1]
    assert (row.entity_id, row.reason, row.old["task_code"]) == (str(entry_id), "认领错了", task_code)
    assert row.old["materials"][0]["name"] == "申请表"
    again = entry_services.claim_item(any_session, editor, item_id=item.id, department_id=dept.id)
    assert again.task_code == task_code  # the claim slot is free again


def test_a_claim_that_was_ever_published_cannot_be_withdrawn(any_session):
    dept = make_department(any_session, "区已发布测试局")
    entry = published_entry(any_session, dept)
    with pytest.raises(Conflict, match="只有草稿"):
        scope.withdraw_claim(any_session, SYSTEM, entry.id)
    entry_services.reopen_entry(any_session, SYSTEM, entry.id)
    with pytest.raises(Conflict, match="曾经发布"):
        scope.withdraw_claim(any_session, SYSTEM, entry.id)
    assert any_session.get(ImplementationEntry, entry.id) is not None


def test_withdraw_over_the_api(client, session):
    dept = make_department(session, "区接口撤回局")
    item = make_item(session, name="接口撤回事项", use_levels="4")
    scope.set_item_competence(session, SYSTEM, item.id, dept.id)
    _user, editor, token = make_user(session, Role.DEPT_EDITOR, department=dept)
    entry = entry_services.claim_item(session, editor, item_id=item.id, department_id=dept.id)
    session.commit()
    auth = {"Authorization": f"Bearer {token}"}
    response = client.post(f"/api/v1/entries/{entry.id}/withdraw-claim", json={}, headers=auth)
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["task_code"] == entry.task_code
    assert client.post(f"/api/v1/entries/{entry.id}/withdraw-claim", json={}, headers=auth).status_code == 404


# ---------------------------------------------------------------- upper-level catalogue


def test_cli_import_basic_keeps_codes_as_given_and_links_district_items(app, session, tmp_path):
    seed_divisions(session)
    local = make_item(session, name="本区已有的许可", use_levels="4")
    session.commit()
    path = write_upper_csv(
        tmp_path / "province.csv",
        [
            upper_row_for(local),
            {
                "基本编码": "000104002000",
                "名称": "固定资产投资项目节能审查",
                "事项类型": "行政许可",
                "设定依据": "",
            },
            {
                "基本编码": "511A0138000000",
                "名称": "旧格式编码的事项",
                "事项类型": "20",
                "行使层级": "2、3、4",
            },
            {"基本编码": "00abc-0001", "名称": "小写编码原样保存", "事项类型": "1"},
        ],
        provenance="测试：江苏省基本目录样例（为测试编写）",
    )
    result = app.test_cli_runner().invoke(args=["catalog", "import-basic", str(path), "--level", "province"])
    assert result.exit_code == 0, result.output
    assert "新增 4" in result.output
    session.expire_all()
    uppers = {u.code: u for u in session.exec(select(UpperCatalogItem))}
    assert set(uppers) == {local.code, "000104002000", "511A0138000000", "00abc-0001"}
    assert uppers["000104002000"].legal_basis is None  # not given: not recorded, never ""
    assert uppers["000104002000"].task_type == "01"
    assert uppers["511A0138000000"].use_levels == "2,3,4"
    assert uppers["00abc-0001"].provenance == "测试：江苏省基本目录样例（为测试编写）"
    assert {u.level for u in uppers.values()} == {"2"}
    assert session.get(CatalogItem, local.id).upper_item_id == uppers[local.code].id


def test_cli_import_basic_refuses_a_file_with_a_bad_line_naming_it_and_writes_nothing(app, session, tmp_path):
    path = tmp_path / "city.csv"
    path.write_text(
        "# 测试数据\n"
        "基本编码,名称,事项类型,设定依据\n"
        "000104002000,好事项,01,《条例》\n"
        "000104002001,坏类型,99,\n"
        "\n"
        "000104002000,重复编码,01,\n"
        "000104 003,,01,\n",
        encoding="utf-8",
    )
    result = app.test_cli_runner().invoke(args=["catalog", "import-basic", str(path), "--level", "city"])
    assert result.exit_code == 2
    assert "第 4 行：事项类型“99”无效" in result.output
    assert "第 6 行：基本编码 000104002000 与第 3 行重复" in result.output
    assert "第 7 行：基本编码“000104 003”只能由字母、数字和“-”组成，最长 60 位；名称为空" in result.output
    assert "第 3 行：" not in result.output
    session.expire_all()
    assert session.exec(select(UpperCatalogItem)).all() == []
    assert _audit(session, "upper_catalog.import") == []


def test_import_basic_needs_a_provenance_and_an_administrator(any_session, tmp_path):
    path = write_upper_csv(
        tmp_path / "p.csv", [{"基本编码": "1", "名称": "x", "事项类型": "01"}], provenance=""
    )
    with pytest.raises(Invalid, match="来源"):
        import_basic_catalogue(any_session, SYSTEM, path, level="2")
    editor = Principal(user_id=None, name="editor", role=Role.DEPT_EDITOR, department_id=1)
    with pytest.raises(Forbidden):
        import_basic_catalogue(any_session, editor, path, level="2", provenance="x")
    with pytest.raises(Invalid):
        import_basic_catalogue(any_session, SYSTEM, path, level="4", provenance="x")


def test_drift_is_checked_against_the_upper_level_and_a_local_edit_does_not_hide_it(any_session):
    dept = make_department(any_session, "区漂移测试局")
    item = make_item(any_session, name="漂移测试许可", use_levels="4")
    entry = entry_services.claim_item(any_session, SYSTEM, item_id=item.id, department_id=dept.id)
    assert consistency.coverage(any_session)["entries_unchecked"] >= 1
    import_upper(
        any_session, [upper_row_for(item, 名称="漂移测试许可（省级名称）", 设定依据="《省条例》第三条")]
    )
    drift = {d.entry_id: d for d in consistency.consistency_report(any_session)}
    assert drift[entry.id].fields == {
        "name": ("漂移测试许可", "漂移测试许可（省级名称）"),
        "legal_basis": ("《测试条例》第一条", "《省条例》第三条"),
    }
    assert (drift[entry.id].upper_level, drift[entry.id].upper_code) == ("2", item.code)
    # An administrator edits the district's own copy back to the entry's values: still drift.
    services.update_item(any_session, SYSTEM, item.id, name="漂移测试许可", legal_basis="《测试条例》第一条")
    assert entry.id in {d.entry_id for d in consistency.consistency_report(any_session)}
    # A 基本编码 that differs from the upper level's is drift too (linked through the source code).
    other = make_item(any_session, name="编码不同的许可", use_levels="4", source_code="320104002999")
    other_entry = entry_services.claim_item(any_session, SYSTEM, item_id=other.id, department_id=dept.id)
    import_upper(any_session, [upper_row_for(other, 基本编码="320104002999")])
    fields = {d.entry_id: d.fields for d in consistency.consistency_report(any_session)}[other_entry.id]
    assert fields == {"catalog_code": (other.code, "320104002999")}


def test_align_refuses_a_published_entry_and_fixes_a_draft_from_the_upper_level(any_session):
    dept = make_department(any_session, "区对齐测试局")
    item = make_item(any_session, name="对齐测试许可", use_levels="4")
    entry = published_entry(any_session, dept, item)
    import_upper(any_session, [upper_row_for(item, 设定依据="《省条例》新依据")])
    before = (entry.task_code, entry.legal_basis, entry.version)
    with pytest.raises(Conflict, match="已发布的实施清单不能直接改写"):
        entry_services.align_entry(any_session, SYSTEM, entry.id)
    any_session.expire_all()
    fresh = any_session.get(ImplementationEntry, entry.id)
    assert (fresh.task_code, fresh.legal_basis, fresh.version) == before
    entry_services.reopen_entry(any_session, SYSTEM, entry.id)
    aligned = entry_services.align_entry(any_session, SYSTEM, entry.id)
    assert aligned.legal_basis == "《省条例》新依据"
    assert entry.id not in {d.entry_id for d in consistency.consistency_report(any_session)}


def test_consistency_page_says_when_no_upper_level_is_imported(client, session):
    _user, _admin, _token = make_user(session, Role.ADMIN)
    user = _user
    session.commit()
    client.post("/login", data={"username": user.username, "password": "password-123"})
    page = client.get("/staff/consistency").get_data(as_text=True)
    assert "尚未导入上级（省级、市级）基本目录，三级四同无法对照" in page
    coverage = client.get("/api/v1/consistency/coverage", headers={"Authorization": f"Bearer {_token}"})
    assert coverage.status_code == 200
    assert [lv["items"] for lv in coverage.get_json()["levels"]] == [0, 0]


# ---------------------------------------------------------------- 不见面 standard list


def test_no_contact_list_report_lists_listed_entries_that_are_not_no_contact_here(app, session, tmp_path):
    dept = make_department(session, "区不见面测试局")
    flagged_item = make_item(session, name="已不见面的事项", use_levels="4")
    gap_item = make_item(session, name="清单上但要跑腿的事项", use_levels="4")
    unlisted_item = make_item(session, name="不在清单上的事项", use_levels="4")
    flagged = entry_services.claim_item(session, SYSTEM, item_id=flagged_item.id, department_id=dept.id)
    entry_services.update_entry(
        session, SYSTEM, flagged.id, fields=NO_CONTACT_FIELDS, materials=ELECTRONIC_MATERIALS
    )
    entry_services.set_no_contact(session, SYSTEM, flagged.id, True)
    entry_services.submit_entry(session, SYSTEM, flagged.id)
    entry_services.approve_entry(session, SYSTEM, flagged.id)
    gap = published_entry(session, dept, gap_item)
    published_entry(session, dept, unlisted_item)
    _user, _admin, token = make_user(session, Role.ADMIN)
    session.commit()
    path = tmp_path / "no_contact.csv"
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["基本编码", "名称", "事项类型"])
        writer.writerow([flagged_item.code, flagged_item.name, "01"])
        writer.writerow([gap_item.code, "清单上的名称", "行政许可"])
    runner = app.test_cli_runner()
    result = runner.invoke(args=["catalog", "import-no-contact-list", str(path), "--provenance", "测试清单"])
    assert result.exit_code == 0, result.output
    session.expire_all()
    assert [(g.entry_id, g.list_code) for g in no_contact_gaps(session)] == [(gap.id, gap_item.code)]
    result = runner.invoke(args=["catalog", "no-contact-gaps"])
    assert gap.task_code in result.output
    assert flagged.task_code not in result.output
    body = app.test_client().get("/api/v1/no-contact-gaps", headers={"Authorization": f"Bearer {token}"})
    assert body.status_code == 200
    data = body.get_json()
    assert data["list_items"] == 2
    assert [g["task_code"] for g in data["gaps"]] == [gap.task_code]


def test_no_contact_list_with_a_bad_line_is_refused_whole(any_session, tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("# 测试\n基本编码,名称\n000104002000,好\n000104002001\n", encoding="utf-8")
    with pytest.raises(Invalid) as refused:
        import_no_contact_list(any_session, SYSTEM, path)
    assert refused.value.details["lines"] == ["第 4 行：列数应为 2，实为 1"]
    assert no_contact_gaps(any_session) == []


# ---------------------------------------------------------------- the demo's borrowed catalogue


def test_the_real_file_maps_to_gaogang_departments_and_other_province_items_are_not_applicable(
    client, session
):
    seed_divisions(session)
    report = import_items_csv(
        session,
        REAL_FILE,
        "321203",
        progress=False,
        department_usccs=read_uscc_map(DEMO_USCC_MAP),
        department_names=read_department_map(DEPARTMENT_MAP),
    )
    assert report.errors == []
    session.commit()
    names = [d.name for d in session.exec(select(Department))]
    assert len(names) == 34
    assert not [n for n in names if "广安" in n]
    foreign = session.exec(
        select(ImplementationEntry).where(ImplementationEntry.name.contains("四川省"))
    ).all()
    assert foreign
    for entry in foreign:
        assert entry.applicable is False
        assert "本地不适用：事项名称指向四川省" in entry.not_applicable_reason
    home = client.get("/").get_data(as_text=True)
    assert "广安" not in home
    departments = client.get("/api/v1/departments").get_json()
    assert not [d["name"] for d in departments if "广安" in d["name"]]
    found = client.get("/search?q=老年人优待证").get_data(as_text=True)
    assert "四川省老年人优待证" not in found


def test_a_department_without_a_uscc_is_still_refused_after_mapping(any_session, tmp_path):
    seed_divisions(any_session)
    path = tmp_path / "items.csv"
    path.write_text(
        "seq,item_name,item_type,task_type_code,department,item_group,basic_code,implementation_code,"
        "area_code,area_name,dept_code\n1,事项,行政许可,1,区某局,,SRC-9,x,511602000000,广安区,1\n",
        encoding="utf-8",
    )
    report = import_items_csv(
        any_session, path, "321203", progress=False, department_names={"区某局": "高港区某局"}
    )
    assert len(report.errors) == 1
    assert report.errors[0][0] == 2
    assert "高港区某局" in report.errors[0][1]
    assert any_session.exec(select(Department).where(Department.name == "高港区某局")).first() is None


def test_district_import_takes_the_upper_code_when_it_fits(any_session, tmp_path):
    seed_divisions(any_session)
    import_upper(any_session, [{"基本编码": "320104002000", "名称": "省级事项", "事项类型": "01"}])
    uscc = make_uscc("11321203", "12345678")
    path = tmp_path / "items.csv"
    path.write_text(
        "seq,item_name,item_type,task_type_code,department,item_group,basic_code,implementation_code,"
        "area_code,area_name,dept_code,department_uscc\n"
        f"1,省级事项,行政许可,1,高港区甲局,,320104002000,x,321203000000,高港区,1,{uscc}\n",
        encoding="utf-8",
    )
    report = import_items_csv(any_session, path, "321203", progress=False)
    assert report.errors == []
    item = any_session.exec(select(CatalogItem).where(CatalogItem.source_code == "320104002000")).one()
    assert item.code == "320104002000"
    assert item.upper_item_id is not None
    entry = any_session.exec(select(ImplementationEntry).where(ImplementationEntry.item_id == item.id)).one()
    assert entry.catalog_code == "320104002000"
    assert entry.id not in {d.entry_id for d in consistency.consistency_report(any_session)}


def test_staff_pages_withdraw_a_claim_and_show_both_upper_level_reports(client, session):
    dept = make_department(session, "区页面测试局")
    item = make_item(session, name="页面测试许可", use_levels="4", competent_department=dept)
    user, editor, _token = make_user(session, Role.DEPT_EDITOR, department=dept)
    entry = entry_services.claim_item(session, editor, item_id=item.id, department_id=dept.id)
    import_upper(session, [upper_row_for(item, 名称="页面测试许可（省级）")])
    session.commit()
    entry_id = entry.id
    client.post("/login", data={"username": user.username, "password": "password-123"})
    detail = client.get(f"/staff/entries/{entry_id}").get_data(as_text=True)
    assert "撤回认领" in detail
    assert "与上级基本目录不一致" in detail
    report = client.get("/staff/consistency").get_data(as_text=True)
    assert "页面测试许可（省级）" in report
    assert "测试数据：为测试编写" in report  # the upper file's provenance is shown
    gaps = client.get("/staff/no-contact-gaps").get_data(as_text=True)
    assert "尚未导入省级不见面审批标准清单" in gaps
    response = client.post(f"/staff/entries/{entry_id}/withdraw-claim", data={"reason": "认领错了"})
    assert response.status_code == 302
    session.expire_all()
    assert session.get(ImplementationEntry, entry_id) is None
    assert "已认领" not in client.get("/staff/items/?q=页面测试").get_data(as_text=True)
