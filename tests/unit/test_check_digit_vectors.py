"""The check digits of GB 32100 (USCC), GB 11643 (citizen ID) and ISO/IEC 7064 MOD 37,36 against the
real examples of standards §3.1 and §4: python-stdnum, the product's own functions and the reference
registry's own copy (it stands for another government's system) must all give the same answers.
"""

import pytest
from stdnum.cn import ric, uscc
from stdnum.iso7064 import mod_37_36

from catalog.codes import check_id_number, check_uscc, id_check_char, is_valid_uscc, uscc_check_char
from city_registry import protocol
from licenses.identifiers import mod37_36

# Real codes that pass the check (standards §4).
VALID_USCC = ["11100000000013338W", "11450721MB15580811", "12441500196720244T", "91120222MA06DG3067"]
# A real early-pilot 工商 code that fails the check: accepted with a warning, never "valid".
FAILING_REAL_USCC = "91350100M0001TGQXM"
# The standard's own example (GB 11643-1999).
VALID_RIC = ["11010519491231002X"]
# Real 电子证照标识 (standards §3.1) and the documented example built with a fabricated demo USCC.
REAL_IDENTIFIERS = [
    "1.2.156.3005.2.11100000000013338W011.11430000006122244L.20230000403.001.U",
    "1.2.156.3005.2.11100000000013338W009.11330105002500287C.2025052201.002.0",
    "1.2.156.3005.2.11100000000013338W032.11220000013544541J.2430599.001.F",
    "1.2.156.3005.2.11100000000013338W011.11321203123456788H.2018000001.001.4",
]


def _body_and_check(identifier: str) -> tuple[str, str]:
    parts = identifier.split(".")
    return "".join(parts[5:-1]), parts[-1]


@pytest.mark.parametrize("code", VALID_USCC)
def test_uscc_check_character_agrees_with_stdnum_on_real_codes(code):
    assert uscc.calc_check_digit(code[:17]) == code[17]
    assert uscc_check_char(code[:17]) == code[17]
    assert is_valid_uscc(code)


def test_real_pre_2016_uscc_fails_the_check_in_both_but_is_only_a_warning_here():
    assert not uscc.is_valid(FAILING_REAL_USCC)
    result = check_uscc(FAILING_REAL_USCC)
    assert result.ok
    assert result.warning is not None
    assert "校验位应为" in result.warning


@pytest.mark.parametrize("code", VALID_RIC)
def test_citizen_id_check_character_agrees_with_stdnum(code):
    assert ric.calc_check_digit(code) == code[17]
    assert id_check_char(code[:17]) == code[17]
    assert check_id_number(code).ok


@pytest.mark.parametrize("code", VALID_RIC)
def test_wrong_citizen_id_check_character_keeps_the_projects_chinese_message(code):
    wrong = code[:17] + ("0" if code[17] != "0" else "1")
    result = check_id_number(wrong)
    assert not result.ok
    assert result.message == f"公民身份号码校验位错误（应为 {code[17]}）"


@pytest.mark.parametrize("identifier", REAL_IDENTIFIERS)
def test_licence_identifier_check_agrees_with_stdnum_and_the_registry_copy(identifier):
    body, check = _body_and_check(identifier)
    assert mod_37_36.calc_check_digit(body) == check
    assert mod37_36(body) == check
    assert protocol.iso7064_mod37_36(body) == check
    assert protocol.iso7064_mod37_36(body, prefix_len=39) == check
