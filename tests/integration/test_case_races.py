"""POST /api/v1/cases is idempotent on project_no, also when the same new case arrives several times at
once: every request gets the idempotent answer (one created, the others unchanged), never a 500, and
the case is stored once. Real threads on a committed database, SQLite and PostgreSQL
(tests/factories/races.py).

Before the fix: 500, 200, 200 (the requests that lost the race failed on UNIQUE report_case.project_no)."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
import sqlalchemy as sa
from sqlmodel import select

from core.auth import Role
from core.db import Database
from reports import cases
from reports.models import CaseRecord, CaseSpecialProcedure
from tests.factories.catalog import make_department, make_user, published_entry
from tests.factories.races import Rendezvous, auth, hold_after, race, race_app, race_db

__all__ = ["race_app", "race_db"]  # fixtures

_n = itertools.count(1)


def _entry_and_token(db: Database) -> tuple[str, str]:
    n = next(_n)
    with db.transaction() as session:
        dept = make_department(session, f"区办件并发测试局{n}")
        entry = published_entry(session, dept)
        _user, _editor, token = make_user(session, Role.DEPT_EDITOR, department=dept)
        return entry.task_code, token


def _body(task_code: str, project_no: str) -> dict[str, Any]:
    return {
        "project_no": project_no,
        "task_code": task_code,
        "accept_date": "2026-03-02",
        "channel": "window",
        "special_procedures": [{"kind": "专家评审", "start_date": "2026-03-05", "end_date": "2026-03-06"}],
    }


def test_three_identical_new_cases_at_once_are_stored_once_and_all_answered(
    race_db: Database, race_app: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    task_code, token = _entry_and_token(race_db)
    project_no = f"RACE-{next(_n)}"
    hold_after(monkeypatch, cases, "_read_stored", Rendezvous(3))  # all three found no such case
    body = _body(task_code, project_no)
    answers = race(race_app, [
        lambda c: c.post("/api/v1/cases", json=body, headers=auth(token)) for _ in range(3)
    ])
    assert [a.status for a in answers] == [200, 200, 200], answers
    assert sorted(a.body["created"] for a in answers) == [0, 0, 1], answers
    assert sorted(a.body["unchanged"] for a in answers) == [0, 1, 1], answers
    with race_db.session() as session:
        stored = session.exec(select(CaseRecord).where(CaseRecord.project_no == project_no)).all()
        assert len(stored) == 1
        specials = session.exec(
            select(sa.func.count()).select_from(CaseSpecialProcedure).where(
                CaseSpecialProcedure.case_id == stored[0].id
            )
        ).one()
        assert specials == 1


def test_a_changed_case_racing_a_new_one_updates_it(
    race_db: Database, race_app: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The loser's row is not dropped: read again, it is an update of the case the winner created."""
    task_code, token = _entry_and_token(race_db)
    project_no = f"RACE-{next(_n)}"
    hold_after(monkeypatch, cases, "_read_stored", Rendezvous(2))
    first = _body(task_code, project_no)
    finished = {**first, "result_date": "2026-03-10", "result_type": "approved"}
    answers = race(race_app, [
        lambda c: c.post("/api/v1/cases", json=first, headers=auth(token)),
        lambda c: c.post("/api/v1/cases", json=finished, headers=auth(token)),
    ])
    assert [a.status for a in answers] == [200, 200], answers
    created = [a.body["created"] for a in answers]
    updated = [a.body["updated"] for a in answers]
    assert sorted(created) == [0, 1]
    assert [c + u for c, u in zip(created, updated, strict=True)] == [1, 1]
    with race_db.session() as session:
        stored = session.exec(select(CaseRecord).where(CaseRecord.project_no == project_no)).one()
    # The second to write updated the case with its own data (none was lost to a 500).
    assert (stored.result_date is not None) == (updated[1] == 1), (answers, stored.result_date)
