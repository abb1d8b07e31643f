"""Hostile upper-level catalogue files (`flask catalog import-basic`, catalog/upper.py): each is refused
with its file and line in Chinese, never a traceback, and nothing of it is written."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select

from catalog.models import UpperCatalogItem
from catalog.upper import import_basic_catalogue, import_no_contact_list
from core.auth import SYSTEM
from core.errors import Invalid

HEADER = "基本编码,名称,事项类型,设定依据,行使层级,主管部门\n"


def _import(app: Any, path: Path, *extra: str) -> Any:
    return app.test_cli_runner().invoke(
        args=["catalog", "import-basic", str(path), "--level", "city", *extra]
    )


def _uppers(app: Any) -> list[str]:
    with app.extensions["gaogang.db"].session() as s:
        return [u.code for u in s.exec(select(UpperCatalogItem))]


def test_a_control_character_in_a_value_is_refused_naming_its_line_and_column(
    app: Any, tmp_path: Path
) -> None:
    path = tmp_path / "city.csv"
    path.write_text(
        "# 测试数据\n" + HEADER + "000104002000,好事项,01,,,\n000104002001,坏\x00事项,01,依据\x1b[31m,2,\n",
        encoding="utf-8",
    )
    result = _import(app, path)
    assert result.exit_code == 2, result.output
    assert "第 4 行：名称、设定依据：不能包含控制字符" in result.output
    assert "第 3 行" not in result.output
    assert _uppers(app) == []


def test_a_control_character_in_the_provenance_is_refused(app: Any, tmp_path: Path) -> None:
    path = tmp_path / "city.csv"
    path.write_text("# 来源\x00说明\n" + HEADER + "000104002000,好事项,01,,,\n", encoding="utf-8")
    result = _import(app, path)
    assert result.exit_code == 1
    assert "city.csv 第 1 行（来源注释）：不能包含控制字符" in result.output
    assert isinstance(result.exception, SystemExit)
    plain = tmp_path / "plain.csv"
    plain.write_text(HEADER + "000104002000,好事项,01,,,\n", encoding="utf-8")
    result = _import(app, plain, "--provenance", "来源\x1b说明")
    assert result.exit_code == 1
    assert "来源说明不能包含控制字符" in result.output
    assert _uppers(app) == []


def test_a_column_named_twice_is_refused_instead_of_taking_the_last(any_session: Any, tmp_path: Path) -> None:
    path = tmp_path / "dup.csv"
    path.write_text("# 测试\n基本编码,名称,事项类型,名称\n000104002000,甲,01,乙\n", encoding="utf-8")
    with pytest.raises(Invalid, match=r"dup\.csv 第 2 行（表头）：列 名称 出现了不止一次"):
        import_basic_catalogue(any_session, SYSTEM, path, level="2")
    assert any_session.exec(select(UpperCatalogItem)).all() == []


def test_a_task_type_of_a_superscript_digit_is_refused_not_a_traceback(
    any_session: Any, tmp_path: Path
) -> None:
    path = tmp_path / "sup.csv"
    path.write_text("# 测试\n基本编码,名称,事项类型\n000104002000,甲,²\n", encoding="utf-8")
    with pytest.raises(Invalid) as refused:
        import_no_contact_list(any_session, SYSTEM, path)
    assert refused.value.details["lines"][0].startswith("第 3 行：事项类型“²”无效")


def test_a_gbk_file_and_an_over_long_line_are_named_by_line_in_chinese(app: Any, tmp_path: Path) -> None:
    gbk = tmp_path / "gbk.csv"
    gbk.write_bytes(("# 测试\n" + HEADER + "000104002000,好事项,01,,,\n").encode("gbk"))
    result = _import(app, gbk)
    assert "gbk.csv：文件不是 UTF-8 编码（第 1 行起" in result.output
    assert "file:" not in result.output
    huge = tmp_path / "huge.csv"
    huge.write_text("# 测试\n" + HEADER + "000104002000," + "长" * 200_000 + ",01,,,\n", encoding="utf-8")
    result = _import(app, huge)
    assert result.exit_code == 2
    assert "第 3 行：有字段超过 131072 个字符" in result.output
    assert _uppers(app) == []


def test_a_provenance_longer_than_its_column_is_refused_not_cut(any_session: Any, tmp_path: Path) -> None:
    path = tmp_path / "long.csv"
    path.write_text("# " + "来" * 1001 + "\n" + HEADER + "000104002000,好事项,01,,,\n", encoding="utf-8")
    with pytest.raises(Invalid, match="来源说明共 1001 个字符，超过 1000 个字符"):
        import_basic_catalogue(any_session, SYSTEM, path, level="3")


def test_the_same_file_twice_changes_nothing_the_second_time(app: Any, tmp_path: Path) -> None:
    path = tmp_path / "city.csv"
    path.write_text("# 测试\n" + HEADER + "000104002000,好事项,01,《条例》,2、3,市发改委\n", encoding="utf-8")
    assert "新增 1" in _import(app, path).output
    again = _import(app, path)
    assert again.exit_code == 0
    assert "新增 0，更新 0，未变 1" in again.output
    assert _uppers(app) == ["000104002000"]
