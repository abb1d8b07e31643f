"""The Chinese working-day calendar (工作日历): statutory holidays and 调休 make-up working days.

The holiday data come from the maintained ``chinese-calendar`` package (PyPI ``chinese-calendar``,
LKI/chinese-calendar), which follows each year's 国务院办公厅 holiday notice. Its data start on
2004-01-01 and end with the last year whose notice it carries (``DATA_END``: 2026-12-31 with
1.11.0). Outside that range there is no official schedule to follow, so the calendar falls back to
Monday–Friday; ``beyond_data`` says when a date is in that range so that pages can say so.

Counting convention (used for 承诺办结日期 and 电子监察): ``workdays_between(a, b)`` counts the
working days d with a < d <= b, so the day of acceptance is day 0 and ``add_workdays(a, n)`` is the
n-th working day after ``a``.
"""

from __future__ import annotations

import functools
from bisect import bisect_left
from datetime import date, timedelta

import chinese_calendar
from chinese_calendar import constants as _holiday_data

# The range the tables below cover; dates outside it are refused (the reports' own year range).
FIRST_DAY = date(2000, 1, 1)
LAST_DAY = date(2100, 12, 31)

DATA_START = date(min(d.year for d in _holiday_data.holidays), 1, 1)
DATA_END = date(max(d.year for d in _holiday_data.holidays), 12, 31)


class _Table:
    """Working-day flags and running counts from FIRST_DAY to LAST_DAY, built once (~37k days)."""

    def __init__(self) -> None:
        days = (LAST_DAY - FIRST_DAY).days + 1
        self.flags = bytearray(days)
        self.rank = [0] * days  # working days from FIRST_DAY up to and including that day
        self.workdays: list[int] = []  # offsets of the working days, ascending
        count = 0
        for offset in range(days):
            day = FIRST_DAY + timedelta(days=offset)
            official = DATA_START <= day <= DATA_END
            working = chinese_calendar.is_workday(day) if official else day.weekday() < 5
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
    return not DATA_START <= day <= DATA_END


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
