"""Case intake (办件归集): acceptance, steps, special procedures and result, from the API or a CSV file.

The shape follows the national 办件 tables (standards.md §7): up_pro_accept (project_no 办件编号,
task_code 实施编码, apply_date, accept_date, promise_date 承诺办结日期, applicant type, channel),
up_pro_process (steps), up_pro_special_procedure (special procedures, not counted in the time limit)
and up_pro_result (result_date, result_type).

Rules: the 实施编码 must exist; a missing promise_date is computed from the entry's 承诺时限 and its
unit on the working-day calendar (core.workdays) and marked as computed; an entry without a recorded
承诺时限 needs the date in the row (unknown is not a default). Import is idempotent on project_no: the
same row twice changes nothing, a changed row updates the case. Every row is checked; any bad row
refuses the whole batch with each line and reason (the caller's transaction is rolled back), so
nothing is half-imported. Rows are written in chunks, so a million-row file needs no million-row
list in memory.
"""

from __future__ import annotations

import functools
import gc
import io
import operator
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from typing import Any, TextIO

import psycopg
import sqlalchemy as sa
from psycopg.copy import QueuedLibpqWriter
from sqlmodel import Session, col

from catalog.models import Department, ImplementationEntry
from catalog.permissions import division_scope_prefix
from core.audit import record
from core.auth import Principal, Role
from core.csv_input import control_problem, header_problems, parse_iso_date, records
from core.db import table_of
from core.errors import Conflict, Forbidden, Invalid
from core.types import utcnow
from core.workdays import FIRST_DAY, add_calendar_days, add_workdays
from reports import supervision
from reports.models import CaseRecord, CaseSpecialProcedure, CaseStep

# CSV columns: the acceptance and result of one case per line. Special procedures go in one column as
# ISO 8601 intervals "start/end" separated by ";" ("2026-03-02/2026-03-04;2026-03-10/"; an empty end
# means still running). Steps come through the API only.
CSV_REQUIRED = ("project_no", "task_code", "accept_date", "channel")
CSV_OPTIONAL = (
    "apply_date",
    "promise_date",
    "applicant_type",
    "result_date",
    "result_type",
    "special_procedures",
)
CSV_COLUMNS = CSV_REQUIRED + CSV_OPTIONAL
FIELD_LABELS = {
    "project_no": "办件编号",
    "task_code": "实施编码",
    "apply_date": "申请日期",
    "accept_date": "受理日期",
    "promise_date": "承诺办结日期",
    "applicant_type": "申请人类型",
    "channel": "申报渠道",
    "result_date": "办结日期",
    "result_type": "办结结果",
    "special_procedures": "特别程序",
    "steps": "办理环节",
}
CHANNELS = {"online": "online", "window": "window", "网上": "online", "窗口": "window"}
APPLICANT_TYPES = {code: code for code in supervision.APPLICANT_LABELS} | {
    label: code for code, label in supervision.APPLICANT_LABELS.items()
}
RESULT_TYPES = {code: code for code in supervision.RESULT_LABELS} | {
    label: code for code, label in supervision.RESULT_LABELS.items()
}
LAST_DAY = date(2099, 12, 31)  # leaves the calendar room to move deadlines on
CHUNK = 5_000
# After writing this many cases in one import, PostgreSQL's statistics of the case tables are refreshed
# in the same transaction: right after a bulk load the planner still believes the old row counts, and
# the warnings page then took 105 s instead of 0.2 s on a million fresh cases (docs/benchmarks.md).
ANALYZE_AFTER = 10_000
MAX_ERRORS = 200  # a file full of errors reports this many lines, and the count of all


@dataclass(slots=True)
class CaseInput:
    """One validated case, ready to write."""

    line: int
    project_no: str
    entry_id: int
    department_id: int
    apply_date: date | None
    accept_date: date
    promise_date: date
    promise_computed: bool
    promise_days: int | None
    promise_unit: str | None
    anticipate_days: int | None
    anticipate_unit: str | None
    applicant_type: str | None
    channel: str
    result_date: date | None
    result_type: str | None
    specials: list[tuple[str | None, date, date | None]] | None  # None: keep what is stored
    steps: list[tuple[str, date, date | None]] | None


@dataclass
class CaseImportResult:
    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0

    def as_dict(self) -> dict[str, int]:
        return {
            "rows": self.rows,
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
        }


@dataclass(frozen=True)
class _Entry:
    id: int
    department_id: int
    division_code: str
    promise_days: int | None
    promise_unit: str | None
    anticipate_days: int | None
    anticipate_unit: str | None


@dataclass
class _Errors:
    label: str = "第{}行"
    lines: dict[str, list[str]] = field(default_factory=dict)
    count: int = 0

    def add(self, line: int, problems: list[str]) -> None:
        self.count += 1
        if len(self.lines) < MAX_ERRORS:
            self.lines[self.label.format(line)] = problems


@dataclass
class _Memo:
    """One import's caches of pure functions whose arguments repeat across a large file: a year of
    cases has a few hundred distinct dates, so parsing a date, computing a promise date and the
    电子监察 verdict (``supervision.assess``, still the one definition) are done once per distinct
    argument instead of once per row. Bounded, so a file of odd values cannot grow them without end."""

    days: dict[str, date] = field(default_factory=dict)  # raw text -> date (parsed and in range)
    promises: dict[tuple[int, str | None, date], date] = field(default_factory=dict)
    verdicts: dict[tuple[Any, ...], supervision.Assessment] = field(default_factory=dict)


MEMO_LIMIT = 200_000  # entries per cache


# ---- parsing one row -----------------------------------------------------------------------------------


def _text(value: Any) -> str:
    if type(value) is str:  # the CSV's case, eleven times a row
        return value.strip()
    return "" if value is None else str(value).strip()


_NOT_IN_FUTURE = frozenset(("apply_date", "accept_date", "result_date"))


def _date(
    row: dict[str, Any], name: str, problems: list[str], today: date, days: dict[str, date] | None = None
) -> date | None:
    """The row's date in column ``name``, or None (missing, or refused with a problem added).

    ``days`` (one import's cache) maps a date text already parsed and found in range to its date; the
    column's own rule (not after today) is checked on every row, cached or not."""
    value = row.get(name)
    if value is None or value == "":
        return None
    day = days.get(value) if days is not None and type(value) is str else None
    if day is None:
        day = _day(value, name, problems)
        if day is None:
            return None
        if days is not None and type(value) is str and len(days) < MEMO_LIMIT:
            days[value] = day
    if day > today and name in _NOT_IN_FUTURE:
        problems.append(f"{FIELD_LABELS[name]} {name} {day} 晚于今天")
        return None
    return day


def _day(value: Any, name: str, problems: list[str]) -> date | None:
    """A date value or ISO text in the calendar's range, or None (empty, or refused with a problem)."""
    if isinstance(value, date):
        day = value
    else:
        text = _text(value)
        if not text:
            return None
        try:
            day = parse_iso_date(text)
        except ValueError:
            problems.append(f"{FIELD_LABELS.get(name, name)} {name}“{text}”不是日期（YYYY-MM-DD）")
            return None
    if not FIRST_DAY <= day <= LAST_DAY:
        problems.append(f"{FIELD_LABELS.get(name, name)} {name} {day} 超出可处理的范围")
        return None
    return day


def _interval_dates(text: str, problems: list[str]) -> tuple[date, date | None] | None:
    start_text, sep, end_text = text.partition("/")
    try:
        start = parse_iso_date(start_text.strip())
        end = parse_iso_date(end_text.strip()) if end_text.strip() else None
    except ValueError:
        problems.append(f"特别程序“{text}”应为 开始日期/结束日期（YYYY-MM-DD/YYYY-MM-DD，结束可空）")
        return None
    if not sep:
        problems.append(f"特别程序“{text}”缺少“/”")
        return None
    # The range every other date is held to (``_day``): the working-day calendar ends in LAST_DAY.
    if _day(start, "special_procedures", problems) is None or (
        end is not None and _day(end, "special_procedures", problems) is None
    ):
        return None
    return start, end


def _specials(value: Any, problems: list[str]) -> list[tuple[str | None, date, date | None]] | None:
    if value is None:
        return None
    found: list[tuple[str | None, date, date | None]] = []
    if isinstance(value, str):
        if not value:
            return found
        for part in (p.strip() for p in value.split(";")):
            if part:
                span = _interval_dates(part, problems)
                if span:
                    found.append((None, *span))
        return found
    for item in value:
        kind = _text(item.get("kind")) or None
        start, end = item.get("start_date"), item.get("end_date")
        if isinstance(start, str):
            span = _interval_dates(f"{start}/{end or ''}", problems)
            if span:
                found.append((kind, *span))
        # Dates from the API arrive parsed: held to the same range as the file's (``_day``).
        elif (
            isinstance(start, date)
            and _day(start, "special_procedures", problems) is not None
            and (end is None or _day(end, "special_procedures", problems) is not None)
        ):
            found.append((kind, start, end))
    return found


def _steps(value: Any, problems: list[str]) -> list[tuple[str, date, date | None]] | None:
    if value is None:
        return None
    found: list[tuple[str, date, date | None]] = []
    for index, item in enumerate(value, start=1):
        action = _text(item.get("action"))
        start, end = item.get("start_date"), item.get("end_date")
        if not action:
            problems.append(f"第{index}个办理环节缺少环节名称 action")
        if not isinstance(start, date):
            problems.append(f"第{index}个办理环节缺少开始日期 start_date")
            continue
        if end is not None and end < start:
            problems.append(f"第{index}个办理环节的结束日期早于开始日期")
        found.append((action[:100], start, end))
    return found


def _promise(entry: _Entry, accept: date, memo: _Memo | None = None) -> date | None:
    if entry.promise_days is None:
        return None
    key = (entry.promise_days, entry.promise_unit, accept)
    if memo is not None and (known := memo.promises.get(key)) is not None:
        return known
    if entry.promise_unit == "calendar":
        day = add_calendar_days(accept, entry.promise_days)
    else:
        day = add_workdays(accept, entry.promise_days)
    if memo is not None and len(memo.promises) < MEMO_LIMIT:
        memo.promises[key] = day
    return day


def _stripped(value: Any) -> str:
    return value.strip() if type(value) is str else _text(value)


def parse_row(
    row: dict[str, Any], line: int, entries: dict[str, _Entry], today: date, memo: _Memo | None = None
) -> tuple[CaseInput | None, list[str]]:
    """Check one row against the rules; return the case or the row's problems (in Chinese).

    ``memo`` (one per import) caches dates and promise dates across rows; the result is the same."""
    problems: list[str] = []
    days = memo.days if memo is not None else None
    get = row.get
    project_no = _stripped(get("project_no"))
    if not project_no:
        problems.append("缺少办件编号 project_no")
    elif len(project_no) > 64:
        problems.append("办件编号 project_no 超过 64 个字符")
    code = _stripped(get("task_code"))
    entry = entries.get(code)
    if not code:
        problems.append("缺少实施编码 task_code")
    elif entry is None:
        problems.append(f"未知的实施编码 task_code {code}")
    apply_date = _date(row, "apply_date", problems, today, days)
    accept = _date(row, "accept_date", problems, today, days)
    if accept is None and not any("accept_date" in p for p in problems):
        problems.append("缺少受理日期 accept_date")
    promise = _date(row, "promise_date", problems, today, days)
    result = _date(row, "result_date", problems, today, days)
    channel_text = _stripped(get("channel"))
    channel = CHANNELS.get(channel_text)
    if channel is None:
        problems.append(f"申报渠道 channel“{channel_text}”应为 online（网上）或 window（窗口）")
    applicant_text = _stripped(get("applicant_type"))
    applicant = APPLICANT_TYPES.get(applicant_text) if applicant_text else None
    if applicant_text and applicant is None:
        problems.append(f"申请人类型 applicant_type“{applicant_text}”应为 person、legal 或 other")
    result_text = _stripped(get("result_type"))
    result_type = RESULT_TYPES.get(result_text) if result_text else None
    if result_text and result_type is None:
        problems.append(f"办结结果 result_type“{result_text}”应为 {'、'.join(supervision.RESULT_LABELS)}")
    if result is not None and not result_text:
        problems.append("有办结日期 result_date 时须填写办结结果 result_type")
    if result_text and result is None and "result_date" not in " ".join(problems):
        problems.append("有办结结果 result_type 时须填写办结日期 result_date")
    specials = _specials(get("special_procedures"), problems)
    steps = _steps(get("steps"), problems)
    computed = False
    if accept is not None:
        if apply_date is not None and apply_date > accept:
            problems.append("申请日期 apply_date 晚于受理日期 accept_date")
        if result is not None and result < accept:
            problems.append("办结日期 result_date 早于受理日期 accept_date")
        if promise is not None and promise < accept:
            problems.append("承诺办结日期 promise_date 早于受理日期 accept_date")
        if promise is None and entry is not None and not any("promise_date" in p for p in problems):
            promise = _promise(entry, accept, memo)
            computed = promise is not None
            if promise is None:
                problems.append(f"实施清单 {code} 未填报承诺办结时限，须提供承诺办结日期 promise_date")
        if specials:
            for _kind, start, end in specials:
                if start < accept:
                    problems.append(f"特别程序开始日期 {start} 早于受理日期")
                if end is not None and end < start:
                    problems.append(f"特别程序结束日期 {end} 早于开始日期 {start}")
                if result is not None and (end is None or end > result):
                    problems.append(f"特别程序（{start} 起）在办结日期之后才结束或尚未结束")
    if problems or entry is None or accept is None or promise is None or channel is None:
        return None, problems
    return (
        CaseInput(
            line=line,
            project_no=project_no,
            entry_id=entry.id,
            department_id=entry.department_id,
            apply_date=apply_date,
            accept_date=accept,
            promise_date=promise,
            promise_computed=computed,
            promise_days=entry.promise_days,
            promise_unit=entry.promise_unit if entry.promise_days is not None else None,
            anticipate_days=entry.anticipate_days,
            anticipate_unit=entry.anticipate_unit if entry.anticipate_days is not None else None,
            applicant_type=applicant,
            channel=channel,
            result_date=result,
            result_type=result_type,
            specials=specials,
            steps=steps,
        ),
        [],
    )


# ---- permission ----------------------------------------------------------------------------------------


def _may_import(actor: Principal, entry: _Entry) -> bool:
    if actor.is_admin:
        return True
    if actor.role in (Role.DEPT_EDITOR, Role.DEPT_REVIEWER):
        return actor.department_id is not None and actor.department_id == entry.department_id
    prefix = division_scope_prefix(actor.division_code)
    return (
        actor.role == Role.DIVISION_OPERATOR and bool(prefix) and entry.division_code.startswith(prefix or "")
    )


def _distinct_codes(chunk: list[tuple[int, dict[str, Any]]], known: dict[str, _Entry]) -> set[str]:
    """The chunk's 实施编码 not yet in ``known``; a file names a few thousand entries in a million rows,
    so the raw values are deduplicated before any is stripped."""
    raw = {code if type(code := row.get("task_code")) is str else _text(code) for _l, row in chunk}
    return {code for value in raw if (code := value.strip()) and code not in known}


def _load_entries(session: Session, codes: Iterable[str], cache: dict[str, _Entry]) -> None:
    wanted = [c for c in set(codes) if c and c not in cache]
    E = ImplementationEntry
    for start in range(0, len(wanted), 1000):
        for row in session.execute(
            sa.select(
                col(E.task_code),
                col(E.id),
                col(E.department_id),
                col(E.division_code),
                col(E.promise_days),
                col(E.promise_unit),
                col(E.anticipate_days),
                col(E.anticipate_unit),
            ).where(col(E.task_code).in_(wanted[start : start + 1000]))
        ).all():
            cache[row[0]] = _Entry(*row[1:])


# ---- writing -------------------------------------------------------------------------------------------

_CASE_COLUMNS = (
    "project_no",
    "entry_id",
    "department_id",
    "apply_date",
    "accept_date",
    "promise_days",
    "promise_unit",
    "anticipate_days",
    "anticipate_unit",
    "promise_date",
    "promise_computed",
    "applicant_type",
    "channel",
    "result_date",
    "result_type",
    "suspended_days",
    "deadline",
    "on_time",
    "warning",
    "warning_since",
    "source",
)
_COMPARED = _CASE_COLUMNS[:15]  # the recorded facts; the rest is derived from them
# The recorded facts of a case as one tuple in _COMPARED order (one C call instead of 15 getattr: a
# million-row import pays for every attribute access).
_facts = operator.attrgetter(*_COMPARED)


def _values(case: CaseInput, verdict: supervision.Assessment, today: date, source: str) -> dict[str, Any]:
    values = dict(zip(_COMPARED, _facts(case), strict=True))
    values.update(
        suspended_days=verdict.suspended_days,
        deadline=verdict.deadline,
        on_time=verdict.on_time,
        warning=verdict.warning,
        warning_since=today if verdict.warning else None,
        source=source,
    )
    return values


@dataclass
class _Stored:
    """What the database holds for the project numbers of one chunk (read before the chunk is parsed)."""

    facts: dict[str, tuple[Any, ...]] = field(default_factory=dict)  # project_no -> (id, *_COMPARED)
    since: dict[str, tuple[str | None, date | None]] = field(default_factory=dict)
    specials: dict[int, list[tuple[date, date | None]]] = field(default_factory=dict)


@dataclass
class _Writes:
    """One chunk's rows to write: new cases (COPY row tuples), updates and child rows."""

    inserts: list[tuple[Any, ...]] = field(default_factory=list)
    updates: list[dict[str, Any]] = field(default_factory=list)
    children: list[tuple[str, CaseInput]] = field(default_factory=list)  # of updated cases: replaced
    new_children: list[tuple[str, CaseInput]] = field(default_factory=list)  # of new cases: no old ones


def _read_stored(session: Session, project_nos: list[str]) -> _Stored:
    table = table_of(CaseRecord)
    stored = _Stored()
    wanted = supervision.one_of(session, table.c.project_no, project_nos, sa.String)
    for row in session.connection().execute(
        sa.select(table.c.id, *(table.c[n] for n in _COMPARED), table.c.warning, table.c.warning_since).where(
            wanted
        )
    ).all():
        stored.facts[row[1]] = tuple(row[: len(_COMPARED) + 1])
        stored.since[row[1]] = (row[-2], row[-1])
    if stored.facts:
        stored.specials = supervision.specials_by_case(session, [r[0] for r in stored.facts.values()])
    return stored


def _prepare_chunk(
    cases: list[CaseInput],
    stored: _Stored,
    today: date,
    source: str,
    yellow_days: int,
    result: CaseImportResult,
    row_label: str,
    memo: _Memo | None = None,
) -> _Writes:
    """The 电子监察 verdict of every case and the rows to write; CPU only, no database access.

    The verdict is ``supervision.assess`` of the case's dates and special procedures; with ``memo``
    it is computed once per distinct (accept, promise, result, procedures) of the import."""
    now = utcnow()
    writes = _Writes()
    verdicts = memo.verdicts if memo is not None else {}
    for case in cases:
        old = stored.facts.get(case.project_no)
        if case.specials is not None:
            spans = [(s, e) for _k, s, e in case.specials]
        else:
            spans = stored.specials.get(old[0], []) if old else []
        key = (case.accept_date, case.promise_date, case.result_date, *spans)
        verdict = verdicts.get(key)
        if verdict is None:
            verdict = supervision.assess(
                case.accept_date, case.promise_date, case.result_date, spans, today, yellow_days
            )
            if len(verdicts) < MEMO_LIMIT:
                verdicts[key] = verdict
        if old is None:
            # A new case goes straight to a row tuple in _INSERT_COLUMNS order (no dict per row).
            warning = verdict.warning
            writes.inserts.append(
                (*_facts(case), verdict.suspended_days, verdict.deadline, verdict.on_time, warning,
                 today if warning else None, source, now, now)
            )
            if case.specials or case.steps:
                writes.new_children.append((case.project_no, case))
            result.created += 1
            continue
        values = _values(case, verdict, today, source)
        if old[2] != case.entry_id:
            raise Invalid(
                "办件编号已用于另一实施清单事项，未导入任何数据",
                {
                    row_label.format(case.line): [
                        f"办件编号 {case.project_no} 已属于另一实施编码，不能改挂到本行的实施编码"
                    ]
                },
            )
        facts_changed = tuple(old[1:]) != _facts(case)
        before = stored.specials.get(old[0], [])
        specials_changed = case.specials is not None and sorted(spans) != sorted(before)
        if facts_changed or specials_changed or case.steps is not None:
            old_warning, old_since = stored.since[case.project_no]
            if values["warning"] is not None and values["warning"] == old_warning:
                values["warning_since"] = old_since  # the same warning goes on: keep when it began
            writes.updates.append({**values, "b_id": old[0], "updated_at": now})
            if case.specials is not None or case.steps is not None:
                writes.children.append((case.project_no, case))
            result.updated += 1
        else:
            result.unchanged += 1
    return writes


def _write_rest(conn: sa.Connection, writes: _Writes) -> None:
    """Updates and child rows of a chunk whose new cases are already inserted."""
    table = table_of(CaseRecord)
    if writes.updates:
        conn.execute(
            sa.update(table)
            .where(table.c.id == sa.bindparam("b_id"))
            .values({n: sa.bindparam(n) for n in writes.updates[0] if n != "b_id"}),
            writes.updates,
        )
    if writes.children or writes.new_children:
        _write_children(conn, writes.children, writes.new_children)


_INSERT_COLUMNS = (*_CASE_COLUMNS, "created_at", "updated_at")


@functools.cache
def _copy_types(dialect: sa.Dialect) -> list[str]:
    """The PostgreSQL type names of _INSERT_COLUMNS ("varchar", "integer", "date"...), from the table,
    for a binary COPY: psycopg then sends each value in the server's binary form, which costs the
    client a fraction of formatting text and spares the server from parsing it."""
    table = table_of(CaseRecord)
    return [str(table.c[n].type.compile(dialect=dialect)).split("(")[0].lower() for n in _INSERT_COLUMNS]


@contextmanager
def _inserting(conn: sa.Connection, rows: list[tuple[Any, ...]]) -> Iterator[None]:
    """Insert ``rows`` (in _INSERT_COLUMNS order); the caller's block runs while they are on their way.

    On PostgreSQL the rows go by binary COPY (see _copy_types) through a writer thread (psycopg's
    QueuedLibpqWriter): the block (parsing the next chunk) runs while the server ingests and indexes
    these rows, and the COPY ends when the block does. Elsewhere the rows are inserted first
    (executemany), then the block runs.
    """
    if not rows:
        yield
        return
    if conn.dialect.name != "postgresql":
        values = [dict(zip(_INSERT_COLUMNS, r, strict=True)) for r in rows]
        conn.execute(sa.insert(table_of(CaseRecord)), values)
        yield
        return
    raw = conn.connection.driver_connection
    assert raw is not None  # noqa: S101 (an open connection always has its driver connection)
    statement = f"COPY report_case ({', '.join(_INSERT_COLUMNS)}) FROM STDIN (FORMAT BINARY)"
    with raw.cursor() as cursor, cursor.copy(statement, writer=QueuedLibpqWriter(cursor)) as copy:
        copy.set_types(_copy_types(conn.dialect))
        write = copy.write_row
        for row in rows:
            write(row)
        yield


def _write_children(
    conn: sa.Connection, children: list[tuple[str, CaseInput]], new_children: list[tuple[str, CaseInput]]
) -> None:
    """Steps and special procedures: those of updated cases replace the stored ones; new cases have none
    stored, so theirs are only inserted (no DELETE to plan against a table still growing)."""
    table = table_of(CaseRecord)
    both = [*children, *new_children]
    ids = dict(
        conn.execute(
            sa.select(table.c.project_no, table.c.id).where(table.c.project_no.in_([p for p, _c in both]))
        ).all()
    )
    renewed = len(children)
    steps, specials = table_of(CaseStep), table_of(CaseSpecialProcedure)
    step_rows: list[dict[str, Any]] = []
    special_rows: list[dict[str, Any]] = []
    replace_steps: list[int] = []
    replace_specials: list[int] = []
    for index, (project_no, case) in enumerate(both):
        case_id = ids[project_no]
        if case.steps is not None:
            if index < renewed:
                replace_steps.append(case_id)
            step_rows += [
                {"case_id": case_id, "seq": i, "action": a, "start_date": s, "end_date": e}
                for i, (a, s, e) in enumerate(case.steps, start=1)
            ]
        if case.specials is not None:
            if index < renewed:
                replace_specials.append(case_id)
            special_rows += [
                {"case_id": case_id, "seq": i, "kind": k, "start_date": s, "end_date": e}
                for i, (k, s, e) in enumerate(case.specials, start=1)
            ]
    if replace_steps:
        conn.execute(sa.delete(steps).where(steps.c.case_id.in_(replace_steps)))
    if replace_specials:
        conn.execute(sa.delete(specials).where(specials.c.case_id.in_(replace_specials)))
    if step_rows:
        conn.execute(sa.insert(steps), step_rows)
    if special_rows:
        conn.execute(sa.insert(specials), special_rows)


def import_cases(
    session: Session,
    actor: Principal,
    rows: Iterable[tuple[int, dict[str, Any]]],
    *,
    today: date,
    source: str = "api",
    yellow_days: int = supervision.DEFAULT_YELLOW_DAYS,
    row_label: str = "第{}行",
) -> CaseImportResult:
    """Validate and upsert cases given as (line, row) pairs; all rows or none (see the module docstring).

    Chunks are written as they pass; once a bad row is seen nothing more is written and Invalid is
    raised at the end with every bad line (up to MAX_ERRORS), so the caller's rollback leaves the
    database as it was. Flushes, never commits; one audit row for the batch.
    """
    if not actor.is_authenticated:
        raise Forbidden("请先登录")
    with _collector_paused():
        return _import(session, actor, rows, today, source, yellow_days, row_label)


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector paused while an import runs.

    An import allocates a dict, a case and a row tuple per line, none of them in a reference cycle;
    the collector's generation-0 passes over them (one every 700 allocations) took about a quarter
    of the client's CPU on a large file (docs/benchmarks.md). Reference counting still frees every
    row; cycles made meanwhile anywhere in the process wait for the next pass after the import.
    The collector is switched back on only if it was on (a nested or concurrent import leaves it to
    the outer one)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


RACE_ATTEMPTS = 3  # imports of a list (the API) after losing a race on a project number to another
RACE_LOST = "另一请求同时写入了相同办件编号的办件，本次未导入任何数据；请重新提交（重复提交不会重复记录）"


def _import(
    session: Session,
    actor: Principal,
    rows: Iterable[tuple[int, dict[str, Any]]],
    today: date,
    source: str,
    yellow_days: int,
    row_label: str,
) -> CaseImportResult:
    """The import in a savepoint, so that one that loses a race is undone and, given a list (the API),
    made again on what is stored now: the idempotent answer, as if it had come second.

    The race: two imports of the same new project number both read that it is not stored, then both
    insert it; the second fails on the unique project_no (a 500 before). PostgreSQL fails it only once
    the first has committed, so the second reading finds the case, and the row becomes an update or
    "unchanged". A file (a stream, read once) that loses is refused with a Conflict, nothing written:
    importing it again is harmless. On SQLite the import takes the database's write lock before it
    reads (BEGIN IMMEDIATE): imports there run one after the other and see each other's cases."""
    session.flush()
    conn = session.connection()
    raw = conn.connection.driver_connection
    if conn.dialect.name == "sqlite" and raw is not None and not raw.in_transaction:
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    attempts = RACE_ATTEMPTS if isinstance(rows, Sequence) else 1
    for attempt in range(1, attempts + 1):
        try:
            with session.begin_nested():
                return _import_once(session, actor, rows, today, source, yellow_days, row_label)
        except (sa.exc.IntegrityError, psycopg.IntegrityError) as exc:
            # The COPY of new cases (PostgreSQL) raises the driver's error, the other writes SQLAlchemy's.
            cause = exc.orig if isinstance(exc, sa.exc.IntegrityError) else exc
            unique = isinstance(cause, psycopg.errors.UniqueViolation) or "UNIQUE constraint" in str(cause)
            if not unique:
                raise
            if attempt == attempts:
                raise Conflict(RACE_LOST, {"project_no": ["与同时进行的另一次导入冲突"]}) from None
    raise AssertionError("unreachable")  # the last attempt returns or raises


def _import_once(
    session: Session,
    actor: Principal,
    rows: Iterable[tuple[int, dict[str, Any]]],
    today: date,
    source: str,
    yellow_days: int,
    row_label: str,
) -> CaseImportResult:
    result = CaseImportResult()
    errors = _Errors(label=row_label)
    entries: dict[str, _Entry] = {}
    seen: dict[str, int] = {}
    foreign: dict[str, list[str]] = {}
    memo = _Memo()
    session.flush()
    conn = session.connection()
    # Pipelined: chunk N's new cases stream to the server (COPY) while chunk N+1 is parsed; the
    # database reads chunk N+1 needs (its entries, its stored cases) are made before that COPY opens.
    # A project number in both chunks is a duplicate within the file, refused by ``seen`` below, so
    # reading chunk N+1's stored cases before chunk N is written cannot miss one of them.
    waiting = _Writes()
    for chunk in _chunks(rows, CHUNK):
        _load_entries(session, _distinct_codes(chunk, entries), entries)
        stored = _read_stored(session, [p for _l, r in chunk if (p := _stripped(r.get("project_no")))])
        with _inserting(conn, waiting.inserts):
            good = _parse_chunk(chunk, entries, today, actor, seen, errors, foreign, row_label, memo)
            result.rows += len(chunk)
            ready = None
            if good and not errors.count and not foreign:
                ready = _prepare_chunk(good, stored, today, source, yellow_days, result, row_label, memo)
        _write_rest(conn, waiting)
        waiting = ready or _Writes()
    if not errors.count and not foreign:
        with _inserting(conn, waiting.inserts):
            pass
        _write_rest(conn, waiting)
        if result.created + result.updated >= ANALYZE_AFTER and conn.dialect.name == "postgresql":
            conn.execute(sa.text("ANALYZE report_case, report_case_special"))
    if foreign and not errors.count:
        raise Forbidden("只能导入本部门（本辖区）事项的办件，未导入任何数据", foreign)
    if errors.count:
        more = f"（仅列出前 {MAX_ERRORS} 行）" if errors.count > MAX_ERRORS else ""
        raise Invalid(f"办件数据有 {errors.count} 行错误，未导入任何数据{more}", errors.lines)
    if not result.rows:
        raise Invalid("没有办件数据行", {"file": ["没有数据行"]})
    record(
        session,
        actor=actor,
        action="reports.import_cases",
        entity_type="cases",
        entity_id=source,
        new=result.as_dict(),
    )
    return result


def _parse_chunk(
    chunk: list[tuple[int, dict[str, Any]]],
    entries: dict[str, _Entry],
    today: date,
    actor: Principal,
    seen: dict[str, int],
    errors: _Errors,
    foreign: dict[str, list[str]],
    row_label: str,
    memo: _Memo | None = None,
) -> list[CaseInput]:
    """The chunk's valid cases the actor may import; problems go to ``errors`` / ``foreign``."""
    good: list[CaseInput] = []
    allowed: dict[int, bool] = {}  # entry id -> may the actor import its cases
    for line, row in chunk:
        if "__width__" in row:
            errors.add(line, [f"该行有 {row['__width__']} 列，与表头的列数不符"])
            continue
        case, problems = parse_row(row, line, entries, today, memo)
        if case is not None:
            first = seen.get(case.project_no)
            if first is not None:
                problems = [f"办件编号 {case.project_no} 与{row_label.format(first)}重复"]
                case = None
            else:
                seen[case.project_no] = line
        if case is None:
            errors.add(line, problems)
            continue
        may = allowed.get(case.entry_id)
        if may is None:
            code = _text(row.get("task_code"))
            may = allowed[case.entry_id] = _may_import(actor, entries[code])
        if not may:
            code = _text(row.get("task_code"))
            if len(foreign) < MAX_ERRORS:
                foreign[row_label.format(line)] = [f"实施编码 {code} 不在您的权限范围内"]
            continue
        good.append(case)
    return good


def _chunks(
    rows: Iterable[tuple[int, dict[str, Any]]], size: int
) -> Iterator[list[tuple[int, dict[str, Any]]]]:
    chunk: list[tuple[int, dict[str, Any]]] = []
    for item in rows:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


# ---- CSV -----------------------------------------------------------------------------------------------


def read_csv(stream: TextIO) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line, row) pairs of a case CSV (UTF-8, header line first); a wrong header raises Invalid.

    Line numbers are the file's, counting the header as line 1: the line a row starts on, so messages
    point at the right line. A row the csv module cannot read (an unclosed quote, a field over its
    length limit) or holding a control character (NUL: PostgreSQL refused the whole import with a
    traceback) raises Invalid naming its line: the import is all or nothing, so nothing is written.
    """
    rows = records(stream)
    first = next(rows, None)
    if first is None:
        raise Invalid("办件文件为空", {"file": ["文件为空"]})
    header = [h.strip().lstrip("\ufeff") for h in first.values]
    problems = [first.problem] if first.problem else header_problems(header, CSV_REQUIRED, CSV_COLUMNS)
    if problems:
        raise Invalid(
            f"办件文件的列应为 {','.join(CSV_COLUMNS)}（后 {len(CSV_OPTIONAL)} 列可省略）",
            {f"第{first.line}行": problems},
        )
    width = len(header)  # at least the four required columns, so a full-width line is never blank
    no_specials_column = "special_procedures" not in header
    for line, values, problem in rows:
        problem = problem or control_problem(header, values)
        if problem:
            raise Invalid(f"办件文件第{line}行无法读取，未导入任何数据", {f"第{line}行": [problem]})
        if len(values) == width:
            row: dict[str, Any] = dict(zip(header, values, strict=True))
            if no_specials_column:
                row["special_procedures"] = None
            yield line, row
        else:
            yield line, {"__width__": len(values)}


def read_csv_text(text: str) -> Iterator[tuple[int, dict[str, Any]]]:
    return read_csv(io.StringIO(text))


def department_names(session: Session, ids: Iterable[int]) -> dict[int, str]:
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    return dict(
        session.execute(
            sa.select(col(Department.id), col(Department.name)).where(col(Department.id).in_(wanted))
        ).all()
    )
