"""catalog.history formats what staff read: labels, codes, money, lists, not-recorded, China time."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from catalog import history
from catalog.elements import FIELD_LABELS, NOT_RECORDED


@pytest.mark.parametrize(
    ("key", "value", "shown"),
    [
        ("visits", None, NOT_RECORDED),
        ("accept_conditions", "  ", NOT_RECORDED),
        ("no_contact", True, "是"),
        ("reducible", False, "否"),
        ("amount_fen", 1_500_000_000, "15,000,000.00 元"),
        ("amount_fen", 5, "0.05 元"),
        ("result_delivery", "window,post", "窗口领取、快递送达"),
        ("handle_forms", "online,proxy", "网上办理、全程代办"),
        ("service_objects", "1,2", "自然人、企业法人"),
        ("task_type", "01", "行政许可"),
        ("depth_level", 4, "Ⅳ级（全程网办）"),
        ("anticipate_unit", "calendar", "自然日"),
        ("status", "submitted", "待审核"),
        ("status", "withdrawn", "修订已撤回"),
        ("materials", [], "无"),
        ("materials", [{"name": "申请表"}, {"name": "身份证"}], "申请表；身份证"),
        ("keywords_list", ["低保", "救助"], "低保、救助"),
        ("unknown_code_field", "x", "x"),
        ("published_at", "2026-11-30T16:30:00+00:00", "2026-12-01 00:30"),
    ],
)
def test_values_are_formatted_for_people(key, value, shown):
    assert history.format_value(key, value) == shown


def test_labels_come_from_the_element_set_then_fall_back_to_the_key():
    assert history.label("promise_days") == FIELD_LABELS["promise_days"]
    assert history.label("copies", "materials") == "份数"
    assert history.label("amount_fen") == "收费标准"
    assert history.label("revision_id") == "修订编号"
    assert history.label("brand_new_element") == "brand_new_element"


def test_china_time_of_an_aware_datetime():
    assert history.china_time(datetime(2026, 11, 30, 20, 5, tzinfo=UTC)) == "2026-12-01 04:05"
    assert history.china_time(None) == NOT_RECORDED


def test_child_rows_are_matched_by_name_and_compared_field_by_field():
    old = [{"name": "申请表", "copies": 1, "position": 0}, {"name": "身份证", "copies": 1, "position": 1}]
    new = [{"name": "身份证", "copies": 2, "position": 0}, {"name": "户口簿", "copies": 1, "position": 1}]
    rows = {r.title: r for r in history.diff_rows(old, new, "materials")}
    assert rows["申请表"].kind == "removed"
    assert rows["户口簿"].kind == "added"
    assert rows["身份证"].kind == "changed"
    assert rows["身份证"].fields == [("份数", "1", "2")]  # the position alone is not a change


def test_diff_of_states_skips_bookkeeping_and_reads_unknown_keys_by_name():
    old = {"version": 3, "updated_at": "2026-11-30T00:00:00+00:00", "promise_days": 5, "new_element": None}
    new = {"version": 4, "updated_at": "2026-12-01T00:00:00+00:00", "promise_days": 5, "new_element": "甲"}
    changes = history.diff_states(old, new)
    assert [(c.label, c.old, c.new) for c in changes] == [("new_element", NOT_RECORDED, "甲")]


def test_the_child_lists_are_the_ones_an_entry_change_takes():
    """ENTRY_CHILD_LISTS (what a revision may carry) and prepare_entry_change's keyword arguments stay
    in step."""
    import inspect

    from catalog.entries import ENTRY_CHILD_LISTS, prepare_entry_change

    params = set(inspect.signature(prepare_entry_change).parameters)
    params -= {"session", "entry", "fields", "known_errors"}
    assert params == set(ENTRY_CHILD_LISTS)
