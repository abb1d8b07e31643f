"""On SQLite, a database with data goes down to base and back up to heads: the batch operations that
rebuild implementation_entry run with foreign keys off (migrations/env.py), so dropping the old table
that entry_version rows point at neither fails nor leaves ``_alembic_tmp_*`` behind."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import command

from core.db import make_engine
from tests.conftest import sqlite_at_revision

NOW = "2026-01-01 00:00:00"


def _tables(engine: sa.Engine) -> set[str]:
    with engine.connect() as conn:
        return {r[0] for r in conn.execute(sa.text("SELECT name FROM sqlite_master WHERE type = 'table'"))}


def test_downgrade_to_base_and_upgrade_again_with_data(tmp_path):
    cfg, engine = sqlite_at_revision(tmp_path, "heads")
    with engine.begin() as conn:
        conn.execute(sa.text(
            "INSERT INTO division (code, name, level) VALUES ('321203000000', '高港区', 'county')"
        ))
        conn.execute(sa.text(
            "INSERT INTO department (id, name, uscc, level, division_code, created_at)"
            " VALUES (1, '区局', '11321203MB0000000X', '4', '321203000000', :now)"
        ), {"now": NOW})
        conn.execute(sa.text(
            "INSERT INTO catalog_item (id, code, name, task_type, legal_basis, use_levels, county_only,"
            " created_at, updated_at) VALUES (1, '000101001001', '事项', '01', '', '4', false, :now, :now)"
        ), {"now": NOW})
        conn.execute(sa.text(
            "INSERT INTO implementation_entry (id, task_code, item_id, department_id, level, division_code,"
            " name, task_type, legal_basis, catalog_code, applicable, status, version, online_depth,"
            " keywords, no_contact, created_at, updated_at) VALUES (1, '11321203MB0000000X4000000000001',"
            " 1, 1, '4', '321203000000', '事项1', '01', '', '000101001001', true, 'published', 1, '1', '',"
            " true, :now, :now)"
        ), {"now": NOW})
        conn.execute(sa.text(
            "INSERT INTO entry_version (entry_id, version, status, snapshot, created_at)"
            " VALUES (1, 1, 'published', '{}', :now)"
        ), {"now": NOW})

    command.downgrade(cfg, "base")
    assert _tables(engine) == {"alembic_version"}

    command.upgrade(cfg, "heads")
    assert not {t for t in _tables(engine) if t.startswith("_alembic_tmp")}
    engine.dispose()
    # The application's connections still enforce foreign keys (the pragma is per connection).
    app_engine = make_engine(str(engine.url))
    with app_engine.connect() as conn:
        assert conn.execute(sa.text("PRAGMA foreign_keys")).scalar_one() == 1
    app_engine.dispose()


def test_migrations_restore_foreign_keys_on_the_connection_they_were_given(tmp_path):
    """A caller that hands env.py its own connection gets it back with foreign keys as they were."""
    cfg, engine = sqlite_at_revision(tmp_path, "heads")
    engine.dispose()
    app_engine = make_engine(str(engine.url))
    with app_engine.connect() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "base")
        assert conn.execute(sa.text("PRAGMA foreign_keys")).scalar_one() == 1
    app_engine.dispose()
