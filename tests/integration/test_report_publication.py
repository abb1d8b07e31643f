"""Published vs internal: the annual report a district publishes holds only what the template holds;
missing data, changes since the snapshot, the hash and the metric definitions go to an internal
appendix that only administrators can open.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlmodel import Session

from core import users
from core.auth import SYSTEM, Role
from reports import annual_report, metrics, snapshot
from tests.conftest import sign_in
from tests.factories.reports import (
    YEAR,
    backdate,
    build_world,
    case_rows,
    csv_text,
    import_csv,
    published_texts,
)

INTERNAL_MARKERS = ("缺少数据", "缺少的数据", "快照后的数据变动", "指标定义", "快照哈希", "管理员尚未填报")


@pytest.fixture
def changed_report(session: Session) -> tuple[annual_report.Report, dict[str, Any]]:
    """A 2025 report whose snapshot has missing figures and one case figure corrected afterwards."""
    world = build_world(session)
    backdate(session, datetime(2025, 3, 1, tzinfo=UTC))
    import_csv(session, csv_text(case_rows(world)))
    snapshot.create_snapshot(session, SYSTEM, YEAR)
    import_csv(session, csv_text([f"{world['e1'].task_code},2025-05,10,10,10,10"]))
    report = annual_report.build_report(session, YEAR)
    assert report.differences, "the fixture must produce a change since the snapshot"
    assert annual_report.missing_figures(report), "the fixture must leave figures missing"
    return report, world


def test_published_report_holds_no_internal_section_hash_or_definition(
    changed_report: tuple[annual_report.Report, dict[str, Any]],
) -> None:
    report, _world = changed_report
    formula = metrics.DEFINITIONS[0].formula
    for fmt, text in published_texts(report).items():
        assert report.hash not in text, fmt
        assert report.hash[:16] not in text, fmt
        for marker in INTERNAL_MARKERS:
            assert marker not in text, (fmt, marker)
        assert formula not in text, fmt
        assert "不见面率" in text, fmt  # the narrative is there
        assert "四、政府信息公开行政复议、行政诉讼情况" in text, fmt  # and the template tables


def test_internal_appendix_holds_missing_data_changes_hash_and_definitions(
    changed_report: tuple[annual_report.Report, dict[str, Any]],
) -> None:
    report, _world = changed_report
    missing = annual_report.missing_figures(report)
    for text in (annual_report.render_internal_markdown(report), annual_report.render_internal_html(report)):
        assert report.hash in text
        assert "内部附录（不公开）" in text
        for item in missing:
            assert item in text
        for d in report.differences:
            assert d.label in text
        for definition in metrics.DEFINITIONS:
            assert definition.label in text
    assert "| 办件总量 | 187 | 197 |" in annual_report.render_internal_markdown(report)


@pytest.fixture
def admin(session: Session) -> Any:
    return users.create_user(
        session,
        SYSTEM,
        users.NewUser(
            username="pub_admin", password="a-long-password-1", display_name="管理员", role=Role.ADMIN
        ),
    )[0]


def test_internal_appendix_is_its_own_page_and_download_for_administrators(
    client: Any, session: Session, admin: Any, changed_report: tuple[annual_report.Report, dict[str, Any]]
) -> None:
    report, world = changed_report
    assert client.get(f"/admin/reports/{YEAR}/internal").status_code == 401
    editor = users.create_user(
        session,
        SYSTEM,
        users.NewUser(
            username="pub_editor",
            password="a-long-password-1",
            display_name="编辑",
            role=Role.DEPT_EDITOR,
            department_id=world["d1"].id,
        ),
    )[0]
    session.flush()
    sign_in(client, editor.id)
    assert client.get(f"/admin/reports/{YEAR}/internal").status_code == 403
    assert client.get(f"/admin/reports/{YEAR}/internal.md").status_code == 403
    sign_in(client, admin.id)
    page = client.get(f"/admin/reports/{YEAR}").get_data(as_text=True)
    assert f"/admin/reports/{YEAR}/internal" in page
    assert report.hash not in page  # the report page shows the published document
    internal = client.get(f"/admin/reports/{YEAR}/internal")
    assert internal.status_code == 200
    assert report.hash in internal.get_data(as_text=True)
    for fmt in ("md", "html"):
        download = client.get(f"/admin/reports/{YEAR}/internal.{fmt}")
        assert download.status_code == 200
        assert f"-internal.{fmt}" in download.headers["Content-Disposition"]
        assert report.hash in download.get_data(as_text=True)
    assert client.get(f"/admin/reports/{YEAR}/internal.docx").status_code == 404
    published = client.get(f"/admin/reports/{YEAR}/report.md").get_data(as_text=True)
    assert report.hash not in published


def test_the_same_snapshot_builds_the_same_files_at_another_time(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The report is built from the frozen snapshot: building it again later (here: the ZIP writer's
    # clock a day on, as python-docx dates each DOCX member by it) gives byte-identical files.
    import time
    import types
    import zipfile

    build_world(session)
    snapshot.create_snapshot(session, SYSTEM, YEAR)

    def files(at: float) -> dict[str, bytes]:
        clock = types.SimpleNamespace(time=lambda: at, localtime=time.localtime)
        monkeypatch.setattr(zipfile, "time", clock)
        report = annual_report.build_report(session, YEAR)
        return {
            "docx": annual_report.render_docx(report),
            "html": annual_report.render_html(report).encode(),
            "md": annual_report.render_markdown(report).encode(),
        }

    today = time.time()
    assert files(today) == files(today + 86400)
