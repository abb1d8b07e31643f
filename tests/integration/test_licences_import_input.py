"""`flask licences import` on PostgreSQL with files that are not what they should be: each is told in
Chinese with its line (never a traceback), a bad row is left out while the good rows of its chunk
import, and a file that cannot be read as a whole writes nothing."""

from __future__ import annotations

import json
from datetime import date

import pytest
from sqlmodel import func, select

from licenses.models import Licence
from licenses.types import parse_date
from tests.factories.licences import PERSON_TYPE, id_number, make_staff, make_types

HEADER = "type_code,holder_name,holder_code,number,issue_date,face\n"
FACE = '"' + json.dumps({"gender": "女"}, ensure_ascii=False).replace('"', '""') + '"'


@pytest.fixture
def issuer(db, app):
    with db.transaction() as session:
        make_types(session)
        staff = make_staff(session, "高港区行政审批局", "MB158001", "clerk_a")
    return staff.department


def _row(seq: int, name: str = "李娜", face: str = FACE, issued: str = "2017-03-01") -> str:
    return f"{PERSON_TYPE},{name},{id_number(seq)},ZG{seq:07d},{issued},{face}\n"


def _import(app, issuer, path):
    result = app.test_cli_runner().invoke(args=["licences", "import", str(path), "--department", issuer.uscc])
    # A clean refusal is click's exit (SystemExit), never an exception escaping the command.
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    assert "Traceback" not in result.output
    return result


def _count(db) -> int:
    with db.transaction() as session:
        return session.exec(select(func.count()).select_from(Licence)).one()


def test_a_gbk_file_is_refused_naming_the_line_and_nothing_is_imported(app, db, issuer, tmp_path):
    path = tmp_path / "gbk.csv"
    path.write_bytes((HEADER + _row(1, face="")).encode("gbk"))
    result = _import(app, issuer, path)
    assert result.exit_code == 1
    assert "不是 UTF-8 编码" in result.output
    assert "第 2 行" in result.output
    assert _count(db) == 0


def test_a_gbk_line_late_in_the_file_is_refused_before_any_chunk_is_written(app, db, issuer, tmp_path):
    path = tmp_path / "late.csv"
    good = "".join(_row(seq) for seq in range(1, 151))  # more than one chunk of 100 before the bad line
    path.write_bytes((HEADER + good).encode() + _row(151, name="王芳").encode("gbk"))
    result = app.test_cli_runner().invoke(
        args=["licences", "import", str(path), "--department", issuer.uscc, "--chunk", "100"]
    )
    assert result.exit_code == 1, result.output
    assert "第 152 行" in result.output
    assert _count(db) == 0


def test_a_nul_in_a_field_refuses_that_row_and_keeps_the_good_rows_of_its_chunk(app, db, issuer, tmp_path):
    path = tmp_path / "nul.csv"
    path.write_text(HEADER + _row(1) + _row(2, name="王\x00芳") + _row(3), encoding="utf-8")
    result = _import(app, issuer, path)
    assert result.exit_code == 1
    assert "第 3 行：holder_name：不能包含控制字符" in result.output
    assert "导入 2 张" in result.output
    assert _count(db) == 2


def test_a_control_character_escaped_in_the_face_json_is_refused_too(app, db, issuer, tmp_path):
    path = tmp_path / "escaped.csv"
    face = '"{""gender"": ""女"", ""work_type"": ""电工\\u0000""}"'
    path.write_text(HEADER + _row(1, face=face) + _row(2), encoding="utf-8")
    result = _import(app, issuer, path)
    assert "第 2 行：face：不能包含控制字符" in result.output
    assert _count(db) == 1


def test_invalid_face_json_is_called_invalid_json(app, db, issuer, tmp_path):
    path = tmp_path / "face.csv"
    path.write_text(HEADER + _row(1, face='"{""gender"": 女}"') + _row(2), encoding="utf-8")
    result = _import(app, issuer, path)
    assert "第 2 行：face：照面信息不是有效的 JSON" in result.output
    assert "__invalid_json__" not in result.output
    assert _count(db) == 1


def test_a_field_over_the_csv_limit_refuses_its_row_with_the_line(app, db, issuer, tmp_path):
    path = tmp_path / "long.csv"
    path.write_text(HEADER + _row(1) + _row(2, name="长" * 140_000) + _row(3), encoding="utf-8")
    result = _import(app, issuer, path)
    assert result.exit_code == 1
    assert "第 3 行：有字段超过 131072 个字符" in result.output
    assert _count(db) == 2


def test_an_unclosed_quote_is_named_with_the_line_it_opens_on(app, db, issuer, tmp_path):
    path = tmp_path / "quote.csv"
    # The quote opened on line 3 is never closed: the csv module reads line 4 into the same field.
    path.write_text(HEADER + _row(1) + _row(2, name='"王芳', face="") + _row(3, face=""), encoding="utf-8")
    result = _import(app, issuer, path)
    assert "第 3 行：引号未闭合" in result.output
    assert _count(db) == 1


def test_a_header_with_a_column_twice_is_refused_naming_it(app, db, issuer, tmp_path):
    path = tmp_path / "twice.csv"
    path.write_text(
        "type_code,holder_name,holder_code,holder_name\n" f"{PERSON_TYPE},李娜,{id_number(1)},王芳\n",
        encoding="utf-8",
    )
    result = _import(app, issuer, path)
    assert result.exit_code == 1
    assert "holder_name 出现了不止一次" in result.output
    assert _count(db) == 0


def test_a_date_not_written_yyyy_mm_dd_is_refused_in_the_file_and_by_the_services(app, db, issuer, tmp_path):
    path = tmp_path / "dates.csv"
    path.write_text(HEADER + _row(1, issued="20170301") + _row(2, issued="2017-W10-1"), encoding="utf-8")
    result = _import(app, issuer, path)
    assert "第 2 行：issue_date: 日期格式应为 YYYY-MM-DD" in result.output
    assert "第 3 行：issue_date: 日期格式应为 YYYY-MM-DD" in result.output
    assert _count(db) == 0
    errors: dict[str, list[str]] = {}
    assert parse_date("2017-03-01", "d", errors) == date(2017, 3, 1)
    assert parse_date("20170301", "d", errors) is None
    assert errors == {"d": ["日期格式应为 YYYY-MM-DD"]}
