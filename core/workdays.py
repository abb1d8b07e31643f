"""The Chinese working-day calendar (工作日历): statutory holidays and 调休 make-up working days.

The holiday data come from the maintained ``chinese-calendar`` package (PyPI ``chinese-calendar``,
LKI/chinese-calendar), which follows each year's 国务院办公厅 holiday notice. Its data start on
2004-01-01 and end with the last year whose notice it carries (2026-12-31 with 1.11.0).

The State Council publishes next year's notice in November or December, and a package release may
come weeks later; meanwhile every deadline counted into the new year would treat 元旦 and 春节 as
working days. So an administrator can enter a notice's days in a CSV file (holiday notices file,
``WORKDAY_CALENDAR_FILE``; by default ``data/workday_calendar_notices.csv``, shipped empty): a year that
appears in it and that the package does not carry follows the file (days not listed are ordinary:
Monday–Friday work); in a year the package carries, a day the file lists overrides that day only (a
correction), and the rest of the year keeps the package's schedule. Outside both there is no
official schedule, so the calendar falls back to Monday–Friday; ``beyond_data`` says when a date is in
that range so that pages can say so.

Counting convention (used for 承诺办结日期 and 电子监察): ``workdays_between(a, b)`` counts the
working days d with a < d <= b, so the day of acceptance is day 0 and ``add_workdays(a, n)`` is the
n-th working day after ``a``.
"""

from __future__ import annotations

import functools
import os
from bisect import bisect_left
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import chinese_calendar
from chinese_calendar import constants as _holiday_data

from core.config import PROJECT_ROOT, SettingsError
from core.csv_input import parse_iso_date, read_header, records, utf8_lines
from core.errors import Invalid

# The range the tables below cover; dates outside it are refused (the reports' own year range).
FIRST_DAY = date(2000, 1, 1)
LAST_DAY = date(2100, 12, 31)

DATA_START = date(min(d.year for d in _holiday_data.holidays), 1, 1)
PACKAGE_END = date(max(d.year for d in _holiday_data.holidays), 12, 31)

CALENDAR_FILE_ENV = "WORKDAY_CALENDAR_FILE"
DEFAULT_CALENDAR_FILE = PROJECT_ROOT / "data" / "workday_calendar_notices.csv"
COLUMNS = ("date", "kind", "name", "notice")
HOLIDAY, WORKDAY = "holiday", "workday"


class CalendarFileError(SettingsError):
    """The holiday notices file is malformed; the message names the file and the line."""


@dataclass(frozen=True)
class Notices:
    """Days entered from holiday notices: ``days`` maps a date to whether it is a working day."""

    days: dict[date, bool]
    years: frozenset[int]
    path: Path


def read_notices(path: Path) -> Notices:
    """The notices file at ``path`` (none there: no notices). Refuses a malformed file whole, naming
    the line, so that a half-entered notice never counts; a file that is not UTF-8 (saved as GBK) or a
    line the csv module cannot read too, rather than stopping the process with a traceback."""
    if not path.exists():
        return Notices({}, frozenset(), path)
    days: dict[date, bool] = {}
    try:
        rows = records(utf8_lines(path, str(path)))
        _line, header = read_header(rows, str(path))
        if tuple(header) != COLUMNS:
            raise CalendarFileError(f"{path} 第 1 行：表头应为 {','.join(COLUMNS)}")
        for line, values, problem in rows:
            at = f"{path} 第 {line} 行："
            if problem:
                raise CalendarFileError(at + problem)
            # A short line's missing values are empty, as csv.DictReader's were; extra ones are ignored.
            row = dict(zip(COLUMNS, values + [""] * (len(COLUMNS) - len(values)), strict=False))
            try:
                day = parse_iso_date(row["date"].strip())
            except ValueError:
                raise CalendarFileError(f"{at}日期应为 YYYY-MM-DD，而不是 {row['date']!r}") from None
            kind = row["kind"].strip()
            if kind not in (HOLIDAY, WORKDAY):
                raise CalendarFileError(f"{at}kind 应为 {HOLIDAY}（放假）或 {WORKDAY}（调休上班）")
            if not FIRST_DAY <= day <= LAST_DAY:
                raise CalendarFileError(f"{at}日期超出日历范围（{FIRST_DAY}–{LAST_DAY}）")
            if kind == WORKDAY and day.weekday() < 5:
                raise CalendarFileError(f"{at}{day} 是工作日，调休上班日应在周末")
            if day in days:
                raise CalendarFileError(f"{at}{day} 重复")
            if not row["notice"].strip():
                raise CalendarFileError(f"{at}请填写所依据的通知（notice）")
            days[day] = kind == WORKDAY
    except Invalid as exc:  # not UTF-8, or an empty file: said as the other problems of the file are
        raise CalendarFileError(exc.message) from None
    return Notices(days, frozenset(d.year for d in days), path)


def calendar_file() -> Path:
    return Path(os.environ.get(CALENDAR_FILE_ENV) or DEFAULT_CALENDAR_FILE)


@functools.cache
def notices() -> Notices:
    """The notices file, read once per process (the app factory reads it at start-up, so a malformed
    file stops the process with its line instead of failing a request)."""
    return read_notices(calendar_file())


def official(day: date) -> bool:
    """Whether ``day`` follows an official schedule: a notice in the file, or the package's data."""
    return day.year in notices().years or DATA_START <= day <= PACKAGE_END


def data_end() -> date:
    """The last day of the official schedule without a gap after the package's data."""
    end = PACKAGE_END
    while end.year + 1 in notices().years:
        end = date(end.year + 1, 12, 31)
    return end


class _Table:
    """Working-day flags and running counts from FIRST_DAY to LAST_DAY, built once (~37k days)."""

    def __init__(self) -> None:
        days = (LAST_DAY - FIRST_DAY).days + 1
        self.flags = bytearray(days)
        self.rank = [0] * days  # working days from FIRST_DAY up to and including that day
        self.workdays: list[int] = []  # offsets of the working days, ascending
        count = 0
        entered = notices()
        for offset in range(days):
            day = FIRST_DAY + timedelta(days=offset)
            # An entered day wins; the rest of a year the package covers keeps the package's schedule.
            # (Taking an entered year whole dropped every other holiday of that year when the file
            # held one correction for a package year, or once an upgraded package caught up with it.)
            if day in entered.days:
                working = entered.days[day]
            elif day.year in entered.years and not DATA_START <= day <= PACKAGE_END:
                working = day.weekday() < 5
            elif DATA_START <= day <= PACKAGE_END:
                working = chinese_calendar.is_workday(day)
            else:
                working = day.weekday() < 5
            if working:
                self.flags[offset] = 1
                count += 1
                self.workdays.append(offset)
            self.rank[offset] = count


@functools.cache
def _table() -> _Table:
    return _Table()


def _offset(day: date) -> int:
    if not FIRST_DAY <= day <= LAST_DAY:
        raise ValueError(f"{day.isoformat()} is outside the working-day calendar ({FIRST_DAY}–{LAST_DAY})")
    return (day - FIRST_DAY).days


def beyond_data(day: date) -> bool:
    """True when ``day`` has no official holiday schedule here and Monday–Friday is assumed."""
    return not official(day)


def is_workday(day: date) -> bool:
    """A working day: a weekday that is no statutory holiday, or a 调休 weekend working day."""
    return bool(_table().flags[_offset(day)])


def workdays_between(start: date, end: date) -> int:
    """Working days d with start < d <= end (negative when end is before start)."""
    table = _table()
    return table.rank[_offset(end)] - table.rank[_offset(start)]


def add_workdays(start: date, count: int) -> date:
    """The ``count``-th working day after ``start`` (``start`` itself for 0); count must be >= 0."""
    if count < 0:
        raise ValueError("count must not be negative")
    if count == 0:
        return start
    table = _table()
    index = table.rank[_offset(start)] + count - 1
    if index >= len(table.workdays):
        raise ValueError("the result is outside the working-day calendar")
    return FIRST_DAY + timedelta(days=table.workdays[index])


def next_workday(day: date) -> date:
    """``day`` when it is a working day, else the first working day after it."""
    table = _table()
    index = bisect_left(table.workdays, _offset(day))
    if index >= len(table.workdays):
        raise ValueError("the result is outside the working-day calendar")
    return FIRST_DAY + timedelta(days=table.workdays[index])


def add_calendar_days(start: date, count: int) -> date:
    """A period of ``count`` natural days (自然日) from ``start``; a last day that is no working day
    moves to the next working day (民法典 第二百零三条: a period ending on a holiday ends the day after)."""
    return next_workday(start + timedelta(days=count))
