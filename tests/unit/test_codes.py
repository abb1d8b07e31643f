"""Check digits tested on the real examples of standards §4."""

import pytest

from catalog.codes import (
    check_catalog_code,
    check_id_number,
    check_uscc,
    division_level,
    is_valid_uscc,
    make_task_code,
    make_uscc,
    org_code_check_char,
)


@pytest.mark.parametrize(
    "code", ["11100000000013338W", "11450721MB15580811", "12441500196720244T", "91120222MA06DG3067"]
)
def test_real_valid_uscc_pass_both_checks(code):
    assert is_valid_uscc(code)
    assert check_uscc(code).warning is None


def test_embedded_org_code_check_of_the_ministry():
    assert org_code_check_char("00001333") == "8"


def test_pre_2016_code_that_fails_the_check_is_accepted_with_a_warning():
    result = check_uscc("91350100M0001TGQXM")
    assert result.ok
    assert result.warning
    assert "校验" in result.warning
    assert not is_valid_uscc("91350100M0001TGQXM")


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        ("11100000000013338", "18 位"),
        ("11100000000013338WX", "18 位"),
        ("1110000000001333OW", "非法字符"),
        ("11100000000013338w", "非法字符"),
        ("0110000000001333 W", "非法字符"),
        ("Z1100000000013338W", "非法字符"),
        ("X1100000000013338W", "登记管理部门"),
        ("111000A0000013338W", "行政区划"),
    ],
)
def test_malformed_uscc_is_rejected(code, reason):
    result = check_uscc(code)
    assert not result.ok
    assert reason in result.message


def test_changed_character_breaks_the_uscc_check():
    assert check_uscc("11450721MB15580812").warning


def test_make_uscc_completes_a_valid_code():
    code = make_uscc("11321203", "MB000001")
    assert code.startswith("11321203MB000001")
    assert is_valid_uscc(code)


def test_id_number_example_from_the_standard():
    assert check_id_number("11010519491231002X").ok


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        ("110105194912310021", "校验位"),
        ("11010519491331002X", "出生日期"),
        ("1101051949123100", "18 位"),
        ("11010519491231002x", "末位"),
    ],
)
def test_bad_id_numbers_are_rejected(code, reason):
    result = check_id_number(code)
    assert not result.ok
    assert reason in result.message


def test_task_code_layout_matches_the_real_guangxi_example():
    assert make_task_code("11450721MB15580811", "4", "000104002000") == "11450721MB155808114000104002000"


def test_catalog_code_is_12_capital_alphanumerics():
    assert check_catalog_code("000104002000").ok
    assert not check_catalog_code("511A0138000000").ok
    assert not check_catalog_code("00010400200a").ok


@pytest.mark.parametrize(
    ("code", "level"),
    [("320000000000", "province"), ("321200000000", "city"), ("321203000000", "county"),
     ("321203001000", "town"), ("321203001001", "village")],
)
def test_division_level_from_code(code, level):
    assert division_level(code) == level


@pytest.mark.parametrize(
    "code",
    [
        "３２１２０３１９９００３０７００１X",  # full-width digits: str.isdigit() is true for them
        "²2120319900307001X",  # a superscript two: isdigit() true, int() refuses it
        "32120319900307001Ｘ",  # a full-width X
    ],
)
def test_an_id_number_in_other_digits_than_ascii_is_refused_not_an_error(code: str) -> None:
    result = check_id_number(code)
    assert not result.ok
    assert "半角" in (result.message or "")
