"""The working-day calendar (core.workdays) on days checked by hand against the State Council's 2026
holiday notice: 调休 Saturdays work, statutory holidays do not, and beyond the data Monday–Friday."""

from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import pytest

from core import workdays


def test_a_tiaoxiu_saturday_is_a_working_day() -> None:
    assert date(2026, 2, 14).weekday() == 5
    assert workdays.is_workday(date(2026, 2, 14))  # 春节 调休
    assert workdays.is_workday(date(2026, 10, 10))  # 国庆 调休


def test_a_statutory_holiday_on_a_weekday_is_not_a_working_day() -> None:
    assert date(2026, 10, 1).weekday() == 3
    assert not workdays.is_workday(date(2026, 10, 1))
    assert not workdays.is_workday(date(2026, 2, 17))
    assert not workdays.is_workday(date(2026, 9, 25))  # 中秋 (a Friday)


def test_counting_over_national_day_uses_the_holidays_and_the_tiaoxiu_saturday() -> None:
    # Accepted Mon 28 Sep: 29 Sep, 30 Sep, (1–7 Oct off), 8 Oct, 9 Oct, Sat 10 Oct.
    assert workdays.add_workdays(date(2026, 9, 28), 5) == date(2026, 10, 10)
    assert workdays.workdays_between(date(2026, 9, 28), date(2026, 10, 10)) == 5
    assert workdays.workdays_between(date(2026, 10, 10), date(2026, 9, 28)) == -5
    assert workdays.add_workdays(date(2026, 9, 28), 0) == date(2026, 9, 28)


def test_a_natural_day_period_ending_on_a_holiday_ends_on_the_next_working_day() -> None:
    # Thu 24 Sep + 7 days = Thu 1 Oct (holiday) -> Thu 8 Oct.
    assert workdays.add_calendar_days(date(2026, 9, 24), 7) == date(2026, 10, 8)
    assert workdays.add_calendar_days(date(2026, 3, 2), 7) == date(2026, 3, 9)


def test_beyond_the_holiday_data_monday_to_friday_is_assumed_and_said() -> None:
    assert date(2026, 12, 31) <= workdays.data_end()
    later = date(workdays.data_end().year + 1, 10, 1)
    assert workdays.beyond_data(later)
    assert not workdays.beyond_data(date(2026, 10, 1))
    assert workdays.is_workday(later) == (later.weekday() < 5)


# ---- holiday notices entered by an administrator (WORKDAY_CALENDAR_FILE) --------------------------------
# The days below are made up for the tests (the year after the package's data, whatever it is): they
# exercise the file, they are not any year's real schedule.


@pytest.fixture
def notices_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    path = tmp_path / "notices.csv"
    monkeypatch.setenv(workdays.CALENDAR_FILE_ENV, str(path))
    workdays.notices.cache_clear()
    workdays._table.cache_clear()
    yield path
    monkeypatch.delenv(workdays.CALENDAR_FILE_ENV)
    workdays.notices.cache_clear()
    workdays._table.cache_clear()


def _first(year: int, weekday: int, month: int = 1) -> date:
    day = date(year, month, 1)
    return day + timedelta(days=(weekday - day.weekday()) % 7)


def test_a_notice_entered_for_the_next_year_is_followed_and_extends_the_data(notices_file: Path) -> None:
    year = workdays.PACKAGE_END.year + 1
    holiday = _first(year, 2, month=2)  # a Wednesday
    makeup = _first(year, 5, month=2)  # a Saturday
    notices_file.write_text(
        "date,kind,name,notice\n"
        f"{holiday},holiday,测试假日,测试通知\n"
        f"{makeup},workday,测试调休,测试通知\n",
        encoding="utf-8",
    )
    assert not workdays.is_workday(holiday)
    assert workdays.is_workday(makeup)
    ordinary = holiday + timedelta(days=1)  # a Thursday the notice does not name
    assert workdays.is_workday(ordinary)
    assert not workdays.beyond_data(holiday)
    assert workdays.data_end() == date(year, 12, 31)
    assert workdays.beyond_data(date(year + 1, 3, 1))
    # Counting across the entered days: the holiday is skipped, the make-up Saturday counts.
    before = holiday - timedelta(days=1)
    assert workdays.workdays_between(before, ordinary) == 1


def test_without_a_file_nothing_changes(notices_file: Path) -> None:
    assert workdays.notices().years == frozenset()
    assert workdays.data_end() == workdays.PACKAGE_END
    assert workdays.is_workday(date(2026, 2, 14))


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("2027-13-01,holiday,元旦,通知", "第 3 行：日期应为 YYYY-MM-DD"),
        ("2027-01-04,rest,元旦,通知", "第 3 行：kind 应为 holiday"),
        ("2027-01-04,workday,调休,通知", "第 3 行：2027-01-04 是工作日，调休上班日应在周末"),  # a Monday
        ("2027-01-01,holiday,元旦,", "第 3 行：请填写所依据的通知"),
        ("2027-01-02,holiday,重复,通知", "第 3 行：2027-01-02 重复"),
    ],
)
def test_a_malformed_notices_file_is_refused_whole_with_its_line(
    notices_file: Path, row: str, message: str
) -> None:
    notices_file.write_text(f"date,kind,name,notice\n2027-01-02,holiday,元旦,通知\n{row}\n", encoding="utf-8")
    with pytest.raises(workdays.CalendarFileError, match=message):
        workdays.notices()


def test_a_notices_file_with_the_wrong_header_is_refused(notices_file: Path) -> None:
    notices_file.write_text("day,kind\n2027-01-01,holiday\n", encoding="utf-8")
    with pytest.raises(workdays.CalendarFileError, match="第 1 行：表头应为 date,kind,name,notice"):
        workdays.notices()


def test_flask_cases_calendar_says_what_the_calendar_covers(notices_file: Path) -> None:
    from click.testing import CliRunner

    from reports.cli import cases_cli

    year = workdays.PACKAGE_END.year + 1
    row = f"{_first(year, 2)},holiday,测试假日,测试通知"
    notices_file.write_text(f"date,kind,name,notice\n{row}\n", encoding="utf-8")
    out = CliRunner().invoke(cases_cli, ["calendar"]).output
    assert f"chinese-calendar 软件包：{workdays.DATA_START} 至 {workdays.PACKAGE_END}" in out
    assert f"{year} 年，放假 1 天，调休上班 0 天" in out
    assert f"节假日安排连续覆盖至 {year}-12-31" in out


def test_a_notice_for_a_year_the_package_covers_keeps_that_years_other_holidays(notices_file: Path) -> None:
    # One correction entered for a year the package already has (or a file the upgraded package caught
    # up with) changes that day only: the year's other statutory holidays stay holidays.
    national_day = date(2026, 10, 1)
    extra = _first(2026, 2, month=3)  # a Wednesday the package has as a working day
    notices_file.write_text(f"date,kind,name,notice\n{extra},holiday,测试假日,测试通知\n", encoding="utf-8")
    assert not workdays.is_workday(extra)
    assert not workdays.is_workday(national_day)
    assert not workdays.is_workday(date(2026, 1, 1))
