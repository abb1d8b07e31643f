"""The 要素质量检查 rules on entry snapshot dicts (catalog.quality): each rule can fail, names its field
in Chinese, and a missing element is never a failure of a value rule."""

from __future__ import annotations

import pytest

from catalog import quality
from catalog.quality import ERROR, WARNING, check_entry, errors_by_field

# A snapshot every rule accepts (keys as catalog/elements.py names them).
CLEAN = {
    "applicable": True,
    "task_type": "01",
    "legal_basis": "《测试条例》第一条",
    "accept_conditions": "申请人为本区居民",
    "anticipate_days": 20,
    "anticipate_unit": "working",
    "promise_days": 5,
    "promise_unit": "working",
    "project_type": "2",
    "visits": 1,
    "visits_reason": "核验原件",
    "handle_forms": "window,online",
    "online_depth": "1,2,3,4",
    "online_url": "https://www.jszwfw.gov.cn/item/1",
    "result_delivery": "window,post",
    "window_address": "高港区政务服务中心",
    "phone": "0523-86901234",
    "complaint_phone": "12345",
    "charges": True,
    "pay_online": True,
    "no_contact": False,
    "no_contact_class": "none",
    "materials": [{"name": "申请表", "form": "paper", "required": True, "copies": 1}],
    "fees": [{"name": "工本费", "amount_fen": 1000, "basis": "苏价费〔2018〕1号", "reducible": False}],
}


def codes(snapshot):
    return {f.code for f in check_entry(snapshot)}


def test_the_clean_snapshot_has_no_finding():
    assert check_entry(CLEAN) == []


@pytest.mark.parametrize(
    ("code", "level", "field", "changes", "label"),
    [
        ("PROMISE_GT_ANTICIPATE", ERROR, "promise_days", {"promise_days": 25}, "承诺办结时限"),
        # Units are converted: 20 natural days are fewer than 15 working days.
        ("PROMISE_GT_ANTICIPATE", ERROR, "promise_days",
         {"anticipate_unit": "calendar", "promise_days": 15}, "法定办结时限"),
        ("INSTANT_TYPE", ERROR, "project_type", {"promise_days": 0}, "办件类型"),
        ("INSTANT_TYPE", ERROR, "project_type", {"project_type": "1"}, "即办件"),
        ("VISIT_NO_REASON", ERROR, "visits_reason", {"visits_reason": " "}, "需到现场的原因"),
        ("DEPTH4_VISITS", ERROR, "visits", {"online_depth": "4,5,6"}, "全程网办"),
        ("ONLINE_NO_URL", ERROR, "online_url", {"online_url": None}, "网上办理地址"),
        ("ZERO_VISITS_NO_CHANNEL", ERROR, "handle_forms",
         {"visits": 0, "handle_forms": "window", "online_depth": "1"}, "快递申请"),
        ("NO_FEE_PAY_ONLINE", ERROR, "pay_online", {"charges": False, "fees": []}, "网上支付"),
        ("NO_FEE_WITH_ITEMS", ERROR, "charges", {"charges": False, "pay_online": False}, "收费项目"),
        ("FEE_NO_BASIS", ERROR, "fees[0].basis",
         {"fees": [{"name": "工本费", "amount_fen": 1000, "basis": ""}]}, "收费依据"),
        ("FEE_IMPLAUSIBLE", ERROR, "fees[0].amount_fen",
         {"fees": [{"name": "工本费", "amount_fen": 1_500_000_000, "basis": "x"}]}, "15,000,000.00 元"),
        ("FEE_ZERO", WARNING, "fees[0].amount_fen",
         {"fees": [{"name": "工本费", "amount_fen": 0, "basis": "x"}]}, "0 元"),
        ("COPIES_LT_1", ERROR, "materials[0].copies",
         {"materials": [{"name": "申请表", "form": "paper", "required": True, "copies": 0}]}, "份数"),
        ("NO_CONTACT_FLAG_CLASS", ERROR, "no_contact", {"no_contact": True}, "不见面审批"),
        ("REQUIRED_TIME_LIMIT", ERROR, "anticipate_days", {"anticipate_days": None}, "法定办结时限"),
        ("REQUIRED_WHERE", ERROR, "window_address", {"window_address": "", "online_url": None,
                                                      "online_depth": "1"}, "办理地点"),
        ("LEGAL_BASIS_MISSING", WARNING, "legal_basis", {"legal_basis": ""}, "设定依据"),
        ("MISSING_CONTACT", WARNING, "phone", {"phone": None}, "咨询电话"),
        ("MISSING_CONTACT", WARNING, "complaint_phone", {"complaint_phone": ""}, "监督投诉电话"),
        ("MISSING_VISITS", WARNING, "visits", {"visits": None}, "到办事现场次数未填报"),
        ("MISSING_HANDLE_FORMS", WARNING, "handle_forms", {"handle_forms": None}, "办理形式未填报"),
        ("MISSING_CHARGES", WARNING, "charges", {"charges": None}, "是否收费未填报"),
        ("MISSING_ACCEPT_CONDITIONS", WARNING, "accept_conditions", {"accept_conditions": ""}, "受理条件"),
    ],
)
def test_each_rule_can_fail_and_names_its_field(code, level, field, changes, label):
    findings = [f for f in check_entry({**CLEAN, **changes}) if f.code == code]
    assert findings, code
    assert {f.level for f in findings} == {level}
    assert field in {f.field for f in findings}
    assert any(label in f.message for f in findings)
    assert code in {r.code for r in quality.RULES}  # every finding's code is a rule of the set


def test_a_missing_element_is_not_a_value_rule_failure():
    missing = {**CLEAN, "promise_days": None, "promise_unit": None, "visits": None, "charges": None,
               "pay_online": None, "handle_forms": None}
    found = codes(missing)
    assert not found & {"PROMISE_GT_ANTICIPATE", "INSTANT_TYPE", "VISIT_NO_REASON", "NO_FEE_PAY_ONLINE",
                        "ZERO_VISITS_NO_CHANNEL", "DEPTH4_VISITS"}
    assert {"REQUIRED_TIME_LIMIT", "MISSING_VISITS", "MISSING_CHARGES", "MISSING_HANDLE_FORMS"} <= found


def test_elements_absent_from_the_snapshot_read_as_not_recorded():
    snapshot = {k: v for k, v in CLEAN.items() if k not in ("charges", "pay_online", "complaint_phone")}
    found = {f.code: f for f in check_entry(snapshot)}
    assert found["MISSING_CHARGES"].level == WARNING
    assert "NO_FEE_PAY_ONLINE" not in found


def test_public_services_need_no_legal_basis_and_not_applicable_records_are_not_checked():
    assert "LEGAL_BASIS_MISSING" not in codes({**CLEAN, "task_type": "20", "legal_basis": ""})
    assert check_entry({**CLEAN, "applicable": False, "promise_days": 99}) == []


def test_on_save_runs_only_value_rules_touching_a_changed_field():
    bad = {**CLEAN, "promise_days": 25, "phone": None, "visits_reason": None}
    assert {f.code for f in check_entry(bad, on_save=True)} == {"PROMISE_GT_ANTICIPATE", "VISIT_NO_REASON"}
    assert {f.code for f in check_entry(bad, on_save=True, changed={"phone", "promise_days"})} == {
        "PROMISE_GT_ANTICIPATE"
    }


def test_errors_by_field_keeps_errors_only_and_every_message():
    snapshot = {**CLEAN, "promise_days": 0, "project_type": "2", "phone": None,
                "fees": [{"name": "a", "amount_fen": 1, "basis": ""},
                         {"name": "b", "amount_fen": 1, "basis": ""}]}
    errors = errors_by_field(check_entry(snapshot))
    assert set(errors) == {"project_type", "fees[0].basis", "fees[1].basis"}


@pytest.mark.parametrize(
    ("anticipate", "promise", "too_long"),
    [
        ((10, None), (30, None), True),  # over under every reading of the units
        ((10, None), (14, None), False),  # 10 工作日 could be 14 自然日: not provably over
        ((10, "calendar"), (11, None), True),  # 11 of any unit is more than 10 自然日
        ((10, None), (12, "working"), True),  # 12 工作日 > 10 of any unit
        ((10, "working"), (13, None), False),  # 13 自然日 fit in 10 工作日
    ],
)
def test_promise_over_the_legal_limit_with_a_unit_not_recorded(anticipate, promise, too_long):
    s = {**CLEAN, "anticipate_days": anticipate[0], "anticipate_unit": anticipate[1],
         "promise_days": promise[0], "promise_unit": promise[1]}
    assert ("PROMISE_GT_ANTICIPATE" in codes(s)) is too_long
