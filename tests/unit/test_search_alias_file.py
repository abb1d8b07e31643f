"""The alias table file (`flask search load-aliases`) is held to the admin page's rules and is told
about with the file's own line numbers (its # comment lines counted)."""

from __future__ import annotations

from pathlib import Path

import pytest

from catalog.search.aliases import alias_values, read_aliases_csv
from core.errors import Invalid

COMMENTS = "# provenance, line 1\n# line 2\n# line 3\n"


def _file(tmp_path: Path, body: str, encoding: str = "utf-8") -> Path:
    path = tmp_path / "aliases.csv"
    path.write_bytes(body.encode(encoding))
    return path


def _refused(path: Path) -> str:
    with pytest.raises(Invalid) as caught:
        read_aliases_csv(path)
    return caught.value.message


def test_a_bad_row_after_comment_lines_is_named_by_its_line_in_the_file(tmp_path: Path) -> None:
    path = _file(tmp_path, COMMENTS + "alias,targets,note\n社保,社会保险,\n低保,,没有目标词\n")
    assert _refused(path) == (
        "aliases.csv 第 6 行：targets：请至少填写一个目标词（用 | 或逗号分隔），总长不超过 500 个字符"
    )


def test_an_alias_longer_than_its_column_is_refused_as_on_the_admin_page(tmp_path: Path) -> None:
    path = _file(tmp_path, "alias,targets,note\n社保,社会保险,\n" + "长" * 300 + ",社会保险,\n")
    assert _refused(path) == "aliases.csv 第 3 行：alias：别名最多 50 个字符"
    with pytest.raises(Invalid):
        alias_values("长" * 51, "社会保险")


def test_an_alias_of_only_symbols_says_it_normalises_to_nothing(tmp_path: Path) -> None:
    for word in ("😀", "_"):
        path = _file(tmp_path, f"alias,targets,note\n{word},社会保险,\n")
        assert _refused(path) == f"aliases.csv 第 2 行：alias：别名“{word}”只有标点、符号或表情，规范化后为空"


def test_a_misspelt_header_names_the_missing_column(tmp_path: Path) -> None:
    path = _file(tmp_path, COMMENTS + "alias,target,note\n社保,社会保险,\n")
    message = _refused(path)
    assert message.startswith("aliases.csv 第 4 行：缺少列：targets")
    assert "不认识的列：target" in message


def test_a_gbk_file_is_refused_naming_the_file_and_line(tmp_path: Path) -> None:
    path = _file(tmp_path, "alias,targets,note\n社保,社会保险,\n", encoding="gbk")
    assert _refused(path).startswith("aliases.csv：文件不是 UTF-8 编码（第 2 行起")


def test_a_field_over_the_csv_limit_is_refused_naming_the_line(tmp_path: Path) -> None:
    path = _file(tmp_path, COMMENTS + "alias,targets,note\n社保,社会保险," + "长" * 140_000 + "\n")
    assert _refused(path).startswith("aliases.csv 第 5 行：有字段超过 131072 个字符")


def test_a_control_character_in_the_note_and_an_alias_given_twice_are_refused(tmp_path: Path) -> None:
    path = _file(tmp_path, "alias,targets,note\n社保,社会保险,说\x00明\n")
    assert _refused(path) == "aliases.csv 第 2 行：note：不能包含控制字符（如 NUL）或无效的 Unicode 字符"
    path = _file(tmp_path, "alias,targets,note\n社保,社会保险,\n# comment\n社保 ,社保卡,\n")
    assert _refused(path) == "aliases.csv 第 4 行：别名“社保”与第 2 行重复"


def test_the_shipped_table_with_its_comment_lines_still_reads() -> None:
    rows = read_aliases_csv()
    assert rows[0] == {
        "alias": "社保",
        "targets": "社会保险|社保|社会保障卡|养老保险",
        "note": "社会保险的通称",
    }
