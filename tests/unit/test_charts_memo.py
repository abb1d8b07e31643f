"""Charts are drawn once per distinct input (reports.charts._memo) and the drawing itself stays
deterministic, so a kept drawing is the one that would have been drawn again."""

from __future__ import annotations

from typing import Any

from reports import charts


def _rates(numerator: int) -> list[dict[str, Any]]:
    return [{"label": "不见面率", "numerator": numerator, "denominator": 4, "missing": None}]


def test_the_same_data_draws_the_same_bytes_without_the_memo() -> None:
    draw = charts.rates_chart.__wrapped__  # type: ignore[attr-defined]  # functools.wraps keeps the undecorated drawer
    assert draw(_rates(2), "指标") == draw(_rates(2), "指标")


def test_a_drawing_is_kept_per_input_and_new_data_is_drawn_anew() -> None:
    charts._DRAWN.clear()
    first = charts.rates_chart(_rates(2), "指标")
    assert len(charts._DRAWN) == 1
    assert charts.rates_chart(_rates(2), "指标") is first  # served from the memo
    other = charts.rates_chart(_rates(1), "指标")
    assert other != first
    assert charts.rates_chart(_rates(2), "另一标题") != first  # the title is part of the key
    assert len(charts._DRAWN) == 3


def test_the_memo_is_bounded() -> None:
    charts._DRAWN.clear()
    for i in range(charts._DRAWN_MAX + 5):
        charts._empty("图表", f"第 {i} 次")
    assert len(charts._DRAWN) == charts._DRAWN_MAX
