"""The no-contact rule (不见面审批, Jiangsu's definition) and the online depth level, as tables
(catalog.norules, standards §2)."""

from __future__ import annotations

import pytest

from catalog.norules import FULL, NONE, PARTIAL, derive_depth_level, evaluate_no_contact, in_rate_scope

# An online application, accepted online, result posted: 全程不见面.
FULL_ONLINE = {
    "applicable": True,
    "task_type": "01",
    "visits": 0,
    "handle_forms": "window,online",
    "online_depth": "1,2,3,4,5,6",
    "result_delivery": "window,post",
    "meeting_step": None,
}
E_FORM = {"name": "申请表", "form": "electronic", "required": True}
PAPER = {"name": "身份证原件", "form": "paper", "required": True}
WINDOW_ONLY = {"handle_forms": "window", "online_depth": "1,2"}


@pytest.mark.parametrize(
    ("case", "changes", "materials", "produces", "klass", "fragment"),
    [
        ("online, posted result", {}, [E_FORM], None, FULL, None),
        ("online, no materials", {}, [], None, FULL, None),
        # 邮寄: paper goes by post, the result comes back by post; no online depth needed.
        ("mail-in", {**WINDOW_ONLY, "handle_forms": "post", "result_delivery": "post"}, [PAPER], None,
         FULL, None),
        # 全程代办: the agent hands in the paper and collects the result at the window.
        ("full proxy", {**WINDOW_ONLY, "handle_forms": "proxy", "result_delivery": "window"}, [PAPER],
         None, FULL, None),
        # 自助终端: electronic materials, result downloaded.
        ("kiosk", {**WINDOW_ONLY, "handle_forms": "kiosk", "result_delivery": "online"}, [E_FORM], None,
         FULL, None),
        ("kiosk with paper", {**WINDOW_ONLY, "handle_forms": "kiosk", "result_delivery": "online"},
         [PAPER], None, NONE, "身份证原件"),
        # 部分不见面: one meeting, its step recorded.
        ("one meeting at the window",
         {**WINDOW_ONLY, "visits": 1, "visits_reason": "核验原件", "meeting_step": "受理：现场核验原件",
          "result_delivery": "post"}, [PAPER], None, PARTIAL, None),
        ("one meeting, step not recorded",
         {**WINDOW_ONLY, "visits": 1, "result_delivery": "post"}, [PAPER], None, NONE, "需见面的环节"),
        ("one meeting but two implied",
         {**WINDOW_ONLY, "visits": 1, "meeting_step": "受理", "result_delivery": "window"}, [PAPER], None,
         NONE, "申请和取得结果都需要见面"),
        ("two visits", {"visits": 2, "meeting_step": "受理"}, [E_FORM], None, NONE, "最多见面一次"),
        # E-licence delivery counts only when the entry produces a licence type.
        ("e-licence, type produced", {"result_delivery": "elicence"}, [E_FORM], True, FULL, None),
        ("e-licence, no type", {"result_delivery": "elicence"}, [E_FORM], False, NONE, "没有由本事项"),
        ("e-licence, link unknown", {"result_delivery": "elicence"}, [E_FORM], None, NONE, "未能核对"),
        # Not recorded is never a pass.
        ("visits not recorded", {"visits": None}, [E_FORM], None, NONE, "到办事现场次数未填报"),
        ("forms not recorded", {"handle_forms": None}, [E_FORM], None, NONE, "办理形式未填报"),
        ("delivery not recorded", {"result_delivery": None}, [E_FORM], None, NONE, "结果送达方式未填报"),
        ("material form not recorded", {}, [{"name": "申请表", "form": None}], None, NONE, "材料形式未填报"),
        ("type not recorded", {"task_type": None}, [E_FORM], None, NONE, "未填报"),
        ("online without online acceptance", {"handle_forms": "online", "online_depth": "1,2,3"}, [E_FORM],
         None, NONE, "互联网受理"),
        ("window only, 0 visits", {**WINDOW_ONLY}, [E_FORM], None, NONE, "当前仅窗口办理"),
        ("paper, online application", {}, [PAPER], None, NONE, "身份证原件"),
        ("paper optional", {}, [{**PAPER, "required": False}], None, FULL, None),
        ("paper replaced by a licence", {}, [{**PAPER, "licence_type_code": "11100000000013338W011"}], None,
         FULL, None),
        ("paper or electronic", {}, [{**PAPER, "form": "both"}], None, FULL, None),
        # Scope: the six power types only.
        ("not applicable here", {"applicable": False}, [E_FORM], None, NONE, "本地不适用"),
        ("administrative penalty", {"task_type": "02"}, [E_FORM], None, NONE, "行政处罚"),
        ("public service", {"task_type": "20"}, [E_FORM], None, NONE, "公共服务"),
        ("administrative ruling", {"task_type": "09"}, [E_FORM], None, NONE, "行政裁决"),
        ("confirmation", {"task_type": "07"}, [E_FORM], None, FULL, None),
        ("levy", {"task_type": "04"}, [E_FORM], None, FULL, None),
    ],
)
def test_no_contact_rule_table(case, changes, materials, produces, klass, fragment):
    result = evaluate_no_contact({**FULL_ONLINE, **changes}, materials, produces)
    assert result.klass == klass, (case, result)
    assert result.ok is (klass != NONE)
    if klass == FULL:
        assert result.failures == []
        assert result.partial_failures == []
    elif klass == PARTIAL:
        assert result.partial_failures == []
        assert result.failures
    else:
        assert any(fragment in f for f in result.partial_failures), (case, result.partial_failures)
        assert any(fragment in f for f in result.failures + result.partial_failures)


def test_every_failing_condition_is_reported_at_once():
    entry = {**FULL_ONLINE, "task_type": "20", "visits": 2, "handle_forms": "window",
             "result_delivery": "window"}
    result = evaluate_no_contact(entry, [PAPER, {**PAPER, "name": "户口簿"}])
    assert result.klass == NONE
    joined = "\n".join(result.failures)
    for fragment in ("公共服务", "当前仅窗口办理", "身份证原件", "户口簿", "办理结果须", "0 次"):
        assert fragment in joined, fragment


@pytest.mark.parametrize(
    ("codes", "visits", "level"),
    [
        ("1,2,3,4,5,6", 0, 4),
        ("4,5,7", 0, 4),
        ("1,2,3,4,5,6", 1, 3),
        ("1,2,3,4,5,6", None, 3),  # unknown visits never give Ⅳ
        ("4,5", 0, 3),  # no online result
        ("3", 0, 3),
        ("1,2", 0, 2),
        ("1", 0, 1),
        ("8", 2, 1),
        ("", 0, None),
        (None, 0, None),
    ],
)
def test_depth_level_from_codes_and_visits(codes, visits, level):
    assert derive_depth_level(codes, visits) == level


def test_rate_scope_is_the_six_types():
    types = ("01", "02", "03", "04", "05", "06", "07", "08", "09", "10", "20")
    assert [t for t in types if in_rate_scope(t)] == ["01", "04", "05", "07", "08", "10"]
