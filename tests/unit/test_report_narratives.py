"""Narrative placeholders, entered-figure formatting and the cross-year checks, on a hand-built snapshot
payload (no I/O): every placeholder is listed here with the text worked out by hand."""

from __future__ import annotations

from typing import Any

import pytest

from reports import cross_year, entered_figures, narratives
from reports.narratives import PENDING, Sources


def rate(n: int, d: int) -> dict[str, Any]:
    return {"type": "rate", "numerator": n, "denominator": d, "missing": None, "label": "x"}


def count(v: int) -> dict[str, Any]:
    return {"type": "count", "value": v, "missing": None, "label": "x"}


TABLE2 = {
    "20.1|made": 1,
    "20.1|repealed": 0,
    "20.1|current": 4,
    "20.1n|made": 6,
    "20.1n|repealed": 2,
    "20.1n|current": 31,
    "20.5|decisions": 1203,
    "20.6a|decisions": 88,
    "20.6b|decisions": 5,
    "20.8|amount": "12.5000",
}
TABLE3 = {"1|total": 9, "2|total": 2, "3.7|total": 10, "3.1|total": 6, "4|total": 1}
TABLE4 = {"review|total": 3, "direct|total": 2, "after|total": 1}


def payload(**extra: Any) -> dict[str, Any]:
    m = {
        "no_contact_rate": rate(45, 50),
        "no_contact_rate_01": rate(30, 32),
        "no_contact_rate_07": rate(5, 6),
        "no_contact_rate_08": rate(1, 1),
        "no_contact_rate_05": rate(2, 2),
        "no_contact_rate_04": {"type": "rate", "numerator": 0, "denominator": 0, "missing": "无此类事项"},
        "no_contact_rate_10": rate(7, 9),
        "full_online_rate": rate(20, 80),
        "at_most_once_rate": rate(72, 80),
        "online_available_rate": rate(64, 80),
        "cases_received": count(12345),
        "online_case_share": rate(3, 4),
        "on_time_rate": rate(199, 200),
        "departments_online": rate(12, 16),
        "licence_types": count(7),
        "claim_coverage_level_5": rate(1, 3),
        "claim_coverage_level_6": {
            "type": "rate",
            "numerator": 0,
            "denominator": 0,
            "missing": "没有村级实施主体",
        },
        "drift_rate": rate(0, 40),
        "bundles_published": count(5),
        "licences_pushed_cumulative": count(3000),
        "licence_department_coverage": rate(9, 10),
        "items_claimed_level_5": count(73),
        "items_claimed_level_6": {"type": "count", "value": 0, "missing": "没有村级认领"},
    }
    return {
        "metrics": m,
        "template_tables": {"2": TABLE2, "3": TABLE3, "4": TABLE4},
        "entered_figures": {
            "info_processing_fee": {"value": "0", "unit": "元", "lower_bound": False},
            "contact_phone": {"value": "0523-86966263", "unit": "", "lower_bound": False},
            "published_at": {"value": "高港区人民政府门户网站", "unit": "", "lower_bound": False},
            "cases_handled": {"value": "70000", "unit": "条", "lower_bound": True},
            "leaflets_handed_out": {"value": "3500", "unit": "份", "lower_bound": True},
            "published_on": {"value": "2019-02-25", "unit": "", "lower_bound": False},
            # entered, but the snapshot computes it: the computed figure wins
            "scenario_bundles": {"value": "7", "unit": "个", "lower_bound": False},
            # entered where the snapshot has no data: the entered figure stands in
            "village_public_service_items": {"value": "66", "unit": "项", "lower_bound": False},
        },
        **extra,
    }


# Every placeholder with the text it must print for payload(); None: no data (prints PENDING).
EXPECTED: dict[str, str | None] = {
    "年度": "2026",
    "六类不见面率": "行政许可93.8%（30/32）；行政确认83.3%（5/6）；行政奖励100.0%（1/1）；"
    "行政给付100.0%（2/2）；其他行政权力77.8%（7/9）",
    "不见面率·行政许可": "93.8%（30/32）",
    "不见面率·行政确认": "83.3%（5/6）",
    "不见面率·行政奖励": "100.0%（1/1）",
    "不见面率·行政给付": "100.0%（2/2）",
    "不见面率·行政征收": None,
    "不见面率·其他行政权力": "77.8%（7/9）",
    "全程网办率": "25.0%（20/80）",
    "最多跑一次率": "90.0%（72/80）",
    "网上可办率": "80.0%（64/80）",
    "办件总量": "12,345件",
    "网办件占比": "75.0%（3/4）",
    "按时办结率": "99.5%（199/200）",
    "网上办理部门占比": "75.0%（12/16）",
    "在用证照类型": "7类",
    "镇级认领覆盖率": "33.3%（1/3）",
    "村级认领覆盖率": None,
    "三级四同偏差": "0.0%（0/40）",
    "规章制发件数": "1件",
    "规章现行有效件数": "4件",
    "规范性文件制发件数": "6件",
    "规范性文件废止件数": "2件",
    "规范性文件现行有效件数": "31件",
    "行政许可决定数": "1203件",
    "行政处罚决定数": "88件",
    "本年新收申请": "9件",
    "上年结转申请": "2件",
    "办结申请": "10件",
    "予以公开申请": "6件",
    "结转下年度申请": "1件",
    "行政复议总计": "3件",
    "行政诉讼总计": "3件",
    # entered figures (and the computed ones among them)
    "统计期限起": None,
    "统计期限止": None,
    "发布日期": "2019年2月25日",
    "编制单位": None,
    "发布网站": "高港区人民政府门户网站",
    "联系单位": None,
    "联系电话": "0523-86966263",
    "信息处理费": "0元",
    "镇街数": None,
    "政务公开重点工作": None,
    "宣传手册": "3500余份",
    "现场咨询群众": None,
    "12345热线有效诉求": None,
    "省12345工单": None,
    "网络舆情": None,
    "政务专题": None,
    "简明问答类别": None,
    "简明问答问题": None,
    "特色服务应用": None,
    "不见面审批事项类别": None,
    "不见面率": "90.0%（45/50）",
    "套餐式场景服务": "5个",  # computed 5 beats the entered 7
    "网上办理部门数": "12个",
    "累计办件": "7万余条",
    "累计推送证照数据": "3,000条",
    "电子证照部门覆盖率": "90.0%（9/10）",
    "镇级公共服务事项": "73项",
    "村级公共服务事项": "66项",  # the snapshot has no data: the entered 66
    "电子监察异常办件": None,
    "门户网站发布政务信息": None,
    "信息公开平台发布信息": None,
    "向市政府网站报送信息": None,
    "被市政府网站采用信息": None,
    "收到公开申请": None,
    "行政复议案件": None,
    "被纠错或败诉案件": None,
    "存在问题数": None,
    "改进措施数": None,
}


def test_every_placeholder_prints_its_hand_worked_figure() -> None:
    assert set(EXPECTED) == set(narratives.PLACEHOLDERS), "every placeholder is hand-checked here"
    sources = Sources(2026, payload())
    for name, expected in EXPECTED.items():
        assert narratives.PLACEHOLDERS[name][1](sources) == expected, name


def test_fill_prints_pending_and_names_the_placeholders_without_data() -> None:
    text = "不见面率{不见面率}，村级{村级认领覆盖率}。\n\n信息处理费{信息处理费}。"
    paragraphs, missing = narratives.fill(text, Sources(2026, payload()))
    assert paragraphs == ["不见面率90.0%（45/50），村级" + PENDING + "。", "信息处理费0元。"]
    assert missing == ["村级认领覆盖率"]


def test_figure_choice_says_which_value_was_printed() -> None:
    sources = Sources(2026, payload())
    bundles = narratives.figure_choice(sources, entered_figures.BY_KEY["scenario_bundles"])
    assert (bundles.source, bundles.computed, bundles.entered) == ("computed", "5个", "7个")
    villages = narratives.figure_choice(sources, entered_figures.BY_KEY["village_public_service_items"])
    assert (villages.source, villages.computed, villages.entered) == ("entered", None, "66项")
    # a year before the platform: nothing recorded counts 0, which does not overrule the entered 7
    before = payload()
    before["metrics"]["bundles_published"] = count(0)
    bundles = narratives.figure_choice(Sources(2018, before), entered_figures.BY_KEY["scenario_bundles"])
    assert (bundles.source, bundles.computed, bundles.entered, bundles.text) == (
        "entered",
        "0个",
        "7个",
        "7个",
    )
    # without an entered figure the computed zero is printed
    del before["entered_figures"]["scenario_bundles"]
    bundles = narratives.figure_choice(Sources(2018, before), entered_figures.BY_KEY["scenario_bundles"])
    assert (bundles.source, bundles.text) == ("computed", "0个")


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("不见面率{不见面律}", "不认识的占位符：{不见面律}"),
        ("{年度}年{}", "不认识的占位符：{}"),
        ("全年{年度", "花括号不成对"),
        ("全年}年度", "花括号不成对"),
    ],
)
def test_a_bad_placeholder_is_named(text: str, problem: str) -> None:
    problems = narratives.check_text(text)
    assert any(problem in p for p in problems), problems


def test_every_default_block_uses_only_known_placeholders() -> None:
    for form, blocks in narratives.BLOCKS.items():
        for block in blocks:
            assert narratives.check_text(block.default) == [], (form, block.key)


@pytest.mark.parametrize(
    ("key", "value", "lower", "printed"),
    [
        ("cases_handled", "70000", True, "7万余条"),
        ("licence_records_pushed", "140000", True, "14万余条"),
        ("leaflets_handed_out", "3500", True, "3500余份"),
        ("hotline_12345_valid_requests", "13616", False, "13616件"),
        ("no_contact_rate", "100", False, "100%"),
        ("info_processing_fee", "12.50", False, "12.5元"),
        ("published_on", "2019-02-25", False, "2019年2月25日"),
    ],
)
def test_entered_figures_print_with_their_unit(key: str, value: str, lower: bool, printed: str) -> None:
    definition = entered_figures.BY_KEY[key]
    assert (
        entered_figures.format_value(definition, entered_figures.parse_value(definition, value), lower)
        == printed
    )


@pytest.mark.parametrize(
    ("key", "value", "reason"),
    [
        ("cases_handled", "7万", "不是数字"),
        ("cases_handled", "1.5", "应为整数"),
        ("cases_handled", "-1", "不能为负数"),
        ("no_contact_rate", "101", "不能超过100"),
        ("published_on", "2019/02/25", "不是日期"),
        ("info_processing_fee", "1.234", "最多两位小数"),
        # What Decimal reads but no figure is written as (1e400 overflowed the stored text: a 500).
        ("cases_handled", "1e400", "不是数字"),
        ("cases_handled", "NaN", "不是数字"),
        ("cases_handled", "inf", "不是数字"),
        ("cases_handled", "1_000", "不是数字"),
        ("cases_handled", "\u0663", "不是数字"),
        ("cases_handled", "1" + "0" * 15, "数值过大"),
    ],
)
def test_entered_figures_refuse_values_of_the_wrong_kind(key: str, value: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        entered_figures.parse_value(entered_figures.BY_KEY[key], value)


def test_the_form_follows_the_year() -> None:
    assert narratives.form_for_year(2018) == narratives.FORM_2008
    assert narratives.form_for_year(2019) == narratives.FORM_2021
    assert narratives.form_for_year(2026) == narratives.FORM_2021


# ---- cross-year checks ------------------------------------------------------------------------------

COLUMNS = ("natural", "commercial", "research", "welfare", "legal", "other", "total")


def t3(row: str, values: tuple[int, ...]) -> dict[str, int]:
    return {f"{row}|{c}": v for c, v in zip(COLUMNS, values, strict=True)}


def t2(rules: tuple[int, int, int], normative: tuple[int, int, int]) -> dict[str, int]:
    out = {}
    for row, values in (("20.1", rules), ("20.1n", normative)):
        out |= {f"{row}|{c}": v for c, v in zip(("made", "repealed", "current"), values, strict=True)}
    return out


def test_cross_year_checks_pass_when_the_years_agree() -> None:
    last = {"2": t2((0, 0, 4), (5, 1, 27)), "3": t3("4", (1, 1, 0, 0, 0, 0, 2))}
    this = {"2": t2((1, 0, 5), (6, 2, 31)), "3": t3("2", (1, 1, 0, 0, 0, 0, 2))}
    assert cross_year.check(2026, this, last, "取自快照") == []


def test_cross_year_checks_name_each_column_and_row_that_disagrees() -> None:
    last = {"2": t2((0, 0, 4), (5, 1, 27)), "3": t3("4", (1, 1, 0, 0, 0, 0, 2))}
    # 商业企业 carried 1 but 0 arrived; 总计 follows; 规范性文件 27 + 6 − 2 = 31, not 30
    this = {"2": t2((1, 0, 5), (6, 2, 30)), "3": t3("2", (1, 0, 0, 0, 0, 0, 1))}
    warnings = cross_year.check(2026, this, last, "取自 2025 年快照 #3")
    messages = [w.message for w in warnings]
    assert [w.check for w in warnings] == ["carry_over", "carry_over", "current_count"]
    assert messages[0] == (
        "表三·商业企业：2026 年“二、上年结转”为 0，"
        "2025 年“四、结转下年度继续办理”为 1（取自 2025 年快照 #3），应相等"
    )
    assert messages[1].startswith("表三·总计：2026 年“二、上年结转”为 1")
    assert messages[2] == (
        "表二·行政规范性文件：现行有效件数 30，"
        "按上年 27 + 本年制发 6 − 本年废止 2 应为 31（上年数据取自 2025 年快照 #3）"
    )


def test_cross_year_checks_say_when_a_side_is_missing() -> None:
    messages = [
        w.message for w in cross_year.check(2026, {"2": None, "3": None}, None, "2025 年没有快照也没有填报")
    ]
    assert "2026 年表三尚未填报，无法核对上年结转" in messages
    assert "2026 年表二尚未填报，无法核对规章现行有效件数" in messages
    this = {"2": t2((1, 0, 5), (6, 2, 31)), "3": t3("2", (0,) * 7)}
    messages = [w.message for w in cross_year.check(2026, this, None, "2025 年没有快照也没有填报")]
    assert messages[0] == "2025 年表三没有数据（2025 年没有快照也没有填报），无法核对上年结转"
