"""电子监察 rules (reports.supervision.assess) on a hand-worked case.

Accepted Mon 2 Mar 2026 with 10 working days promised: the 10th working day after is Mon 16 Mar (no
holiday in March). A special procedure on Thu 5 and Fri 6 Mar stops the clock for 2 working days,
so the deadline moves to Wed 18 Mar.
"""

from datetime import date

from reports.supervision import RED, YELLOW, assess, suspended_workdays

ACCEPT = date(2026, 3, 2)
PROMISE = date(2026, 3, 16)
SPECIAL = [(date(2026, 3, 5), date(2026, 3, 6))]


def test_special_procedure_days_move_the_deadline() -> None:
    verdict = assess(ACCEPT, PROMISE, None, SPECIAL, today=date(2026, 3, 13))
    assert (verdict.suspended_days, verdict.deadline, verdict.warning) == (2, date(2026, 3, 18), None)


def test_yellow_when_one_working_day_is_left_and_the_special_procedure_is_excluded() -> None:
    assert assess(ACCEPT, PROMISE, None, SPECIAL, today=date(2026, 3, 17)).warning == YELLOW
    # Without the special procedure the same day is past the promise date.
    assert assess(ACCEPT, PROMISE, None, [], today=date(2026, 3, 17)).warning == RED


def test_yellow_on_the_deadline_day_and_red_the_day_after() -> None:
    assert assess(ACCEPT, PROMISE, None, SPECIAL, today=date(2026, 3, 18)).warning == YELLOW
    assert assess(ACCEPT, PROMISE, None, SPECIAL, today=date(2026, 3, 19)).warning == RED


def test_yellow_days_is_configurable() -> None:
    # On Mon 16 Mar two working days (17, 18) remain.
    assert assess(ACCEPT, PROMISE, None, SPECIAL, today=date(2026, 3, 16)).warning is None
    assert assess(ACCEPT, PROMISE, None, SPECIAL, today=date(2026, 3, 16), yellow_days=2).warning == YELLOW


def test_finished_case_is_on_time_only_thanks_to_the_special_procedure() -> None:
    finished = assess(ACCEPT, PROMISE, date(2026, 3, 18), SPECIAL, today=date(2026, 4, 1))
    assert (finished.on_time, finished.warning) == (True, None)
    late = assess(ACCEPT, PROMISE, date(2026, 3, 18), [], today=date(2026, 4, 1))
    assert (late.on_time, late.warning) == (False, RED)


def test_overlapping_and_open_special_procedures_count_each_working_day_once() -> None:
    spans = [(date(2026, 3, 5), date(2026, 3, 9)), (date(2026, 3, 9), date(2026, 3, 10))]
    # 5, 6, 9, 10 March (7 and 8 are a weekend).
    assert suspended_workdays(ACCEPT, spans, until=date(2026, 3, 31)) == 4
    # Still running on Wed 11 Mar: 5, 6, 9, 10, 11.
    assert suspended_workdays(ACCEPT, [(date(2026, 3, 5), None)], until=date(2026, 3, 11)) == 5
