"""The no-contact (不见面审批) rule, condition by condition (catalog.norules, standards §2)."""

from __future__ import annotations

import pytest

from catalog.norules import evaluate_no_contact, in_rate_scope

PASSING = {
    "applicable": True,
    "task_type": "01",
    "visits": 0,
    "online_depth": "1,2,3,4,5,6",
    "result_delivery": "window,post",
}
E_FORM = {"name": "申请表", "form": "electronic", "required": True}
PAPER = {"name": "身份证原件", "form": "paper", "required": True}


@pytest.mark.parametrize(
    ("changes", "materials", "ok", "failure_fragment"),
    [
        ({}, [E_FORM], True, None),
        ({}, [], True, None),
        ({"visits": 1}, [E_FORM], False, "到办事现场次数须为 0"),
        ({"visits": None}, [E_FORM], False, "到办事现场次数须为 0"),
        ({"online_depth": "1,2,3,5"}, [E_FORM], False, "互联网受理"),
        ({"online_depth": "1,2,3,4"}, [E_FORM], False, "互联网办理"),
        ({"online_depth": ""}, [E_FORM], False, "网上办理深度"),
        ({"result_delivery": "window"}, [E_FORM], False, "办理结果"),
        ({"result_delivery": "online"}, [E_FORM], True, None),
        ({"result_delivery": "elicence"}, [E_FORM], True, None),
        ({}, [PAPER], False, "身份证原件"),
        ({}, [{**PAPER, "required": False}], True, None),
        ({}, [{**PAPER, "licence_type_code": "11100000000013338W011"}], True, None),
        ({}, [{**PAPER, "form": "both"}], True, None),
        ({"applicable": False}, [E_FORM], False, "本地不适用"),
        ({"task_type": "02"}, [E_FORM], False, "依职权"),
        ({"task_type": "06"}, [E_FORM], False, "依职权"),
        ({"task_type": "20"}, [E_FORM], True, None),
        ({"task_type": "09"}, [E_FORM], True, None),
    ],
)
def test_each_condition_of_the_no_contact_rule(changes, materials, ok, failure_fragment):
    result = evaluate_no_contact({**PASSING, **changes}, materials)
    assert result.ok is ok
    if failure_fragment:
        assert len(result.failures) == 1
        assert failure_fragment in result.failures[0]
    else:
        assert result.failures == []


def test_every_failing_condition_is_reported_at_once():
    entry = {**PASSING, "visits": 2, "online_depth": "1", "result_delivery": "window"}
    result = evaluate_no_contact(entry, [PAPER, {**PAPER, "name": "户口簿"}])
    assert not result.ok
    assert len(result.failures) == 5


def test_rule_reads_model_like_objects():
    class Entry:
        applicable = True
        task_type = "07"
        visits = 0
        online_depth = "4,5"
        result_delivery = "post"

    class Paper:
        name = "证明"
        form = "paper"
        required = True
        licence_type_code = None

    assert evaluate_no_contact(Entry(), []).ok
    assert not evaluate_no_contact(Entry(), [Paper()]).ok


@pytest.mark.parametrize(
    ("task_type", "in_scope"),
    [
        ("01", True),
        ("04", True),
        ("05", True),
        ("07", True),
        ("08", True),
        ("10", True),
        ("02", False),
        ("09", False),
        ("20", False),
    ],
)
def test_rate_scope_is_the_six_types(task_type, in_scope):
    assert in_rate_scope(task_type) is in_scope
