"""Reports on the real migrated PostgreSQL: facts as of a date, case statistics import, snapshots and
the annual report's reproducibility, template tables, bundles, dashboard, exports, API and CLI.

Catalogue data is created through catalog.services (the rules users hit); the reports package
only reads it.
"""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlmodel import Session, select

from catalog.models import EntryVersion
from core import users
from core.auth import SYSTEM, Principal, Role
from core.errors import Forbidden, Invalid, NotFound
from reports import annual_report, bundles, services, snapshot
from reports.cache import EXTENSION, MetricsCache
from reports.models import CaseStat, Snapshot
from tests.conftest import sign_in
from tests.factories.reports import (
    YEAR,
    backdate,
    build_world,
    case_rows,
    csv_text,
    import_csv,
    signed_in_admin,
)


@pytest.fixture
def world(session: Session) -> dict[str, Any]:
    return build_world(session)


# ---- facts as of a date ------------------------------------------------------------------------------


def test_metrics_follow_the_entry_history_as_of_a_date(session: Session, world: dict[str, Any]) -> None:
    backdate(session, datetime(2025, 3, 1, tzinfo=UTC))
    before = services.compute_metrics(session, YEAR, datetime(2025, 2, 1, tzinfo=UTC))
    after = services.compute_metrics(session, YEAR, datetime(2025, 6, 1, tzinfo=UTC))
    assert before["no_contact_rate"].missing  # nothing existed yet
    assert (after["no_contact_rate"].numerator, after["no_contact_rate"].denominator) == (1, 2)
    assert after["items_claimed_level_5"].value == 1

    # Reopened for a revision in May (a draft version saved then): published until May, not after.
    entry_id = world["e2"].id
    session.execute(
        sa.update(EntryVersion)
        .where(EntryVersion.entry_id == entry_id)
        .values(created_at=datetime(2025, 3, 1, tzinfo=UTC))
    )
    session.add(
        EntryVersion(
            entry_id=entry_id,
            version=99,
            status="draft",
            snapshot={"visits": 3},
            created_at=datetime(2025, 5, 1, tzinfo=UTC),
        )
    )
    session.flush()
    april = services.compute_metrics(session, YEAR, datetime(2025, 4, 1, tzinfo=UTC))
    june = services.compute_metrics(session, YEAR, datetime(2025, 6, 1, tzinfo=UTC))
    assert entry_id in april["no_contact_rate"].denominator_ids
    assert entry_id not in june["no_contact_rate"].denominator_ids


# ---- case statistics ---------------------------------------------------------------------------------


def test_case_statistics_import_and_reimport_updates(session: Session, world: dict[str, Any]) -> None:
    result = import_csv(session, csv_text(case_rows(world)))
    assert (result.created, result.updated) == (4, 0)
    again = import_csv(session, csv_text([f"{world['e1'].task_code},2025-01,101,80,90,88"]))
    assert (again.created, again.updated) == (0, 1)
    results = services.compute_metrics(session, YEAR, datetime(2026, 1, 1, tzinfo=UTC))
    assert results["cases_received"].value == 101 + 50 + 30 + 7
    assert (results["departments_online"].numerator, results["departments_online"].denominator) == (2, 3)


def test_case_statistics_file_errors_name_each_line_and_nothing_is_written(
    session: Session, world: dict[str, Any]
) -> None:
    code = world["e1"].task_code
    bad = csv_text(
        [
            f"{code},2025-01,10,5,10,10",
            f"{code},2025-02,-1,0,0,0",
            "NOPE,2025-03,1,1,1,1",
            f"{code},2024-12,1,1,1,1",
            f"{code},2025-04,5,6,5,5",
            f"{code},2025-01,1,1,1,1",
        ]
    )
    with pytest.raises(Invalid) as caught:
        import_csv(session, bad)
    details = caught.value.details
    assert set(details) == {"第3行", "第4行", "第5行", "第6行", "第7行"}
    assert "负数" in details["第3行"][0]
    assert "未知的实施编码" in details["第4行"][0]
    assert "不在 2025 年内" in details["第5行"][0]
    assert "网上申报数不能大于收件数" in details["第6行"][0]
    assert "重复" in details["第7行"][0]
    assert session.exec(select(CaseStat)).first() is None


def test_case_statistics_file_with_wrong_columns_is_refused(session: Session, world: dict[str, Any]) -> None:
    with pytest.raises(Invalid) as caught:
        import_csv(session, csv_text([], header="code,month,count"))
    assert "缺少列" in caught.value.details["第1行"][0]


def test_department_staff_import_only_their_own_entries(session: Session, world: dict[str, Any]) -> None:
    clerk = Principal(user_id=None, name="民政", role=Role.DEPT_EDITOR, department_id=world["d2"].id)
    with pytest.raises(Forbidden):
        import_csv(session, csv_text([f"{world['e1'].task_code},2025-01,1,1,1,1"]), actor=clerk)
    assert (
        import_csv(session, csv_text([f"{world['e2'].task_code},2025-01,1,1,1,1"]), actor=clerk).created == 1
    )


# ---- snapshots and the report --------------------------------------------------------------------


def _freeze(session: Session) -> Snapshot:
    return snapshot.create_snapshot(session, SYSTEM, YEAR)


def test_report_rerun_gives_identical_tables_and_the_same_hash(
    session: Session, world: dict[str, Any]
) -> None:
    backdate(session, datetime(2025, 3, 1, tzinfo=UTC))
    import_csv(session, csv_text(case_rows(world)))
    first = _freeze(session)
    report_a = annual_report.build_report(session, YEAR)
    report_b = annual_report.build_report(session, YEAR)
    assert report_a.differences == []
    assert annual_report.render_markdown(report_a) == annual_report.render_markdown(report_b)
    assert annual_report.render_html(report_a) == annual_report.render_html(report_b)
    second = _freeze(session)  # freezing unchanged data again gives the same hash
    assert second.hash == first.hash
    assert first.hash in annual_report.render_internal_markdown(report_a)
    text = annual_report.render_markdown(report_a)
    assert "50.0%（1/2）" in text  # 不见面率: e1 of the two six-type entries (e3 is 公共服务)
    assert "187" in text  # cases received


def test_a_figure_changed_after_the_snapshot_is_shown_as_a_difference(
    session: Session, world: dict[str, Any]
) -> None:
    backdate(session, datetime(2025, 3, 1, tzinfo=UTC))
    import_csv(session, csv_text(case_rows(world)))
    frozen = _freeze(session)
    import_csv(session, csv_text([f"{world['e1'].task_code},2025-05,10,10,10,10"]))  # a late correction
    report = annual_report.build_report(session, YEAR)
    assert report.hash == frozen.hash
    labels = {d.label: (d.frozen, d.current) for d in report.differences}
    assert labels["办件总量"] == (187, 197)
    assert "187" in annual_report.render_markdown(report)  # the published report keeps the frozen figure
    assert "| 办件总量 | 187 | 197 |" in annual_report.render_internal_markdown(report)


def test_a_template_table_edited_after_the_snapshot_shows_the_changed_cells(
    session: Session, world: dict[str, Any]
) -> None:
    values = {
        f"{g}|{c}": 1
        for g in ("review", "direct", "after")
        for c in ("upheld", "corrected", "other", "pending")
    }
    services.save_template_table(session, SYSTEM, year=YEAR, table="4", values=values)
    _freeze(session)
    services.save_template_table(session, SYSTEM, year=YEAR, table="4", values={**values, "review|upheld": 3})
    labels = {d.label: (d.frozen, d.current) for d in annual_report.build_report(session, YEAR).differences}
    title = "四、政府信息公开行政复议、行政诉讼情况"
    assert labels[f"{title}·行政复议·结果维持"] == (1, 3)
    assert labels[f"{title}·行政复议·总计"] == (4, 6)


def test_a_year_without_data_lists_missing_figures_instead_of_zeros(session: Session) -> None:
    snap = snapshot.create_snapshot(session, SYSTEM, 2019)
    report = annual_report.build_report(session, 2019)
    missing = annual_report.missing_figures(report)
    assert any("不见面率" in m for m in missing)
    assert any("办件总量" in m for m in missing)
    assert any("管理员尚未填报" in m for m in missing)
    text = annual_report.render_markdown(report)
    assert "信息待补充" in text
    assert "不见面率0" not in text
    assert "0.0%" not in text
    internal = annual_report.render_internal_markdown(report)
    assert "管理员尚未填报" in internal
    assert snap.hash in internal


def test_snapshot_of_an_unfinished_year_is_refused(session: Session) -> None:
    with pytest.raises(Invalid):
        snapshot.create_snapshot(session, SYSTEM, datetime.now(UTC).year + 1)


def test_report_without_a_snapshot_says_so(session: Session) -> None:
    with pytest.raises(NotFound):
        annual_report.build_report(session, 2018)


def test_docx_contains_the_narrative_and_tables_but_not_the_hash(
    session: Session, world: dict[str, Any]
) -> None:
    from docx import Document

    backdate(session, datetime(2025, 3, 1, tzinfo=UTC))
    services.save_template_table(
        session,
        SYSTEM,
        year=YEAR,
        table="4",
        values={
            f"{g}|{c}": 1
            for g in ("review", "direct", "after")
            for c in ("upheld", "corrected", "other", "pending")
        },
    )
    snap = _freeze(session)
    doc = Document(io.BytesIO(annual_report.render_docx(annual_report.build_report(session, YEAR))))
    text = "\n".join(p.text for p in doc.paragraphs)
    assert "不见面率" in text
    assert snap.hash not in text  # the hash is in the internal appendix, not the published document
    assert len(doc.inline_shapes) == len(annual_report.CHART_SPECS)
    table4 = doc.tables[2]  # the template's layout: three header rows, then one row of 15 cells
    assert table4.cell(0, 0).text == "行政复议"
    assert [c.text for c in table4.rows[3].cells] == ["1", "1", "1", "1", "4"] * 3


# ---- template tables --------------------------------------------------------------------------------


def test_template_table_invariant_is_enforced_on_entry(session: Session) -> None:
    values = {
        f"{r}|{c}": 0
        for r in ("1", "2", "4")
        for c in ("natural", "commercial", "research", "welfare", "legal", "other")
    }
    values.update({"1|natural": 5, "3.1|natural": 4})  # 5 + 0 != 4 + 0
    with pytest.raises(Invalid) as caught:
        services.save_template_table(session, SYSTEM, year=YEAR, table="3", values=values)
    assert "4|natural" in caught.value.details
    assert services.template_table_values(session, YEAR)["3"] is None
    values["4|natural"] = 1
    saved = services.save_template_table(session, SYSTEM, year=YEAR, table="3", values=values)
    assert saved.values["3.7|total"] == 4


# ---- bundles ------------------------------------------------------------------------------------------


def test_bundle_merges_materials_and_totals_time_and_fees(session: Session, world: dict[str, Any]) -> None:
    bundle = bundles.save_bundle(
        session,
        SYSTEM,
        name="我要开餐馆",
        task_codes=[world["e1"].task_code, world["e2"].task_code],
        published=True,
    )
    view = bundles.bundle_view(session, bundle.id)
    assert [e["task_code"] for e in view.entries] == [world["e1"].task_code, world["e2"].task_code]
    names = sorted(m["name"] for m in view.materials)
    # "营  业执照" on paper is not the e-licence 营业执照: the same name but another form, so listed apart
    # (materials merge only when name, form and source are the same: bundles.material_key).
    assert names == ["营  业执照", "营业执照", "食品安全管理制度"]
    assert view.total_promise_days == 15
    assert view.total_fee_fen == 1000


def test_bundle_with_unknown_codes_is_refused(session: Session) -> None:
    with pytest.raises(Invalid) as caught:
        bundles.save_bundle(session, SYSTEM, name="x", task_codes=["NOPE"])
    assert "task_codes" in caught.value.details


def test_unpublished_bundle_is_not_public(session: Session, world: dict[str, Any]) -> None:
    bundle = bundles.save_bundle(session, SYSTEM, name="草稿", task_codes=[world["e1"].task_code])
    with pytest.raises(NotFound):
        bundles.bundle_view(session, bundle.id)


# ---- web ----------------------------------------------------------------------------------------------


@pytest.fixture
def admin_client(client: Any, session: Session) -> Any:
    return signed_in_admin(client, session, "report_admin")


def test_dashboard_is_for_administrators_only(client: Any, session: Session, world: dict[str, Any]) -> None:
    assert client.get("/admin/dashboard").status_code == 401
    editor = users.create_user(
        session,
        SYSTEM,
        users.NewUser(
            username="editor_x",
            password="a-long-password-1",
            display_name="编辑",
            role=Role.DEPT_EDITOR,
            department_id=world["d1"].id,
        ),
    )[0]
    session.flush()
    sign_in(client, editor.id)
    assert client.get("/admin/dashboard").status_code == 403


def test_dashboard_drills_down_to_entries_and_exports(
    admin_client: Any, world: dict[str, Any], session: Session
) -> None:
    backdate(session, datetime(2025, 3, 1, tzinfo=UTC))
    import_csv(session, csv_text(case_rows(world)))
    page = admin_client.get(f"/admin/dashboard?year={YEAR}&as_of=2099-01-01")
    # as_of far ahead is allowed; figures are those of the whole year.
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "不见面率（六大类）" in html
    assert "50.0%" in html
    # Without a year the dashboard opens on the latest year that has case statistics.
    assert f'name="year" type="number" min="2000" max="2100" value="{YEAR}"' in admin_client.get(
        "/admin/dashboard"
    ).get_data(as_text=True)
    drill = admin_client.get(f"/admin/dashboard/metric/no_contact_rate?year={YEAR}&part=num")
    assert drill.status_code == 200
    body = drill.get_data(as_text=True)
    assert world["e1"].task_code in body
    assert world["e2"].task_code not in body
    gap = admin_client.get(f"/admin/dashboard/metric/no_contact_rate?year={YEAR}&part=gap").get_data(
        as_text=True
    )
    assert world["e2"].task_code in gap
    csv_resp = admin_client.get(f"/admin/dashboard/export/cases_by_month.csv?year={YEAR}")
    assert csv_resp.status_code == 200
    lines = csv_resp.get_data(as_text=True).lstrip("\ufeff").splitlines()
    assert lines[0] == "代码,名称,收件,网上申报,办结,按时办结"
    assert lines[1] == "01,1月,130,80,120,117"
    xlsx = admin_client.get(f"/admin/dashboard/export/summary.xlsx?year={YEAR}")
    from openpyxl import load_workbook

    sheet = load_workbook(io.BytesIO(xlsx.data)).active
    assert (sheet.cell(2, 1).value, sheet.cell(2, 2).value) == ("no_contact_rate", "不见面率（六大类）")
    png = admin_client.get(f"/admin/dashboard/chart/towns.png?year={YEAR}")
    assert png.status_code == 200
    assert png.data[:4] == b"\x89PNG"


def test_dashboard_bad_arguments_are_4xx(admin_client: Any) -> None:
    assert admin_client.get("/admin/dashboard?year=abc").status_code == 422
    assert admin_client.get("/admin/dashboard?year=1900").status_code == 422
    assert admin_client.get("/admin/dashboard?as_of=31-12-2025").status_code == 422
    assert admin_client.get("/admin/dashboard/metric/nope").status_code == 404
    assert admin_client.get("/admin/dashboard/export/nope.csv").status_code == 404
    assert admin_client.get("/admin/dashboard/chart/nope.png").status_code == 404


def test_report_pages_and_downloads(admin_client: Any, world: dict[str, Any], session: Session) -> None:
    assert admin_client.get(f"/admin/reports/{YEAR}").status_code == 404
    freeze = admin_client.post(f"/admin/reports/{YEAR}/snapshot")
    assert freeze.status_code == 303
    page = admin_client.get(f"/admin/reports/{YEAR}")
    assert page.status_code == 200
    assert "政府信息公开工作年度报告" in page.get_data(as_text=True)
    for fmt, magic in (("docx", b"PK"), ("md", b"# "), ("html", b"<!doctype")):
        response = admin_client.get(f"/admin/reports/{YEAR}/report.{fmt}")
        assert response.status_code == 200
        assert response.data.startswith(magic)
    assert admin_client.get("/admin/reports/").status_code == 200


def test_template_table_form_shows_the_broken_invariant(admin_client: Any) -> None:
    form = {
        f"{r}|{c}": "0"
        for r in ("1", "2", "4")
        for c in ("natural", "commercial", "research", "welfare", "legal", "other")
    }
    form["1|natural"] = "3"
    response = admin_client.post(f"/admin/reports/{YEAR}/tables/3", data=form)
    assert response.status_code == 422
    assert "一 + 二 = 三(七) + 四" in response.get_data(as_text=True)
    form["3.1|natural"] = "3"
    assert admin_client.post(f"/admin/reports/{YEAR}/tables/3", data=form).status_code == 303


def test_case_statistics_upload_page_reports_line_errors(admin_client: Any, world: dict[str, Any]) -> None:
    data = {"year": str(YEAR), "file": (io.BytesIO(csv_text(["NOPE,2025-01,1,1,1,1"]).encode()), "c.csv")}
    response = admin_client.post(
        "/admin/reports/case-stats", data=data, content_type="multipart/form-data", follow_redirects=True
    )
    assert "第2行" in response.get_data(as_text=True)


def test_public_bundle_page(client: Any, session: Session, world: dict[str, Any]) -> None:
    bundle = bundles.save_bundle(
        session, SYSTEM, name="我要开餐馆", task_codes=[world["e1"].task_code], published=True
    )
    session.flush()
    page = client.get(f"/bundles/{bundle.id}")
    assert page.status_code == 200
    assert "食品安全管理制度" in page.get_data(as_text=True)
    assert client.get("/bundles/999999").status_code == 404


def test_api_case_stats_and_metrics(client: Any, session: Session, world: dict[str, Any]) -> None:
    admin = users.create_user(
        session,
        SYSTEM,
        users.NewUser(
            username="api_admin", password="a-long-password-1", display_name="接口", role=Role.ADMIN
        ),
    )[0]
    session.flush()
    token = users.issue_token(session, SYSTEM, admin.id, name="审批系统")[1]
    headers = {"Authorization": f"Bearer {token}"}
    bad = client.post(
        "/api/v1/reports/case-stats",
        headers=headers,
        json={
            "year": YEAR,
            "rows": [
                {
                    "task_code": "NOPE",
                    "month": "2025-01",
                    "received": 1,
                    "online": 1,
                    "finished": 1,
                    "on_time": 1,
                }
            ],
        },
    )
    assert bad.status_code == 422
    assert "第1行" in bad.get_json()["details"]
    negative = client.post(
        "/api/v1/reports/case-stats",
        headers=headers,
        json={
            "year": YEAR,
            "rows": [
                {
                    "task_code": world["e1"].task_code,
                    "month": "2025-01",
                    "received": -1,
                    "online": 0,
                    "finished": 0,
                    "on_time": 0,
                }
            ],
        },
    )
    assert negative.status_code == 422
    ok = client.post(
        "/api/v1/reports/case-stats",
        headers=headers,
        json={
            "year": YEAR,
            "rows": [
                {
                    "task_code": world["e1"].task_code,
                    "month": "2025-01",
                    "received": 9,
                    "online": 9,
                    "finished": 9,
                    "on_time": 9,
                }
            ],
        },
    )
    assert ok.status_code == 200, ok.get_json()
    got = client.get(f"/api/v1/reports/metrics?year={YEAR}", headers=headers).get_json()
    assert got["metrics"]["cases_received"]["value"] == 9
    assert got["definitions_version"]


def test_cli_import_and_build(app: Any, session: Session, world: dict[str, Any], tmp_path: Path) -> None:
    runner = app.test_cli_runner()
    bad = tmp_path / "bad.csv"
    bad.write_text(csv_text([f"{world['e1'].task_code},2025-13,1,1,1,1"]), encoding="utf-8")
    result = runner.invoke(args=["reports", "import-cases", str(bad), "--year", str(YEAR)])
    assert result.exit_code == 1
    assert "第2行" in result.output
    good = tmp_path / "good.csv"
    good.write_text(csv_text(case_rows(world)), encoding="utf-8")
    result = runner.invoke(args=["reports", "import-cases", str(good), "--year", str(YEAR)])
    assert result.exit_code == 0, result.output
    out = tmp_path / "out"
    result = runner.invoke(args=["reports", "build", "--year", str(YEAR), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == [
        f"gaogang-annual-report-{YEAR}-internal.md",
        f"gaogang-annual-report-{YEAR}.docx",
        f"gaogang-annual-report-{YEAR}.html",
        f"gaogang-annual-report-{YEAR}.md",
    ]
    first = (out / f"gaogang-annual-report-{YEAR}.md").read_text(encoding="utf-8")
    runner.invoke(args=["reports", "build", "--year", str(YEAR), "--out", str(out)])
    assert (out / f"gaogang-annual-report-{YEAR}.md").read_text(encoding="utf-8") == first
    snap = session.exec(select(Snapshot)).first()
    assert snap is not None
    payload = json.dumps(snap.payload)
    assert "cases_received" in payload


def test_cli_build_that_fails_after_freezing_neither_keeps_nor_announces_the_snapshot(
    app: Any, session: Session, world: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_args: Any, **_kwargs: Any) -> Any:
        raise RuntimeError("build failed")

    monkeypatch.setattr(annual_report, "build_report", broken)
    args = ["reports", "build", "--year", str(YEAR), "--out", str(tmp_path)]
    result = app.test_cli_runner().invoke(args=args)
    assert result.exit_code != 0
    assert "已冻结" not in result.output  # the freeze was rolled back with the failed build
    session.expire_all()
    assert session.exec(select(Snapshot)).first() is None


def test_case_aggregation_in_sql_matches_the_python_definition(
    session: Session, world: dict[str, Any]
) -> None:
    import_csv(session, csv_text(case_rows(world)))
    from reports import metrics

    as_of = datetime(2026, 1, 1, tzinfo=UTC)
    sql_entries, sql_months = services.load_case_facts(session, YEAR, as_of)
    rows = [
        metrics.CaseFact(*r)
        for r in session.execute(
            select(
                CaseStat.entry_id,
                CaseStat.month,
                CaseStat.received,
                CaseStat.online,
                CaseStat.finished,
                CaseStat.on_time,
            )
        ).all()
    ]
    assert (sql_entries, sql_months) == metrics.group_cases(rows)
    # Cut at the as-of month: on 15 February only January and February count.
    feb_entries, feb_months = services.load_case_facts(session, YEAR, datetime(2025, 2, 15, tzinfo=UTC))
    assert [m.month for m in feb_months] == [1, 2]
    assert sum(e.received for e in feb_entries) == 180


def test_embedded_sqlite_gives_the_same_figures(sqlite_database: Any, session: Session) -> None:
    """The SQLite path groups rows in Python; PostgreSQL groups in SQL: same figures."""
    from reports import metrics

    as_of = datetime(2099, 1, 1, tzinfo=UTC)
    figures = []
    lite = sqlite_database.session()
    try:
        for s in (lite, session):
            w = build_world(s)
            import_csv(s, csv_text(case_rows(w)))
            results = {k: r.as_dict() for k, r in services.compute_metrics(s, YEAR, as_of).items()}
            figures.append(
                {
                    k: (
                        r.get("numerator"),
                        r.get("denominator"),
                        r.get("value"),
                        [row["values"] for row in r.get("rows", [])],
                        r["missing"],
                    )
                    for k, r in results.items()
                }
            )
    finally:
        lite.rollback()
        lite.close()
    assert figures[0] == figures[1]
    assert figures[0]["cases_received"][2] == 187
    assert set(figures[0]) >= {d.key for d in metrics.DEFINITIONS if d.group != "licences"}


# ---- the dashboard's metrics cache on the production path (hit, invalidation, expiry) -------------------

EXPORT = f"/admin/dashboard/export/cases_by_month.csv?year={YEAR}"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def january(client: Any) -> str:
    response = client.get(EXPORT)
    assert response.status_code == 200
    return response.get_data(as_text=True).lstrip("\ufeff").splitlines()[1]


@pytest.fixture
def clock(app: Any) -> Clock:
    clock = Clock()
    app.extensions[EXTENSION] = MetricsCache(ttl_seconds=30, clock=clock)
    return clock


def test_each_app_has_its_own_metrics_cache(app: Any) -> None:
    assert isinstance(app.extensions[EXTENSION], MetricsCache)


def test_dashboard_serves_cached_figures_until_a_web_write_invalidates_them(
    admin_client: Any, session: Any, world: dict[str, Any], clock: Clock
) -> None:
    import_csv(session, csv_text(case_rows(world)))
    assert january(admin_client) == "01,1月,130,80,120,117"
    # A write that bypasses the web layer does not clear the cache: the page still shows the old figure,
    # which proves the second read was a cache hit.
    e1 = world["e1"].task_code
    import_csv(session, csv_text([f"{e1},2025-01,200,80,90,88"]))
    assert january(admin_client) == "01,1月,130,80,120,117"
    # The case-statistics API is a web write: it clears the cache, the next read is fresh.
    response = admin_client.post(
        "/api/v1/reports/case-stats",
        json={
            "year": YEAR,
            "rows": [
                {
                    "task_code": e1,
                    "month": "2025-01",
                    "received": 300,
                    "online": 80,
                    "finished": 90,
                    "on_time": 88,
                },
            ],
        },
    )
    assert response.status_code == 200, response.get_json()
    assert january(admin_client) == "01,1月,330,80,120,117"


def test_cached_figures_expire_after_their_time_to_live(
    admin_client: Any, session: Any, world: dict[str, Any], clock: Clock
) -> None:
    import_csv(session, csv_text(case_rows(world)))
    assert january(admin_client) == "01,1月,130,80,120,117"
    import_csv(session, csv_text([f"{world['e1'].task_code},2025-01,200,80,90,88"]))
    clock.now += 29.9
    assert january(admin_client) == "01,1月,130,80,120,117"
    clock.now += 0.2
    assert january(admin_client) == "01,1月,230,80,120,117"
