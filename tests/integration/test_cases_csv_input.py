"""`flask cases import` with files that are not what they should be: what cannot be read is named by
its line (never a traceback) and nothing is written; dates are YYYY-MM-DD only and in the range every
date of a case is held to, special procedures' included."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, select

from core.auth import SYSTEM
from core.errors import Invalid
from reports import cases
from reports.models import CaseRecord
from tests.factories.catalog import make_department, published_entry

TODAY = date(2026, 11, 30)
HEADER = "project_no,task_code,accept_date,channel,special_procedures\n"


def _refused(text: str) -> Invalid:
    with pytest.raises(Invalid) as caught:
        list(cases.read_csv_text(text))
    return caught.value


def test_a_field_over_the_csv_limit_is_named_by_its_line() -> None:
    refused = _refused(HEADER + "P-1,X,2026-03-02,online,\nP-2," + "长" * 140_000 + ",2026-03-02,online,\n")
    assert refused.details == {"第3行": ["有字段超过 131072 个字符（128 KB）的长度上限"]}


def test_a_column_given_twice_is_refused_instead_of_the_last_one_winning() -> None:
    header = "project_no,task_code,accept_date,channel,accept_date\n"
    refused = _refused(header + "P-1,X,2026-03-02,online,2026-03-03\n")
    assert refused.details == {"第1行": ["列 accept_date 出现了不止一次（每列只能有一个）"]}


def test_an_unclosed_quote_is_named_by_the_line_it_opens_on() -> None:
    refused = _refused(HEADER + 'P-1,"X,2026-03-02,online,\nP-2,X,2026-03-02,online,\n')
    assert list(refused.details) == ["第2行"]
    assert refused.details["第2行"][0].startswith("引号未闭合")


def test_a_row_running_over_two_lines_is_named_by_the_line_it_starts_on() -> None:
    rows = list(cases.read_csv_text(HEADER + 'P-1,X,2026-03-02,online,\n"P-\n2",X,2026-03-02,online,\n'))
    assert [line for line, _row in rows] == [2, 3]


@pytest.fixture
def task_code(session: Session) -> str:
    entry = published_entry(session, make_department(session, "区测试局"))
    session.flush()
    return str(entry.task_code)


def _problems(session: Session, text: str) -> dict[str, Any]:
    with pytest.raises(Invalid) as caught:
        cases.import_cases(session, SYSTEM, cases.read_csv_text(text), today=TODAY, source="csv")
    return caught.value.details


@pytest.mark.parametrize("written", ["20260302", "2026-W10-1"])
def test_a_date_not_written_yyyy_mm_dd_is_refused(session: Session, task_code: str, written: str) -> None:
    details = _problems(session, HEADER + f"P-1,{task_code},{written},online,\n")
    assert details == {"第2行": [f"受理日期 accept_date“{written}”不是日期（YYYY-MM-DD）"]}
    assert session.exec(select(CaseRecord)).first() is None


def test_special_procedure_dates_are_held_to_the_same_range_and_format(
    session: Session, task_code: str
) -> None:
    details = _problems(
        session,
        HEADER
        + f"P-1,{task_code},2026-03-02,online,2026-03-05/9999-12-31\n"
        + f"P-2,{task_code},2026-03-02,online,1999-12-31/\n"
        + f"P-3,{task_code},2026-03-02,online,20260305/20260306\n",
    )
    assert details == {
        "第2行": ["特别程序 special_procedures 9999-12-31 超出可处理的范围"],
        "第3行": ["特别程序 special_procedures 1999-12-31 超出可处理的范围"],
        "第4行": ["特别程序“20260305/20260306”应为 开始日期/结束日期（YYYY-MM-DD/YYYY-MM-DD，结束可空）"],
    }


def test_the_command_names_the_line_of_an_oversized_field_and_writes_nothing(
    app: Any, session: Session, task_code: str, tmp_path: Path
) -> None:
    path = tmp_path / "cases.csv"
    path.write_text(
        HEADER + f"P-1,{task_code},2026-03-02,online,\nP-2,{task_code},2026-03-02,online,{'长' * 140_000}\n",
        encoding="utf-8",
    )
    result = app.test_cli_runner().invoke(args=["cases", "import", str(path)])
    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit), result.exception
    assert "第3行：有字段超过 131072 个字符" in result.output
    assert session.exec(select(CaseRecord)).first() is None


@pytest.mark.parametrize("control", ["\x00", "\x1b"])
def test_a_control_character_in_a_value_is_refused_naming_its_line_and_column(control: str) -> None:
    refused = _refused(HEADER + f"P-1,X,2026-03-02,online,\nP-{control}2,X,2026-03-02,online,\n")
    assert refused.details == {"第3行": ["project_no：不能包含控制字符（如 NUL）或无效的 Unicode 字符"]}


def test_the_upload_of_a_file_with_a_nul_names_its_line_and_writes_nothing(
    client: Any, session: Session, task_code: str
) -> None:
    """PostgreSQL refuses NUL in text: the upload was a 500 (and `flask cases import` a traceback)."""
    import io

    from tests.factories.reports import signed_in_admin

    signed_in_admin(client, session, "nul_admin")
    text = HEADER + f"P-1,{task_code},2026-03-02,online,\nP-\x002,{task_code},2026-03-02,online,\n"
    response = client.post(
        "/admin/cases/import",
        data={"file": (io.BytesIO(text.encode()), "cases.csv")},
        content_type="multipart/form-data",
        follow_redirects=True,
    )
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "第3行" in html
    assert "未导入任何数据" in html
    assert session.exec(select(CaseRecord)).first() is None
