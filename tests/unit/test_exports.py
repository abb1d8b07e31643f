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
