"""Case records (办件) for the demo: this year's cases of a hundred district entries, so that `make run`
shows 电子监察 with yellow and red warnings, 按时办结率 and 提速率, and monthly figures from the cases.

Idempotent: does nothing when any case record exists, or when the catalogue demo is absent. The cases
go through the same service as `flask cases import` (reports.cases.import_cases).
"""

from __future__ import annotations

import random
from datetime import date, timedelta
from typing import Any

from sqlmodel import select

from core.auth import SYSTEM
from core.config import Settings
from core.db import Database
from core.types import china_today
from core.workdays import add_workdays
from demo.reports_demo import _published_entries
from reports import cases
from reports.models import CaseRecord

CASES = 3000


def load(db: Database, settings: Settings) -> None:
    with db.transaction() as session:
        if session.exec(select(CaseRecord.id).limit(1)).first() is not None:
            return
        entries = [e for e in _published_entries(session) if e.level == "4" and e.promise_days][:100]
        if not entries:
            return
        today = china_today()
        rows = list(enumerate(demo_rows(entries, today), start=1))
        cases.import_cases(
            session, SYSTEM, rows, today=today, source="demo", yellow_days=settings.case_yellow_days
        )


def demo_rows(entries: list[Any], today: date) -> list[dict[str, Any]]:
    rng = random.Random(today.year)  # noqa: S311 (demo data, not security)
    start = date(today.year, 1, 2)
    span = max(1, (today - start).days)
    rows: list[dict[str, Any]] = []
    for n in range(CASES):
        entry = rng.choice(entries)
        accept = start + timedelta(days=rng.randrange(span))
        promise = add_workdays(accept, entry.promise_days)
        row: dict[str, Any] = {
            "project_no": f"DEMO{today.year}{n:06d}",
            "task_code": entry.task_code,
            "apply_date": accept - timedelta(days=rng.randrange(0, 3)),
            "accept_date": accept,
            "channel": "online" if rng.random() < (0.9 if entry.no_contact else 0.4) else "window",
            "applicant_type": rng.choice(("person", "person", "legal")),
        }
        special_end: date | None = None
        if rng.random() < 0.05:
            special_start = accept + timedelta(days=1)
            special_end = special_start + timedelta(days=rng.randrange(1, 6))
            if special_end >= today:
                special_end = None
            row["special_procedures"] = [
                {"kind": "专家评审", "start_date": special_start, "end_date": special_end}
            ]
        # Most cases finish before the promise date, a few late; those accepted lately are still open.
        late = rng.random() < 0.08
        finish = (
            promise + timedelta(days=rng.randrange(1, 8))
            if late
            else accept + timedelta(days=rng.randrange(0, max(1, (promise - accept).days + 1)))
        )
        if special_end is not None:
            finish = max(finish, special_end + timedelta(days=1))
        still_open = "special_procedures" in row and special_end is None
        if finish < today and not still_open and rng.random() < 0.97:
            row["result_date"] = finish
            row["result_type"] = "approved" if rng.random() < 0.95 else "refused"
        rows.append(row)
    return rows
