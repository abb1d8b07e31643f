"""The complete annual report in the form of its year, on the real migrated PostgreSQL.

2018 (the 2008 regulation's form): the district's figures loaded from data/gaogang_2018_report_figures.csv
through the CLI, a snapshot of 2018 (the platform holds no 2018 data, so its own figures stand in from
the file), and a report in that year's structure printing every figure of the file with its unit.
2025 (国办公开办函〔2021〕30号): preface and 一 to 六, narratives edited in the UI and the API with
placeholders refused by name, 表二's 行政许可 decisions prefilled from the case records, the template
headers, and the cross-year checks as warnings outside the published text.
"""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, select

from core import users
from core.auth import SYSTEM, Role
from core.errors import Invalid
from reports import annual_report, cases, entered_figures, narratives, report_document, services, snapshot
from reports.models import EnteredFigure, NarrativeBlock
from tests.conftest import sign_in
from tests.factories.catalog import make_user
from tests.factories.reports import YEAR, backdate, build_world, published_texts

DATA = Path(__file__).resolve().parents[2] / "data"
FIGURES_2018 = DATA / "gaogang_2018_report_figures.csv"

# Every row of the file with the text the report must print for it, worked out by hand from the file.
PRINTED_2018 = {
    "report_period_start": "2018年1月1日",
    "report_period_end": "2018年12月31日",
    "published_on": "2019年2月25日",
    "compiled_by": "泰州市高港区政务公开和电子政务工作领导小组办公室",
    "contact_unit": "泰州市高港区网络信息管理中心",
    "contact_phone": "0523-86966263",
    "towns_and_streets": "7个",
    "key_tasks": "15项",
    "leaflets_handed_out": "3500余份",
    "citizens_consulted": "2000余人次",
    "hotline_12345_valid_requests": "13616件",
    "hotline_12345_provincial_orders": "254件",
    "public_opinion_items": "1388条",
    "portal_special_topics": "22个",
    "policy_qa_categories": "5类",
    "policy_qa_questions": "50个",
    "featured_service_apps": "15项",
    "no_contact_categories": "6大类",
    "no_contact_rate": "100%",
    "scenario_bundles": "7个",
    "departments_online": "28个",
    "cases_handled": "7万余条",
    "licence_records_pushed": "14万余条",
    "elicence_department_coverage": "100%",
    "town_public_service_items": "73项",
    "village_public_service_items": "66项",
    "electronic_supervision_anomalies": "0件",
    "portal_items_published": "17228条",
    "disclosure_platform_items": "1687条",
    "items_sent_to_city_portal": "2067条",
    "items_adopted_by_city_portal": "468条",
    "applications_received": "9件",
    "administrative_reviews": "7件",
    "administrative_litigation_lost": "0件",
    "problems_listed": "3个",
    "improvements_listed": "3项",
}


@pytest.fixture
def report_2018(app: Any, session: Session) -> annual_report.Report:
    result = app.test_cli_runner().invoke(
        args=["reports", "load-figures", str(FIGURES_2018), "--year", "2018"]
    )
    assert result.exit_code == 0, result.output
    assert "已导入 2018 年填报数字 36 项" in result.output
    snapshot.create_snapshot(session, SYSTEM, 2018)
    return annual_report.build_report(session, 2018)


def test_the_csv_is_loaded_with_unit_and_lower_bound(
    report_2018: annual_report.Report, session: Session
) -> None:
    rows = {r.key: r for r in session.exec(select(EnteredFigure).where(EnteredFigure.year == 2018)).all()}
    with FIGURES_2018.open(encoding="utf-8") as f:
        keys = [row["key"] for row in csv.DictReader(f)]
    assert sorted(rows) == sorted(keys)
    assert (rows["cases_handled"].value, rows["cases_handled"].unit, rows["cases_handled"].lower_bound) == (
        "70000",
        "条",
        True,
    )
    assert (rows["leaflets_handed_out"].lower_bound, rows["hotline_12345_valid_requests"].lower_bound) == (
        True,
        False,
    )
    assert report_2018.payload["entered_figures"]["licence_records_pushed"] == {
        "value": "140000",
        "unit": "条",
        "lower_bound": True,
    }


def test_the_2018_report_follows_the_2008_form(report_2018: annual_report.Report) -> None:
    assert report_2018.form == narratives.FORM_2008
    md = annual_report.render_markdown(report_2018)
    headings = re.findall(r"^#+ (.+)$", md, re.M)
    assert headings == [
        "泰州市高港区人民政府2018年政府信息公开年度报告",
        "一、概述",
        "（一）组织领导和工作机制",
        "（二）主动公开和回应关切",
        "（三）政务服务",
        "二、具体情况分析",
        "（一）主动公开",
        "（二）依申请公开",
        "（三）行政复议和行政诉讼",
        "三、存在问题及改进措施",
        "（一）存在问题",
        "（二）改进措施",
        "附表：2018年政府信息公开情况统计表",
    ]
    preface = md.split("\n## ")[0]
    for piece in ("《中华人民共和国政府信息公开条例》", "2018年1月1日", "2018年12月31日", "2019年2月25日"):
        assert piece in preface
    assert "泰州市高港区网络信息管理中心" in preface
    assert "0523-86966263" in preface
    services_part = md.split("### （三）政务服务")[1].split("## 二、")[0]
    for key in ("no_contact_rate", "departments_online", "cases_handled", "licence_records_pushed"):
        assert PRINTED_2018[key] in services_part, key
    for text in published_texts(report_2018).values():
        assert "四、政府信息公开行政复议、行政诉讼情况" not in text  # no 2021 table in a 2018 report
        assert "信息处理费" not in text


def test_the_2018_report_prints_every_figure_of_the_file_with_its_unit(
    report_2018: annual_report.Report,
) -> None:
    with FIGURES_2018.open(encoding="utf-8") as f:
        keys = {row["key"] for row in csv.DictReader(f)}
    assert keys == set(PRINTED_2018), "every row of the file is hand-checked"
    for fmt, text in published_texts(report_2018).items():
        for key, printed in PRINTED_2018.items():
            assert printed in text, (fmt, key, printed)
        assert narratives.PENDING not in text, fmt  # nothing of the 2018 report is missing
    # Each figure beside its own name: in the statistics annex, or in the sentence that names it.
    html = annual_report.render_html(report_2018)
    annex = html.split("附表：2018年政府信息公开情况统计表")[1]
    in_annex = {k for _group, keys in report_document.ANNEX_2008 for k in keys}
    for key in in_annex:
        name = entered_figures.BY_KEY[key].name
        assert f"<td>{name}</td><td>{PRINTED_2018[key]}</td>" in annex, key
    md = annual_report.render_markdown(report_2018)
    in_prose = {
        "report_period_start": "统计期限自2018年1月1日起",
        "report_period_end": "至2018年12月31日止",
        "published_on": "本报告于2019年2月25日在区政府门户网站公开",
        "compiled_by": "由泰州市高港区政务公开和电子政务工作领导小组办公室编制本报告",
        "contact_unit": "请与泰州市高港区网络信息管理中心联系",
        "contact_phone": "（电话：0523-86966263）",
        "problems_listed": "仍存在3个方面问题",
        "improvements_listed": "重点做好3项工作",
    }
    assert set(in_annex) | set(in_prose) == set(PRINTED_2018)
    for key, sentence in in_prose.items():
        assert sentence in md, key
    # The platform has no 2018 data: the internal appendix says the file's figures stood in for its own.
    internal = annual_report.render_internal_markdown(report_2018)
    assert "| 累计推送证照数据 | 管理员填报 | — | 14万余条 |" in internal
    assert "| 套餐式场景服务 | 管理员填报 | 0个 | 7个 |" in internal  # nothing recorded in 2018 counts 0
    assert "| 不见面率 | 管理员填报 | — | 100% |" in internal


def test_a_bad_figures_file_names_each_line_and_loads_nothing(
    app: Any, session: Session, tmp_path: Path
) -> None:
    bad = tmp_path / "figures.csv"
    bad.write_text(
        "key,value,unit,scope,section,note\n"
        "cases_handled,70000,cases (more than),cumulative,government services,\n"
        "no_such_figure,1,items,year,overview,\n"
        "no_contact_rate,120,percent,year,government services,\n"
        "cases_handled,1,cases,year,overview,\n"
        "report_period_start,2017-01-01,date,,preface,\n",
        encoding="utf-8",
    )
    result = app.test_cli_runner().invoke(args=["reports", "load-figures", str(bad), "--year", "2018"])
    assert result.exit_code == 1
    assert "文件有 4 行有误，未导入任何数字" in result.output
    assert "第3行：不认识的填报项“no_such_figure”" in result.output
    assert "第4行：不见面率（no_contact_rate）：百分比不能超过100" in result.output
    assert "第5行：填报项“cases_handled”与第2行重复" in result.output
    assert "第6行：统计期限 2017-01-01 不在 2018 年内" in result.output
    assert session.exec(select(EnteredFigure)).all() == []
    wrong = tmp_path / "wrong.csv"
    wrong.write_text("name,amount\nx,1\n", encoding="utf-8")
    result = app.test_cli_runner().invoke(args=["reports", "load-figures", str(wrong), "--year", "2018"])
    assert result.exit_code == 1
    assert "第1行：缺少列 key, value, unit" in result.output


# ---- the 2021 form ------------------------------------------------------------------------------------

TABLE3_ZERO = {"1|natural": 0, "2|natural": 0, "4|natural": 0} | {
    f"{r}|{c}": 0 for r in ("1", "2", "4") for c in ("commercial", "research", "welfare", "legal", "other")
}
TABLE4_ZERO = {
    f"{g}|{c}": 0 for g in ("review", "direct", "after") for c in ("upheld", "corrected", "other", "pending")
}


def table2(decisions: int, normative: tuple[int, int, int]) -> dict[str, Any]:
    made, repealed, current = normative
    return {
        "20.1|made": 0,
        "20.1|repealed": 0,
        "20.1|current": 0,
        "20.1n|made": made,
        "20.1n|repealed": repealed,
        "20.1n|current": current,
        "20.5|decisions": decisions,
        "20.6a|decisions": 0,
        "20.6b|decisions": 0,
        "20.8|amount": "0",
    }


def import_licensing_cases(session: Session, world: dict[str, Any]) -> None:
    e1, e2 = world["e1"].task_code, world["e2"].task_code  # 行政许可, 行政确认
    header = (
        "project_no,task_code,accept_date,channel,promise_date,result_date,result_type,special_procedures"
    )
    rows = [
        f"L-1,{e1},2025-03-03,网上,2025-03-10,2025-03-05,准予,",  # counts
        f"L-2,{e1},2025-04-01,窗口,2025-04-08,2025-04-02,不予,",  # counts
        f"L-3,{e1},2025-05-06,网上,2025-05-13,2025-05-07,撤回,",  # withdrawn: no decision
        f"L-4,{e2},2025-05-06,网上,2025-05-13,2025-05-07,准予,",  # 行政确认: not 行政许可
        f"L-5,{e1},2024-12-02,网上,2024-12-09,2024-12-04,准予,",  # decided in 2024
        f"L-6,{e1},2025-12-29,网上,2026-01-06,2026-01-05,准予,",  # decided in 2026
    ]
    cases.import_cases(
        session,
        SYSTEM,
        cases.read_csv_text("\n".join([header, *rows]) + "\n"),
        today=date(2026, 11, 30),
        source="csv",
    )


@pytest.fixture
def admin(session: Session) -> Any:
    user = users.create_user(
        session,
        SYSTEM,
        users.NewUser(
            username="form_admin", password="a-long-password-1", display_name="管理员", role=Role.ADMIN
        ),
    )[0]
    session.flush()
    return user


@pytest.fixture
def admin_client(client: Any, admin: Any) -> Any:
    sign_in(client, admin.id)
    return client


def test_the_2021_report_has_a_preface_and_sections_one_to_six_in_order(session: Session) -> None:
    build_world(session)
    backdate(session, datetime(2025, 3, 1, tzinfo=UTC))
    entered_figures.save_figure(session, SYSTEM, year=YEAR, key="info_processing_fee", value="120")
    entered_figures.save_figure(
        session, SYSTEM, year=YEAR, key="published_at", value="高港区人民政府门户网站"
    )
    entered_figures.save_figure(session, SYSTEM, year=YEAR, key="contact_unit", value="区政务服务管理办公室")
    entered_figures.save_figure(session, SYSTEM, year=YEAR, key="contact_phone", value="0523-86960000")
    snapshot.create_snapshot(session, SYSTEM, YEAR)
    report = annual_report.build_report(session, YEAR)
    md = annual_report.render_markdown(report)
    headings = [h for h in re.findall(r"^## (.+)$", md, re.M) if h[0] in "一二三四五六"]
    assert headings == [
        "一、总体情况",
        "二、主动公开政府信息情况",
        "三、收到和处理政府信息公开申请情况",
        "四、政府信息公开行政复议、行政诉讼情况",
        "五、存在的主要问题及改进情况",
        "六、其他需要报告的事项",
    ]
    preface = md.split("## 一、总体情况")[0]
    assert "国办公开办函〔2021〕30号" in preface
    assert "统计期限自2025年1月1日起至2025年12月31日止" in preface
    assert "可在高港区人民政府门户网站查阅或下载" in preface
    assert "请与区政务服务管理办公室联系（电话：0523-86960000）" in preface
    six = md.split("## 六、其他需要报告的事项")[1].split("\n## ")[0]
    assert "收取信息处理费120元" in six
    # the 不见面率 with its numerator and denominator: of the world's two entries of the six types,
    # e1 (行政许可) is 不见面 and e2 (行政确认) is not; e3 is 公共服务, outside the six
    assert "全区六大类审批事项不见面率50.0%（1/2），其中行政许可100.0%（1/1）；行政确认0.0%（0/1）。" in md


def test_template_headers_are_the_templates_with_table_four_one_row_of_fifteen(session: Session) -> None:
    build_world(session)
    services.save_template_table(session, SYSTEM, year=YEAR, table="3", values=TABLE3_ZERO)
    services.save_template_table(
        session, SYSTEM, year=YEAR, table="4", values={**TABLE4_ZERO, "after|upheld": 2}
    )
    snapshot.create_snapshot(session, SYSTEM, YEAR)
    report = annual_report.build_report(session, YEAR)
    html = annual_report.render_html(report)
    t3 = html.split("三、收到和处理政府信息公开申请情况")[-1].split("</table>")[0]
    assert '<th rowspan="3">（本列数据的勾稽关系为：第一项加第二项之和，等于第三项加第四项之和）</th>' in t3
    assert '<th colspan="7">申请人情况</th>' in t3
    assert '<th rowspan="2">自然人</th><th colspan="5">法人或其他组织</th><th rowspan="2">总计</th>' in t3
    assert (
        "<tr><th>商业企业</th><th>科研机构</th><th>社会公益组织</th><th>法律服务机构</th><th>其他</th></tr>"
        in t3
    )
    t4 = html.split("四、政府信息公开行政复议、行政诉讼情况")[-1].split("</table>")[0]
    head, body = t4.split("<tbody>")
    assert '<th colspan="5">行政复议</th><th colspan="10">行政诉讼</th>' in head
    assert '<th colspan="5">未经复议直接起诉</th><th colspan="5">复议后起诉</th>' in head
    assert head.count('<th rowspan="2">') == 5
    rows = re.findall(r"<tr>(.*?)</tr>", body)
    assert len(rows) == 1
    assert re.findall(r"<td>(.*?)</td>", rows[0]) == ["0"] * 5 + ["0"] * 5 + ["2", "0", "0", "0", "2"]

    from docx import Document

    doc = Document(io.BytesIO(annual_report.render_docx(report)))
    docx_t4 = next(t for t in doc.tables if t.cell(0, 0).text == "行政复议")
    assert (len(docx_t4.rows), len(docx_t4.columns)) == (4, 15)
    assert docx_t4.cell(0, 5).text == "行政诉讼"
    assert docx_t4.cell(1, 5).text == "未经复议直接起诉"
    assert docx_t4.cell(2, 0).text == "结果维持"  # merged down from the second header row
    assert [c.text for c in docx_t4.rows[3].cells][10:] == ["2", "0", "0", "0", "2"]
    docx_t3 = next(t for t in doc.tables if t.cell(0, 1).text == "申请人情况")
    assert docx_t3.cell(1, 2).text == "法人或其他组织"
    assert docx_t3.cell(2, 2).text == "商业企业"


def test_a_narrative_edited_in_the_ui_fills_its_placeholders_and_refuses_unknown_ones(
    admin_client: Any, session: Session
) -> None:
    build_world(session)
    backdate(session, datetime(2025, 3, 1, tzinfo=UTC))
    snapshot.create_snapshot(session, SYSTEM, YEAR)
    page = admin_client.get(f"/admin/reports/{YEAR}/narratives")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "六、其他需要报告的事项" in text
    assert "{不见面率}" in text
    assert "默认文字" in text
    bad = admin_client.post(
        f"/admin/reports/{YEAR}/narratives", data={"key": "overall", "text": "不见面率{不见面律}，{年度"}
    )
    assert bad.status_code == 422
    body = bad.get_data(as_text=True)
    assert "不认识的占位符：{不见面律}" in body
    assert "花括号不成对" in body
    assert session.exec(select(NarrativeBlock)).all() == []
    good = admin_client.post(
        f"/admin/reports/{YEAR}/narratives",
        data={"key": "overall", "text": "{年度}年全区不见面率{不见面率}。\n\n网上可办率{网上可办率}。"},
    )
    assert good.status_code == 303
    report = annual_report.build_report(session, YEAR)
    md = annual_report.render_markdown(report)
    overall = md.split("## 一、总体情况")[1].split("## 二、")[0]
    rate, online = report.metrics["no_contact_rate"], report.metrics["online_available_rate"]
    assert overall.strip().split("\n\n") == [
        f"2025年全区不见面率{narratives.pct(rate)}。",
        f"网上可办率{narratives.pct(online)}。",
    ]
    assert "一、总体情况" not in annual_report.default_blocks(report)
    reset = admin_client.post(f"/admin/reports/{YEAR}/narratives", data={"key": "overall", "action": "reset"})
    assert reset.status_code == 303
    assert session.exec(select(NarrativeBlock)).all() == []


def test_the_narrative_and_figures_api_refuse_bad_input_with_the_error_shape(
    client: Any, session: Session
) -> None:
    _user, _password, token = make_user(session, Role.ADMIN)
    session.flush()
    auth = {"Authorization": f"Bearer {token}"}
    listed = client.get(f"/api/v1/reports/{YEAR}/narratives", headers=auth)
    assert listed.status_code == 200
    assert [b["key"] for b in listed.json["blocks"]] == [
        "preface",
        "overall",
        "proactive",
        "applications",
        "reviews",
        "problems",
        "other",
    ]
    assert client.get("/api/v1/reports/2018/narratives", headers=auth).json["form"] == "2008"
    bad = client.put(f"/api/v1/reports/{YEAR}/narratives/other", json={"text": "费用{手续费}"}, headers=auth)
    assert bad.status_code == 422
    assert set(bad.json) >= {"code", "message", "details"}
    assert "不认识的占位符：{手续费}" in bad.json["details"]["text"][0]
    assert (
        client.put(f"/api/v1/reports/{YEAR}/narratives/nope", json={"text": "x"}, headers=auth).status_code
        == 404
    )
    ok = client.put(
        f"/api/v1/reports/{YEAR}/narratives/other", json={"text": "信息处理费{信息处理费}。"}, headers=auth
    )
    assert ok.status_code == 200
    assert next(b for b in ok.json["blocks"] if b["key"] == "other")["edited"] is True
    fee = client.put(
        f"/api/v1/reports/{YEAR}/figures/info_processing_fee", json={"value": "-5"}, headers=auth
    )
    assert fee.status_code == 422
    assert fee.json["details"] == {"value": ["数值不能为负数"]}
    fee = client.put(
        f"/api/v1/reports/{YEAR}/figures/info_processing_fee", json={"value": "35.5"}, headers=auth
    )
    assert fee.status_code == 200
    assert next(f for f in fee.json["figures"] if f["key"] == "info_processing_fee")["value"] == "35.5"
    assert (
        client.put(f"/api/v1/reports/{YEAR}/figures/nope", json={"value": "1"}, headers=auth).status_code
        == 422
    )


def test_licensing_decisions_are_prefilled_from_the_cases_and_the_difference_is_shown(
    admin_client: Any, session: Session
) -> None:
    world = build_world(session)
    import_licensing_cases(session, world)
    page = admin_client.get(f"/admin/reports/{YEAR}/tables/2").get_data(as_text=True)
    assert "按办件记录计算为\n  <strong>2</strong>" in page
    assert re.search(r'name="20\.5\|decisions" value="2"', page)
    services.save_template_table(session, SYSTEM, year=YEAR, table="2", values=table2(5, (1, 0, 1)))
    page = admin_client.get(f"/admin/reports/{YEAR}/tables/2").get_data(as_text=True)
    assert re.search(r'name="20\.5\|decisions" value="5"', page)
    assert "当前填报值与之相差 <strong>+3</strong>" in page
    snapshot.create_snapshot(session, SYSTEM, YEAR)
    report = annual_report.build_report(session, YEAR)
    assert report.payload["computed"]["licensing_decisions"] == {"value": 2, "missing": None}
    warning = "表二·行政许可·本年处理决定数量填报为 5，按办件记录计算为 2，相差 +3"
    assert warning in annual_report.render_internal_markdown(report)
    assert all(warning not in t for t in published_texts(report).values())


def test_cross_year_checks_warn_on_the_report_page_not_in_the_published_text(
    admin_client: Any, session: Session
) -> None:
    build_world(session)
    last = {
        **TABLE3_ZERO,
        "1|natural": 3,
        "4|natural": 2,
        "3.1|natural": 1,
    }  # 3 new, 1 answered, 2 carried on
    services.save_template_table(session, SYSTEM, year=2024, table="3", values=last)
    services.save_template_table(session, SYSTEM, year=2024, table="2", values=table2(0, (5, 0, 20)))
    snapshot.create_snapshot(session, SYSTEM, 2024)
    this = {**TABLE3_ZERO, "2|natural": 1, "1|natural": 0, "3.1|natural": 1}  # only 1 arrives
    services.save_template_table(session, SYSTEM, year=YEAR, table="3", values=this)
    services.save_template_table(
        session, SYSTEM, year=YEAR, table="2", values=table2(0, (4, 1, 24))
    )  # 20+4-1=23
    snap_2024 = snapshot.latest_snapshot(session, 2024)
    assert snap_2024 is not None
    snapshot.create_snapshot(session, SYSTEM, YEAR)
    report = annual_report.build_report(session, YEAR)
    source = f"取自 2024 年快照 #{snap_2024.id}"
    expected = [
        f"表三·自然人：2025 年“二、上年结转”为 1，2024 年“四、结转下年度继续办理”为 2（{source}），应相等",
        f"表三·总计：2025 年“二、上年结转”为 1，2024 年“四、结转下年度继续办理”为 2（{source}），应相等",
        f"表二·行政规范性文件：现行有效件数 24，按上年 20 + 本年制发 4 − 本年废止 1 应为 23"
        f"（上年数据{source}）",
    ]
    assert [w.message for w in report.cross_year] == expected
    page = admin_client.get(f"/admin/reports/{YEAR}").get_data(as_text=True)
    internal = annual_report.render_internal_markdown(report)
    published = published_texts(report).values()
    for message in expected:
        assert message in page
        assert message in internal
        assert all(message not in t for t in published)


def test_the_2018_form_refuses_a_2021_block_and_the_2021_form_a_2008_block(session: Session) -> None:
    from core.errors import NotFound

    with pytest.raises(NotFound):
        narratives.save_block(session, SYSTEM, year=2018, key="other", text="x")
    with pytest.raises(NotFound):
        narratives.save_block(session, SYSTEM, year=2025, key="measures", text="x")
    with pytest.raises(Invalid, match="不认识的占位符"):
        narratives.save_block(session, SYSTEM, year=2025, key="other", text="{不存在}")


def test_a_partial_or_empty_figures_form_leaves_the_figures_it_did_not_send(
    admin_client: Any, session: Session
) -> None:
    values = {"cases_handled": ("70000", True), "info_processing_fee": ("0", False)}
    entered_figures.save_figures(session, SYSTEM, year=YEAR, values=values)
    session.commit()
    assert admin_client.post(f"/admin/reports/{YEAR}/figures", data={}).status_code == 303
    partial = admin_client.post(f"/admin/reports/{YEAR}/figures", data={"v-info_processing_fee": ""})
    assert partial.status_code == 303
    session.expire_all()
    stored = session.exec(select(EnteredFigure).where(EnteredFigure.year == YEAR)).all()
    rows = {r.key: r.value for r in stored}
    # The empty POST removed nothing; the blank field it sent removed only its own figure.
    assert rows == {"cases_handled": "70000"}
