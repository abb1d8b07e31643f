"""The working-day calendar (core.workdays) on days checked by hand against the State Council's 2026
holiday notice: 调休 Saturdays work, statutory holidays do not, and beyond the data Monday–Friday."""

from datetime import date

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
    assert date(2026, 12, 31) <= workdays.DATA_END
    later = date(workdays.DATA_END.year + 1, 10, 1)
    assert workdays.beyond_data(later)
    assert not workdays.beyond_data(date(2026, 10, 1))
    assert workdays.is_workday(later) == (later.weekday() < 5)
