"""The migration that adds search_entry.item_id backfills it from the entries already indexed."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command

from tests.conftest import sqlite_at_revision

BEFORE, AFTER = "7b3e51d9a2c4", "b5d2e8f1a3c7"
NOW = "2026-01-01 00:00:00"


def test_backfill_copies_each_indexed_entrys_item(tmp_path: Path) -> None:
    cfg, engine = sqlite_at_revision(tmp_path, BEFORE)
    with engine.begin() as conn:
        conn.execute(sa.text(
            "INSERT INTO division (code, name, level) VALUES ('321203000000', '高港区', 'county')"
        ))
        conn.execute(sa.text(
            "INSERT INTO department (id, name, uscc, level, division_code, created_at)"
            " VALUES (1, '区局', '11321203MB0000000X', '4', '321203000000', :now)"
        ), {"now": NOW})
        conn.execute(sa.text(
            "INSERT INTO search_term (id, text, pinyin, initials) VALUES (1, '事项', '', '')"
        ))
        # Entry n implements item 10 + n; entry 3 is not indexed (a draft).
        for n in (1, 2, 3):
            conn.execute(sa.text(
                "INSERT INTO catalog_item (id, code, name, task_type, legal_basis, use_levels, county_only,"
                " created_at, updated_at) VALUES (:i, :code, '事项', '01', '', '4', false, :now, :now)"
            ), {"i": 10 + n, "code": f"00010100100{n}", "now": NOW})
            conn.execute(sa.text(
                "INSERT INTO implementation_entry (id, task_code, item_id, department_id, level,"
                " division_code, name, task_type, legal_basis, catalog_code, applicable, status, version,"
                " accept_conditions, anticipate_unit, promise_unit, project_type, visits, online_depth,"
                " result_delivery, keywords, no_contact, created_at, updated_at) VALUES (:n, :code, :i, 1,"
                " '4', '321203000000', '事项', '01', '', '000101001000', true, 'published', 1, '', 'working',"
                " 'working', '2', 0, '', '', '', false, :now, :now)"
            ), {"n": n, "i": 10 + n, "code": f"11321203MB0000000X4{n:012d}", "now": NOW})
        for n in (1, 2):
            conn.execute(sa.text(
                "INSERT INTO search_entry (entry_id, task_code, name, name_len, name_term_id, department_id,"
                " department_name, level, division_code, task_type, no_contact)"
                " VALUES (:n, :code, '事项', 2, 1, 1, '区局', '4', '321203000000', '01', false)"
            ), {"n": n, "code": f"11321203MB0000000X4{n:012d}"})
    command.upgrade(cfg, AFTER)
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT entry_id, item_id FROM search_entry ORDER BY entry_id")).all()
    assert [tuple(r) for r in rows] == [(1, 11), (2, 12)]
    command.downgrade(cfg, BEFORE)
    with engine.connect() as conn:
        columns = {c["name"] for c in sa.inspect(conn).get_columns("search_entry")}
    assert "item_id" not in columns
    engine.dispose()
