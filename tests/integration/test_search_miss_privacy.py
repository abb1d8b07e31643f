"""Zero-result searches (search_miss) hold no personal data and are kept only for the retention period."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from catalog.search_models import SearchMiss
from catalog.search_retention import purge_search_misses
from core.config import Settings, SettingsError
from core.types import utcnow
from tests.factories.licences import id_number


def _misses(db: Any) -> dict[str, SearchMiss]:
    session = db.session()
    try:
        return {m.query: m for m in session.execute(sa.select(SearchMiss)).scalars()}
    finally:
        session.close()


def test_a_search_that_finds_nothing_is_stored_with_personal_data_masked(client: Any, db: Any) -> None:
    number = id_number(9)
    for q in (f"{number} 证明", "姓名：张三丰 证明", "13812345678 办理"):
        response = client.get("/api/v1/search", query_string={"q": q})
        assert response.status_code == 200
        assert response.get_json()["total"] == 0
    stored = " | ".join(_misses(db))
    assert stored  # the misses were recorded
    assert number not in stored
    assert number[:6] + "********" + number[-4:] in stored
    assert "张三丰" not in stored
    assert "张**" in stored
    assert "13812345678" not in stored
    assert "138****5678" in stored


def _add(session: Any, query: str, days_ago: int, count: int = 1) -> None:
    when = utcnow() - timedelta(days=days_ago)
    session.add(SearchMiss(query=query, count=count, first_seen=when, last_seen=when))
    session.flush()


def test_purge_deletes_misses_not_seen_within_the_retention_period(session: Any) -> None:
    _add(session, "潜水艇执照", days_ago=91)
    _add(session, "蜂农证", days_ago=89)
    _add(session, "护照加急", days_ago=0)
    result = purge_search_misses(session, retention_days=90)
    assert result.deleted == 1
    left = {m.query for m in session.execute(sa.select(SearchMiss)).scalars()}
    assert left == {"蜂农证", "护照加急"}


def test_purge_masks_rows_stored_before_masking_and_merges_rows_that_become_equal(session: Any) -> None:
    a = id_number(1, born="19800101")
    # Another person of the same area whose number ends the same way: equal once masked.
    b = next(n for y in range(1950, 2000) if (n := id_number(1, born=f"{y}0101"))[-4:] == a[-4:] and n != a)
    _add(session, a, days_ago=3, count=2)
    _add(session, b, days_ago=1, count=5)
    _add(session, "不动产登记", days_ago=2)
    result = purge_search_misses(session, retention_days=90)
    assert (result.deleted, result.masked) == (0, 2)
    rows = {m.query: m for m in session.execute(sa.select(SearchMiss)).scalars()}
    masked = a[:6] + "********" + a[-4:]
    assert set(rows) == {masked, "不动产登记"}
    assert rows[masked].count == 7


def test_the_purge_command_uses_the_configured_retention(app: Any, db: Any) -> None:
    session = db.session()
    _add(session, "旧的无结果搜索", days_ago=40)
    _add(session, "新的无结果搜索", days_ago=5)
    session.commit()
    session.close()
    runner = app.test_cli_runner()
    result = runner.invoke(args=["search", "purge-misses"])
    assert result.exit_code == 0, result.output
    assert set(_misses(db)) == {"旧的无结果搜索", "新的无结果搜索"}  # 90 days by default
    result = runner.invoke(args=["search", "purge-misses", "--days", "30"])
    assert result.exit_code == 0, result.output
    assert "已删除 1 条" in result.output
    assert set(_misses(db)) == {"新的无结果搜索"}


def test_the_retention_period_is_a_validated_setting(tmp_path: Path) -> None:
    env = {"INSTANCE_DIR": str(tmp_path), "SECRET_KEY": "x"}
    assert Settings.from_env(env).search_miss_retention_days == 90
    assert Settings.from_env({**env, "SEARCH_MISS_RETENTION_DAYS": "30"}).search_miss_retention_days == 30
    with pytest.raises(SettingsError, match="SEARCH_MISS_RETENTION_DAYS"):
        Settings.from_env({**env, "SEARCH_MISS_RETENTION_DAYS": "0"})
