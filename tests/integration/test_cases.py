"""Case records (办件): intake through CSV, CLI and API, promise dates, warnings refresh, rates and pages.

Hand-worked data (2026 holidays): accepted Mon 28 Sep with 5 working days promised -> Sat 10 Oct
(29, 30 Sep; 1–7 Oct off; 8, 9 Oct; the 调休 Saturday). Accepted Mon 2 Mar with 5 working days ->
Mon 9 Mar; a special procedure on 5–6 Mar moves the deadline to Wed 11 Mar.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlmodel import Session, select

from catalog import entries as entry_services
from core.auth import SYSTEM, Role
from core.errors import Forbidden, Invalid
from reports import cases, supervision
from reports.models import CaseRecord, CaseSpecialProcedure
from tests.conftest import sign_in
from tests.factories.catalog import COMPLETE_FIELDS, make_department, make_item, make_user, published_entry

TODAY = date(2026, 11, 30)
HEADER = "project_no,task_code,accept_date,channel,promise_date,result_date,result_type,special_procedures"


@pytest.fixture
def world(session: Session) -> dict[str, Any]:
    dept = make_department(session, "区测试局")
    other = make_department(session, "区另一局")
    five = published_entry(session, dept)  # 承诺 5 working days, 法定 20
    item = make_item(session, name="十日事项")
    ten = entry_services.claim_item(session, SYSTEM, item_id=item.id, department_id=dept.id)
    entry_services.update_entry(session, SYSTEM, ten.id, fields={**COMPLETE_FIELDS, "promise_days": 10})
    calendar_item = make_item(session, name="自然日事项")
    natural = entry_services.claim_item(session, SYSTEM, item_id=calendar_item.id, department_id=dept.id)
    entry_services.update_entry(
        session,
        SYSTEM,
        natural.id,
        fields={
            **COMPLETE_FIELDS,
            "promise_days": 7,
            "promise_unit": "calendar",
            "anticipate_unit": "calendar",
        },
    )
    bare_item = make_item(session, name="未填时限事项")
    bare = entry_services.claim_item(session, SYSTEM, item_id=bare_item.id, department_id=dept.id)
    foreign = published_entry(session, other, make_item(session, name="他局事项"))
    session.flush()
    return {
        "dept": dept,
        "other": other,
        "five": five,
        "ten": ten,
        "natural": natural,
        "bare": bare,
        "foreign": foreign,
    }


def rows_of(text: str) -> Any:
    return cases.read_csv_text(text)


def run_import(session: Session, text: str, actor: Any = SYSTEM) -> cases.CaseImportResult:
    return cases.import_cases(session, actor, rows_of(text), today=TODAY, source="csv")


def case(session: Session, project_no: str) -> CaseRecord:
    found = session.exec(select(CaseRecord).where(CaseRecord.project_no == project_no)).one()
    session.refresh(found)
    return found


def test_promise_dates_are_computed_with_the_working_day_calendar(
    session: Session, world: dict[str, Any]
) -> None:
    five, natural, bare = world["five"].task_code, world["natural"].task_code, world["bare"].task_code
    run_import(
        session,
        "\n".join(
            [
                HEADER,
                f"P-1,{five},2026-09-28,online,,,,",
                f"P-2,{natural},2026-09-24,window,,,,",
                f"P-3,{bare},2026-09-28,window,2026-10-30,,,",
            ]
        ),
    )
    first = case(session, "P-1")
    assert (first.promise_date, first.promise_computed, first.promise_days) == (date(2026, 10, 10), True, 5)
    # 7 natural days end on 1 Oct, a holiday: the period ends on the next working day.
    assert case(session, "P-2").promise_date == date(2026, 10, 8)
    given = case(session, "P-3")
    assert (given.promise_date, given.promise_computed, given.promise_days) == (
        date(2026, 10, 30),
        False,
        None,
    )


def test_an_entry_without_a_promise_time_limit_needs_the_date(
    session: Session, world: dict[str, Any]
) -> None:
    with pytest.raises(Invalid) as caught:
        run_import(session, f"{HEADER}\nP-1,{world['bare'].task_code},2026-09-28,online,,,,")
    assert "promise_date" in caught.value.details["第2行"][0]


def test_reimporting_the_same_file_changes_nothing_and_a_changed_row_updates(
    session: Session, world: dict[str, Any]
) -> None:
    five = world["five"].task_code
    text = f"{HEADER}\nP-1,{five},2026-03-02,online,,,,\nP-2,{five},2026-03-02,window,,,,"
    assert run_import(session, text).as_dict() == {"rows": 2, "created": 2, "updated": 0, "unchanged": 0}
    assert run_import(session, text).as_dict() == {"rows": 2, "created": 0, "updated": 0, "unchanged": 2}
    finished = f"{HEADER}\nP-1,{five},2026-03-02,online,,2026-03-11,approved,2026-03-05/2026-03-06"
    assert run_import(session, finished).updated == 1
    done = case(session, "P-1")
    assert (done.suspended_days, done.deadline, done.on_time, done.warning) == (
        2,
        date(2026, 3, 11),
        True,
        None,
    )
    assert session.exec(select(sa.func.count()).select_from(CaseRecord)).one() == 2


def test_a_bad_line_is_named_and_nothing_is_written(
    app: Any, session: Session, world: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Chunks of 2 rows: the good first chunk is written before the bad line is read, and the
    # transaction still leaves nothing behind.
    monkeypatch.setattr(cases, "CHUNK", 2)
    five = world["five"].task_code
    path = tmp_path / "cases.csv"
    path.write_text(
        "\n".join(
            [
                HEADER,
                f"P-1,{five},2026-03-02,online,,,,",
                f"P-2,{five},2026-03-02,online,,,,",
                f"P-3,{five},2026-03-02,post,,,,",
                "P-4,NOPE,2026-03-02,online,,,,",
                f"P-5,{five},2026-03-10,online,,2026-03-09,approved,",
                f"P-1,{five},2026-03-02,online,,,,",
            ]
        ),
        encoding="utf-8",
    )
    result = app.test_cli_runner().invoke(args=["cases", "import", str(path)])
    assert result.exit_code == 1
    assert "4 行错误" in result.output
    assert "第4行：申报渠道 channel“post”" in result.output
    assert "第5行：未知的实施编码 task_code NOPE" in result.output
    assert "第6行：办结日期 result_date 早于受理日期" in result.output
    assert "第7行：办件编号 P-1 与第2行重复" in result.output
    assert session.exec(select(CaseRecord)).first() is None


def test_chunks_are_written_while_the_next_is_parsed_and_a_refusal_leaves_nothing(
    session: Session, world: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Chunks of 2 rows: chunk N's new cases are on their way (COPY) while chunk N+1 is parsed. A case
    moved to another entry in the last chunk is refused while the previous chunk's COPY is in flight,
    and the rollback leaves the database as it was."""
    monkeypatch.setattr(cases, "CHUNK", 2)
    five, ten = world["five"].task_code, world["ten"].task_code
    rows = [f"P-{i},{five},2026-03-02,online,,2026-03-11,approved,2026-03-05/2026-03-06" for i in range(1, 6)]
    text = "\n".join([HEADER, *rows])
    assert run_import(session, text).as_dict() == {"rows": 5, "created": 5, "updated": 0, "unchanged": 0}
    assert run_import(session, text).as_dict() == {"rows": 5, "created": 0, "updated": 0, "unchanged": 5}
    specials = session.exec(select(sa.func.count()).select_from(CaseSpecialProcedure)).one()
    assert specials == 5  # the child rows of every chunk, each tied to its own case
    moved = "\n".join([HEADER, f"P-6,{five},2026-03-03,online,,,,", f"P-7,{five},2026-03-03,online,,,,",
                        f"P-8,{five},2026-03-03,online,,,,", f"P-9,{five},2026-03-03,online,,,,",
                        f"P-1,{ten},2026-03-02,online,,,,"])
    savepoint = session.begin_nested()
    with pytest.raises(Invalid, match="另一实施清单事项") as refused:
        run_import(session, moved)
    savepoint.rollback()
    assert "第6行" in refused.value.details
    assert session.exec(select(sa.func.count()).select_from(CaseRecord)).one() == 5
    assert session.exec(select(CaseRecord).where(CaseRecord.project_no == "P-6")).first() is None


def test_cli_imports_a_good_file(app: Any, session: Session, world: dict[str, Any], tmp_path: Path) -> None:
    path = tmp_path / "cases.csv"
    path.write_text(f"{HEADER}\nP-1,{world['five'].task_code},2026-09-28,网上,,,,\n", encoding="utf-8")
    result = app.test_cli_runner().invoke(args=["cases", "import", str(path)])
    assert result.exit_code == 0, result.output
    assert "新增 1" in result.output
    assert case(session, "P-1").channel == "online"


def test_refresh_raises_yellow_and_red_with_the_special_procedure_excluded(
    session: Session, world: dict[str, Any]
) -> None:
    five = world["five"].task_code
    run_import(
        session,
        "\n".join(
            [
                HEADER,
                f"WITH-SPECIAL,{five},2026-03-02,online,,,,2026-03-05/2026-03-06",
                f"WITHOUT,{five},2026-03-02,online,,,,",
                f"LATER,{five},2026-03-09,online,,,,",
            ]
        ),
    )
    report = supervision.refresh_warnings(session, SYSTEM, date(2026, 3, 10))
    assert (report.counts["yellow"], report.counts["red"]) == (1, 1)
    session.expire_all()
    assert case(session, "WITH-SPECIAL").warning == "yellow"  # deadline Wed 11 Mar, one day left
    assert case(session, "WITHOUT").warning == "red"  # promise date Mon 9 Mar has passed
    assert case(session, "LATER").warning is None  # deadline Mon 16 Mar
    again = supervision.refresh_warnings(session, SYSTEM, date(2026, 3, 10))
    assert again.changed == 0
    counts = supervision.warning_counts(session)
    assert counts == {"yellow": 1, "red": 1, "late": 0}


def test_on_time_rate_and_speed_up_rate_on_a_worked_example(session: Session, world: dict[str, Any]) -> None:
    five, ten, bare = world["five"].task_code, world["ten"].task_code, world["bare"].task_code
    run_import(
        session,
        "\n".join(
            [
                HEADER,
                # 5-day entry, accepted Mon 2 Mar: promise Mon 9 Mar.
                f"A,{five},2026-03-02,online,,2026-03-09,approved,",  # on time
                f"B,{five},2026-03-02,online,,2026-03-10,approved,",  # late by one day
                f"C,{five},2026-03-02,window,,2026-03-11,approved,2026-03-05/2026-03-06",  # on time
                # 10-day entry: promise Mon 16 Mar.
                f"D,{ten},2026-03-02,window,,2026-03-16,refused,",  # on time
                f"E,{bare},2026-03-02,window,2026-03-20,,,",  # open; no time limits recorded
            ]
        ),
    )
    rates = supervision.compute_rates(session, date(2026, 1, 1), date(2026, 12, 31))
    assert (rates.on_time, rates.finished) == (3, 4)
    assert rates.on_time_rate == pytest.approx(0.75)
    # 提速率 = 1 − avg(5, 5, 5, 10) / avg(20, 20, 20, 20) = 1 − 6.25 / 20; E has no limits recorded.
    assert (rates.speed_cases, rates.promise_sum, rates.anticipate_sum, rates.not_recorded) == (4, 25, 80, 1)
    assert rates.speed_up_rate == pytest.approx(1 - 6.25 / 20)
    scoped = supervision.compute_rates(session, date(2026, 1, 1), date(2026, 12, 31), [world["other"].id])
    assert (scoped.finished, scoped.on_time_rate) == (0, None)


def test_department_staff_import_only_their_own_entries(session: Session, world: dict[str, Any]) -> None:
    _user, clerk, _token = make_user(session, Role.DEPT_EDITOR, department=world["dept"])
    with pytest.raises(Forbidden) as caught:
        run_import(session, f"{HEADER}\nP-1,{world['foreign'].task_code},2026-03-02,online,,,,", actor=clerk)
    assert "第2行" in caught.value.details


def _token(session: Session, role: Role = Role.ADMIN, **kw: Any) -> dict[str, str]:
    _user, _p, token = make_user(session, role, **kw)
    session.flush()
    return {"Authorization": f"Bearer {token}"}


def test_api_records_one_case_with_steps_and_special_procedures(
    client: Any, session: Session, world: dict[str, Any]
) -> None:
    headers = _token(session)
    body = {
        "project_no": "API-1",
        "task_code": world["five"].task_code,
        "accept_date": "2026-03-02",
        "channel": "window",
        "applicant_type": "legal",
        "special_procedures": [{"kind": "专家评审", "start_date": "2026-03-05", "end_date": "2026-03-06"}],
        "steps": [{"action": "受理", "start_date": "2026-03-02", "end_date": "2026-03-02"}],
    }
    first = client.post("/api/v1/cases", headers=headers, json=body)
    assert first.status_code == 200, first.get_json()
    assert first.get_json()["created"] == 1
    assert client.post("/api/v1/cases", headers=headers, json={**body, "steps": None}).status_code == 422
    stored = case(session, "API-1")
    assert (stored.deadline, stored.applicant_type) == (date(2026, 3, 11), "legal")
    specials = session.exec(select(CaseSpecialProcedure)).all()
    assert [(s.kind, s.start_date) for s in specials] == [("专家评审", date(2026, 3, 5))]
    # Parsed dates from the API are held to the file's range too (9999-12-31 was stored).
    far = [{"kind": "专家评审", "start_date": "2026-03-05", "end_date": "9999-12-31"}]
    refused = client.post(
        "/api/v1/cases", headers=headers, json={**body, "project_no": "API-2", "special_procedures": far}
    )
    assert refused.status_code == 422, refused.get_json()
    assert "超出可处理的范围" in str(refused.get_json()["details"])


def test_api_validation_answers_in_chinese_and_writes_nothing(
    client: Any, session: Session, world: dict[str, Any]
) -> None:
    headers = _token(session)
    missing = client.post("/api/v1/cases", headers=headers, json={"project_no": "X"})
    assert missing.status_code == 422
    payload = missing.get_json()
    assert set(payload) == {"code", "message", "details"}
    assert "必填" in str(payload["details"])
    batch = client.post(
        "/api/v1/cases/batch",
        headers=headers,
        json={
            "cases": [
                {
                    "project_no": "B-1",
                    "task_code": world["five"].task_code,
                    "accept_date": "2026-03-02",
                    "channel": "online",
                },
                {"project_no": "B-2", "task_code": "NOPE", "accept_date": "2026-03-02", "channel": "online"},
            ]
        },
    )
    assert batch.status_code == 422
    body = batch.get_json()
    assert body["code"] == "invalid"
    assert "未知的实施编码" in body["details"]["第2个办件"][0]
    assert session.exec(select(CaseRecord)).first() is None
    anonymous = client.post("/api/v1/cases/batch", json={"cases": []})
    assert anonymous.status_code in (401, 422)


def test_warnings_page_is_scoped_and_drills_down_to_the_case(
    client: Any, session: Session, world: dict[str, Any]
) -> None:
    run_import(
        session,
        "\n".join(
            [
                HEADER,
                f"MINE,{world['five'].task_code},2026-03-02,online,,,,",
                f"THEIRS,{world['foreign'].task_code},2026-03-02,online,,,,",
            ]
        ),
    )
    supervision.refresh_warnings(session, SYSTEM, date(2026, 3, 10))
    user, _p, _t = make_user(session, Role.DEPT_EDITOR, department=world["dept"])
    session.flush()
    sign_in(client, user.id)
    page = client.get("/staff/cases/warnings?year=2026")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "MINE" in html
    assert "THEIRS" not in html
    assert "红牌" in html
    mine = case(session, "MINE")
    detail = client.get(f"/staff/cases/{mine.id}")
    assert detail.status_code == 200
    assert "承诺办结日期" in detail.get_data(as_text=True)
    theirs = case(session, "THEIRS")
    assert client.get(f"/staff/cases/{theirs.id}").status_code == 404
    assert client.get("/staff/cases/warnings?state=finished").status_code == 200
    assert client.get("/staff/cases/warnings?level=yellow&page=2").status_code == 200
    assert client.get("/staff/cases/warnings?level=purple").status_code == 422
    assert client.get("/staff/cases/warnings?year=abc").status_code == 422


def test_monthly_statistics_come_from_the_cases_and_aggregates_fill_only_uncovered_months(
    session: Session, world: dict[str, Any]
) -> None:
    from datetime import UTC, datetime

    from reports import services

    five = world["five"]
    run_import(
        session,
        "\n".join(
            [
                HEADER,
                f"A,{five.task_code},2026-03-02,online,,2026-03-09,approved,",
                f"B,{five.task_code},2026-03-02,window,,2026-04-01,approved,",
            ]
        ),
    )
    # Imported aggregates for January (no case records) and March (covered by the records: ignored).
    services.import_case_stats(
        session,
        SYSTEM,
        year=2026,
        rows=[
            {
                "task_code": five.task_code,
                "month": "2026-01",
                "received": 9,
                "online": 4,
                "finished": 8,
                "on_time": 8,
            },
            {
                "task_code": five.task_code,
                "month": "2026-03",
                "received": 99,
                "online": 0,
                "finished": 0,
                "on_time": 0,
            },
        ],
    )
    as_of = datetime(2026, 11, 30, tzinfo=UTC)
    _entries, months = services.load_case_facts(session, 2026, as_of)
    by_month = {m.month: (m.received, m.online, m.finished, m.on_time) for m in months}
    # March: 2 accepted (1 online), A finished on time; April: B finished, late (promise 9 Mar).
    assert by_month == {1: (9, 4, 8, 8), 3: (2, 1, 1, 1), 4: (0, 0, 1, 0)}
    sources = services.case_sources(session, 2026, as_of)
    assert (sources.record_cells, sources.aggregate_cells, sources.aggregate_months) == (2, 1, (1,))
    results = services.compute_metrics(session, 2026, as_of)
    assert (results["on_time_rate"].numerator, results["on_time_rate"].denominator) == (9, 10)
    # PostgreSQL groups in SQL; the embedded SQLite path groups the same cells in Python.
    from reports import metrics

    records, aggregates = services._case_cells(session, 2026, as_of)
    assert services.load_case_facts(session, 2026, as_of) == metrics.group_cases(
        metrics.CaseFact(e, m, *c) for (e, m), c in sorted({**aggregates, **records}.items())
    )
    assert (len(records), len(aggregates)) == (2, 1)


def test_dashboard_labels_imported_aggregates(client: Any, session: Session, world: dict[str, Any]) -> None:
    from reports import services

    services.import_case_stats(
        session,
        SYSTEM,
        year=2025,
        rows=[
            {
                "task_code": world["five"].task_code,
                "month": "2025-02",
                "received": 3,
                "online": 1,
                "finished": 2,
                "on_time": 2,
            }
        ],
    )
    admin, _p, _t = make_user(session, Role.ADMIN)
    session.flush()
    sign_in(client, admin.id)
    html = client.get("/admin/dashboard?year=2025").get_data(as_text=True)
    assert "导入的月度汇总数据" in html
    assert "涉及 2 月" in html


def test_upload_page_names_the_bad_line_and_writes_nothing(
    client: Any, session: Session, world: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    import io

    monkeypatch.setattr(cases, "CHUNK", 1)  # the good first line is written before the bad one is read

    admin, _p, _t = make_user(session, Role.ADMIN)
    session.flush()
    sign_in(client, admin.id)
    assert client.get("/admin/cases/import").status_code == 200
    five = world["five"].task_code
    bad = f"{HEADER}\nU-1,{five},2026-03-02,online,,,,\nU-2,{five},2026-13-02,online,,,,\n"
    response = client.post(
        "/admin/cases/import",
        data={"file": (io.BytesIO(bad.encode()), "cases.csv")},
        content_type="multipart/form-data",
        follow_redirects=True,
    )
    html = response.get_data(as_text=True)
    assert "第3行" in html
    assert "未导入任何数据" in html
    assert session.exec(select(CaseRecord)).first() is None
    good = f"{HEADER}\nU-1,{five},2026-03-02,online,,,,\n"
    response = client.post(
        "/admin/cases/import",
        data={"file": (io.BytesIO(good.encode()), "cases.csv")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 303
    assert case(session, "U-1").promise_date == date(2026, 3, 9)


def test_a_date_seen_before_is_checked_again_in_each_column(session: Session, world: dict[str, Any]) -> None:
    """An import parses each distinct date text once and reuses it; the rules of the column it appears
    in still apply: a future day is a fine 承诺办结日期 on line 2 and a refused 受理日期 on line 3."""
    five = world["five"].task_code
    text = "\n".join(
        [
            HEADER,
            f"F-1,{five},2026-11-30,online,2026-12-07,,,",
            f"F-2,{five},2026-12-07,online,,,,",
        ]
    )
    with pytest.raises(Invalid) as caught:
        run_import(session, text)
    assert list(caught.value.details) == ["第3行"]
    assert caught.value.details["第3行"] == ["受理日期 accept_date 2026-12-07 晚于今天"]


def test_project_numbers_with_copy_special_characters_arrive_intact(
    session: Session, world: dict[str, Any]
) -> None:
    """New cases go by binary COPY: a backslash, a tab, quotes and CJK text are stored as given."""
    five = world["five"].task_code
    odd = ["A\\B", "C\tD", 'E"F', "高港-办件-1", "\\N"]
    rows = [
        {"project_no": p, "task_code": five, "accept_date": "2026-03-02", "channel": "online"} for p in odd
    ]
    result = cases.import_cases(session, SYSTEM, enumerate(rows, start=1), today=TODAY)
    assert result.created == len(odd)
    stored = session.exec(select(CaseRecord.project_no).order_by(CaseRecord.id)).all()
    assert [s for s in stored if s in odd] == odd
    assert case(session, "A\\B").promise_date == date(2026, 3, 9)


def test_the_garbage_collector_is_back_on_after_an_import(session: Session, world: dict[str, Any]) -> None:
    import gc

    assert gc.isenabled()
    run_import(session, f"{HEADER}\nG-1,{world['five'].task_code},2026-03-02,online,,,,")
    assert gc.isenabled()
    with pytest.raises(Invalid):
        run_import(session, f"{HEADER}\nG-2,{world['five'].task_code},2026-03-02,post,,,,")
    assert gc.isenabled()
