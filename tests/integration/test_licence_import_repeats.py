"""Bulk licence import (licenses.bulk): a file holding one licence twice, and a concurrent writer taking a
证照编号 or an identifier between the import's checks and its INSERT.

Before: two rows with one 证照编号 in one year derive one 流水号, so one identifier, and the second was
counted as "already imported" and dropped without a word (likewise two rows with one 流水号); and a
number or identifier committed by a concurrent issue or import after the checks failed the whole chunk
with an IntegrityError (a traceback from `flask licences import`). The threaded version of the race is
in test_licence_races.py."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, func, select

from licenses import bulk, issuing
from licenses.models import Licence, LicenceOutbox
from tests.factories.licences import PERSON_TYPE, Staff, id_number, make_staff, make_types


@pytest.fixture(scope="session")
def postgresql_database(pg_database: Any) -> Any:
    """conftest's any_session asks for "<param>_database"; its PostgreSQL fixture is pg_database."""
    return pg_database


@pytest.fixture
def setup(any_session: Session) -> tuple[Session, Staff]:
    make_types(any_session)
    return any_session, make_staff(any_session, "高港区行政审批局", "MB158001", "clerk_a")


def row(seq: int, number: str, day: str = "2017-03-01", **extra: Any) -> dict[str, Any]:
    return {
        "type_code": PERSON_TYPE,
        "holder_name": "李娜",
        "holder_code": id_number(seq),
        "number": number,
        "issue_date": day,
        "face": {"gender": "女"},
        **extra,
    }


def count(session: Session, model: Any) -> int:
    return int(session.exec(select(func.count()).select_from(model)).one())


# ---- one licence twice in one file


def test_two_rows_with_one_number_in_one_year_report_the_second_naming_both_lines(setup: Any) -> None:
    session, clerk = setup
    rows = [(2, row(1, "R-1")), (3, row(2, "R-2")), (4, row(3, "R-1", "2017-09-09"))]
    result = bulk.bulk_issue(session, clerk.actor, clerk.department, rows, source="test")
    assert (result.inserted, result.skipped) == (2, 0)
    [(line, reason)] = result.errors
    assert line == 4
    assert reason.startswith("number: 证照编号 R-1 与第 2 行的证照编号重复"), reason
    # The first row's licence, not the second's.
    assert session.exec(select(Licence.holder_code).where(Licence.number == "R-1")).all() == [id_number(1)]
    # A re-run skips what the first run imported and reports the same row again.
    again = bulk.bulk_issue(session, clerk.actor, clerk.department, rows, source="test")
    assert (again.inserted, again.skipped, again.errors) == (0, 2, result.errors)


def test_two_rows_with_one_serial_report_the_second_naming_both_lines(setup: Any) -> None:
    session, clerk = setup
    rows = [(2, row(1, "S-1", serial="2017SAME01")), (3, row(2, "S-2", serial="2017SAME01"))]
    result = bulk.bulk_issue(session, clerk.actor, clerk.department, rows, source="test")
    assert result.inserted == 1
    assert result.errors == [(3, "serial: 流水号 2017SAME01 与第 2 行的流水号重复")]


def test_a_row_repeating_one_of_an_earlier_chunk_is_reported_too(db: Any) -> None:
    with db.transaction() as session:
        make_types(session)
        clerk = make_staff(session, "高港区行政审批局", "MB158001", "clerk_a")
    rows = [(i + 2, row(i, f"C-{i}")) for i in range(25)]
    rows[13] = (15, row(13, "C-0", "2017-12-01"))  # the first row's number, same year, two chunks later
    result = bulk.run_bulk(db, clerk.actor, clerk.department.id, rows, source="test", chunk_size=5)
    assert result.inserted == 24
    assert [(line, reason.split("（")[0]) for line, reason in result.errors] == [
        (15, "number: 证照编号 C-0 与第 2 行的证照编号重复")
    ]


def test_cli_import_reports_a_licence_twice_in_one_file_with_both_lines(
    app: Any, db: Any, tmp_path: Path
) -> None:
    with db.transaction() as session:
        make_types(session)
        staff = make_staff(session, "高港区行政审批局", "MB158001", "clerk_a")
    face = json.dumps({"gender": "女"}, ensure_ascii=False).replace('"', '""')
    path = tmp_path / "licences.csv"
    lines = [(1, "ZG2017001", "2017-03-01"), (2, "ZG2017002", "2017-03-02"), (3, "ZG2017001", "2017-05-01")]
    path.write_text(
        "type_code,holder_name,holder_code,number,issue_date,face\n"
        + "".join(f'{PERSON_TYPE},李娜,{id_number(n)},{num},{day},"{face}"\n' for n, num, day in lines),
        encoding="utf-8",
    )
    result = app.test_cli_runner().invoke(
        args=["licences", "import", str(path), "--department", staff.department.uscc]
    )
    assert result.exit_code == 1, result.output
    assert "第 4 行：number: 证照编号 ZG2017001 与第 2 行的证照编号重复" in result.output, result.output
    assert "导入 2 张，已存在跳过 0 张，错误 1 行" in result.output


# ---- a concurrent writer between the checks and the INSERT


def taking_after_check(
    monkeypatch: pytest.MonkeyPatch, take: Callable[[int], None], times: int = 1
) -> None:
    """bulk.numbers_in_use answers, then ``take(call)`` commits (here: flushes, in the import's own
    transaction) what a concurrent writer would, so the answer is stale when the chunk is inserted."""
    original = bulk.numbers_in_use
    calls = [0]

    def stale(*args: Any, **kwargs: Any) -> Any:
        answer = original(*args, **kwargs)
        calls[0] += 1
        if calls[0] <= times:
            take(calls[0])
        return answer

    monkeypatch.setattr(bulk, "numbers_in_use", stale)


def test_a_number_issued_meanwhile_is_reported_as_in_use_and_the_rest_imported(
    setup: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    session, clerk = setup
    rows = [(i + 2, row(i, f"T-{i}")) for i in range(4)]
    issue = {**row(50, "T-2"), "issue_date": None}
    taking_after_check(monkeypatch, lambda _call: issuing.issue_licence(session, clerk.actor, issue))
    result = bulk.bulk_issue(session, clerk.actor, clerk.department, rows, source="test")
    assert result.errors == [(4, "number: 证照编号 T-2 已被本部门另一张同类证照使用")]
    assert (result.inserted, result.skipped) == (3, 0)
    assert count(session, Licence) == 4
    assert count(session, LicenceOutbox) == 4


def test_the_same_rows_imported_meanwhile_are_skipped_as_on_a_rerun(
    setup: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    session, clerk = setup
    rows = [(i + 2, row(i, f"U-{i}")) for i in range(4)]

    def same_file(_call: int) -> None:
        other = bulk.bulk_issue(session, clerk.actor, clerk.department, rows, source="other")
        assert other.inserted == 4

    taking_after_check(monkeypatch, same_file)
    result = bulk.bulk_issue(session, clerk.actor, clerk.department, rows, source="test")
    assert (result.inserted, result.skipped, result.errors) == (0, 4, [])
    assert count(session, Licence) == 4


def test_an_import_that_keeps_losing_the_race_reports_its_rows_and_writes_none(
    setup: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    session, clerk = setup
    rows = [(i + 2, row(i, f"V-{i}")) for i in range(5)]

    def take(call: int) -> None:  # each check is stale again by the insert
        issuing.issue_licence(session, clerk.actor, {**row(60 + call, f"V-{call - 1}"), "issue_date": None})

    taking_after_check(monkeypatch, take, times=bulk.INSERT_TRIES)
    result = bulk.bulk_issue(session, clerk.actor, clerk.department, rows, source="test")
    assert result.inserted == 0
    in_use = [(line, f"number: 证照编号 V-{line - 2} 已被本部门另一张同类证照使用") for line in (2, 3)]
    assert result.errors == [*in_use, *[(line, bulk.RACE_LOST) for line in (4, 5, 6)]]
    assert count(session, Licence) == bulk.INSERT_TRIES  # the concurrent writer's licences only
