"""电子监察 (electronic supervision) over case records: deadlines, yellow and red warnings, 按时办结率 and
提速率 (standards.md §7).

The rules, on the working-day calendar of core.workdays (the day of acceptance is day 0):

- special procedures (特别程序) stop the clock: the working days they cover after acceptance (up to the
  result, or today while the case is open) are ``suspended_days``, and the effective ``deadline`` is
  the 承诺办结日期 moved on by that many working days;
- a finished case is on time when its result date is not after the deadline; one finished later is red
  (超期办结);
- an open case past its deadline is red (已超期); one not overdue whose remaining working days
  (today -> deadline) are at most N is yellow (即将到期), N = ``yellow_days`` (default 1);
- 按时办结率 = cases finished on time / cases finished; 提速率 = 1 − avg(承诺时限) / avg(法定时限) over
  the cases where both are recorded in the same unit (the others are counted as not recorded).

``refresh_warnings`` recomputes the open cases (and the finished ones whose result arrived since)
once a day; the import computes them for each case it writes.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY
from sqlmodel import Session, col

from catalog.models import Department, ImplementationEntry
from catalog.permissions import division_scope_prefix
from core.audit import record
from core.auth import Principal, Role
from core.db import table_of
from core.errors import Forbidden
from core.workdays import add_workdays, beyond_data, workdays_between
from reports.models import CaseRecord, CaseSpecialProcedure, CaseStep

log = logging.getLogger(__name__)

DEFAULT_YELLOW_DAYS = 1
YELLOW, RED = "yellow", "red"
WARNING_LABELS = {YELLOW: "黄牌（即将到期）", RED: "红牌（已超期）"}
CHANNEL_LABELS = {"online": "网上申报", "window": "窗口申报"}
APPLICANT_LABELS = {"person": "自然人", "legal": "法人", "other": "其他组织"}
RESULT_LABELS = {
    "approved": "准予",
    "refused": "不予",
    "transferred": "转报",
    "withdrawn": "撤回",
    "other": "其他",
}


@dataclass(frozen=True)
class Assessment:
    suspended_days: int
    deadline: date
    on_time: bool | None
    warning: str | None


def suspended_workdays(accept: date, specials: Iterable[tuple[date, date | None]], until: date) -> int:
    """Working days after ``accept`` and up to ``until`` covered by the special procedures (each from its
    start to its end day inclusive, an open one up to ``until``); overlapping procedures count once."""
    spans = sorted((start, end or until) for start, end in specials)
    total = 0
    covered_to = accept  # working days up to this day are already counted (or precede acceptance)
    for start, end in spans:
        lo = max(start - timedelta(days=1), covered_to)
        hi = min(end, until)
        if hi > lo:
            total += workdays_between(lo, hi)
            covered_to = hi
    return total


def assess(
    accept: date,
    promise_date: date,
    result_date: date | None,
    specials: Iterable[tuple[date, date | None]],
    today: date,
    yellow_days: int = DEFAULT_YELLOW_DAYS,
) -> Assessment:
    """The 电子监察 verdict of one case on ``today`` (see the module docstring)."""
    until = result_date or today
    suspended = suspended_workdays(accept, specials, until)
    deadline = add_workdays(promise_date, suspended)
    if result_date is not None:
        on_time = result_date <= deadline
        return Assessment(suspended, deadline, on_time, None if on_time else RED)
    if today > deadline:
        return Assessment(suspended, deadline, None, RED)
    remaining = workdays_between(today, deadline)
    return Assessment(suspended, deadline, None, YELLOW if remaining <= yellow_days else None)


# ---- scope -------------------------------------------------------------------------------------------


def department_scope(session: Session, actor: Principal) -> list[int] | None:
    """The departments whose cases ``actor`` may see: None for all (administrators)."""
    if not actor.is_authenticated:
        raise Forbidden("请先登录")
    if actor.is_admin:
        return None
    if actor.role in (Role.DEPT_EDITOR, Role.DEPT_REVIEWER):
        return [actor.department_id] if actor.department_id is not None else []
    prefix = division_scope_prefix(actor.division_code)
    if actor.role == Role.DIVISION_OPERATOR and prefix:
        rows = session.execute(
            sa.select(col(Department.id)).where(col(Department.division_code).startswith(prefix))
        ).all()
        return [r[0] for r in rows]
    return []


# ---- refresh -----------------------------------------------------------------------------------------

REFRESH_CHUNK = 20_000


@dataclass
class RefreshReport:
    today: date
    checked: int = 0
    changed: int = 0
    counts: dict[str, int] = field(default_factory=lambda: {YELLOW: 0, RED: 0})
    beyond_calendar: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "today": self.today.isoformat(),
            "checked": self.checked,
            "changed": self.changed,
            "yellow": self.counts[YELLOW],
            "red": self.counts[RED],
            "beyond_calendar": self.beyond_calendar,
        }


def one_of(session: Session, column: Any, values: Sequence[Any], item_type: Any) -> Any:
    """``column IN values``; on PostgreSQL one array parameter (``= ANY``) instead of thousands of
    placeholders, which the driver would parse one by one."""
    if session.connection().dialect.name == "postgresql":
        return column == sa.any_(sa.bindparam(None, list(values), type_=ARRAY(item_type)))
    return column.in_(values)


def specials_by_case(session: Session, case_ids: Sequence[int]) -> dict[int, list[tuple[date, date | None]]]:
    found: dict[int, list[tuple[date, date | None]]] = {}
    if not case_ids:
        return found
    for case_id, start, end in session.execute(
        sa.select(
            col(CaseSpecialProcedure.case_id),
            col(CaseSpecialProcedure.start_date),
            col(CaseSpecialProcedure.end_date),
        ).where(one_of(session, col(CaseSpecialProcedure.case_id), case_ids, sa.Integer))
    ).all():
        found.setdefault(case_id, []).append((start, end))
    return found


def refresh_warnings(
    session: Session, actor: Principal, today: date, yellow_days: int = DEFAULT_YELLOW_DAYS
) -> RefreshReport:
    """Recompute deadline and warning of every open case, and of every case still carrying an open-case
    warning, as of ``today``; write only the rows that changed. Flushes, never commits; idempotent (a
    second run on the same day changes nothing). One audit row with the counts."""
    report = RefreshReport(today=today, beyond_calendar=beyond_data(today))
    C = CaseRecord
    last_id = 0
    while True:
        rows = session.execute(
            sa.select(
                col(C.id),
                col(C.accept_date),
                col(C.promise_date),
                col(C.result_date),
                col(C.suspended_days),
                col(C.deadline),
                col(C.on_time),
                col(C.warning),
                col(C.warning_since),
            )
            .where(col(C.id) > last_id, sa.or_(col(C.result_date).is_(None), col(C.on_time).is_(None)))
            .order_by(col(C.id))
            .limit(REFRESH_CHUNK)
        ).all()
        if not rows:
            break
        last_id = rows[-1][0]
        specials = specials_by_case(session, [r[0] for r in rows])
        updates: list[dict[str, Any]] = []
        for cid, accept, promise, result, suspended, deadline, on_time, warning, since in rows:
            verdict = assess(accept, promise, result, specials.get(cid, ()), today, yellow_days)
            report.checked += 1
            if verdict.warning:
                report.counts[verdict.warning] += 1
            new_since = since if verdict.warning == warning else (today if verdict.warning else None)
            if (verdict.suspended_days, verdict.deadline, verdict.on_time, verdict.warning, new_since) != (
                suspended,
                deadline,
                on_time,
                warning,
                since,
            ):
                updates.append(
                    {
                        "b_id": cid,
                        "suspended_days": verdict.suspended_days,
                        "deadline": verdict.deadline,
                        "on_time": verdict.on_time,
                        "warning": verdict.warning,
                        "warning_since": new_since,
                    }
                )
        if updates:
            session.connection().execute(
                sa.update(table_of(CaseRecord))
                .where(table_of(CaseRecord).c.id == sa.bindparam("b_id"))
                .values(
                    suspended_days=sa.bindparam("suspended_days"),
                    deadline=sa.bindparam("deadline"),
                    on_time=sa.bindparam("on_time"),
                    warning=sa.bindparam("warning"),
                    warning_since=sa.bindparam("warning_since"),
                ),
                updates,
            )
            report.changed += len(updates)
    record(
        session,
        actor=actor,
        action="reports.refresh_case_warnings",
        entity_type="case_warnings",
        entity_id=today.isoformat(),
        new=report.as_dict(),
    )
    return report


# ---- rates and the warnings list ---------------------------------------------------------------------


@dataclass(frozen=True)
class Rates:
    finished: int
    on_time: int
    speed_cases: int
    promise_sum: int
    anticipate_sum: int
    not_recorded: int

    @property
    def on_time_rate(self) -> float | None:
        return self.on_time / self.finished if self.finished else None

    @property
    def speed_up_rate(self) -> float | None:
        """1 − avg(promise)/avg(anticipate); the averages share their case count, so sums suffice."""
        return 1 - self.promise_sum / self.anticipate_sum if self.anticipate_sum else None


def _scoped(stmt: Any, departments: list[int] | None) -> Any:
    return stmt if departments is None else stmt.where(col(CaseRecord.department_id).in_(departments))


def compute_rates(session: Session, start: date, end: date, departments: list[int] | None = None) -> Rates:
    """按时办结率 over the cases finished in [start, end]; 提速率 over the cases accepted in it."""
    C = CaseRecord
    finished, on_time = session.execute(
        _scoped(
            sa.select(sa.func.count(), sa.func.count().filter(col(C.on_time).is_(True))).where(
                col(C.result_date).between(start, end)
            ),
            departments,
        )
    ).one()
    both = sa.and_(
        col(C.promise_days).is_not(None),
        col(C.anticipate_days).is_not(None),
        col(C.anticipate_days) > 0,
        col(C.promise_unit) == col(C.anticipate_unit),
    )
    accepted, speed_cases, promise_sum, anticipate_sum = session.execute(
        _scoped(
            sa.select(
                sa.func.count(),
                sa.func.count().filter(both),
                sa.func.coalesce(sa.func.sum(col(C.promise_days)).filter(both), 0),
                sa.func.coalesce(sa.func.sum(col(C.anticipate_days)).filter(both), 0),
            ).where(col(C.accept_date).between(start, end)),
            departments,
        )
    ).one()
    return Rates(
        finished=int(finished),
        on_time=int(on_time),
        speed_cases=int(speed_cases),
        promise_sum=int(promise_sum),
        anticipate_sum=int(anticipate_sum),
        not_recorded=int(accepted) - int(speed_cases),
    )


def warning_counts(session: Session, departments: list[int] | None = None) -> dict[str, int]:
    """Open cases by warning level, and finished-late cases (超期办结)."""
    C = CaseRecord
    rows = session.execute(
        _scoped(
            sa.select(col(C.warning), col(C.result_date).is_(None), sa.func.count())
            .where(col(C.warning).is_not(None))
            .group_by(col(C.warning), col(C.result_date).is_(None)),
            departments,
        )
    ).all()
    counts = {"yellow": 0, "red": 0, "late": 0}
    for warning, is_open, n in rows:
        counts["late" if not is_open else warning] += n
    return counts


def list_warnings(
    session: Session,
    departments: list[int] | None,
    *,
    level: str | None = None,
    finished: bool = False,
    limit: int = 200,
    offset: int = 0,
) -> list[dict[str, Any]]:
    """Warned cases, earliest deadline first: open ones, or finished-late ones with ``finished``."""
    C, E, D = CaseRecord, ImplementationEntry, Department
    stmt = (
        sa.select(
            col(C.id),
            col(C.project_no),
            col(C.accept_date),
            col(C.promise_date),
            col(C.deadline),
            col(C.suspended_days),
            col(C.result_date),
            col(C.warning),
            col(C.warning_since),
            col(E.task_code),
            col(E.name).label("entry_name"),
            col(D.name).label("department"),
        )
        .join(E, col(E.id) == C.entry_id)
        .join(D, col(D.id) == C.department_id)
        .where(col(C.warning).is_not(None))
        .where(col(C.result_date).is_not(None) if finished else col(C.result_date).is_(None))
        .order_by(col(C.deadline), col(C.id))
        .limit(limit)
        .offset(offset)
    )
    if level:
        stmt = stmt.where(col(C.warning) == level)
    return [dict(r._mapping) for r in session.execute(_scoped(stmt, departments)).all()]


def case_detail(session: Session, case_id: int, departments: list[int] | None) -> dict[str, Any] | None:
    """One case with its steps and special procedures, or None when absent or out of scope."""
    case = session.get(CaseRecord, case_id)
    if case is None or (departments is not None and case.department_id not in departments):
        return None
    entry = session.get(ImplementationEntry, case.entry_id)
    department = session.get(Department, case.department_id)
    steps = session.execute(
        sa.select(CaseStep).where(col(CaseStep.case_id) == case_id).order_by(col(CaseStep.seq))
    ).scalars()
    specials = session.execute(
        sa.select(CaseSpecialProcedure)
        .where(col(CaseSpecialProcedure.case_id) == case_id)
        .order_by(col(CaseSpecialProcedure.seq))
    ).scalars()
    return {
        "case": case,
        "entry": entry,
        "department": department,
        "steps": list(steps),
        "specials": list(specials),
    }
