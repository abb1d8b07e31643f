"""`flask catalog import-items` with files that are not what they should be: a row's odd type code is
that row's error (never a traceback), a header naming a column twice is refused, and a department's
USCC failing its check character is imported as before but said."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlmodel import select

from catalog.codes import make_uscc
from catalog.importer import import_items_csv, read_uscc_map
from catalog.models import Department, ImplementationEntry
from core.errors import Invalid
from tests.factories.catalog import seed_divisions

HEADER = "seq,item_name,item_type,task_type_code,department,basic_code\n"
USCCS = {"区甲局": make_uscc("11321203", "71000001"), "区乙局": make_uscc("11321203", "71000002")}


def _write(tmp_path: Path, text: str, name: str = "items.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("code", ["²", "١", "①"])
def test_a_type_code_of_non_ascii_digits_is_that_rows_error(any_session, tmp_path, code):
    seed_divisions(any_session)
    rows = f"1,坏类型,行政许可,{code},区甲局,SRC-1\n2,好事项,行政许可,1,区乙局,SRC-2\n"
    path = _write(tmp_path, HEADER + rows)
    report = import_items_csv(any_session, path, "321203", progress=False, department_usccs=USCCS)
    assert report.errors == [(2, f"事项类型代码 {code!r} 无效")]
    assert report.created == 1


@pytest.mark.parametrize("control", ["\x00", "\x1b"])
def test_a_control_character_in_a_row_is_that_rows_error_on_both_databases(any_session, tmp_path, control):
    """NUL was stored on SQLite and, on PostgreSQL, reported only as “数据库拒绝：DataError”."""
    seed_divisions(any_session)
    rows = f"1,坏{control}事项,行政许可,1,区甲局,SRC-1\n2,好事项,行政许可,1,区乙局,SRC-2\n"
    report = import_items_csv(any_session, _write(tmp_path, HEADER + rows), "321203", progress=False,
                              department_usccs=USCCS)
    assert report.errors == [(2, "item_name：不能包含控制字符（如 NUL）或无效的 Unicode 字符")]
    assert report.created == 1


def test_a_header_naming_a_column_twice_is_refused_naming_it(any_session, tmp_path):
    seed_divisions(any_session)
    path = _write(
        tmp_path,
        "seq,item_name,item_type,task_type_code,department,basic_code,item_name\n"
        "1,事项甲,行政许可,1,区甲局,SRC-1,事项乙\n",
    )
    with pytest.raises(Invalid, match="列 item_name 出现了不止一次"):
        import_items_csv(any_session, path, "321203", progress=False, department_usccs=USCCS)
    assert any_session.exec(select(ImplementationEntry)).first() is None


def test_a_gbk_file_and_a_field_over_the_csv_limit_are_told_with_their_line(any_session, tmp_path):
    seed_divisions(any_session)
    gbk = tmp_path / "gbk.csv"
    gbk.write_bytes((HEADER + "1,事项,行政许可,1,区甲局,SRC-1\n").encode("gbk"))
    with pytest.raises(Invalid, match=r"gbk\.csv：文件不是 UTF-8 编码（第 2 行起"):
        import_items_csv(any_session, gbk, "321203", progress=False, department_usccs=USCCS)
    huge = "长" * 140_000
    long = _write(tmp_path, HEADER + f"1,事项,行政许可,1,区甲局,SRC-1\n2,{huge},行政许可,1,区乙局,SRC-2\n")
    report = import_items_csv(any_session, long, "321203", progress=False, department_usccs=USCCS)
    assert [line for line, _ in report.errors] == [3]
    assert "有字段超过 131072 个字符" in report.errors[0][1]
    assert report.created == 1


def test_a_mapping_file_in_gbk_or_with_a_column_twice_is_refused_naming_it(tmp_path):
    path = tmp_path / "map.csv"
    path.write_bytes(f"# 说明\ndepartment,uscc\n区甲局,{USCCS['区甲局']}\n".encode("gbk"))
    with pytest.raises(Invalid, match=r"map\.csv：文件不是 UTF-8 编码（第 1 行起"):
        read_uscc_map(path)
    path.write_text(f"department,uscc,uscc\n区甲局,{USCCS['区甲局']},x\n", encoding="utf-8")
    with pytest.raises(Invalid, match="列 uscc 出现了不止一次"):
        read_uscc_map(path)


def test_a_uscc_failing_its_check_character_is_imported_and_printed_as_a_warning(app, session, tmp_path):
    runner = app.test_cli_runner()
    runner.invoke(args=["catalog", "load-divisions"])
    good = USCCS["区甲局"]
    wrong = good[:17] + ("0" if good[17] != "0" else "1")  # the shape holds; the check character not
    path = _write(tmp_path, HEADER + "1,事项一,行政许可,1,区甲局,SRC-1\n2,事项二,行政许可,1,区甲局,SRC-2\n")
    mapping = _write(tmp_path, f"department,uscc\n区甲局,{wrong}\n", name="usccs.csv")
    result = runner.invoke(
        args=["catalog", "import-items", str(path), "--uscc-map", str(mapping), "--no-progress"]
    )
    assert result.exit_code == 0, result.output
    assert "第 2 行：警告：实施部门“区甲局”的统一社会信用代码校验未通过" in result.output
    assert result.output.count("警告") == 1  # said once, where the department is created
    assert "新建实施清单 2" in result.output
    session.expire_all()
    dept = session.exec(select(Department).where(Department.name == "区甲局")).one()
    assert dept.uscc == wrong
    assert dept.uscc_warning
