"""The migration that adds the 不见面 elements backfills the derived class and depth level of existing
entries with its own copy of the rules (unknown 办理形式 is never 不见面)."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import command

from tests.conftest import sqlite_at_revision

BEFORE, AFTER = "0974e69fbf2d", "a7c3e9d1f402"
NOW = "2026-01-01 00:00:00"


def _entry(conn: sa.Connection, n: int, visits: int, depth: str, task_type: str = "01") -> None:
    conn.execute(sa.text(
        "INSERT INTO implementation_entry (id, task_code, item_id, department_id, level, division_code,"
        " name, task_type, legal_basis, catalog_code, applicable, status, version, accept_conditions,"
        " anticipate_unit, promise_unit, project_type, visits, online_depth, result_delivery, keywords,"
        " no_contact, created_at, updated_at) VALUES (:n, :code, :n, 1, '4', '321203000000', :name, :tt,"
        " '', '000101001000', true, 'published', 1, '', 'working', 'working', '2', :v, :d, 'online,post',"
        " '', true, :now, :now)"
    ), {"n": n, "code": f"11321203MB0000000X4{n:012d}", "name": f"事项{n}", "tt": task_type, "v": visits,
        "d": depth, "now": NOW})


def test_backfill_derives_class_and_depth(tmp_path):
    cfg, engine = sqlite_at_revision(tmp_path, BEFORE)
    with engine.begin() as conn:
        conn.execute(sa.text(
            "INSERT INTO division (code, name, level) VALUES ('321203000000', '高港区', 'county')"
        ))
        conn.execute(sa.text(
            "INSERT INTO department (id, name, uscc, level, division_code, created_at)"
            " VALUES (1, '区局', '11321203MB0000000X', '4', '321203000000', :now)"
        ), {"now": NOW})
        for n in (1, 2, 3):
            conn.execute(sa.text(
                "INSERT INTO catalog_item (id, code, name, task_type, legal_basis, use_levels, county_only,"
                " created_at, updated_at) VALUES (:n, :code, '事项', '01', '', '4', false, :now, :now)"
            ), {"n": n, "code": f"00010100100{n}", "now": NOW})
        _entry(conn, 1, 0, "1,2,3,4,5,6")
        _entry(conn, 2, 1, "1,2")
        _entry(conn, 3, 0, "")
        conn.execute(sa.text(
            "INSERT INTO search_term (id, text, pinyin, initials) VALUES (1, '事项1', '', '')"
        ))
        conn.execute(sa.text(
            "INSERT INTO search_entry (entry_id, task_code, name, name_len, name_term_id, department_id,"
            " department_name, level, division_code, task_type, no_contact)"
            " VALUES (1, '11321203MB0000000X4000000000001', '事项1', 3, 1, 1, '区局', '4', '321203000000',"
            " '01', true)"
        ))
    command.upgrade(cfg, AFTER)
    with engine.connect() as conn:
        rows = conn.execute(sa.text(
            "SELECT id, no_contact_class, depth_level, handle_forms FROM implementation_entry ORDER BY id"
        )).all()
        search_depth = conn.execute(sa.text("SELECT depth_level FROM search_entry")).scalar_one()
    # 办理形式 was never recorded: no entry is 不见面 by the rule until someone records it.
    assert [tuple(r) for r in rows] == [(1, "none", 4, None), (2, "none", 2, None), (3, "none", None, None)]
    assert search_depth == 4
    command.downgrade(cfg, BEFORE)
    engine.dispose()
