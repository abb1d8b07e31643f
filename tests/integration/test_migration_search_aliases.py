"""The aliases a new installation gets are the shipped table, and the migration that adds the tuning
half's aliases keeps an administrator's own row for the same word."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command

from catalog.search.aliases import read_aliases_csv
from tests.conftest import alembic_config, sqlite_at_revision

BEFORE, AFTER = "f8d3a6b2c4e1", "b9e2d4f7a315"


def _aliases(engine: sa.Engine) -> dict[str, tuple[str, str]]:
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT alias, targets, note FROM search_alias"))
        return {a: (t, n) for a, t, n in rows}


def _version(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.text("SELECT version FROM search_state WHERE id = 1")).scalar_one())


def test_a_new_installation_gets_exactly_the_shipped_alias_table(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    command.upgrade(alembic_config(url), "heads")
    shipped = {r["alias"]: (r["targets"], r["note"]) for r in read_aliases_csv()}
    assert _aliases(sa.create_engine(url)) == shipped


def test_an_administrators_row_for_the_same_word_is_kept_and_the_cache_token_changes(tmp_path: Path) -> None:
    cfg, engine = sqlite_at_revision(tmp_path, BEFORE)
    with engine.begin() as conn:
        conn.execute(sa.text(
            "INSERT INTO search_alias (alias, targets, note, updated_at)"
            " VALUES ('滴滴', '出租汽车', '管理员自己写的', '2026-01-01 00:00:00')"
        ))
    before = _version(engine)
    command.upgrade(cfg, AFTER)
    rows = _aliases(engine)
    assert rows["滴滴"] == ("出租汽车", "管理员自己写的")
    assert rows["叉车"][0] == "特种设备作业人员"
    assert _version(engine) != before
    command.downgrade(cfg, BEFORE)
    rows = _aliases(engine)
    assert "叉车" not in rows
    assert rows["滴滴"] == ("出租汽车", "管理员自己写的")
