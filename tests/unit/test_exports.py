"""core.exports: the one place CSV and XLSX cells are neutralised."""

from __future__ import annotations

import csv
import io

import pytest
from openpyxl import load_workbook

from core.exports import csv_text, safe_cell, xlsx_bytes


@pytest.mark.parametrize("value", ["=1+1", "+1", "-1", "@A1", "\t=1", "\r=1", "＝1+1"])
def test_formula_like_text_gets_an_apostrophe(value: str) -> None:
    assert safe_cell(value) == "'" + value


@pytest.mark.parametrize("value", ["张三", "1+1", "a=b", "", 5, -5, 1.5])
def test_other_cells_are_unchanged(value: object) -> None:
    assert safe_cell(value) == value


def test_csv_text_neutralises_header_and_rows_and_keeps_the_bom() -> None:
    text = csv_text([["=cmd", None, -3]], header=["@h"])
    assert text.startswith("\ufeff")
    assert list(csv.reader(io.StringIO(text[1:]))) == [["'@h"], ["'=cmd", "", "-3"]]


def test_xlsx_keeps_text_as_text_and_numbers_as_numbers() -> None:
    data = xlsx_bytes("表/1", [["=HYPERLINK(\"http://x/\")", 7, -2]], header=["名称", "数", "差"])
    sheet = load_workbook(io.BytesIO(data)).active
    formula_like, number, negative = sheet[2]
    assert (formula_like.value, formula_like.data_type, formula_like.quotePrefix) == (
        '=HYPERLINK("http://x/")', "s", True,
    )
    assert (number.value, negative.value) == (7, -2)
    assert sheet.title == "表-1"


def test_xlsx_shows_control_characters_as_replacement_marks_instead_of_failing() -> None:
    # openpyxl refused the cell (IllegalCharacterError): the export of such a name was a 500.
    data = xlsx_bytes("表", [["受理\x1b窗口\x00", 1]])
    cell = load_workbook(io.BytesIO(data)).active["A1"]
    assert cell.value == "受理\ufffd窗口\ufffd"


def test_a_flashed_error_summary_stays_small_whatever_the_details() -> None:
    from core.errors import Invalid
    from core.web import error_summary

    error = Invalid("导入失败", {f"第{n}行": ["未知的实施编码 " + "X" * 1000] for n in range(2, 52)})
    summary = error_summary(error)
    assert len(summary.encode()) < 2500  # the session cookie must stay under a browser's 4 KB
    assert summary.startswith("导入失败。第2行：未知的实施编码 XXX")
    assert summary.endswith("等共 50 处")
    assert error_summary(Invalid("导入失败")) == "导入失败"
