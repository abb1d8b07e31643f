"""The element-set migration turns the defaults nobody entered into NULL (未填报) and keeps what a
person saved; it also goes back down. The rule is in the migration's docstring."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command

from core.db import make_engine
from tests.factories.migrations import alembic_config, empty_database_url

BEFORE = "5e1a9c3d7b20"
THIS = "0974e69fbf2d"
NOW = datetime(2026, 11, 1, tzinfo=UTC)


_config = alembic_config


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return empty_database_url(request.param, tmp_path, "elements_migration")


def _entry(conn: sa.Connection, n: int, *, visits: int = 1, days: int | None = None) -> int:
    conn.execute(
        sa.text(
            "INSERT INTO catalog_item (code, name, task_type, legal_basis, use_levels, county_only,"
            " created_at, updated_at) VALUES (:code, :name, '01', '', '4', false, :t, :t)"
        ),
        {"code": f"00010400{n:04d}", "name": f"事项{n}", "t": NOW},
    )
    item_id = conn.execute(sa.text("SELECT MAX(id) FROM catalog_item")).scalar_one()
    conn.execute(
        sa.text(
            "INSERT INTO implementation_entry (task_code, item_id, department_id, level, division_code, name,"
            " task_type, legal_basis, catalog_code, applicable, status, version, accept_conditions,"
            " anticipate_days, anticipate_unit, promise_days, promise_unit, project_type, visits,"
            " online_depth, result_delivery, keywords, no_contact, created_at, updated_at, visits_reason)"
            " VALUES (:code, :item, 1, '4', '321203000000', :name, '01', '', :cat, true, 'published', 1, '',"
            " :days, 'working', :days, 'working', '2', :visits, '', 'window', '', false, :t, :t,"
            " '需到窗口提交材料或领取结果')"
        ),
        {
            "code": f"11321203MB1234567X4{n:012d}",
            "item": item_id,
            "name": f"事项{n}",
            "cat": f"00010400{n:04d}",
            "days": days,
            "visits": visits,
            "t": NOW,
        },
    )
    entry_id = int(conn.execute(sa.text("SELECT MAX(id) FROM implementation_entry")).scalar_one())
    _audit(conn, "entry.claim", entry_id)
    _audit(conn, "entry.approve", entry_id)
    return entry_id


def _audit(conn: sa.Connection, action: str, entry_id: int) -> None:
    conn.execute(
        sa.text(
            "INSERT INTO audit_log (at, actor_name, action, entity_type, entity_id, prev_hash, hash)"
            " VALUES (:t, 'someone', :a, 'implementation_entry', :e, '0', '0')"
        ),
        {"t": NOW, "a": action, "e": str(entry_id)},
    )


def test_defaults_nobody_entered_become_not_recorded(empty_url: str) -> None:
    cfg = _config(empty_url)
    command.upgrade(cfg, BEFORE)
    engine = make_engine(empty_url)
    with engine.begin() as conn:
        conn.execute(
            sa.text("INSERT INTO division (code, name, level) VALUES ('321203000000', '高港区', 'county')")
        )
        conn.execute(
            sa.text(
                "INSERT INTO department (name, uscc, level, division_code, created_at)"
                " VALUES ('区民政局', '11321203MB1234567X', '4', '321203000000', :t)"
            ),
            {"t": NOW},
        )
        imported = _entry(conn, 1)  # imported, published, never edited: every default is a guess
        edited = _entry(conn, 2, days=20)  # a person saved the form: 1 visit and 承诺件 were affirmed
        _audit(conn, "entry.update", edited)
        odd = _entry(conn, 3, visits=0)  # not a default, so somebody wrote it: kept
        conn.execute(
            sa.text(
                "INSERT INTO entry_fee (entry_id, name, amount_fen, basis, reducible)"
                " VALUES (:e, '工本费', 1000, '', false)"
            ),
            {"e": edited},
        )
        for name, copies in (("申请表", 0), ("身份证", 2)):
            conn.execute(
                sa.text(
                    "INSERT INTO entry_material (entry_id, position, name, form, required, copies)"
                    " VALUES (:e, 0, :n, 'paper', true, :c)"
                ),
                {"e": edited, "n": name, "c": copies},
            )
    command.upgrade(cfg, THIS)
    columns = (
        "visits, project_type, result_delivery, anticipate_unit, promise_unit, accept_conditions, charges,"
        " visits_reason"
    )
    with engine.connect() as conn:
        rows = {
            r[0]: tuple(r[1:])
            for r in conn.execute(sa.text(f"SELECT id, {columns} FROM implementation_entry"))  # noqa: S608 - fixed text
        }
        copies = dict(conn.execute(sa.text("SELECT name, copies FROM entry_material")).all())
        demo = set(conn.execute(sa.text("SELECT demo_content FROM implementation_entry")).scalars())
    assert rows[imported] == (None, None, None, None, None, None, None, None)
    assert rows[edited][7] == "需到窗口提交材料或领取结果"  # edited by a person: kept
    assert rows[edited][:5] == (1, "2", "window", "working", "working")
    assert rows[edited][5] is None  # an empty 受理条件 is not a recorded condition
    assert bool(rows[edited][6]) is True  # fee rows were recorded: 是否收费 = 是
    assert rows[odd][0] == 0
    assert rows[odd][3] is None  # a time unit without days is not a fact
    assert copies == {"申请表": None, "身份证": 2}
    assert {bool(v) for v in demo} == {False}

    command.downgrade(cfg, BEFORE)
    with engine.connect() as conn:
        visits = set(conn.execute(sa.text("SELECT visits FROM implementation_entry")).scalars())
    assert visits == {0, 1}
    engine.dispose()
