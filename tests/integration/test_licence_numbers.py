"""证照编号: one live licence per type, issuing department and number (licenses.models.LIVE_NUMBER), in
the services, the API, the bulk import and `flask licences import`, enforced by the database (index
uq_licence_number) and brought in by a migration that refuses existing duplicates clearly.

Before: a licence could be issued with the number of another licence of the same type and issuer (201),
and an import took such rows without a word."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command

from core.errors import Conflict
from demo import synthetic_licences
from licenses import bulk, issuing
from licenses.models import Licence
from licenses.types import get_licence_type
from tests.factories.licences import (  # noqa: F401  (world: a fixture)
    ORG_TYPE,
    PERSON_TYPE,
    id_number,
    issue,
    make_staff,
    make_types,
    org_licence,
    person_licence,
    world,
)
from tests.factories.migrations import alembic_config, empty_database_url


@pytest.fixture(scope="session")
def postgresql_database(pg_database: Any) -> Any:
    """conftest's any_session asks for "<param>_database"; its PostgreSQL fixture is pg_database."""
    return pg_database


@pytest.fixture
def setup(any_session: Any) -> Any:
    make_types(any_session)
    a = make_staff(any_session, "高港区行政审批局", "MB158001", "clerk_a")
    b = make_staff(any_session, "高港区民政局", "01414003", "clerk_b")
    return any_session, a, b


def _refused_for_number(caught: pytest.ExceptionInfo[Conflict]) -> None:
    assert caught.value.status == 409
    assert "number" in caught.value.details
    assert "证照编号" in caught.value.message


def test_a_number_held_by_a_live_licence_of_the_type_and_department_is_refused(setup: Any) -> None:
    session, a, b = setup
    first = person_licence(session, a, 1, number="高港建证字第001号")
    with pytest.raises(Conflict) as caught:
        person_licence(session, a, 2, number="高港建证字第001号")
    _refused_for_number(caught)
    # Another department, or another type of the same department, may use the number.
    assert person_licence(session, b, 3, number="高港建证字第001号").number == first.number
    assert org_licence(session, a, 1, number="高港建证字第001号").number == first.number
    # A licence issued without a number carries its serial as its number, which is then taken too.
    bare = person_licence(session, a, 4)
    assert bare.number == bare.serial
    with pytest.raises(Conflict) as caught:
        person_licence(session, a, 5, number=bare.number)
    _refused_for_number(caught)


def test_an_amendment_keeps_its_number_but_cannot_take_another_licences(setup: Any) -> None:
    session, a, _b = setup
    first = person_licence(session, a, 1, number="N-1")
    second = person_licence(session, a, 2, number="N-2")
    kept = issuing.amend_licence(session, a.actor, first.id, {"holder_name": "张三丰"}, "更正姓名")
    assert (kept.number, kept.version) == ("N-1", 2)
    with pytest.raises(Conflict) as caught:
        issuing.amend_licence(session, a.actor, second.id, {"number": "N-1"}, "更正编号")
    _refused_for_number(caught)
    moved = issuing.amend_licence(session, a.actor, kept.id, {"number": "N-3"}, "更正编号")
    assert moved.number == "N-3"
    # N-1 is free again (its licence now carries N-3): the second licence may take it.
    assert issuing.amend_licence(session, a.actor, second.id, {"number": "N-1"}, "更正编号").number == "N-1"


def test_a_licence_that_ended_leaves_its_number_to_the_certificate_replacing_it(setup: Any) -> None:
    session, a, _b = setup
    lost = person_licence(session, a, 1, number="N-9")
    issuing.change_status(session, a.actor, lost.id, to="void", category="lost", reason="持证人挂失")
    replacement = person_licence(session, a, 1, number="N-9")  # 补发: the same printed number
    assert replacement.number == "N-9"
    assert replacement.id != lost.id


def test_the_database_refuses_a_second_live_licence_with_the_number(setup: Any) -> None:
    """The index, not only the service's check: a concurrent issue that checked before the first
    committed, or any other writer, cannot add the number twice."""
    session, a, _b = setup
    first = person_licence(session, a, 1, number="N-7")
    columns = [c.key for c in sa.inspect(Licence).mapper.column_attrs if c.key != "id"]
    copy = {k: getattr(first, k) for k in columns} | {
        "identifier": first.identifier + "X", "serial": first.serial + "X"
    }
    with pytest.raises(sa.exc.IntegrityError), session.begin_nested():
        session.execute(sa.insert(Licence).values(copy))
    # A superseded copy, or one that ended, is outside the index.
    with session.begin_nested():
        session.execute(sa.insert(Licence).values({**copy, "is_current": False, "status": "superseded"}))
        ended = {"identifier": copy["identifier"] + "Y", "serial": copy["serial"] + "Y", "status": "revoked"}
        session.execute(sa.insert(Licence).values({**copy, **ended}))


def test_bulk_import_reports_numbers_in_use_and_repeated_numbers_by_line(setup: Any) -> None:
    session, a, _b = setup
    held = org_licence(session, a, 1, number="2018HELD")
    lt_rows = list(synthetic_licences.synthetic_rows([get_licence_type(session, ORG_TYPE)], 5, seed=11))
    rows = [(line, {**row, "number": f"B-{line}"}) for line, row in lt_rows]
    rows[1][1]["number"] = held.number  # held by a live licence
    rows[3][1]["number"] = "B-1"  # the first row's number again (another serial: another licence)
    result = bulk.bulk_issue(session, a.actor, a.department, rows, source="test")
    assert result.inserted == 3
    assert [line for line, _ in result.errors] == [rows[1][0], rows[3][0]]
    assert "已被本部门另一张同类证照使用" in result.errors[0][1]
    assert f"与第 {rows[0][0]} 行的证照编号重复" in result.errors[1][1]
    assert all(reason.startswith("number: ") for _line, reason in result.errors)
    again = bulk.bulk_issue(session, a.actor, a.department, rows, source="test")
    assert (again.inserted, again.skipped) == (0, 3)  # a re-run skips what it imported, as before


def test_api_issue_with_a_number_in_use_is_a_409_naming_the_field(client: Any, world: Any) -> None:  # noqa: F811
    assert issue(client, world["a"], number="高港建证字第100号").status_code == 201
    again = issue(client, world["a"], holder_code=id_number(12), number="高港建证字第100号")
    assert again.status_code == 409, again.get_json()
    body = again.get_json()
    assert body["code"] == "conflict"
    assert "number" in body["details"]
    assert "证照编号" in body["message"]
    # Another department issues its own 高港建证字第100号.
    other = issue(client, world["b"], holder_code=id_number(13), number="高港建证字第100号")
    assert other.status_code == 201, other.get_json()


def test_cli_import_reports_a_duplicate_number_by_line(app: Any, db: Any, tmp_path: Path) -> None:
    with db.transaction() as session:
        make_types(session)
        staff = make_staff(session, "高港区行政审批局", "MB158001", "clerk_a")
        person_licence(session, staff, 1, number="ZG2017001")
    face = json.dumps({"gender": "女"}, ensure_ascii=False).replace('"', '""')
    header = "type_code,holder_name,holder_code,number,issue_date,face\n"
    path = tmp_path / "licences.csv"
    # Rows 3 and 4 are two licences with one number (issued in different years, so the import derives
    # different serials for them; in one year they would derive one identifier, reported the same way:
    # test_licence_import_repeats.py).
    rows = ((2, "ZG2017001", "2017-03-02"), (3, "ZG2017003", "2017-03-03"), (4, "ZG2017003", "2018-03-04"))
    path.write_text(header + "".join(
        f'{PERSON_TYPE},李娜,{id_number(n)},{number},{day},"{face}"\n' for n, number, day in rows
    ), encoding="utf-8")
    result = app.test_cli_runner().invoke(
        args=["licences", "import", str(path), "--department", staff.department.uscc]
    )
    assert "第 2 行：number: 证照编号 ZG2017001 已被本部门另一张同类证照使用" in result.output, result.output
    assert "第 4 行：number: 证照编号 ZG2017003 与第 3 行的证照编号重复" in result.output
    assert "导入 1 张" in result.output
    assert "IntegrityError" not in result.output


BEFORE, AFTER = "c8e4a1f7d293", "834838d12e0d"


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return empty_database_url(request.param, tmp_path, "licence_number_migration")


def _licence_row(
    conn: sa.Connection, n: int, number: str, status: str = "valid", current: bool = True
) -> None:
    if conn.dialect.name == "postgresql":
        # Rows of a licence table alone: the type and department they point at do not matter here.
        conn.execute(sa.text("SET LOCAL session_replication_role = replica"))
    conn.execute(sa.text(
        "INSERT INTO licence (identifier, type_id, type_code, type_name, serial, version, number,"
        " holder_name, holder_code, holder_code_type, issuer_department_id, issuer_code, issuer_name,"
        " issue_date, valid_from, area_code, face, status, revision, is_current, created_at, updated_at)"
        " VALUES (:ident, 1, 'T', '结婚证', :serial, 1, :number, '张三', '3212', '111', 7,"
        " '11321203MB1580017T', '高港区民政局', '2020-01-01', '2020-01-01', '321203', '{}', :status, 1,"
        " :current, '2026-01-01 00:00:00', '2026-01-01 00:00:00')"
    ), {"ident": f"ID-{n}", "serial": f"S{n}", "number": number, "status": status, "current": current})


def test_the_migration_refuses_existing_duplicates_naming_them_and_changes_nothing(empty_url: str) -> None:
    cfg = alembic_config(empty_url)
    command.upgrade(cfg, BEFORE)
    engine = sa.create_engine(empty_url)  # on SQLite without make_engine's foreign keys (see _licence_row)
    with engine.begin() as conn:
        _licence_row(conn, 1, "DUP-1")
        _licence_row(conn, 2, "DUP-1")
        _licence_row(conn, 3, "OLD-1", status="superseded", current=False)
        _licence_row(conn, 4, "OLD-1")
        _licence_row(conn, 5, "END-1", status="revoked")
        _licence_row(conn, 6, "END-1")
    with pytest.raises(RuntimeError) as caught:
        command.upgrade(cfg, AFTER)
    message = str(caught.value)
    assert "1 number(s)" in message
    assert "'DUP-1': 2 licences (ID-1, ID-2)" in message
    assert "OLD-1" not in message
    assert "END-1" not in message
    with engine.connect() as conn:
        indexes = {ix["name"] for ix in sa.inspect(conn).get_indexes("licence")}
        assert "uq_licence_number" not in indexes
    # The operator ends the licence issued in error; the upgrade then goes through, and back.
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE licence SET status = 'void' WHERE identifier = 'ID-2'"))
    command.upgrade(cfg, AFTER)
    with engine.begin() as conn, pytest.raises(sa.exc.IntegrityError):
        _licence_row(conn, 7, "DUP-1")
    command.downgrade(cfg, BEFORE)
    engine.dispose()
