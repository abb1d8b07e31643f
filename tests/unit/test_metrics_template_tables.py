"""The template tables' invariants (国办公开办函〔2021〕30号), checked before anything is stored."""

from __future__ import annotations

import pytest

from core.errors import Invalid
from reports import template_tables as tt

COLS = ["natural", "commercial", "research", "welfare", "legal", "other"]


def table3(**overrides: int | str) -> dict[str, int | str]:
    # 自然人: 一 10 + 二 2 = 三(一) 6 + 三(二) 1 + 三(四)1 2 + 三(五)2 1 = 10, + 四 2 = 12.
    # Overrides may be the raw text a form posts: validate() parses it.
    values: dict[str, int | str] = {f"{r}|{c}": 0 for r in ("1", "2", "4") for c in COLS}
    values.update(
        {
            "1|natural": 10,
            "2|natural": 2,
            "3.1|natural": 6,
            "3.2|natural": 1,
            "3.4.1|natural": 2,
            "3.5.2|natural": 1,
            "4|natural": 2,
            "1|commercial": 3,
            "3.1|commercial": 3,
        }
    )
    values.update(overrides)
    return values


def test_table3_fills_totals_when_blank() -> None:
    clean = tt.validate("3", table3())
    assert clean["3.7|natural"] == 10
    assert clean["3.7|commercial"] == 3
    assert clean["1|total"] == 13
    assert clean["3.7|total"] == 13
    assert clean["4|total"] == 2
    assert clean["3.3.1|research"] == 0


def test_table3_rejects_a_column_breaking_one_plus_two_equals_seven_plus_four() -> None:
    with pytest.raises(Invalid) as caught:
        tt.validate("3", table3(**{"4|natural": 3}))
    assert "4|natural" in caught.value.details
    assert "一 + 二" in caught.value.details["4|natural"][0]


def test_table3_rejects_a_given_total_that_disagrees() -> None:
    with pytest.raises(Invalid) as caught:
        tt.validate("3", table3(**{"3.7|natural": 11}))
    assert "3.7|natural" in caught.value.details


def test_table3_requires_new_carried_and_carried_over_rows() -> None:
    values = table3()
    del values["2|legal"]
    with pytest.raises(Invalid) as caught:
        tt.validate("3", values)
    assert "2|legal" in caught.value.details


@pytest.mark.parametrize(("value", "message"), [("-1", "负数"), ("abc", "整数"), ("1.5", "整数")])
def test_counts_must_be_non_negative_integers(value: str, message: str) -> None:
    with pytest.raises(Invalid) as caught:
        tt.validate("3", table3(**{"1|natural": value}))
    assert message in caught.value.details["1|natural"][0]


def test_table4_totals_per_group() -> None:
    values = {
        f"{g}|{c}": 1
        for g in ("review", "direct", "after")
        for c in ("upheld", "corrected", "other", "pending")
    }
    clean = tt.validate("4", values)
    assert clean["review|total"] == 4
    with pytest.raises(Invalid) as caught:
        tt.validate("4", {**values, "direct|total": 5})
    assert "direct|total" in caught.value.details


def test_table2_amount_in_wan_yuan_and_required_cells() -> None:
    values = {k: "1" for k, _ in tt.cells("2")}
    values["20.8|amount"] = "12.5"
    assert tt.validate("2", values)["20.8|amount"] == "12.5000"
    with pytest.raises(Invalid):
        tt.validate("2", {**values, "20.8|amount": "1.23456"})
    with pytest.raises(Invalid) as caught:
        tt.validate("2", {**values, "20.5|decisions": ""})
    assert "_schema" in caught.value.details


def test_unknown_cells_and_tables_are_rejected() -> None:
    with pytest.raises(Invalid):
        tt.validate("3", {**table3(), "9|natural": 1})
    with pytest.raises(Invalid):
        tt.validate("5", {})
