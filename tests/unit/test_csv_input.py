"""core.csv_input, the one reader of operators' CSV files: the file's own line numbers, what cannot be
read told in Chinese, and line ends as ``open(newline="")`` splits them."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from core.csv_input import Record, header_problems, parse_iso_date, records, utf8_lines
from core.errors import Invalid


def _records(tmp_path: Path, data: bytes, comments: bool = False) -> list[Record]:
    """The records of a file holding ``data`` (a Record compares equal to the plain tuple)."""
    path = tmp_path / "f.csv"
    path.write_bytes(data)
    return list(records(utf8_lines(path), comments=comments))


def test_records_start_on_the_files_own_lines(tmp_path: Path) -> None:
    data = '\ufeff# note\na,b\n\n# between\nx,"1\n2"\ny,3\n'.encode()
    assert _records(tmp_path, data, comments=True) == [
        (2, ["a", "b"], None),
        (5, ["x", "1\n2"], None),
        (7, ["y", "3"], None),
    ]


def test_old_mac_line_ends_still_read(tmp_path: Path) -> None:
    assert _records(tmp_path, b'a,b\rc,d\r"e\rf",g\r') == [
        (1, ["a", "b"], None),
        (2, ["c", "d"], None),
        (3, ["e\rf", "g"], None),
    ]


def test_what_cannot_be_read_is_said_with_its_line(tmp_path: Path) -> None:
    too_long = b"a,b\nx," + "长".encode() * 140_000 + b"\ny,1\n"
    assert _records(tmp_path, too_long) == [
        (1, ["a", "b"], None),
        (2, [], "有字段超过 131072 个字符（128 KB）的长度上限"),
        (3, ["y", "1"], None),
    ]
    unclosed = b'a,b\nx,"1\ny,2\n'
    assert _records(tmp_path, unclosed)[1] == (
        2,
        [],
        "引号未闭合：第 2 行开始的带引号字段到文件末尾也没有结束",
    )
    path = tmp_path / "gbk.csv"
    path.write_bytes("a,b\n\r\n名,称\n".encode("gbk"))
    with pytest.raises(Invalid, match=r"^gbk\.csv：文件不是 UTF-8 编码（第 3 行起"):
        list(utf8_lines(path))


def test_a_header_is_checked_for_columns_twice_missing_and_unknown() -> None:
    assert header_problems(["a", "b", "a", "", ""], ["a", "c"], ["a", "b"]) == [
        "缺少列：c",
        "不认识的列：",
        "列 a 出现了不止一次（每列只能有一个）",
    ]
    assert header_problems(["a", "b"], ["a"]) == []


@pytest.mark.parametrize(
    "text", ["20260302", "2026-W10-1", "2026-3-2", "２０２６-03-02", " 2026-03-02", "2026-02-30"]
)
def test_dates_are_yyyy_mm_dd_only(text: str) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - only the refusal matters, as to its callers
        parse_iso_date(text)
    assert parse_iso_date("2026-03-02") == date(2026, 3, 2)
