"""`flask catalog load-divisions --towns/--villages/--counties` with files that are not what they should
be: each is refused naming the file and line, on both databases, and nothing of the file is written
(no traceback, no unit stored under the wrong parent, no second record of a code silently dropped)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlmodel import Session, func, select

from catalog.divisions import GAOGANG_FILES, load_divisions_csv
from catalog.models import Division
from core.errors import Invalid

TOWNS = GAOGANG_FILES[0]
VILLAGE_HEADER = "code12,name,village_type,town_code9,town_code12,town_name\n"


def _village(code: str, name: str, town: str = "321203001000") -> str:
    return f"{code},{name},居委会,{town[:9]},{town},口岸街道\n"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", r"villages\.csv：文件为空"),
        ("code12,name\n321203001999,甲\n", r"villages\.csv 第 1 行（表头）：缺少列：town_code12"),
        (VILLAGE_HEADER + _village("321203001999", "长" * 101), "第 2 行: 区划 321203001999 的名称超过"),
        (VILLAGE_HEADER + _village("321203001999", "坏\x01名"), r"villages\.csv有 1 行无法读取"),
        (
            VILLAGE_HEADER + _village("321203001999", "甲") + _village("321203001999", "乙"),
            "第 3 行: 区划代码 321203001999 重复且内容不同（甲 / 乙）",
        ),
        (
            VILLAGE_HEADER + _village("321203001999", "丙", town="321203001001"),
            "第 2 行: 区划 321203001999 丙 的上级 321203001001 不是其上一级区划",
        ),
        (VILLAGE_HEADER + _village("321203001000", "丁"), "第 2 行: 区划 321203001000 丁 的上级"),
        (VILLAGE_HEADER + _village("３２１２０３００１９９９", "戊"), "第 2 行: 区划代码 '３２１２"),
    ],
)
def test_a_bad_division_file_is_refused_naming_its_line_and_writes_nothing(
    any_session: Session, tmp_path: Path, text: str, message: str
) -> None:
    villages = tmp_path / "villages.csv"
    villages.write_text(text, encoding="utf-8")
    before = any_session.exec(select(func.count()).select_from(Division)).one()
    with pytest.raises(Invalid, match=message):
        load_divisions_csv(any_session, TOWNS, villages)
    assert any_session.exec(select(func.count()).select_from(Division)).one() == before


def test_load_divisions_with_a_gbk_or_short_town_file_says_so_without_a_traceback(app, tmp_path) -> None:
    runner = app.test_cli_runner()
    gbk = tmp_path / "towns.csv"
    gbk.write_bytes(TOWNS.read_text(encoding="utf-8").encode("gbk"))
    result = runner.invoke(args=["catalog", "load-divisions", "--towns", str(gbk)])
    assert result.exit_code == 1
    assert "towns.csv：文件不是 UTF-8 编码（第 2 行起" in result.output
    short = tmp_path / "short.csv"
    short.write_text(TOWNS.read_text(encoding="utf-8").splitlines()[0] + "\n321203001000,321203001\n")
    result = runner.invoke(args=["catalog", "load-divisions", "--towns", str(short)])
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "short.csv 第 2 行" in result.output
