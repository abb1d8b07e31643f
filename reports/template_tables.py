"""Tables 二, 三 and 四 of the national template 国办公开办函〔2021〕30号 and their invariants (pure).

Cells are keyed ``"<row>|<col>"``. Totals may be left blank: they are then computed; when given,
they must agree. Invariants (standards §6):

- 表三, every column: 三(七) = sum of 三(一)…(六); 一 + 二 = 三(七) + 四; 总计 column = sum of the others.
- 表四: each group's 总计 = 结果维持 + 结果纠正 + 其他结果 + 尚未审结.
- Every count is a non-negative integer; 表二's 收费金额 is in 万元 with at most 4 decimals.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from core.errors import Invalid

# ---- 表二 -------------------------------------------------------------------------------------------
TABLE2_ROWS: list[tuple[str, str, str, tuple[tuple[str, str], ...]]] = [
    (
        "20.1",
        "第二十条第（一）项",
        "规章",
        (("made", "本年制发件数"), ("repealed", "本年废止件数"), ("current", "现行有效件数")),
    ),
    (
        "20.1n",
        "第二十条第（一）项",
        "行政规范性文件",
        (("made", "本年制发件数"), ("repealed", "本年废止件数"), ("current", "现行有效件数")),
    ),
    ("20.5", "第二十条第（五）项", "行政许可", (("decisions", "本年处理决定数量"),)),
    ("20.6a", "第二十条第（六）项", "行政处罚", (("decisions", "本年处理决定数量"),)),
    ("20.6b", "第二十条第（六）项", "行政强制", (("decisions", "本年处理决定数量"),)),
    ("20.8", "第二十条第（八）项", "行政事业性收费", (("amount", "本年收费金额（万元）"),)),
]

# ---- 表三 -------------------------------------------------------------------------------------------
TABLE3_COLUMNS: list[tuple[str, str]] = [
    ("natural", "自然人"),
    ("commercial", "商业企业"),
    ("research", "科研机构"),
    ("welfare", "社会公益组织"),
    ("legal", "法律服务机构"),
    ("other", "其他"),
    ("total", "总计"),
]
TABLE3_ROWS: list[tuple[str, str]] = [
    ("1", "一、本年新收政府信息公开申请数量"),
    ("2", "二、上年结转政府信息公开申请数量"),
    ("3.1", "三、本年度办理结果 （一）予以公开"),
    ("3.2", "（二）部分公开（区分处理的，只计这一情形，不计其他情形）"),
    ("3.3.1", "（三）不予公开 1.属于国家秘密"),
    ("3.3.2", "2.其他法律行政法规禁止公开"),
    ("3.3.3", "3.危及“三安全一稳定”"),
    ("3.3.4", "4.保护第三方合法权益"),
    ("3.3.5", "5.属于三类内部事务信息"),
    ("3.3.6", "6.属于四类过程性信息"),
    ("3.3.7", "7.属于行政执法案卷"),
    ("3.3.8", "8.属于行政查询事项"),
    ("3.4.1", "（四）无法提供 1.本机关不掌握相关政府信息"),
    ("3.4.2", "2.没有现成信息需要另行制作"),
    ("3.4.3", "3.补正后申请内容仍不明确"),
    ("3.5.1", "（五）不予处理 1.信访举报投诉类申请"),
    ("3.5.2", "2.重复申请"),
    ("3.5.3", "3.要求提供公开出版物"),
    ("3.5.4", "4.无正当理由大量反复申请"),
    ("3.5.5", "5.要求行政机关确认或重新出具已获取信息"),
    ("3.6.1", "（六）其他处理 1.申请人无正当理由逾期不补正、行政机关不再处理其政府信息公开申请"),
    ("3.6.2", "2.申请人逾期未按收费通知要求缴纳费用、行政机关不再处理其政府信息公开申请"),
    ("3.6.3", "3.其他"),
    ("3.7", "（七）总计"),
    ("4", "四、结转下年度继续办理"),
]
TABLE3_RESULT_ROWS = [r for r, _ in TABLE3_ROWS if r.startswith("3.") and r != "3.7"]

# ---- 表四 -------------------------------------------------------------------------------------------
TABLE4_GROUPS: list[tuple[str, str]] = [
    ("review", "行政复议"),
    ("direct", "行政诉讼·未经复议直接起诉"),
    ("after", "行政诉讼·复议后起诉"),
]
TABLE4_COLUMNS: list[tuple[str, str]] = [
    ("upheld", "结果维持"),
    ("corrected", "结果纠正"),
    ("other", "其他结果"),
    ("pending", "尚未审结"),
    ("total", "总计"),
]

TABLE_TITLES = {
    "2": "二、主动公开政府信息情况",
    "3": "三、收到和处理政府信息公开申请情况",
    "4": "四、政府信息公开行政复议、行政诉讼情况",
}


def cells(table: str) -> list[tuple[str, str]]:
    """(key, human label) of every cell of a table, in reading order."""
    if table == "2":
        return [(f"{r}|{c}", f"{name}·{label}") for r, _art, name, cols in TABLE2_ROWS for c, label in cols]
    if table == "3":
        return [(f"{r}|{c}", f"{rl}·{cl}") for r, rl in TABLE3_ROWS for c, cl in TABLE3_COLUMNS]
    if table == "4":
        return [(f"{g}|{c}", f"{gl}·{cl}") for g, gl in TABLE4_GROUPS for c, cl in TABLE4_COLUMNS]
    raise Invalid("表号应为 2、3 或 4", {"table": ["表号应为 2、3 或 4"]})


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _count(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError
    if isinstance(value, int):
        number = value
    else:
        text = str(value).strip()
        if not text.lstrip("-").isdigit():
            raise ValueError
        number = int(text)
    if number < 0:
        raise ArithmeticError
    return number


def validate(table: str, values: dict[str, Any]) -> dict[str, Any]:
    """Parse and check a table; return the complete cell dict (totals filled in) or raise Invalid."""
    keys = cells(table)
    known = {k for k, _ in keys}
    errors: dict[str, list[str]] = {}
    unknown = sorted(set(values) - known)
    if unknown:
        errors["_schema"] = [f"不认识的单元格：{', '.join(unknown[:10])}"]
    parsed: dict[str, Any] = {}
    for key, label in keys:
        raw = values.get(key)
        if _blank(raw):
            parsed[key] = None
            continue
        if table == "2" and key.endswith("|amount"):
            try:
                amount = Decimal(str(raw).strip())
            except InvalidOperation:
                errors[key] = [f"{label}应为数字（万元）"]
                continue
            exponent = amount.as_tuple().exponent  # a letter ('n', 'N', 'F') for NaN and infinities
            if not amount.is_finite() or amount < 0 or not isinstance(exponent, int) or exponent < -4:
                errors[key] = [f"{label}应为不小于0、最多4位小数的金额（万元）"]
                continue
            parsed[key] = format(amount.quantize(Decimal("0.0001")), "f")
            continue
        try:
            parsed[key] = _count(raw)
        except ArithmeticError:
            errors[key] = [f"{label}不能为负数"]
        except ValueError:
            errors[key] = [f"{label}应为整数"]
    if errors:
        raise Invalid("表格数据有误", errors)
    if table == "3":
        _check_table3(parsed, errors)
    elif table == "4":
        _check_table4(parsed, errors)
    else:
        missing = [label for key, label in keys if parsed[key] is None]
        if missing:
            errors["_schema"] = [f"请填写：{'、'.join(missing)}"]
    if errors:
        raise Invalid("表格数据不满足模板的校验关系", errors)
    return parsed


def _fill_or_check(
    parsed: dict[str, Any], key: str, expected: int, rule: str, errors: dict[str, list[str]]
) -> None:
    given = parsed.get(key)
    if given is None:
        parsed[key] = expected
    elif given != expected:
        errors.setdefault(key, []).append(f"应为 {expected}（{rule}），填写的是 {given}")


def _check_table3(parsed: dict[str, Any], errors: dict[str, list[str]]) -> None:
    columns = [c for c, _ in TABLE3_COLUMNS if c != "total"]
    # Blank detail cells count as zero; blank 一/二/四 cells are missing figures.
    for row, label in TABLE3_ROWS:
        for col in columns:
            key = f"{row}|{col}"
            if parsed[key] is None:
                if row in ("1", "2", "4"):
                    errors.setdefault(key, []).append(f"请填写{label}（无则填0）")
                elif row != "3.7":
                    parsed[key] = 0
    if errors:
        return
    for col in columns:
        total = sum(parsed[f"{r}|{col}"] for r in TABLE3_RESULT_ROWS)
        _fill_or_check(parsed, f"3.7|{col}", total, "三(七) = 三(一)至(六)之和", errors)
    for row, _label in TABLE3_ROWS:
        _fill_or_check(
            parsed,
            f"{row}|total",
            sum(parsed[f"{row}|{c}"] for c in columns),
            "总计 = 各类申请人之和",
            errors,
        )
    if errors:
        return
    for col, col_label in TABLE3_COLUMNS:
        left = parsed[f"1|{col}"] + parsed[f"2|{col}"]
        right = parsed[f"3.7|{col}"] + parsed[f"4|{col}"]
        if left != right:
            errors.setdefault(f"4|{col}", []).append(
                f"{col_label}：一 + 二 = {left}，三(七) + 四 = {right}，应相等（一 + 二 = 三(七) + 四）"
            )


def _check_table4(parsed: dict[str, Any], errors: dict[str, list[str]]) -> None:
    parts = [c for c, _ in TABLE4_COLUMNS if c != "total"]
    for group, label in TABLE4_GROUPS:
        for col in parts:
            key = f"{group}|{col}"
            if parsed[key] is None:
                errors.setdefault(key, []).append(f"请填写{label}（无则填0）")
        if any(parsed[f"{group}|{c}"] is None for c in parts):
            continue
        _fill_or_check(
            parsed,
            f"{group}|total",
            sum(parsed[f"{group}|{c}"] for c in parts),
            "总计 = 维持 + 纠正 + 其他 + 尚未审结",
            errors,
        )
