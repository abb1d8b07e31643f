"""管辖属地 (a licence's area code) must be a county-level or higher GB/T 2260 division code
(licenses.areas): the divisions table decides the counties of a city it holds a county of, the
structure of the code the rest. In issue, amend, the API, the bulk import and `flask licences import`.

Before: any six digits went on the licence and to the city registry (999999, 000000, 321299)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlmodel import Session, select

from catalog.divisions import GAOGANG_FILES, TAIZHOU_FILES, load_divisions_csv
from core.db import table_of
from core.errors import Invalid
from licenses import bulk, issuing
from licenses.areas import structural_problem
from licenses.models import Licence, LicenceOutbox
from tests.factories.licences import (  # noqa: F401  (world: a fixture)
    PERSON_TYPE,
    Staff,
    id_number,
    issue,
    make_staff,
    make_types,
    person_licence,
    world,
)


@pytest.fixture(scope="session")
def postgresql_database(pg_database: Any) -> Any:
    """conftest's any_session asks for "<param>_database"; its PostgreSQL fixture is pg_database."""
    return pg_database


@pytest.fixture
def setup(any_session: Session) -> tuple[Session, Staff]:
    """高港区's divisions as `flask catalog load-divisions` loads them (province, city, county, towns)."""
    load_divisions_csv(any_session, *GAOGANG_FILES)
    make_types(any_session)
    return any_session, make_staff(any_session, "高港区行政审批局", "MB158001", "clerk_a")


@pytest.mark.parametrize(
    "code",
    [
        "999999",  # no province 99
        "000000",
        "100000",  # 10 is no province
        "160000",  # within 11-82 but no province either
        "320099",  # a county number without a prefecture
        "329900",  # prefecture part 99 does not exist
        "427100",  # nor 71
        "419000",  # 90 groups the counties a province governs directly: no division itself
        "810100",  # Hong Kong has its province-level code only
        "32120３",  # a fullwidth digit
        "321203\n",  # ``$`` let a trailing newline through
        "32120",
        "",
    ],
)
def test_codes_that_are_no_county_or_higher_division_by_their_form_are_refused(code: str) -> None:
    problem = structural_problem(code)
    assert problem is not None
    assert "管辖属地" in problem


@pytest.mark.parametrize(
    "code", ["110000", "110101", "320000", "321200", "321203", "429004", "659001", "540100", "810000"]
)
def test_real_province_city_and_county_codes_pass_the_form_check(code: str) -> None:
    assert structural_problem(code) is None


def _issue(session: Session, staff: Staff, seq: int, area: str | None) -> Licence:
    return person_licence(session, staff, seq, **({"area_code": area} if area is not None else {}))


@pytest.mark.parametrize("area", ["999999", "000000", "321299", "321202", "32120３"])
def test_issue_refuses_an_area_that_is_no_division_naming_the_field(setup: Any, area: str) -> None:
    session, clerk = setup
    with pytest.raises(Invalid) as caught:
        _issue(session, clerk, 1, area)
    assert caught.value.status == 422
    assert list(caught.value.details) == ["area_code"]
    assert area in caught.value.details["area_code"][0] or "6 位" in caught.value.details["area_code"][0]
    assert session.exec(select(Licence)).all() == []


def test_a_county_of_our_city_that_is_not_loaded_is_refused_naming_what_is(setup: Any) -> None:
    session, clerk = setup
    with pytest.raises(Invalid) as caught:
        _issue(session, clerk, 1, "321299")
    assert caught.value.details["area_code"] == [
        "管辖属地 321299 不是已载入的泰州市县级行政区划（已载入：321203 高港区）"
    ]


@pytest.mark.parametrize("area", [None, "321203", "321200", "320000", "110101", "510100"])
def test_issue_takes_the_district_its_city_province_and_divisions_elsewhere(setup: Any, area: Any) -> None:
    session, clerk = setup
    licence = _issue(session, clerk, 1, area)
    assert licence.area_code == (area or "321203")


def test_with_the_whole_city_loaded_its_other_counties_are_taken(any_session: Session) -> None:
    load_divisions_csv(any_session, *TAIZHOU_FILES)
    make_types(any_session)
    clerk = make_staff(any_session, "高港区行政审批局", "MB158001", "clerk_a")
    assert _issue(any_session, clerk, 1, "321202").area_code == "321202"  # 海陵区
    assert _issue(any_session, clerk, 2, "321283").area_code == "321283"  # 泰兴市
    with pytest.raises(Invalid) as caught:
        _issue(any_session, clerk, 3, "321284")  # 姜堰市 until 2012, 姜堰区 321204 since
    assert "321204 姜堰区" in caught.value.details["area_code"][0]


def test_amend_checks_a_new_area_as_issue_does(setup: Any) -> None:
    session, clerk = setup
    licence = _issue(session, clerk, 1, None)
    for bad in ("999999", "321299"):
        with pytest.raises(Invalid) as caught:
            issuing.amend_licence(session, clerk.actor, licence.id, {"area_code": bad})
        assert list(caught.value.details) == ["area_code"]
    assert session.exec(select(Licence).where(Licence.is_current)).one().area_code == "321203"
    amended = issuing.amend_licence(session, clerk.actor, licence.id, {"area_code": "321200"})
    assert (amended.version, amended.area_code) == (2, "321200")


def test_amend_carries_a_retired_code_over_but_not_one_that_never_was_a_division(setup: Any) -> None:
    """A stored code the table no longer lists does not block correcting a name; 999999 (stored before
    the check existed) does not go on a new version."""
    session, clerk = setup
    retired, never = _issue(session, clerk, 1, None), _issue(session, clerk, 2, None)
    table = table_of(Licence)
    session.execute(sa.update(table).where(table.c.id == retired.id).values(area_code="321284"))
    session.execute(sa.update(table).where(table.c.id == never.id).values(area_code="999999"))
    session.expire_all()
    amended = issuing.amend_licence(session, clerk.actor, retired.id, {"holder_name": "张三丰"})
    assert amended.area_code == "321284"
    with pytest.raises(Invalid) as caught:
        issuing.amend_licence(session, clerk.actor, never.id, {"holder_name": "张三丰"})
    assert list(caught.value.details) == ["area_code"]
    fixed = issuing.amend_licence(
        session, clerk.actor, never.id, {"holder_name": "张三丰", "area_code": "321203"}
    )
    assert fixed.area_code == "321203"


def _rows(count: int, **overrides: dict[int, str]) -> list[tuple[int, dict[str, Any]]]:
    rows = []
    for i in range(count):
        row = {
            "type_code": PERSON_TYPE,
            "holder_name": "李娜",
            "holder_code": id_number(100 + i),
            "number": f"AREA-{i}",
            "face": {"gender": "女"},
        }
        for column, by_index in overrides.items():
            if i in by_index:
                row[column] = by_index[i]
        rows.append((i + 2, row))
    return rows


def test_bulk_import_reports_bad_areas_by_line_and_keeps_the_good_rows(setup: Any) -> None:
    session, clerk = setup
    rows = _rows(6, area_code={1: "999999", 3: "321299", 4: "110101"})
    result = bulk.bulk_issue(session, clerk.actor, clerk.department, rows, source="test")
    assert result.inserted == 4
    assert [line for line, _ in result.errors] == [3, 5]
    assert all(reason.startswith("area_code: 管辖属地") for _line, reason in result.errors)
    assert sorted(session.exec(select(Licence.area_code)).all()) == ["110101", *["321203"] * 3]


def _division_queries(engine: sa.Engine) -> tuple[list[str], Any]:
    seen: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if "FROM division" in statement:
            seen.append(statement)

    sa.event.listen(engine, "before_cursor_execute", count)
    return seen, count


def test_bulk_import_looks_the_divisions_up_once_per_city_for_the_whole_import(db: Any) -> None:
    with db.transaction() as session:
        load_divisions_csv(session, *GAOGANG_FILES)
        make_types(session)
        clerk = make_staff(session, "高港区行政审批局", "MB158001", "clerk_a")
    rows = _rows(60, area_code={7: "999999", 33: "321299", 50: "321200"})
    seen, listener = _division_queries(db.engine)
    try:
        result = bulk.run_bulk(db, clerk.actor, clerk.department.id, rows, source="test", chunk_size=10)
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", listener)
    assert result.inserted == 58
    assert [line for line, _ in result.errors] == [9, 35]
    assert len(seen) == 1, seen  # six chunks, one city: one query


def test_api_refuses_a_bad_area_with_a_422_and_writes_nothing(client: Any, world: Any, db: Any) -> None:  # noqa: F811
    for area in ("999999", "000000", "321299"):
        answer = issue(client, world["a"], area_code=area)
        assert answer.status_code == 422, answer.get_json()
        body = answer.get_json()
        assert set(body) == {"code", "message", "details"}
        assert "area_code" in body["details"], body
    assert issue(client, world["a"], area_code="321203").status_code == 201
    with db.transaction() as session:
        assert [x.area_code for x in session.exec(select(Licence)).all()] == ["321203"]
        assert len(session.exec(select(LicenceOutbox)).all()) == 1


def test_cli_import_reports_a_bad_area_with_its_line(app: Any, db: Any, tmp_path: Path) -> None:
    with db.transaction() as session:
        make_types(session)
        staff = make_staff(session, "高港区行政审批局", "MB158001", "clerk_a")
    face = json.dumps({"gender": "女"}, ensure_ascii=False).replace('"', '""')
    path = tmp_path / "licences.csv"
    lines = [(1, "321203"), (2, "999999"), (3, "000000")]
    path.write_text(
        "type_code,holder_name,holder_code,number,issue_date,area_code,face\n"
        + "".join(
            f'{PERSON_TYPE},李娜,{id_number(n)},ZG{n:04d},2017-03-02,{area},"{face}"\n' for n, area in lines
        ),
        encoding="utf-8",
    )
    result = app.test_cli_runner().invoke(
        args=["licences", "import", str(path), "--department", staff.department.uscc]
    )
    assert result.exit_code == 1, result.output
    assert "第 3 行：area_code: 管辖属地 999999" in result.output, result.output
    assert "第 4 行：area_code: 管辖属地 000000" in result.output
    assert "导入 1 张" in result.output
    assert "Traceback" not in result.output
