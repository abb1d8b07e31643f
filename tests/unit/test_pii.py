"""core.pii.mask_personal_data: what it masks in free text, and what it leaves alone."""

from __future__ import annotations

import pytest
from stdnum.cn import ric

from core.pii import mask_personal_data


def _id_number(first17: str) -> str:
    return first17 + ric.calc_check_digit(first17)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"查询 {_id_number('32120319800101001')} 的证照", "查询 321203********"),
        ("手机13812345678", "手机138****5678"),
        ("电话 0523-86901234", "电话 0523-******34"),
        ("+86 13812345678", "+86 1"),
        ("姓名：张三丰 办理", "姓名：张** 办理"),
        ("持证人=李四", "持证人=李*"),
        ("91321203MA1XYN1234 营业执照", "91321203********34 营业执照"),
        ("hash=$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$abcDEF123 x", "hash=$argon2[已隐藏] x"),
        ("token gg_abcdefghijklmnopqrstuvwxyz0123", "token gg_[已隐藏]"),
    ],
)
def test_personal_data_is_masked(text: str, expected: str) -> None:
    masked = mask_personal_data(text)
    assert masked.startswith(expected), masked


def test_an_organisations_code_is_masked_only_where_it_can_point_at_a_person() -> None:
    identifier = "1.2.156.3005.2.11100000000013338W032.11321203MB1580019D.2026TYZJX577JJ.001.C"
    assert mask_personal_data(identifier) == identifier  # a department's code in a licence identifier
    assert mask_personal_data("92321203MA1XYN1234") == "92321203********34"  # a sole trader
    assert mask_personal_data("张三 91321203MA1XYN1234") == "张三 91321203********34"  # beside a name


def test_an_id_number_keeps_only_its_area_and_last_four_characters() -> None:
    number = _id_number("32120319800101001")
    assert mask_personal_data(number) == number[:6] + "*" * 8 + number[-4:]


@pytest.mark.parametrize(
    "text",
    [
        "营业执照办理",
        "不动产登记 2024 年",
        "request 8f14e45fceea167a5a36dedd4bea2543",  # a request id (hex) is not a number to mask
        "第 12345 号",
        "",
    ],
)
def test_ordinary_text_is_left_alone(text: str) -> None:
    assert mask_personal_data(text) == text


def test_masking_is_idempotent() -> None:
    text = f"姓名：张三 {_id_number('32120319800101001')} 13812345678"
    once = mask_personal_data(text)
    assert mask_personal_data(once) == once
    assert once != text


@pytest.mark.parametrize("typed", ["321203 19900307 001X", "321203-19900307-001X"])
def test_an_id_number_typed_in_groups_is_masked(typed: str) -> None:
    masked = mask_personal_data(f"查询 {typed} 的证照")
    assert "19900307" not in masked
    assert masked.startswith("查询 321203")
