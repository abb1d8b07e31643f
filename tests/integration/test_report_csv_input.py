"""The reports' own CSV files (monthly case statistics: `flask reports import-cases` and the upload on
/admin/reports/; entered figures: `flask reports load-figures`) read as every other operator's file
(core.csv_input): what cannot be read is named by its line, never a traceback or a 500, a column named
twice is refused, and nothing is written."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, select

from core.errors import Invalid
from reports import entered_figures, services
from reports.models import CaseStat, EnteredFigure
from tests.factories.reports import signed_in_admin

STATS_HEADER = "task_code,month,received,online,finished,on_time\n"
TWICE_HEADER = "task_code,month,received,online,finished,on_time,received\n"
LONG = "1" * 140_000
FIGURES_HEADER = "key,value,unit,scope,section,note\n"


@pytest.mark.parametrize(
    ("text", "where", "problem"),
    [
        (STATS_HEADER + f"X,2025-01,{LONG},0,0,0\n", "第2行", "有字段超过 131072 个字符"),
        (STATS_HEADER + 'X,2025-01,"1,0,0,0\n', "第2行", "引号未闭合"),
        (STATS_HEADER + "X\x00,2025-01,1,0,0,0\n", "第2行", "task_code：不能包含控制字符"),
        (TWICE_HEADER + "X,2025-01,1,0,0,0,5\n", "第1行", "列 received 出现了不止一次"),
    ],
)
def test_a_case_statistics_line_that_cannot_be_read_is_named(text: str, where: str, problem: str) -> None:
    with pytest.raises(Invalid) as caught:
        services.read_case_csv(text)
    assert list(caught.value.details) == [where]
    assert caught.value.details[where][0].startswith(problem)


def test_the_case_statistics_upload_names_an_oversized_field_instead_of_a_500(
    client: Any, session: Session
) -> None:
    signed_in_admin(client, session, "stats_admin")
    text = STATS_HEADER + "X,2025-01," + "1" * 140_000 + ",0,0,0\n"
    response = client.post(
        "/admin/reports/case-stats",
        data={"year": "2025", "file": (io.BytesIO(text.encode()), "stats.csv")},
        content_type="multipart/form-data",
        follow_redirects=True,
    )
    assert response.status_code == 200
    assert "第2行：有字段超过 131072 个字符" in response.get_data(as_text=True)
    assert session.exec(select(CaseStat)).first() is None


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (FIGURES_HEADER + f"report_period_start,{LONG},date,,preface,\n", "第2行：有字段超过 131072"),
        (FIGURES_HEADER + "report_period_start,2018-01-01,date,,,\x00\n", "第2行：note：不能包含控制字符"),
        (FIGURES_HEADER + "report_period_start,2018-W10-1,date,,preface,\n", "“2018-W10-1”不是日期"),
        (FIGURES_HEADER + "report_period_start,20180101,date,,preface,\n", "“20180101”不是日期"),
        ("key,value,unit,value\nreport_period_start,2018-01-01,date,2018-12-31\n", "列 value 出现了不止一次"),
    ],
)
def test_a_figures_file_line_that_cannot_be_taken_is_named_and_nothing_is_entered(
    app: Any, session: Session, tmp_path: Path, text: str, problem: str
) -> None:
    path = tmp_path / "figures.csv"
    path.write_text(text, encoding="utf-8")
    result = app.test_cli_runner().invoke(args=["reports", "load-figures", str(path), "--year", "2018"])
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit), result.exception
    assert problem in result.output
    assert session.exec(select(EnteredFigure)).all() == []


def test_the_figures_reader_keeps_lines_shorter_than_the_header() -> None:
    rows = entered_figures.read_figures_csv(FIGURES_HEADER + "report_period_start,2018-01-01,date\n\n")
    assert rows == [
        (2, {"key": "report_period_start", "value": "2018-01-01", "unit": "date", "scope": "",
             "section": "", "note": ""})
    ]


@pytest.mark.parametrize("count", ["１", "\u0661", "1_000", "+1"])
def test_a_count_that_is_not_plain_digits_is_refused(session: Session, count: str) -> None:
    # int() reads fullwidth and Arabic-Indic digits and underscores: a figure nobody typed as such.
    rows = [{"task_code": "X", "month": "2025-01", "received": count, "online": "0", "finished": "0",
             "on_time": "0"}]
    with pytest.raises(Invalid) as caught:
        services.parse_case_rows(session, rows, 2025)
    assert "不是整数" in str(caught.value.details)
