"""Dashboard default year and snapshots from the UI: the dashboard opens on the latest year that holds
recorded data; an administrator freezes any finished year, and the running year as a preliminary
snapshot (初步快照) whose report says so.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlmodel import Session, func, select

from core.auth import SYSTEM
from core.errors import Invalid
from core.types import CHINA_TZ, utcnow
from reports import annual_report, services, snapshot
from tests.factories.licences import make_staff, make_types, person_licence
from tests.factories.reports import (
    YEAR,
    backdate,
    build_world,
    case_rows,
    csv_text,
    import_csv,
    signed_in_admin,
)

EMPTY = {
    f"{g}|{c}": 0 for g in ("review", "direct", "after") for c in ("upheld", "corrected", "other", "pending")
}


def this_year() -> int:
    return utcnow().astimezone(CHINA_TZ).year


@pytest.fixture
def admin_client(client: Any, session: Session) -> Any:
    return signed_in_admin(client, session, "snap_admin")


def test_latest_year_with_data_counts_cases_licences_and_template_tables(session: Session) -> None:
    assert services.latest_year_with_data(session, 2026) == 2026  # nothing recorded: the current year
    world = build_world(session)
    import_csv(session, csv_text(case_rows(world)))
    assert services.latest_year_with_data(session, 2026) == YEAR
    services.save_template_table(session, SYSTEM, year=2030, table="4", values=EMPTY)
    assert services.latest_year_with_data(session, 2026) == YEAR  # a year still to come is not the default
    assert services.latest_year_with_data(session, 2030) == 2030


def test_dashboard_opens_on_the_year_of_the_licences_not_the_last_case_statistics(
    admin_client: Any, session: Session
) -> None:
    world = build_world(session)
    backdate(session, datetime(2025, 3, 1, tzinfo=UTC))
    import_csv(session, csv_text(case_rows(world)))  # case statistics for 2025 only
    make_types(session)
    staff = make_staff(session, "区人社局", "91000077", "snap_issuer")
    person_licence(session, staff)  # a licence recorded now, in the running year
    session.flush()
    html = admin_client.get("/admin/dashboard").get_data(as_text=True)
    assert f'name="year" type="number" min="2000" max="2100" value="{this_year()}"' in html


def test_preliminary_snapshot_only_for_the_running_year(session: Session) -> None:
    build_world(session)
    mid_year = datetime(2026, 6, 30, 4, 0, 0, 123456, tzinfo=UTC)
    with pytest.raises(Invalid, match="初步快照"):
        snapshot.create_snapshot(session, SYSTEM, 2026, now=mid_year)
    with pytest.raises(Invalid, match="已结束"):
        snapshot.create_snapshot(session, SYSTEM, 2025, now=mid_year, preliminary=True)
    with pytest.raises(Invalid, match="尚未开始"):
        snapshot.create_snapshot(session, SYSTEM, 2027, now=mid_year, preliminary=True)
    snap = snapshot.create_snapshot(session, SYSTEM, 2026, now=mid_year, preliminary=True)
    assert snap.as_of == mid_year.replace(microsecond=0)
    assert snap.payload["preliminary"] is True
    report = annual_report.build_report(session, 2026)
    assert report.preliminary
    assert "2026年06月30日12时00分" in report.as_of_line  # China time
    assert "初步统计数据" in annual_report.render_markdown(report)
    year_end = snapshot.create_snapshot(session, SYSTEM, 2025, now=mid_year)
    assert not annual_report.build_report(session, 2025).preliminary
    assert "preliminary" not in year_end.payload


def test_administrator_freezes_the_running_year_as_preliminary_from_the_ui(
    admin_client: Any, session: Session
) -> None:
    build_world(session)
    year = this_year()
    home = admin_client.get("/admin/reports/").get_data(as_text=True)
    assert f'action="/admin/reports/{year}/snapshot"' in home
    assert "冻结初步快照" in home
    response = admin_client.post(f"/admin/reports/{year}/snapshot")
    assert response.status_code == 303
    assert response.headers["Location"].endswith(f"/admin/reports/{year}")
    page = admin_client.get(f"/admin/reports/{year}").get_data(as_text=True)
    assert "年度尚未结束，本报告为初步统计数据" in page
    assert "初步" in admin_client.get("/admin/reports/").get_data(as_text=True)
    snap = snapshot.latest_snapshot(session, year)
    assert snap is not None
    assert snap.payload["preliminary"] is True


def test_administrator_freezes_any_finished_year_from_the_form(admin_client: Any, session: Session) -> None:
    build_world(session)
    response = admin_client.post("/admin/reports/snapshot", data={"year": "2019"})
    assert response.status_code == 303
    assert response.headers["Location"].endswith("/admin/reports/2019")
    snap = snapshot.latest_snapshot(session, 2019)
    assert snap is not None
    assert "preliminary" not in snap.payload
    for bad in ("abc", str(this_year() + 1), "1900"):
        refused = admin_client.post("/admin/reports/snapshot", data={"year": bad})
        assert refused.status_code == 303
        assert refused.headers["Location"].endswith("/admin/reports/")
    assert snapshot.latest_snapshot(session, this_year() + 1) is None


def test_freezing_is_for_administrators_only(client: Any, session: Session) -> None:
    assert client.post("/admin/reports/snapshot", data={"year": "2019"}).status_code == 401
    assert snapshot.latest_snapshot(session, 2019) is None


def test_a_freeze_refused_after_a_write_leaves_nothing_behind(
    admin_client: Any, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The refusal answers with a redirect (below 400, which commits the request's session): what the
    service wrote before refusing must be rolled back, not committed with it."""
    from core.audit import AuditLog, record

    session.commit()

    def writes_then_refuses(session: Any, actor: Any, year: int, **_: Any) -> Any:
        record(session, actor=actor, action="report.snapshot", entity_type="report_snapshot", entity_id=year)
        session.flush()
        raise Invalid("快照数据不完整")

    monkeypatch.setattr(snapshot, "create_snapshot", writes_then_refuses)
    before = session.exec(select(func.count()).select_from(AuditLog)).one()
    response = admin_client.post("/admin/reports/2019/snapshot")
    assert response.status_code == 303
    session.expire_all()
    assert session.exec(select(func.count()).select_from(AuditLog)).one() == before
