"""`flask search load-aliases` on PostgreSQL refuses a file the admin page would refuse, with the
file's line and no traceback, and writes none of it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa

from catalog.search_models import SearchAlias


def _aliases(app: Any) -> set[str]:
    with app.extensions["gaogang.db"].session() as s:
        return set(s.execute(sa.select(SearchAlias.alias)).scalars())


def test_a_file_with_an_alias_too_long_for_its_column_writes_nothing(app: Any, tmp_path: Path) -> None:
    before = _aliases(app)
    path = tmp_path / "aliases.csv"
    path.write_text(
        "# comment\nalias,targets,note\n蜂农,养蜂证,\n" + "长" * 300 + ",养蜂证,\n", encoding="utf-8"
    )
    result = app.test_cli_runner().invoke(args=["search", "load-aliases", "--file", str(path)])
    assert result.exit_code == 1
    assert "aliases.csv 第 4 行：alias：别名最多 50 个字符" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert _aliases(app) == before


def test_a_gbk_file_is_refused_without_a_traceback(app: Any, tmp_path: Path) -> None:
    path = tmp_path / "aliases.csv"
    path.write_bytes("alias,targets,note\n蜂农,养蜂证,\n".encode("gbk"))
    result = app.test_cli_runner().invoke(args=["search", "load-aliases", "--file", str(path)])
    assert result.exit_code == 1
    assert "不是 UTF-8 编码" in result.output
    assert isinstance(result.exception, SystemExit)
